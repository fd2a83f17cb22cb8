package s3blob

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Defaults.
const (
	// DefaultRegion is the region used when Config.Region is empty.
	DefaultRegion = "us-east-1"
	// DefaultRoleDuration is the lifetime asked of STS for role sessions
	// when Config.RoleDuration is zero: the most that role chaining allows
	// and the default maximum of an IAM role.
	DefaultRoleDuration = time.Hour
	// DefaultRoleSessionName names role sessions when
	// Config.RoleSessionName is empty.
	DefaultRoleSessionName = "signet"
	// GrantParam is the query parameter that carries SignOptions.GrantID in
	// every URL. It is signed, and S3 server access logs and CloudTrail
	// data events record it with the request URI.
	GrantParam = "x-signet-grant"
)

// Honest expiry tuning.
const (
	// minCredentialLifetime is the least a URL may live when the signing
	// credentials cut it short; below it SignedURL answers Unavailable.
	minCredentialLifetime = time.Minute
	// refreshInterval limits how often SignedURL forces a credential
	// refresh because the credentials expire before a requested expiry.
	refreshInterval = time.Minute
)

// Config configures a Backend for one bucket.
type Config struct {
	// Bucket is the bucket the backend signs for; it signs for no other.
	// Required.
	Bucket string
	// Prefix, when not empty, is the connector's prefix ("team/", ending
	// in "/"): the backend signs only keys below it, and role sessions are
	// scoped to it.
	Prefix string
	// Region is the bucket's region; DefaultRegion when empty.
	Region string
	// Endpoint is the base URL of an S3-compatible store (MinIO, Ceph,
	// R2, ...), such as "http://127.0.0.1:9000", without path, query or
	// credentials. Empty means AWS: https://<bucket>.s3.<region>.amazonaws.com.
	Endpoint string
	// PathStyle puts the bucket in the path (https://host/bucket/key)
	// instead of the host name. Buckets whose names hold dots (over https:
	// they break TLS), upper case or "_" (not host names) always use the
	// path.
	PathStyle bool

	// Static credentials. SecretAccessKey is required with AccessKeyID;
	// SessionToken is optional. Neither is ever shown in errors or logs.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// SessionExpires is when temporary static credentials (those with a
	// SessionToken) expire: S3 refuses a URL once its session has
	// expired, so URLs are cut to it, and signing fails Unavailable once
	// it is less than a minute away (static keys cannot be refreshed).
	// Without it, a backend with a SessionToken makes its own calls
	// (multipart, reads) but signs no URL (Unavailable), since it cannot
	// say how long one would work. Keys without a session token never
	// expire.
	SessionExpires time.Time
	// Credentials is a credentials provider to use instead of static keys
	// (it is wrapped in an aws.CredentialsCache unless it is one). When it
	// and AccessKeyID are both empty, the default AWS credential chain is
	// used: environment, shared config files, web identity (IRSA), ECS and
	// EC2 instance roles.
	Credentials aws.CredentialsProvider

	// RoleARN, when set, makes the backend sign with credentials from STS
	// AssumeRole, obtained with the credentials above and scoped by a
	// session policy to the objects of Bucket below Prefix (see
	// SessionPolicy), so even signet's signing credentials cannot reach
	// other data.
	RoleARN string
	// RoleSessionName names the role sessions; DefaultRoleSessionName when
	// empty.
	RoleSessionName string
	// RoleExternalID is passed to AssumeRole when not empty.
	RoleExternalID string
	// RoleDuration is the session lifetime asked of STS;
	// DefaultRoleDuration when zero. URLs never outlive their session (see
	// SignedURL).
	RoleDuration time.Duration
	// STSEndpoint is the base URL of the STS service. Empty means Endpoint
	// when that is set (MinIO serves STS there), else AWS's regional STS.
	STSEndpoint string
	// SourceNetworks and SourceVPCEs, with a role, restrict the URL
	// signing session to requests from these client networks
	// (aws:SourceIp) or through these VPC endpoints (aws:SourceVpce): see
	// NetworkSessionPolicy. signet's own object calls (multipart uploads,
	// reading an object back) use a second session without them.
	// SourceVPCEs also go into the bucket policy of ApplyNetworkPolicy.
	SourceNetworks []netip.Prefix
	SourceVPCEs    []string

	// KMSKeyID, when set, makes uploads use SSE-KMS with this key (an id,
	// alias or ARN): single-upload URLs bind the SSE-KMS headers and
	// multipart uploads are created with them.
	KMSKeyID string

	// DisableMultipartSHA256 refuses (Unimplemented) a SHA-256 for chunked
	// uploads instead of verifying it by reading the assembled object back
	// once (see CompleteMultipart).
	DisableMultipartSHA256 bool

	// HTTPClient performs the control-plane calls (multipart, STS); the
	// SDK's default when nil.
	HTTPClient *http.Client

	// Now is the clock for credential bookkeeping; time.Now when nil.
	// URLs are dated with SignOptions.Now.
	Now func() time.Time
}

// Backend signs S3 URLs for one bucket and drives S3 multipart uploads. It
// implements driver.Backend and driver.Multipart and is safe for
// concurrent use.
type Backend struct {
	bucket    string
	prefix    string
	region    string
	scheme    string // "https" or "http"
	host      string // host of URLs, with the bucket when virtual-hosted
	basePath  string // "" or "/<bucket>" (path style), encoded
	kmsKeyID  string
	noMPCheck bool
	now       func() time.Time

	// Exactly one of static and creds is used: static when the keys are
	// fixed, creds (a cache) otherwise.
	static    *aws.Credentials
	creds     *aws.CredentialsCache
	signer    signer
	client    *s3.Client
	config    *s3.Client   // for Diagnose: signet's identity, never a role session
	roleARN   string       // Config.RoleARN
	httpc     *http.Client // cfg.HTTPClient; nil means http.DefaultClient
	vpces     []string     // Config.SourceVPCEs, checked
	freshness freshness

	listPageSize int32 // parts per ListParts page; the store's default when 0
}

var (
	_ driver.Backend   = (*Backend)(nil)
	_ driver.Multipart = (*Backend)(nil)
)

// Open checks cfg and returns a Backend. It makes no network call: bad
// credentials show up when they are used. Errors are *signet.Error values:
// Invalid for a bad configuration (bucket name, prefix, region, endpoint,
// credentials, role settings) and Unavailable when the default credential
// chain cannot be set up (for example a broken shared config file).
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	const op = "s3blob.Open"
	invalid := func(msg string) (*Backend, error) {
		return nil, signet.E(op, signet.Invalid, msg, nil)
	}
	if !validBucket(cfg.Bucket) {
		return invalid("bucket name must be 3 to 63 characters of [a-z0-9.-] (S3 rules; A-Z and _ allowed for old buckets)")
	}
	if err := storage.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	if !validRegion(region) {
		return invalid("region must be made of [a-z0-9-], such as us-east-1")
	}
	b := &Backend{
		bucket:    cfg.Bucket,
		prefix:    cfg.Prefix,
		region:    region,
		kmsKeyID:  cfg.KMSKeyID,
		noMPCheck: cfg.DisableMultipartSHA256,
		now:       cfg.Now,
	}
	if b.now == nil {
		b.now = time.Now
	}
	if cfg.KMSKeyID != "" && !isPrintable(cfg.KMSKeyID) {
		return invalid("KMS key id must be printable ASCII")
	}

	// Where URLs point.
	var endpoint *url.URL
	if cfg.Endpoint != "" {
		u, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return invalid("endpoint must be an http or https URL with a host and nothing after it, such as http://127.0.0.1:9000")
		}
		endpoint = u
		b.scheme = u.Scheme
	} else {
		b.scheme = "https"
		endpoint = &url.URL{Scheme: "https", Host: "s3." + region + "." + awsDomain(region)}
	}
	pathStyle := cfg.PathStyle || !dnsBucket(cfg.Bucket) || strings.Contains(cfg.Bucket, ".") && b.scheme == "https"
	if pathStyle {
		b.host = endpoint.Host
		b.basePath = "/" + string(appendPathEscaped(nil, cfg.Bucket))
	} else {
		b.host = cfg.Bucket + "." + endpoint.Host
	}

	// Credentials.
	var base aws.CredentialsProvider
	var awsCfg aws.Config
	switch {
	case cfg.AccessKeyID != "" && cfg.Credentials != nil:
		return invalid("give either static credentials or a credentials provider, not both")
	case cfg.AccessKeyID != "" && cfg.SecretAccessKey == "":
		return invalid("an access key id needs its secret access key")
	case cfg.AccessKeyID == "" && (cfg.SecretAccessKey != "" || cfg.SessionToken != ""):
		return invalid("a secret access key or session token needs its access key id")
	case cfg.SessionToken == "" && !cfg.SessionExpires.IsZero():
		return invalid("a session expiry applies to a session token only")
	case cfg.AccessKeyID != "":
		base = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
		awsCfg = aws.Config{Region: region}
	case cfg.Credentials != nil:
		base = cfg.Credentials
		awsCfg = aws.Config{Region: region}
	default:
		c, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, signet.E(op, signet.Unavailable, "cannot load the default AWS configuration", err)
		}
		awsCfg, base = c, c.Credentials
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
		b.httpc = cfg.HTTPClient
	}
	caller := base // signet's own identity, before any role
	vpces, err := ParseVPCEndpoints(cfg.SourceVPCEs...)
	if err != nil {
		return nil, err
	}
	b.vpces = vpces
	var control aws.CredentialsProvider // signet's object calls, when not the URLs' session
	b.roleARN = cfg.RoleARN
	if cfg.RoleARN != "" {
		if !strings.HasPrefix(cfg.RoleARN, "arn:") || !isPrintable(cfg.RoleARN) {
			return invalid("role ARN must be an ARN such as arn:aws:iam::123456789012:role/signet")
		}
		if strings.ContainsAny(cfg.Bucket+cfg.Prefix, "*?$") {
			return invalid(`with a role, bucket and prefix must not contain "*", "?" or "$" (they are wildcards in policies)`)
		}
		if cfg.RoleDuration != 0 && (cfg.RoleDuration < 15*time.Minute || cfg.RoleDuration > 12*time.Hour) {
			return invalid("role duration must be between 15 minutes and 12 hours")
		}
		if n := cfg.RoleSessionName; n != "" && !validSessionName(n) {
			return invalid("role session name must be 2 to 64 characters of [A-Za-z0-9+=,.@_-]")
		}
		if base == nil {
			return invalid("no credentials to assume the role with")
		}
		stsEndpoint := cfg.STSEndpoint
		if stsEndpoint == "" {
			stsEndpoint = cfg.Endpoint
		}
		stsOpts := func(o *sts.Options) {
			o.Credentials = base
			o.BaseEndpoint = nil
			if stsEndpoint != "" {
				o.BaseEndpoint = aws.String(stsEndpoint)
			}
		}
		if stsEndpoint != "" {
			if _, err := parseEndpoint(stsEndpoint); err != nil {
				return invalid("STS endpoint must be an http or https URL with a host and nothing after it")
			}
		}
		policy := NetworkSessionPolicy(region, cfg.Bucket, cfg.Prefix, cfg.KMSKeyID, cfg.SourceNetworks, b.vpces)
		if len(policy) > MaxSessionPolicy {
			return invalid("too many networks or VPC endpoints for an STS session policy (2,048 characters at most)")
		}
		stsClient := sts.NewFromConfig(awsCfg, stsOpts)
		assume := func(policy string) aws.CredentialsProvider {
			return stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = cfg.RoleSessionName
				if o.RoleSessionName == "" {
					o.RoleSessionName = DefaultRoleSessionName
				}
				o.Duration = cfg.RoleDuration
				if o.Duration == 0 {
					o.Duration = DefaultRoleDuration
				}
				o.Policy = aws.String(policy)
				if cfg.RoleExternalID != "" {
					o.ExternalID = aws.String(cfg.RoleExternalID)
				}
			})
		}
		if len(cfg.SourceNetworks) > 0 || len(b.vpces) > 0 {
			// signet's own calls come from signet's address, which the
			// team's networks need not hold.
			control = aws.NewCredentialsCache(assume(SessionPolicy(region, cfg.Bucket, cfg.Prefix, cfg.KMSKeyID)))
		}
		base = assume(policy)
	}
	if sc, ok := base.(credentials.StaticCredentialsProvider); ok && cfg.RoleARN == "" {
		c := aws.Credentials{
			AccessKeyID: sc.Value.AccessKeyID, SecretAccessKey: sc.Value.SecretAccessKey,
			SessionToken: sc.Value.SessionToken, Source: sc.Value.Source,
			CanExpire: sc.Value.SessionToken != "", Expires: cfg.SessionExpires, // zero: unknown
		}
		b.static = &c
	} else if cc, ok := base.(*aws.CredentialsCache); ok {
		b.creds = cc
	} else {
		b.creds = aws.NewCredentialsCache(base)
	}

	// The control-plane client: the same endpoint, addressing and
	// credentials as the URLs.
	b.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.Region = region
		o.UsePathStyle = pathStyle
		o.BaseEndpoint = nil
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint.Scheme + "://" + endpoint.Host)
		}
		if b.static != nil {
			o.Credentials = credentials.StaticCredentialsProvider{Value: *b.static}
		} else {
			o.Credentials = b.creds
		}
		// Uploads go through URLs that carry no SDK checksums; keep the
		// control plane from asking for them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	// Bucket configuration checks (Diagnose) read settings a role session
	// is not allowed to, so they run as signet's own identity.
	b.config = b.client
	if cfg.RoleARN != "" {
		b.config = s3.New(b.client.Options(), func(o *s3.Options) { o.Credentials = caller })
	}
	if control != nil {
		b.client = s3.New(b.client.Options(), func(o *s3.Options) { o.Credentials = control })
	}
	return b, nil
}

// SessionPolicy returns the STS session policy Open uses with a role: it
// allows reading, writing and deleting objects and managing multipart
// uploads below prefix in bucket, listing keys below prefix (so a missing
// key is answered 404, not 403), and nothing else; an empty prefix means
// the whole bucket. With a KMS key it also allows using that key, which
// SSE-KMS uploads and downloads need. The session's permissions are the
// intersection of this policy and the role's own.
func SessionPolicy(region, bucket, prefix, kmsKeyID string) string {
	partition := awsPartition(region)
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[{"Sid":"SignetObjects","Effect":"Allow",` +
		`"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],` +
		`"Resource":["arn:`)
	b.WriteString(partition)
	b.WriteString(`:s3:::`)
	b.WriteString(jsonEscape(bucket + "/" + prefix))
	b.WriteString(`*"]}`)
	// Listing below the prefix lets S3 answer 404, not 403, for a missing
	// key; signet never signs a listing URL.
	b.WriteString(`,{"Sid":"SignetList","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:`)
	b.WriteString(partition)
	b.WriteString(`:s3:::`)
	b.WriteString(jsonEscape(bucket))
	b.WriteString(`"]`)
	if prefix != "" {
		b.WriteString(`,"Condition":{"StringLike":{"s3:prefix":["`)
		b.WriteString(jsonEscape(prefix))
		b.WriteString(`*"]}}`)
	}
	b.WriteString(`}`)
	if kmsKeyID != "" {
		res := "*"
		if strings.HasPrefix(kmsKeyID, "arn:") {
			res = kmsKeyID
		}
		b.WriteString(`,{"Sid":"SignetKMS","Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":["`)
		b.WriteString(jsonEscape(res))
		b.WriteString(`"]}`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// SignedURL implements driver.Backend: it presigns opts with SigV4 (query
// parameters, UNSIGNED-PAYLOAD) and makes no network call unless the
// credentials need refreshing.
//
// The URL signs the host, the method, the key (and for a part, partNumber
// and uploadId), the expiry, GrantParam when GrantID is set, and for PUT
// these headers, which SignedURL.Headers lists and S3 requires exactly:
//
//   - Content-Type, when ContentType is set;
//   - Content-Length, when Size >= 0 (HTTP clients set it from the body;
//     the store refuses a body of another length);
//   - x-amz-checksum-sha256 (base64), when SHA256 is set (single uploads;
//     the store refuses a body with another SHA-256);
//   - x-amz-server-side-encryption and
//     x-amz-server-side-encryption-aws-kms-key-id, when the backend has a
//     KMS key (single uploads; parts inherit the upload's encryption).
//
// SignedURL.Expires is opts.Expires, or earlier when the signing
// credentials expire before it: S3 refuses a URL once its credentials
// have expired, so a later expiry would be a lie. In that case SignedURL
// first refreshes the credentials (at most once a minute) and shortens
// the URL only if that does not help.
//
// Errors are *signet.Error values: PermissionDenied for another bucket or
// a key outside Config.Prefix; Unimplemented for a ClientPrefix (S3
// cannot bind a client network into a URL; use a bucket policy) and for a
// SHA256 on a part; Invalid for a method other than GET, HEAD or PUT or
// bindings on another method; InvalidPart for a malformed part;
// InvalidExpiry for an expiry not 1 s to 7 days after Now; Unavailable
// when no credentials can be obtained or they expire within a minute.
func (b *Backend) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	const op = "s3blob.SignedURL"
	if err := b.scope().CheckKey(op, o.Bucket, o.Key); err != nil {
		return nil, err
	}
	switch o.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return nil, signet.E(op, signet.Invalid, "method must be GET, HEAD or PUT", nil)
	}
	isPart := o.UploadID != "" || o.PartNumber != 0
	switch {
	case o.ClientPrefix.IsValid():
		return nil, signet.E(op, signet.Unimplemented, "S3 URLs cannot be bound to a client network; restrict it with a bucket policy", nil)
	case o.Method != http.MethodPut && (o.ContentType != "" || o.Size >= 0 || o.SHA256 != nil || isPart):
		return nil, signet.E(op, signet.Invalid, "size, content type, sha256 and parts apply to PUT only", nil)
	case o.Size < -1:
		return nil, signet.E(op, signet.Invalid, "size must be -1 (unbound) or at least 0", nil)
	case o.SHA256 != nil && len(o.SHA256) != 32:
		return nil, signet.E(op, signet.Invalid, "sha256 must be 32 bytes", nil)
	case isPart && (o.UploadID == "" || o.PartNumber < 1 || o.PartNumber > storage.MaxParts):
		return nil, signet.E(op, signet.InvalidPart, "a part URL needs an upload id and a part number from 1 to 10000", nil)
	case isPart && o.SHA256 != nil:
		return nil, signet.E(op, signet.Unimplemented, "a part URL cannot bind a sha256; bind it to the whole upload", nil)
	case isPart && o.ContentType != "":
		return nil, signet.E(op, signet.Invalid, "a part URL cannot bind a content type; set it when the upload starts", nil)
	}
	if o.Now.IsZero() {
		return nil, signet.E(op, signet.Invalid, "no issue time", nil)
	}
	expires := o.Expires
	if secs := expires.Unix() - o.Now.Unix(); secs < 1 || secs > maxPresignSeconds || !expires.Equal(expires.Truncate(time.Second)) {
		return nil, signet.E(op, signet.InvalidExpiry, "expiry must be a whole second, 1 second to 7 days after the issue time", nil)
	}

	creds, expires, err := b.credentials(ctx, o.Now, expires)
	if err != nil {
		return nil, err
	}

	var hbuf [5]param
	in := presignInput{
		method:       o.Method,
		host:         b.host,
		headers:      hbuf[:0],
		payloadHash:  unsignedPayload,
		region:       b.region,
		service:      "s3",
		accessKeyID:  creds.AccessKeyID,
		secret:       creds.SecretAccessKey,
		sessionToken: creds.SessionToken,
		time:         o.Now,
		expires:      expires.Unix() - o.Now.Unix(),
	}
	var pbuf [3]param
	query := pbuf[:0]
	if isPart {
		query = append(query, param{"partNumber", strconv.Itoa(o.PartNumber)}, param{"uploadId", o.UploadID})
	}
	if o.GrantID != "" {
		query = append(query, param{GrantParam, o.GrantID})
	}
	in.query = query

	var headers map[string]string
	if o.Method == http.MethodPut {
		// In canonical (sorted) order.
		if o.Size >= 0 {
			in.headers = append(in.headers, param{"content-length", strconv.FormatInt(o.Size, 10)})
		}
		if o.ContentType != "" {
			in.headers = append(in.headers, param{"content-type", o.ContentType})
		}
		if o.SHA256 != nil {
			in.headers = append(in.headers, param{"x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(o.SHA256)})
		}
		if b.kmsKeyID != "" && !isPart {
			in.headers = append(in.headers,
				param{"x-amz-server-side-encryption", "aws:kms"},
				param{"x-amz-server-side-encryption-aws-kms-key-id", b.kmsKeyID})
		}
		if len(in.headers) > 0 {
			headers = make(map[string]string, len(in.headers))
			for _, h := range in.headers {
				headers[headerName(h.name)] = h.value
			}
		}
	}

	// The URL, built in one pooled buffer:
	// scheme://host/path?query&X-Amz-Signature=...
	up := bufPool.Get().(*[]byte)
	u := (*up)[:0]
	u = append(u, b.scheme...)
	u = append(u, "://"...)
	u = append(u, b.host...)
	pathStart := len(u)
	u = append(u, b.basePath...)
	u = append(u, '/')
	u = appendPathEscaped(u, o.Key)
	in.path = u[pathStart:]
	u = append(u, '?')
	u = b.signer.appendPresigned(u, &in, nil)
	su := &driver.SignedURL{Method: o.Method, URL: string(u), Headers: headers, Expires: expires}
	if cap(u) <= 64<<10 {
		*up = u[:0]
		bufPool.Put(up)
	}
	return su, nil
}

// headerName returns the spelling of a signed header in SignedURL.Headers.
func headerName(lower string) string {
	switch lower {
	case "content-length":
		return "Content-Length"
	case "content-type":
		return "Content-Type"
	}
	return lower
}

// scope is what the backend signs for; every key and listing prefix is
// checked against it.
func (b *Backend) scope() driver.Scope {
	return driver.Scope{Bucket: b.bucket, Prefix: b.prefix, Noun: "bucket"}
}

// credentials returns the credentials to sign with and the URL's expiry:
// want, or the credentials' expiry when that is earlier (see SignedURL).
func (b *Backend) credentials(ctx context.Context, now, want time.Time) (aws.Credentials, time.Time, error) {
	const op = "s3blob.SignedURL"
	if b.static != nil {
		if b.static.CanExpire && b.static.Expires.IsZero() {
			return aws.Credentials{}, time.Time{}, signet.E(op, signet.Unavailable,
				"the store's signing credentials hold a session token of unknown expiry, so no URL lifetime can be promised", nil)
		}
		// Temporary static keys cannot be refreshed: cut the URL to them.
		return cutToCredentials(op, *b.static, now, want)
	}
	creds, err := b.creds.Retrieve(ctx)
	if err == nil && !creds.HasKeys() {
		err = errors.New("the credentials provider returned no keys")
	}
	if err != nil {
		return aws.Credentials{}, time.Time{}, signet.E(op, signet.Unavailable, "cannot obtain the store's signing credentials", err)
	}
	if !creds.CanExpire || !creds.Expires.Before(want) {
		return creds, want, nil
	}
	// The credentials die first. Fresh ones may live long enough.
	if b.freshness.mayRefresh(creds, b.now()) {
		b.creds.Invalidate()
		if fresh, err := b.creds.Retrieve(ctx); err == nil {
			creds = fresh
		}
		// On failure keep the old credentials: they are still valid and
		// the URL is cut to their lifetime below.
		if !creds.CanExpire || !creds.Expires.Before(want) {
			return creds, want, nil
		}
	}
	return cutToCredentials(op, creds, now, want)
}

// cutToCredentials returns the credentials and the URL's expiry: want, or
// the credentials' expiry when that is earlier; Unavailable when they
// expire in less than minCredentialLifetime.
func cutToCredentials(op string, creds aws.Credentials, now, want time.Time) (aws.Credentials, time.Time, error) {
	if !creds.CanExpire || !creds.Expires.Before(want) {
		return creds, want, nil
	}
	exp := creds.Expires.Truncate(time.Second)
	if exp.Sub(now) < minCredentialLifetime {
		return aws.Credentials{}, time.Time{}, signet.E(op, signet.Unavailable,
			"the store's signing credentials expire in less than a minute and cannot be refreshed", nil)
	}
	return creds, exp, nil
}

// freshness remembers when the current credentials were first seen and
// when a refresh was last forced, so expiring credentials trigger at most
// one refresh a minute.
type freshness struct {
	mu        sync.Mutex
	id        string    // access key id of the credentials last seen
	expires   time.Time // and their expiry
	firstSeen time.Time
	forced    time.Time
}

// mayRefresh reports whether a refresh may be forced now, and if so
// records it.
func (f *freshness) mayRefresh(c aws.Credentials, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.AccessKeyID != f.id || !c.Expires.Equal(f.expires) {
		f.id, f.expires, f.firstSeen = c.AccessKeyID, c.Expires, now
	}
	if now.Sub(f.firstSeen) < refreshInterval || now.Sub(f.forced) < refreshInterval {
		return false
	}
	f.forced = now
	return true
}

// parseEndpoint accepts scheme://host[:port][/] and drops a default port.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case !driver.ValidEndpoint(u), u.Path != "" && u.Path != "/":
		return nil, signet.Errorf(signet.Invalid, "bad endpoint")
	}
	if p := u.Port(); p == "80" && u.Scheme == "http" || p == "443" && u.Scheme == "https" {
		u.Host = u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// validBucket checks S3's bucket naming rules loosely enough for old
// us-east-1 buckets and S3-compatible stores, and strictly enough that a
// name cannot change a URL's host or path.
func validBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' ||
			i > 0 && i < len(name)-1 && (c == '.' || c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return !strings.Contains(name, "..")
}

// dnsBucket reports whether name can be a host name label set: old
// buckets with upper case or "_" must be addressed in the path.
func dnsBucket(name string) bool {
	return !strings.ContainsAny(name, "_ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

func validRegion(r string) bool {
	if len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return r != ""
}

// validSessionName checks STS's rule for RoleSessionName: [\w+=,.@-]{2,64}.
func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return false
		}
	}
	return true
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// awsDomain is the DNS suffix of S3 in region's partition.
func awsDomain(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// awsPartition is the ARN partition of region.
func awsPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// jsonEscape escapes s for a JSON string (bucket and prefix are checked
// printable, but a prefix may hold '"' or '\').
func jsonEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(upperHex[r>>4])
			b.WriteByte(upperHex[r&15])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
