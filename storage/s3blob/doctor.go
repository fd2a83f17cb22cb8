package s3blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/signetdev/signet/storage/driver"
)

var _ driver.Doctor = (*Backend)(nil)

// skewFail is the clock skew the "clock" check fails at. SigV4 requests
// are refused beyond 15 minutes of skew, and a URL stamped ahead of the
// store's clock is "not yet valid" there.
const skewFail = 5 * time.Minute

// credentialsWarn is how close to expiry the signing credentials may be
// before the "credentials" check warns.
const credentialsWarn = 15 * time.Minute

// Diagnose checks the bucket behind b: the signing credentials and their
// expiry, that the bucket exists and the prefix can be listed with them,
// the clock against the store's Date header, CORS for opts.Origins with
// ETag exposed, default encryption (the connector's KMS key when it names
// one), a lifecycle rule that aborts incomplete multipart uploads, versioning,
// and, when opts.Networks is set, a bucket policy that denies the prefix
// from other networks. Bucket settings are read with signet's own identity,
// not a role session. Every call is read-only.
func (b *Backend) Diagnose(ctx context.Context, opts *driver.DiagnoseOptions) ([]driver.Check, error) {
	if opts == nil {
		opts = &driver.DiagnoseOptions{}
	}
	checks := []driver.Check{b.checkCredentials(ctx)}
	bucket, date := b.checkBucket(ctx)
	checks = append(checks, bucket, driver.ClockCheck(b.now(), date, skewFail, "the store refuses URLs stamped too far from its time"))
	checks = append(checks,
		b.checkCORS(ctx, opts.Origins),
		b.checkEncryption(ctx),
		b.checkLifecycle(ctx),
		b.checkVersioning(ctx),
		b.checkNetwork(ctx, opts),
	)
	return checks, nil
}

func (b *Backend) checkCredentials(ctx context.Context) driver.Check {
	c := driver.Check{Name: "credentials"}
	if b.static != nil && !b.static.CanExpire {
		c.Status, c.Detail = driver.CheckOK, "static access key; it does not expire (rotate it on your schedule)"
		return c
	}
	if b.static != nil && b.static.Expires.IsZero() {
		c.Status, c.Detail = driver.CheckFail, "temporary static keys (session token) of unknown expiry: no URL can be signed with them"
		c.Fix = "give the session's expiry with its token, or sign with --role-arn or the server's credential chain, which signet refreshes"
		return c
	}
	if b.static != nil {
		left := b.static.Expires.Sub(b.now()).Round(time.Second)
		c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("temporary static keys (session token); valid for %s, until %s; URLs are cut to that and cannot be refreshed",
			left, b.static.Expires.UTC().Format(time.RFC3339))
		switch {
		case left < minCredentialLifetime:
			c.Status, c.Fix = driver.CheckFail, "the session has expired: set the connector's credentials again, or sign with --role-arn or the server's credential chain, which signet refreshes"
		case left < credentialsWarn:
			c.Status, c.Fix = driver.CheckWarn, "the session is close to expiry: set the connector's credentials again, or sign with --role-arn or the server's credential chain, which signet refreshes"
		}
		return c
	}
	creds, err := b.creds.Retrieve(ctx)
	if err == nil && !creds.HasKeys() {
		err = errors.New("no keys")
	}
	if err != nil {
		c.Status, c.Detail = driver.CheckFail, "cannot obtain signing credentials: "+describeErr(err)
		c.Fix = "check the role ARN and that signet's identity (environment, shared config, IRSA or instance role) may assume it"
		return c
	}
	if !creds.CanExpire {
		c.Status, c.Detail = driver.CheckOK, "credentials from the "+creds.Source+" provider; they do not expire"
		return c
	}
	left := creds.Expires.Sub(b.now()).Round(time.Second)
	c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("expiring credentials (%s); valid for %s, until %s; refreshed before use",
		creds.Source, left, creds.Expires.UTC().Format(time.RFC3339))
	if left < credentialsWarn {
		c.Status = driver.CheckWarn
		c.Fix = "the credentials are close to expiry; signet refreshes them, but URLs issued now are cut to their lifetime: lengthen the role's session duration"
	}
	return c
}

// checkBucket lists at most one key below the prefix with the signing
// credentials, which shows the bucket exists and the credentials are
// accepted, and returns the store's Date header for the clock check.
func (b *Backend) checkBucket(ctx context.Context) (driver.Check, string) {
	c := driver.Check{Name: "bucket"}
	out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket), Prefix: aws.String(b.prefix), MaxKeys: aws.Int32(1),
	})
	if err != nil {
		date := errorDate(err)
		c.Status, c.Detail = driver.CheckFail, "cannot list "+b.listed()+": "+describeErr(err)
		switch apiCode(err) {
		case "NoSuchBucket":
			c.Fix = fmt.Sprintf("create the bucket (aws s3 mb s3://%s --region %s) or correct the connector's bucket", b.bucket, b.region)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken", "InvalidToken":
			c.Name = "credentials"
			c.Fix = "the store refused the signing credentials: set them again with signet connector set"
		case "AccessDenied":
			c.Fix = fmt.Sprintf("allow s3:ListBucket on arn:aws:s3:::%s with prefix %q, and object actions below it, to signet's identity (or the role)", b.bucket, b.prefix)
		default:
			c.Fix = "check the connector's endpoint and region and that the store is reachable from signet"
		}
		return c, date
	}
	c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("bucket %s reachable; %s listable with the signing credentials", b.bucket, orWhole(b.prefix))
	return c, responseDate(out.ResultMetadata)
}

func (b *Backend) checkCORS(ctx context.Context, origins []string) driver.Check {
	c := driver.Check{Name: "cors"}
	if len(origins) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "no browser origins configured (give --origin)"
		return c
	}
	fix := fmt.Sprintf(`aws s3api put-bucket-cors --bucket %s --cors-configuration '{"CORSRules":[{"AllowedOrigins":%s,"AllowedMethods":["GET","HEAD","PUT"],"AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":3600}]}'`,
		b.bucket, jsonList(origins))
	out, err := b.config.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(b.bucket)})
	var missing []string
	switch code := apiCode(err); {
	case err == nil:
		missing = corsMissing(out.CORSRules, origins)
	case code == "NoSuchCORSConfiguration" || code == "NotImplemented":
		// No bucket configuration: some stores (MinIO) answer CORS
		// server-wide. Ask the store the way a browser would.
		missing, err = b.probeCORS(ctx, origins)
		if err != nil {
			c.Status, c.Detail, c.Fix = driver.CheckFail, "the bucket has no CORS configuration and the store did not answer a CORS probe", fix
			return c
		}
		if len(missing) == 0 {
			c.Status = driver.CheckOK
			c.Detail = fmt.Sprintf("no bucket CORS configuration, but the store itself allows GET, HEAD and PUT from %s and exposes ETag (probed)", strings.Join(origins, ", "))
			return c
		}
	default:
		return unreadable(c, "CORS configuration", "s3:GetBucketCORS", err)
	}
	if len(missing) > 0 {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "CORS does not allow: "+strings.Join(missing, ", "), fix
		return c
	}
	c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("GET, HEAD and PUT allowed from %s, ETag exposed", strings.Join(origins, ", "))
	return c
}

// corsMissing returns what rules fail to allow for origins: GET, HEAD and
// PUT from each, with ETag exposed (browsers hide it otherwise, and chunked
// uploads need each part's ETag).
func corsMissing(rules []types.CORSRule, origins []string) []string {
	var missing []string
	for _, o := range origins {
		methods := map[string]bool{}
		etag := false
		for _, r := range rules {
			if !slices.ContainsFunc(r.AllowedOrigins, func(p string) bool { return originMatches(p, o) }) {
				continue
			}
			for _, m := range r.AllowedMethods {
				methods[strings.ToUpper(m)] = true
			}
			etag = etag || slices.ContainsFunc(r.ExposeHeaders, func(h string) bool { return strings.EqualFold(h, "ETag") })
		}
		for _, m := range []string{"GET", "HEAD", "PUT"} {
			if !methods[m] {
				missing = append(missing, o+" "+m)
			}
		}
		if !etag {
			missing = append(missing, o+" (ETag not exposed)")
		}
	}
	return missing
}

// probeCORS asks the store what a browser at each origin may do with an
// object below the prefix (see driver.CORSProbe).
func (b *Backend) probeCORS(ctx context.Context, origins []string) ([]string, error) {
	p := driver.CORSProbe{
		Client: b.httpClient(),
		URL:    b.scheme + "://" + b.host + b.basePath + "/" + string(appendPathEscaped(nil, b.prefix+"signet-doctor-cors-probe")),
	}
	return p.Missing(ctx, origins)
}

func (b *Backend) httpClient() *http.Client {
	if b.httpc != nil {
		return b.httpc
	}
	return http.DefaultClient
}

// originMatches reports whether a CORS AllowedOrigins pattern, which may
// hold one "*" wildcard, matches origin.
func originMatches(pattern, origin string) bool {
	before, after, ok := strings.Cut(pattern, "*")
	if !ok {
		return strings.EqualFold(pattern, origin)
	}
	o := strings.ToLower(origin)
	return len(o) >= len(before)+len(after) && strings.HasPrefix(o, strings.ToLower(before)) && strings.HasSuffix(o, strings.ToLower(after))
}

func (b *Backend) checkEncryption(ctx context.Context) driver.Check {
	c := driver.Check{Name: "encryption"}
	kmsFix := fmt.Sprintf(`aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":%q},"BucketKeyEnabled":true}]}'`, b.bucket, b.kmsKeyID)
	s3Fix := fmt.Sprintf(`aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'`, b.bucket)
	out, err := b.config.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(b.bucket)})
	if code := apiCode(err); code == "ServerSideEncryptionConfigurationNotFoundError" {
		if b.kmsKeyID != "" {
			c.Status, c.Detail, c.Fix = driver.CheckFail, "no default encryption; the connector names KMS key "+b.kmsKeyID+" but objects written without signet are not encrypted with it", kmsFix
		} else {
			c.Status, c.Detail, c.Fix = driver.CheckWarn, "no default encryption configured", s3Fix
		}
		return c
	} else if err != nil {
		return unreadable(c, "default encryption", "s3:GetEncryptionConfiguration", err)
	}
	var algs []string
	var keys []string
	if out.ServerSideEncryptionConfiguration != nil {
		for _, r := range out.ServerSideEncryptionConfiguration.Rules {
			if d := r.ApplyServerSideEncryptionByDefault; d != nil {
				algs = append(algs, string(d.SSEAlgorithm))
				keys = append(keys, aws.ToString(d.KMSMasterKeyID))
			}
		}
	}
	if len(algs) == 0 {
		c.Status, c.Detail, c.Fix = driver.CheckWarn, "encryption configuration has no default rule", s3Fix
		return c
	}
	if b.kmsKeyID == "" {
		c.Status, c.Detail = driver.CheckOK, "default encryption "+strings.Join(algs, ", ")
		return c
	}
	for i, a := range algs {
		if strings.HasPrefix(a, "aws:kms") && kmsKeyMatches(keys[i], b.kmsKeyID) {
			c.Status, c.Detail = driver.CheckOK, fmt.Sprintf("default encryption %s with the connector's key %s", a, b.kmsKeyID)
			return c
		}
	}
	c.Status = driver.CheckFail
	c.Detail = fmt.Sprintf("default encryption is %s with key %q, not the connector's KMS key %s", strings.Join(algs, ", "), strings.Join(keys, ", "), b.kmsKeyID)
	c.Fix = kmsFix
	return c
}

// kmsKeyMatches compares a bucket's KMS key (an id, alias or ARN) with the
// connector's, allowing one to be the ARN form of the other.
func kmsKeyMatches(have, want string) bool {
	if have == want {
		return true
	}
	return have != "" && want != "" && (strings.HasSuffix(have, "/"+want) || strings.HasSuffix(want, "/"+have) ||
		strings.HasSuffix(have, ":"+want) || strings.HasSuffix(want, ":"+have))
}

func (b *Backend) checkLifecycle(ctx context.Context) driver.Check {
	c := driver.Check{Name: "lifecycle"}
	fix := fmt.Sprintf(`aws s3api put-bucket-lifecycle-configuration --bucket %s --lifecycle-configuration '{"Rules":[{"ID":"abort-incomplete-uploads","Status":"Enabled","Filter":{"Prefix":%q},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":2}}]}'`,
		b.bucket, b.prefix)
	const why = "; if signet is down past an upload's deadline its parts stay (and are billed)"
	out, err := b.config.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(b.bucket)})
	if code := apiCode(err); code == "NoSuchLifecycleConfiguration" {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "no lifecycle rule aborts incomplete multipart uploads"+why, fix
		return c
	} else if err != nil {
		return unreadable(c, "lifecycle configuration", "s3:GetLifecycleConfiguration", err)
	}
	for _, r := range out.Rules {
		if r.Status != types.ExpirationStatusEnabled || r.AbortIncompleteMultipartUpload == nil ||
			aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation) <= 0 {
			continue
		}
		if p := rulePrefix(r); strings.HasPrefix(b.prefix, p) {
			c.Status = driver.CheckOK
			c.Detail = fmt.Sprintf("rule %q aborts incomplete uploads below %s after %d day(s)",
				aws.ToString(r.ID), orWhole(p), aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation))
			return c
		}
	}
	c.Status, c.Detail, c.Fix = driver.CheckFail, "no enabled lifecycle rule aborts incomplete multipart uploads below "+orWhole(b.prefix)+why, fix
	return c
}

// rulePrefix returns the key prefix a lifecycle rule applies to; a rule
// with tag or size filters is treated as not covering the prefix.
func rulePrefix(r types.LifecycleRule) string {
	if r.Filter == nil {
		return aws.ToString(r.Prefix) //nolint:staticcheck // the legacy top-level prefix
	}
	if r.Filter.Tag != nil || r.Filter.ObjectSizeGreaterThan != nil || r.Filter.ObjectSizeLessThan != nil {
		return "\x00"
	}
	if a := r.Filter.And; a != nil {
		if len(a.Tags) > 0 || a.ObjectSizeGreaterThan != nil || a.ObjectSizeLessThan != nil {
			return "\x00"
		}
		return aws.ToString(a.Prefix)
	}
	return aws.ToString(r.Filter.Prefix)
}

func (b *Backend) checkVersioning(ctx context.Context) driver.Check {
	c := driver.Check{Name: "versioning"}
	out, err := b.config.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.bucket)})
	if err != nil {
		return unreadable(c, "versioning", "s3:GetBucketVersioning", err)
	}
	if out.Status == types.BucketVersioningStatusEnabled {
		c.Status, c.Detail = driver.CheckOK, "versioning enabled: an overwritten or deleted object can be recovered"
		return c
	}
	state := string(out.Status)
	if state == "" {
		state = "never enabled"
	}
	c.Status, c.Detail = driver.CheckWarn, "versioning "+strings.ToLower(state)+": an upload URL can overwrite an object for good"
	c.Fix = fmt.Sprintf("aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled (with a lifecycle rule that expires noncurrent versions)", b.bucket)
	return c
}

func (b *Backend) checkNetwork(ctx context.Context, opts *driver.DiagnoseOptions) driver.Check {
	c := driver.Check{Name: "network"}
	if len(opts.Networks) == 0 {
		c.Status, c.Detail = driver.CheckSkip, "the team has no network allow-list"
		return c
	}
	fix := "signet policy apply " + opts.Team
	out, err := b.config.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(b.bucket)})
	if code := apiCode(err); code == "NoSuchBucketPolicy" {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "the bucket has no policy: URLs work from any network", fix
		return c
	} else if err != nil {
		return unreadable(c, "bucket policy", "s3:GetBucketPolicy", err)
	}
	have, err := deniedOutside(aws.ToString(out.Policy), b.bucket, b.prefix)
	if err != nil {
		c.Status, c.Detail, c.Fix = driver.CheckFail, "the bucket policy does not parse: "+err.Error(), fix
		return c
	}
	want := make([]string, 0, len(opts.Networks))
	for _, p := range opts.Networks {
		want = append(want, p.Masked().String())
	}
	slices.Sort(want)
	switch {
	case have == nil:
		c.Status, c.Detail = driver.CheckFail, "no Deny statement with NotIpAddress aws:SourceIp covers "+orWhole(b.prefix)
	case !slices.Equal(have, want):
		c.Status, c.Detail = driver.CheckFail, fmt.Sprintf("the bucket policy allows %s, the team allows %s",
			strings.Join(have, ", "), strings.Join(want, ", "))
	default:
		c.Status, c.Detail = driver.CheckOK, "the bucket policy denies "+orWhole(b.prefix)+" outside "+strings.Join(want, ", ")
		return c
	}
	c.Fix = fix
	return c
}

// deniedOutside finds the Deny statements of a bucket policy that cover
// every object below prefix for every principal unless aws:SourceIp is in
// a list, and returns that list, masked and sorted; nil when there is none.
func deniedOutside(policy, bucket, prefix string) ([]string, error) {
	var doc struct {
		Statement oneOrMany[struct {
			Effect    string
			Principal json.RawMessage
			Action    oneOrMany[string]
			Resource  oneOrMany[string]
			Condition map[string]map[string]oneOrMany[string]
		}]
	}
	if err := json.Unmarshal([]byte(policy), &doc); err != nil {
		return nil, errors.New("not JSON")
	}
	var nets []string
	for _, s := range doc.Statement {
		if s.Effect != "Deny" || !slices.ContainsFunc(s.Action, func(a string) bool { return a == "s3:*" || a == "*" }) {
			continue
		}
		covers := slices.ContainsFunc(s.Resource, func(r string) bool {
			r, ok := strings.CutPrefix(r, "arn:")
			if !ok {
				return false
			}
			_, r, _ = strings.Cut(r, ":s3:::")
			pat, wild := strings.CutSuffix(r, "*")
			return wild && strings.HasPrefix(bucket+"/"+prefix, pat)
		})
		cond := s.Condition["NotIpAddress"]["aws:SourceIp"]
		if !covers || len(cond) == 0 {
			continue
		}
		for _, v := range cond {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return nil, fmt.Errorf("aws:SourceIp value %q is not an address or CIDR", v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			nets = append(nets, p.Masked().String())
		}
	}
	slices.Sort(nets)
	return slices.Compact(nets), nil
}

// oneOrMany reads a policy field that is either one value or a list.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	var one T
	if err := json.Unmarshal(b, &one); err == nil {
		*o = []T{one}
		return nil
	}
	var many []T
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*o = many
	return nil
}

// unreadable reports a setting doctor could not read.
func unreadable(c driver.Check, what, action string, err error) driver.Check {
	switch apiCode(err) {
	case "NotImplemented", "XNotImplemented":
		c.Status, c.Detail = driver.CheckSkip, "the store does not implement reading its "+what
	case "AccessDenied":
		c.Status, c.Detail = driver.CheckWarn, "signet may not read the bucket's "+what
		c.Fix = "allow " + action + " to signet's identity so doctor can check it"
	default:
		c.Status, c.Detail = driver.CheckFail, "cannot read the bucket's "+what+": "+describeErr(err)
		c.Fix = "check that the store is reachable from signet"
	}
	return c
}

// apiCode returns the store's error code, or "" when err is nil or not an
// API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// describeErr names an SDK error by its code and status, or, when the
// store did not answer, by the cause (connection refused, DNS, timeout),
// never by its message (which may quote request details).
func describeErr(err error) string {
	code := apiCode(err)
	// The SDK wraps a request that was never answered in a ResponseError
	// too, with an empty response: status 0.
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		if code == "" {
			return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
		}
		return fmt.Sprintf("%s (HTTP %d)", code, re.HTTPStatusCode())
	}
	if code != "" {
		return code
	}
	return "no answer from the store (" + driver.NoAnswerCause(err, string(storeCode(err))) + ")"
}

func responseDate(md middleware.Metadata) string {
	if r, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		return r.Header.Get("Date")
	}
	return ""
}

func errorDate(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("Date")
	}
	return ""
}

// listed names what the bucket check lists: "bucket B", or "prefix P in
// bucket B".
func (b *Backend) listed() string {
	if b.prefix == "" {
		return "bucket " + b.bucket
	}
	return "prefix " + b.prefix + " in bucket " + b.bucket
}

func orWhole(prefix string) string {
	if prefix == "" {
		return "the whole bucket"
	}
	return "prefix " + prefix
}

func jsonList(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
