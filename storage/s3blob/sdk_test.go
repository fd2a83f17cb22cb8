package s3blob_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
)

// fixedTimePresigner makes the SDK's presigner sign at a chosen time.
// Built like s3's default presigner (DisableURIPathEscaping).
type fixedTimePresigner struct {
	p *v4.Signer
	t time.Time
}

func (f fixedTimePresigner) PresignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return f.p.PresignHTTP(ctx, c, r, payloadHash, service, region, f.t, optFns...)
}

// sdkCase is one URL signed by both signers.
type sdkCase struct {
	name     string
	cfg      s3blob.Config
	opts     driver.SignOptions
	expiries time.Duration
}

// sdkPresign signs c with aws-sdk-go-v2's s3.PresignClient. The SDK adds
// "x-id=<Operation>" to every URL, which S3 ignores; it is removed before
// signing, and the grant parameter added, by a build-step middleware, so
// that both signers sign the same request.
func sdkPresign(t *testing.T, c *sdkCase) (string, http.Header) {
	t.Helper()
	region := c.cfg.Region
	if region == "" {
		region = s3blob.DefaultRegion
	}
	client := s3.New(s3.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.cfg.AccessKeyID, c.cfg.SecretAccessKey, c.cfg.SessionToken),
		UsePathStyle: c.cfg.PathStyle,
		BaseEndpoint: func() *string {
			if c.cfg.Endpoint == "" {
				return nil
			}
			return aws.String(c.cfg.Endpoint)
		}(),
	})
	grant := c.opts.GrantID
	editQuery := func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("signetQuery",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				req := in.Request.(*smithyhttp.Request)
				q := req.URL.Query()
				q.Del("x-id")
				if grant != "" {
					q.Set(s3blob.GrantParam, grant)
				}
				req.URL.RawQuery = q.Encode()
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	}
	pc := s3.NewPresignClient(client, func(o *s3.PresignOptions) {
		// As s3's own default presigner: S3 paths are encoded once.
		o.Presigner = fixedTimePresigner{v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }), c.opts.Now}
		o.Expires = c.opts.Expires.Sub(c.opts.Now)
		o.ClientOptions = append(o.ClientOptions, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, editQuery)
		})
	})
	ctx := context.Background()
	var req *v4.PresignedHTTPRequest
	var err error
	o := c.opts
	switch {
	case o.Method == http.MethodGet:
		req, err = pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(o.Key)})
	case o.Method == http.MethodHead:
		req, err = pc.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(o.Key)})
	case o.UploadID != "":
		in := &s3.UploadPartInput{
			Bucket: aws.String(c.cfg.Bucket), Key: aws.String(o.Key),
			UploadId: aws.String(o.UploadID), PartNumber: aws.Int32(int32(o.PartNumber)),
		}
		if o.Size >= 0 {
			in.ContentLength = aws.Int64(o.Size)
		}
		req, err = pc.PresignUploadPart(ctx, in)
	default:
		in := &s3.PutObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(o.Key)}
		if o.ContentType != "" {
			in.ContentType = aws.String(o.ContentType)
		}
		if o.Size >= 0 {
			in.ContentLength = aws.Int64(o.Size)
		}
		if o.SHA256 != nil {
			in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(o.SHA256))
		}
		if c.cfg.KMSKeyID != "" {
			in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
			in.SSEKMSKeyId = aws.String(c.cfg.KMSKeyID)
		}
		req, err = pc.PresignPutObject(ctx, in)
	}
	if err != nil {
		t.Fatalf("SDK presign: %v", err)
	}
	return req.URL, req.SignedHeader
}

// TestSignedURLMatchesSDK signs the same requests with Backend.SignedURL
// and with s3.PresignClient (same time, credentials and headers) and
// requires the same URL, byte for byte (so the same canonical query and
// signature), and the same signed headers.
func TestSignedURLMatchesSDK(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 59, 58, 0, time.UTC)
	static := s3blob.Config{
		Bucket: "signet-bucket", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	}
	with := func(edit func(*s3blob.Config)) s3blob.Config {
		c := static
		edit(&c)
		return c
	}
	sum := sha256.Sum256([]byte("hello"))
	cases := []sdkCase{
		{name: "GET virtual-hosted", cfg: static, opts: driver.SignOptions{Method: "GET", Key: "data/a b+c$d%2e=ü~.txt", Size: -1, GrantID: "g-123._~"}},
		{name: "GET no grant", cfg: static, opts: driver.SignOptions{Method: "GET", Key: "k", Size: -1}},
		{name: "GET 7 days eu-west-1", cfg: with(func(c *s3blob.Config) { c.Region = "eu-west-1" }),
			opts: driver.SignOptions{Method: "GET", Key: "x/y", Size: -1}, expiries: 7 * 24 * time.Hour},
		{name: "HEAD path style MinIO", cfg: with(func(c *s3blob.Config) { c.Endpoint = "http://127.0.0.1:9000"; c.PathStyle = true }),
			opts: driver.SignOptions{Method: "HEAD", Key: "team/ml/model.bin", Size: -1, GrantID: "abc"}},
		{name: "GET virtual-hosted custom endpoint", cfg: with(func(c *s3blob.Config) { c.Endpoint = "https://storage.example.com:8443" }),
			opts: driver.SignOptions{Method: "GET", Key: "k", Size: -1}},
		{name: "GET dotted bucket", cfg: with(func(c *s3blob.Config) { c.Bucket = "my.dotted.bucket" }),
			opts: driver.SignOptions{Method: "GET", Key: "k", Size: -1}},
		{name: "PUT bindings session token", cfg: with(func(c *s3blob.Config) {
			c.SessionToken = "FwoGZXIvYXdzE+/token=="
			c.SessionExpires = now.Add(24 * time.Hour)
		}),
			opts: driver.SignOptions{Method: "PUT", Key: "up/file.json", Size: 5, ContentType: "application/json;  charset=utf-8", SHA256: sum[:], GrantID: "g1"}},
		{name: "PUT unbound", cfg: static, opts: driver.SignOptions{Method: "PUT", Key: "up/any", Size: -1}},
		{name: "PUT KMS", cfg: with(func(c *s3blob.Config) {
			c.KMSKeyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}), opts: driver.SignOptions{Method: "PUT", Key: "enc", Size: 10, ContentType: "text/plain"}},
		{name: "part", cfg: with(func(c *s3blob.Config) { c.Endpoint = "http://127.0.0.1:9000"; c.PathStyle = true }),
			opts: driver.SignOptions{Method: "PUT", Key: "big.bin", Size: 5 << 20, UploadID: "ZjY3+Yi/ZC00=", PartNumber: 10000, GrantID: "g"}},
		{name: "part KMS not bound", cfg: with(func(c *s3blob.Config) { c.KMSKeyID = "alias/signet" }),
			opts: driver.SignOptions{Method: "PUT", Key: "big.bin", Size: 123, UploadID: "u1", PartNumber: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Bucket = c.cfg.Bucket
			c.opts.Now = now
			d := c.expiries
			if d == 0 {
				d = time.Hour
			}
			c.opts.Expires = now.Add(d)
			b, err := s3blob.Open(context.Background(), c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.SignedURL(context.Background(), &c.opts)
			if err != nil {
				t.Fatal(err)
			}
			wantURL, wantHeaders := sdkPresign(t, &c)
			if got.URL != wantURL {
				t.Errorf("URL\n%s\nSDK\n%s", got.URL, wantURL)
			}
			if !got.Expires.Equal(c.opts.Expires) {
				t.Errorf("Expires %v, want %v", got.Expires, c.opts.Expires)
			}
			// Every header the SDK signed but host is listed, with its value.
			for name, vs := range wantHeaders {
				if strings.EqualFold(name, "host") {
					continue
				}
				v, ok := lookupHeader(got.Headers, name)
				if !ok || v != strings.Join(vs, ",") {
					t.Errorf("header %s = %q (listed %v), SDK signed %q", name, v, ok, vs)
				}
			}
			if n := len(wantHeaders) - 1; len(got.Headers) != n {
				t.Errorf("headers %v, SDK signed %v", got.Headers, wantHeaders)
			}
		})
	}
}

func lookupHeader(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// TestSignedURLShape checks what the URL carries and what it does not.
func TestSignedURLShape(t *testing.T) {
	b, err := s3blob.Open(context.Background(), s3blob.Config{
		Bucket: "bkt", Endpoint: "http://127.0.0.1:80", PathStyle: true,
		AccessKeyID: "AKID", SecretAccessKey: "very-secret-key", SessionToken: "tok",
		SessionExpires: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 500e6, time.UTC)
	u, err := b.SignedURL(context.Background(), &driver.SignOptions{
		Method: "GET", Bucket: "bkt", Key: "k", Size: -1, Now: now,
		Expires: now.Truncate(time.Second).Add(90 * time.Second), GrantID: "grant1",
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	if p.Host != "127.0.0.1" || p.Path != "/bkt/k" {
		t.Errorf("URL host %q path %q, want the default port dropped and path style", p.Host, p.Path)
	}
	if q.Get("X-Amz-Date") != "20260101T000000Z" || q.Get("X-Amz-Expires") != "90" {
		t.Errorf("date %s expires %s, want 20260101T000000Z and 90", q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"))
	}
	if q.Get("X-Amz-Security-Token") != "tok" || q.Get(s3blob.GrantParam) != "grant1" {
		t.Errorf("token %q grant %q", q.Get("X-Amz-Security-Token"), q.Get(s3blob.GrantParam))
	}
	if strings.Contains(u.URL, "very-secret-key") {
		t.Error("the URL holds the secret key")
	}
	if n, _ := strconv.Atoi(q.Get("X-Amz-Expires")); !now.Truncate(time.Second).Add(time.Duration(n) * time.Second).Equal(u.Expires) {
		t.Errorf("X-Amz-Date + X-Amz-Expires != Expires %v", u.Expires)
	}
}
