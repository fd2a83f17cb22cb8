package gcsblob

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
)

// Constants of the driver.
const (
	// DefaultEndpoint is the XML API endpoint used when Config.Endpoint is
	// empty.
	DefaultEndpoint = "https://storage.googleapis.com"
	// GrantParam is the query parameter that carries SignOptions.GrantID in
	// every URL. It is signed, and GCS usage and Data Access audit logs
	// record it with the request URI.
	GrantParam = "x-signet-grant"
	// controlExpiry is the lifetime of the signed requests signet itself
	// sends for chunked uploads.
	controlExpiry = 15 * time.Minute
)

// Config configures a Backend for one bucket. It signs with a service
// account key (CredentialsJSON), with an HMAC key (HMACAccessID and
// HMACSecret), or, when neither is given, keylessly: through the IAM
// Credentials API's signBlob, as a service account the server's own
// identity may sign for (ServiceAccount, TokenSource).
type Config struct {
	// Bucket is the bucket the backend signs for; it signs for no other.
	// Required.
	Bucket string
	// Prefix, when not empty, is the connector's prefix ("team/", ending
	// in "/"): the backend signs only keys below it.
	Prefix string
	// Endpoint is the XML API base URL, without path or query;
	// DefaultEndpoint when empty. URLs are path style:
	// <endpoint>/<bucket>/<key>.
	Endpoint string

	// CredentialsJSON is a service account key file (JSON, "type":
	// "service_account"). URLs are signed with GOOG4-RSA-SHA256 by its
	// client_email; the key is parsed once, by Open.
	CredentialsJSON []byte
	// HMACAccessID and HMACSecret are an HMAC key of a service account.
	// URLs are signed with GOOG4-HMAC-SHA256, about a thousand times
	// cheaper than RSA. The secret is never shown in errors or logs.
	HMACAccessID string
	HMACSecret   string

	// ServiceAccount is the e-mail of the service account to sign as
	// keylessly (no key given): each signature is a signBlob call, and
	// the server's identity needs iam.serviceAccounts.signBlob on this
	// account (roles/iam.serviceAccountTokenCreator). Empty: the
	// metadata server's default service account, the workload's own
	// identity (GCE, GKE workload identity, Cloud Run). Invalid with a
	// key.
	ServiceAccount string
	// TokenSource authenticates the signBlob calls; nil: Application
	// Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
	// file, workload identity federation, the metadata server).
	TokenSource oauth2.TokenSource
	// IAMEndpoint is the base URL of the IAM Credentials API;
	// DefaultIAMEndpoint when empty (tests point it elsewhere).
	IAMEndpoint string

	// DisableMultipartSHA256 refuses (Unimplemented) a SHA-256 for chunked
	// uploads instead of verifying it by reading the object back once (see
	// CompleteMultipart).
	DisableMultipartSHA256 bool

	// HTTPClient performs the control-plane calls (chunked uploads) and,
	// keyless, the signBlob, token and metadata calls; http.DefaultClient
	// when nil.
	HTTPClient *http.Client

	// Now dates signet's own control-plane requests, which GCS checks
	// against its clock; time.Now when nil. URLs are dated with
	// SignOptions.Now.
	Now func() time.Time
}

// Backend signs GCS V4 URLs for one bucket and drives XML API multipart
// uploads. It implements driver.Backend and driver.Multipart and is safe
// for concurrent use.
type Backend struct {
	bucket    string
	prefix    string
	scheme    string // "https" or "http"
	hostport  string // host of URLs, with any port
	host      string // Host as signed: without the port
	basePath  string // "/<bucket>", escaped
	noMPCheck bool
	keyless   bool
	signer    *signer
	client    *http.Client
	now       func() time.Time
}

var (
	_ driver.Backend   = (*Backend)(nil)
	_ driver.Multipart = (*Backend)(nil)
)

// Open checks cfg and returns a Backend, parsing the service account key
// once. It makes no network call: keyless, the credential chain and the
// service account are looked up at the first signature. Errors are
// *signet.Error values: Invalid for a bad configuration (bucket name,
// prefix, endpoint, a key file that is not a service account key with an
// RSA private key, an HMAC key without its secret, both kinds of key, a
// ServiceAccount or IAMEndpoint with a key, or a malformed one).
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	const op = "gcsblob.Open"
	invalid := func(msg string) (*Backend, error) {
		return nil, signet.E(op, signet.Invalid, msg, nil)
	}
	if !validBucket(cfg.Bucket) {
		return invalid("bucket name must be 3 to 63 characters of [a-z0-9._-] (up to 222 with dots), starting and ending with a letter or digit")
	}
	if err := storage.ValidatePrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || !driver.ValidEndpoint(u) || strings.TrimRight(u.Path, "/") != "" {
		return invalid("endpoint must be an http or https URL with a host and nothing after it, such as https://storage.googleapis.com")
	}
	b := &Backend{
		bucket:    cfg.Bucket,
		prefix:    cfg.Prefix,
		scheme:    u.Scheme,
		hostport:  u.Host,
		host:      u.Hostname(),
		basePath:  "/" + escape(cfg.Bucket),
		noMPCheck: cfg.DisableMultipartSHA256,
		client:    cfg.HTTPClient,
		now:       cfg.Now,
	}
	if b.client == nil {
		b.client = http.DefaultClient
	}
	if b.now == nil {
		b.now = time.Now
	}
	switch {
	case len(cfg.CredentialsJSON) > 0 && (cfg.HMACAccessID != "" || cfg.HMACSecret != ""):
		return invalid("give either a service account key or an HMAC key, not both")
	case (len(cfg.CredentialsJSON) > 0 || cfg.HMACAccessID != "" || cfg.HMACSecret != "") &&
		(cfg.ServiceAccount != "" || cfg.TokenSource != nil || cfg.IAMEndpoint != ""):
		return invalid("a service account to sign as keylessly excludes a key; give one or the other")
	case len(cfg.CredentialsJSON) > 0:
		email, key, err := parseServiceAccount(cfg.CredentialsJSON)
		if err != nil {
			return invalid(err.Error())
		}
		b.signer = &signer{alg: algRSA, id: email, rsaKey: key}
	case cfg.HMACAccessID != "" || cfg.HMACSecret != "":
		if cfg.HMACAccessID == "" || cfg.HMACSecret == "" || !isPrintable(cfg.HMACAccessID) {
			return invalid("an HMAC key needs both its access id (printable) and its secret")
		}
		b.signer = &signer{alg: algHMAC, id: cfg.HMACAccessID, secret: cfg.HMACSecret}
	default:
		if cfg.ServiceAccount != "" && !validEmail(cfg.ServiceAccount) {
			return invalid("the service account must be an e-mail address, such as signer@project.iam.gserviceaccount.com")
		}
		iam := cfg.IAMEndpoint
		if iam == "" {
			iam = DefaultIAMEndpoint
		}
		if u, err := url.Parse(iam); err != nil || !driver.ValidEndpoint(u) {
			return invalid("the IAM endpoint must be an http or https URL")
		}
		b.keyless = true
		b.signer = &signer{alg: algRSA, iam: &iamSigner{
			cfgEmail: cfg.ServiceAccount, ts: cfg.TokenSource, endpoint: iam, client: cfg.HTTPClient,
		}}
	}
	return b, nil
}

// serviceAccountError is a user-safe reason a key file is refused. It
// never quotes the file.
type serviceAccountError string

func (e serviceAccountError) Error() string { return string(e) }

// parseServiceAccount returns the e-mail and RSA key of a service account
// key file.
func parseServiceAccount(data []byte) (string, *rsa.PrivateKey, error) {
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", nil, serviceAccountError("the credentials file is not JSON")
	}
	if f.Type != "service_account" || f.ClientEmail == "" || !isPrintable(f.ClientEmail) {
		return "", nil, serviceAccountError(`the credentials file is not a service account key ("type": "service_account" with a client_email)`)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return "", nil, serviceAccountError("the credentials file has no PEM private_key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return f.ClientEmail, rk, nil
		}
		return "", nil, serviceAccountError("the service account's private key is not an RSA key")
	}
	if rk, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return f.ClientEmail, rk, nil
	}
	return "", nil, serviceAccountError("the service account's private key does not parse")
}

// SignedURL implements driver.Backend: it signs opts with GCS V4 signing
// (query string, UNSIGNED-PAYLOAD) and makes no network call.
//
// The URL signs the host, the method, the key (and for a part, partNumber
// and uploadId), the time and lifetime, GrantParam when GrantID is set,
// and for PUT these headers, which SignedURL.Headers lists and GCS
// requires exactly (a request without them, or with other values, fails
// the signature check):
//
//   - Content-Type, when ContentType is set;
//   - Content-Length, when Size >= 0 (HTTP clients set it from the body,
//     so a body of another length is refused).
//
// GCS cannot check a SHA-256 of an upload (it verifies MD5 and CRC32C
// only), and its signed URLs cannot be bound to a client network (use
// VPC Service Controls or IAM conditions), so a SHA256 or ClientPrefix is
// refused with Unimplemented; except the SHA-256 of no bytes with Size 0,
// which the signed Content-Length: 0 already enforces. A ContentType on a
// part is Invalid: it is set when the upload starts.
//
// Service account and HMAC keys do not expire, so SignedURL.Expires is
// opts.Expires (at most 7 days after Now, GCS's limit). Keyless, the URL
// is signed by signBlob (one call to Google per URL) with a key Google
// rotates and guarantees for 12 hours only, so a longer expiry is cut to
// KeylessMaxExpiry after Now: the URL says so and SignedURL.Expires
// tells.
//
// Errors are *signet.Error values: PermissionDenied for another bucket or
// a key outside Config.Prefix; Invalid for a method other than GET, HEAD
// or PUT or bindings on another method; InvalidPart for a malformed part;
// InvalidExpiry for an expiry not a whole second 1 s to 7 days after Now;
// Unimplemented as above; Internal when signing fails; keyless, the
// signBlob errors (PermissionDenied when Google refuses the server's
// identity, Unavailable when Google cannot be reached or rate limits).
func (b *Backend) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	const op = "gcsblob.SignedURL"
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
	case o.Method != http.MethodPut && (o.ContentType != "" || o.Size >= 0 || o.SHA256 != nil || isPart):
		return nil, signet.E(op, signet.Invalid, "size, content type, sha256 and parts apply to PUT only", nil)
	case o.Size < -1:
		return nil, signet.E(op, signet.Invalid, "size must be -1 (unbound) or at least 0", nil)
	case isPart && (o.UploadID == "" || o.PartNumber < 1 || o.PartNumber > storage.MaxParts):
		return nil, signet.E(op, signet.InvalidPart, "a part URL needs an upload id and a part number from 1 to 10000", nil)
	case isPart && o.ContentType != "":
		return nil, signet.E(op, signet.Invalid, "a part URL cannot bind a content type; set it when the upload starts", nil)
	case o.SHA256 != nil && !(o.Size == 0 && !isPart && bytes.Equal(o.SHA256, emptySHA256[:])):
		return nil, signet.E(op, signet.Unimplemented, "GCS cannot check the SHA-256 of an upload; use a chunked upload, which signet verifies when it completes", nil)
	case o.ClientPrefix.IsValid():
		return nil, signet.E(op, signet.Unimplemented, "GCS signed URLs cannot be bound to a client network; restrict it with VPC Service Controls or IAM conditions", nil)
	}
	if o.Now.IsZero() {
		return nil, signet.E(op, signet.Invalid, "no issue time", nil)
	}
	secs := o.Expires.Unix() - o.Now.Unix()
	if secs < 1 || secs > maxExpires || !o.Expires.Equal(o.Expires.Truncate(time.Second)) {
		return nil, signet.E(op, signet.InvalidExpiry, "expiry must be a whole second, 1 second to 7 days after the issue time", nil)
	}
	expires := o.Expires
	if b.keyless && secs > int64(KeylessMaxExpiry/time.Second) {
		secs = int64(KeylessMaxExpiry / time.Second)
		expires = time.Unix(o.Now.Unix()+secs, 0)
	}

	r := &request{method: o.Method, host: b.host, path: b.objectPath(o.Key), time: o.Now, expires: secs}
	var qbuf [3]param
	r.query = qbuf[:0]
	if isPart {
		r.query = append(r.query, param{"partNumber", strconv.Itoa(o.PartNumber)}, param{"uploadId", o.UploadID})
	}
	if o.GrantID != "" {
		r.query = append(r.query, param{GrantParam, o.GrantID})
	}
	var headers map[string]string
	if o.Method == http.MethodPut && (o.ContentType != "" || o.Size >= 0) {
		headers = make(map[string]string, 2)
		if o.ContentType != "" {
			r.headers = append(r.headers, param{"content-type", o.ContentType})
			headers["Content-Type"] = o.ContentType
		}
		if o.Size >= 0 {
			n := strconv.FormatInt(o.Size, 10)
			r.headers = append(r.headers, param{"content-length", n})
			headers["Content-Length"] = n
		}
	}
	s, err := b.signer.presign(ctx, r)
	if err != nil {
		if e := (*signet.Error)(nil); errors.As(err, &e) {
			return nil, err
		}
		return nil, signet.E(op, signet.Internal, "", err)
	}
	return &driver.SignedURL{Method: o.Method, URL: b.url(r.path, s.query), Headers: headers, Expires: expires}, nil
}

// emptySHA256 is the SHA-256 of no bytes.
var emptySHA256 = sha256.Sum256(nil)

// objectPath returns the escaped path of key.
func (b *Backend) objectPath(key string) string {
	p := make([]byte, 0, len(b.basePath)+1+len(key)*3/2)
	p = append(p, b.basePath...)
	p = append(p, '/')
	return string(appendEscaped(p, key, true))
}

func (b *Backend) url(path, query string) string {
	return b.scheme + "://" + b.hostport + path + "?" + query
}

// scope is what the backend signs for; every key and listing prefix is
// checked against it.
func (b *Backend) scope() driver.Scope {
	return driver.Scope{Bucket: b.bucket, Prefix: b.prefix, Noun: "bucket"}
}

// validBucket reports whether s is a GCS bucket name.
func validBucket(s string) bool {
	if len(s) < 3 || len(s) > 222 || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
	}
	if !strings.Contains(s, ".") && len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
