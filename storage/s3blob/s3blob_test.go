package s3blob_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/s3blob"
)

func TestOpen(t *testing.T) {
	const secret = "wJalrXUtnFEMI-distinctive-secret"
	ok := s3blob.Config{Bucket: "bucket", AccessKeyID: "AKID", SecretAccessKey: secret}
	t.Run("OK", func(t *testing.T) {
		for _, c := range []s3blob.Config{
			ok,
			{Bucket: "bucket", Credentials: aws.AnonymousCredentials{}},
			{Bucket: "my.bucket", Prefix: "team/", Region: "eu-central-1", Endpoint: "https://s3.example.com/", AccessKeyID: "a", SecretAccessKey: "s", SessionToken: "t", SessionExpires: time.Now().Add(time.Hour)},
			{Bucket: "bucket", Prefix: "t/", RoleARN: "arn:aws:iam::123456789012:role/signet", AccessKeyID: "a", SecretAccessKey: "s", KMSKeyID: "alias/x"},
		} {
			if _, err := s3blob.Open(context.Background(), c); err != nil {
				t.Errorf("Open(%+v): %v", c.Bucket, err)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		edits := map[string]func(*s3blob.Config){
			"no bucket":                func(c *s3blob.Config) { c.Bucket = "" },
			"bucket with slash":        func(c *s3blob.Config) { c.Bucket = "a/b" },
			"bucket with ..":           func(c *s3blob.Config) { c.Bucket = "a..b" },
			"bucket too short":         func(c *s3blob.Config) { c.Bucket = "ab" },
			"bucket host injection":    func(c *s3blob.Config) { c.Bucket = "evil.com#" },
			"prefix without slash":     func(c *s3blob.Config) { c.Prefix = "team" },
			"prefix traversal":         func(c *s3blob.Config) { c.Prefix = "../" },
			"region":                   func(c *s3blob.Config) { c.Region = "us east" },
			"endpoint scheme":          func(c *s3blob.Config) { c.Endpoint = "ftp://x" },
			"endpoint path":            func(c *s3blob.Config) { c.Endpoint = "http://x/base" },
			"endpoint user":            func(c *s3blob.Config) { c.Endpoint = "http://u:p@x" },
			"endpoint query":           func(c *s3blob.Config) { c.Endpoint = "http://x?a=b" },
			"secret without id":        func(c *s3blob.Config) { c.AccessKeyID = "" },
			"id without secret":        func(c *s3blob.Config) { c.SecretAccessKey = "" },
			"static and provider":      func(c *s3blob.Config) { c.Credentials = aws.AnonymousCredentials{} },
			"role ARN":                 func(c *s3blob.Config) { c.RoleARN = "role/signet" },
			"role prefix wildcard":     func(c *s3blob.Config) { c.RoleARN = "arn:aws:iam::1:role/r"; c.Prefix = "a*/" },
			"role duration":            func(c *s3blob.Config) { c.RoleARN = "arn:aws:iam::1:role/r"; c.RoleDuration = time.Minute },
			"role duration 13h":        func(c *s3blob.Config) { c.RoleARN = "arn:aws:iam::1:role/r"; c.RoleDuration = 13 * time.Hour },
			"role session name":        func(c *s3blob.Config) { c.RoleARN = "arn:aws:iam::1:role/r"; c.RoleSessionName = "a b" },
			"KMS key id with spaces":   func(c *s3blob.Config) { c.KMSKeyID = "a b" },
			"expiry, no session token": func(c *s3blob.Config) { c.SessionExpires = time.Now().Add(time.Hour) },
		}
		for name, edit := range edits {
			c := ok
			edit(&c)
			_, err := s3blob.Open(context.Background(), c)
			if got := signet.ErrorCode(err); got != signet.Invalid {
				t.Errorf("%s: code %q (%v), want invalid", name, got, err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error holds the secret", name)
			}
		}
	})
}

func TestSessionPolicy(t *testing.T) {
	got := s3blob.SessionPolicy("us-east-1", "bkt", "team/a/", "")
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"SignetObjects","Effect":"Allow",` +
		`"Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],` +
		`"Resource":["arn:aws:s3:::bkt/team/a/*"]},` +
		`{"Sid":"SignetList","Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::bkt"],` +
		`"Condition":{"StringLike":{"s3:prefix":["team/a/*"]}}}]}`
	if got != want {
		t.Errorf("policy\n%s\nwant\n%s", got, want)
	}
	if p := s3blob.SessionPolicy("cn-north-1", "bkt", "", "arn:aws-cn:kms:cn-north-1:1:key/k"); !strings.Contains(p, `"arn:aws-cn:s3:::bkt/*"`) ||
		!strings.Contains(p, `"kms:GenerateDataKey","kms:Decrypt"],"Resource":["arn:aws-cn:kms:cn-north-1:1:key/k"]`) {
		t.Errorf("China partition or KMS statement wrong: %s", p)
	}
	if p := s3blob.SessionPolicy("us-east-1", "bkt", `q"\/`, ""); !strings.Contains(p, `bkt/q\"\\/*`) {
		t.Errorf("prefix not JSON-escaped: %s", p)
	}
}

// fakeCredentials is a credentials provider whose answers a test sets.
type fakeCredentials struct {
	mu    sync.Mutex
	creds aws.Credentials
	err   error
	calls int
}

func (f *fakeCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.creds, f.err
}

func (f *fakeCredentials) set(id string, expires time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds = aws.Credentials{AccessKeyID: id, SecretAccessKey: "secret-" + id, SessionToken: "token-" + id, CanExpire: true, Expires: expires}
	f.err = err
}

func (f *fakeCredentials) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// urlExpiry returns X-Amz-Date + X-Amz-Expires and the credential's id.
func urlExpiry(t *testing.T, u *driver.SignedURL) (time.Time, string) {
	t.Helper()
	p, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(q.Get("X-Amz-Credential"), "/")
	return date.Add(time.Duration(n) * time.Second), id
}

// TestHonestExpiry: a URL never outlives its signing credentials, and
// says so in SignedURL.Expires; expiring credentials are refreshed first,
// at most once a minute.
func TestHonestExpiry(t *testing.T) {
	real := time.Now()
	fake := &fakeCredentials{}
	clk := &clock{t: real}
	b, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: fake, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(d time.Duration) (*driver.SignedURL, error) {
		now := time.Now()
		return b.SignedURL(context.Background(), &driver.SignOptions{
			Method: "GET", Bucket: "bucket", Key: "k", Size: -1, Now: now, Expires: now.Truncate(time.Second).Add(d),
		})
	}
	check := func(what string, u *driver.SignedURL, wantExpires time.Time, wantID string) {
		t.Helper()
		exp, id := urlExpiry(t, u)
		if !exp.Equal(u.Expires) {
			t.Errorf("%s: the URL expires at %v but Expires says %v", what, exp, u.Expires)
		}
		if !u.Expires.Equal(wantExpires) || id != wantID {
			t.Errorf("%s: Expires %v signed by %s, want %v by %s", what, u.Expires, id, wantExpires, wantID)
		}
	}

	// Credentials that outlive the URL: the URL gets what was asked.
	fake.set("A", real.Add(2*time.Hour), nil)
	u, err := sign(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	check("long credentials", u, time.Now().Truncate(time.Second).Add(time.Hour), "A")

	// Credentials that die in 10 minutes, just fetched: no refresh can
	// help yet, so the URL is cut to them.
	b2, _ := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: fake, Now: clk.now})
	b = b2
	short := real.Add(10*time.Minute + 500*time.Millisecond)
	fake.set("B", short, nil)
	calls := fake.count()
	if u, err = sign(time.Hour); err != nil {
		t.Fatal(err)
	}
	check("short credentials", u, short.Truncate(time.Second), "B")
	if fake.count() != calls+1 {
		t.Errorf("provider called %d times, want 1", fake.count()-calls)
	}

	// Two minutes on, fresh credentials would help: refresh once.
	clk.advance(2 * time.Minute)
	fake.set("C", real.Add(3*time.Hour), nil)
	if u, err = sign(time.Hour); err != nil {
		t.Fatal(err)
	}
	check("after refresh", u, time.Now().Truncate(time.Second).Add(time.Hour), "C")

	// A refresh that gives short credentials again is not repeated within
	// the minute.
	b3, _ := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: fake, Now: clk.now})
	b = b3
	fake.set("D", short, nil)
	sign(time.Hour) // first seen
	clk.advance(2 * time.Minute)
	sign(time.Hour) // forces one refresh
	calls = fake.count()
	for range 5 {
		if u, err = sign(time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if fake.count() != calls {
		t.Errorf("provider called %d more times within a minute, want 0", fake.count()-calls)
	}
	check("short after refresh", u, short.Truncate(time.Second), "D")

	// A failed refresh keeps the old, still valid credentials.
	clk.advance(2 * time.Minute)
	fake.set("E", time.Time{}, errors.New("sts: connection refused"))
	if u, err = sign(time.Hour); err != nil {
		t.Fatalf("sign with a failed refresh: %v", err)
	}
	check("failed refresh", u, short.Truncate(time.Second), "D")
}

func TestHonestExpiryUnavailable(t *testing.T) {
	fake := &fakeCredentials{}
	b, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: fake})
	if err != nil {
		t.Fatal(err)
	}
	sign := func() error {
		now := time.Now()
		_, err := b.SignedURL(context.Background(), &driver.SignOptions{
			Method: "GET", Bucket: "bucket", Key: "k", Size: -1, Now: now, Expires: now.Truncate(time.Second).Add(time.Hour),
		})
		return err
	}
	fake.set("A", time.Now().Add(30*time.Second), nil)
	wantCode(t, "credentials expiring in 30 s", sign(), signet.Unavailable)

	anon, _ := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: aws.AnonymousCredentials{}})
	b = anon
	wantCode(t, "anonymous credentials", sign(), signet.Unavailable)

	b2, _ := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Credentials: fake})
	b = b2
	fake.set("B", time.Time{}, errors.New("no credentials: token=secret-token"))
	err = sign()
	wantCode(t, "no credentials", err, signet.Unavailable)
	if signet.ErrorMessage(err) == "" || strings.Contains(signet.ErrorMessage(err), "secret-token") {
		t.Errorf("user message %q", signet.ErrorMessage(err))
	}
}

// TestHonestExpiryStaticSession: static keys with a session token die with
// their session, which signet cannot refresh: URLs are cut to
// SessionExpires, refused once it is less than a minute away, and refused
// when it is unknown. Keys without a token give the full lifetime.
func TestHonestExpiryStaticSession(t *testing.T) {
	now := time.Now()
	open := func(token string, expires time.Time) *s3blob.Backend {
		t.Helper()
		b, err := s3blob.Open(context.Background(), s3blob.Config{
			Bucket: "bucket", AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "s", SessionToken: token, SessionExpires: expires,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sign := func(b *s3blob.Backend, d time.Duration) (*driver.SignedURL, error) {
		return b.SignedURL(context.Background(), &driver.SignOptions{
			Method: "GET", Bucket: "bucket", Key: "k", Size: -1, Now: now, Expires: now.Truncate(time.Second).Add(d),
		})
	}
	session := now.Add(10*time.Minute + 500*time.Millisecond)
	b := open("token", session)
	u, err := sign(b, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := urlExpiry(t, u); !u.Expires.Equal(session.Truncate(time.Second)) || !exp.Equal(u.Expires) {
		t.Errorf("1 h asked with a session ending at %v: Expires %v, URL expires %v; want both the session's end", session, u.Expires, exp)
	}
	if u, err = sign(b, 5*time.Minute); err != nil || !u.Expires.Equal(now.Truncate(time.Second).Add(5*time.Minute)) {
		t.Errorf("5 min within the session: %v, %v; want the 5 min asked", u, err)
	}
	_, err = sign(open("token", now.Add(30*time.Second)), time.Hour)
	wantCode(t, "session ending in 30 s", err, signet.Unavailable)
	_, err = sign(open("token", now.Add(-time.Hour)), time.Hour)
	wantCode(t, "expired session", err, signet.Unavailable)
	_, err = sign(open("token", time.Time{}), time.Hour)
	wantCode(t, "session of unknown expiry", err, signet.Unavailable)
	// Without a session token nothing expires.
	if u, err = sign(open("", time.Time{}), 7*24*time.Hour); err != nil || !u.Expires.Equal(now.Truncate(time.Second).Add(7*24*time.Hour)) {
		t.Errorf("permanent keys, 7 days: %v, %v; want the 7 days asked", u, err)
	}
}

// TestSignedURLRefusals covers the driver's own checks.
func TestSignedURLRefusals(t *testing.T) {
	b, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: "bucket", Prefix: "t/", AccessKeyID: "a", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	sum := make([]byte, 32)
	now := time.Now()
	base := driver.SignOptions{Method: "PUT", Bucket: "bucket", Key: "t/k", Size: -1, Now: now, Expires: now.Truncate(time.Second).Add(time.Hour)}
	cases := map[string]struct {
		edit func(*driver.SignOptions)
		code signet.Code
	}{
		"OK":                   {func(*driver.SignOptions) {}, ""},
		"other bucket":         {func(o *driver.SignOptions) { o.Bucket = "other" }, signet.PermissionDenied},
		"outside prefix":       {func(o *driver.SignOptions) { o.Key = "u/k" }, signet.PermissionDenied},
		"the prefix itself":    {func(o *driver.SignOptions) { o.Key = "t/" }, signet.PermissionDenied},
		"DELETE":               {func(o *driver.SignOptions) { o.Method = "DELETE" }, signet.Invalid},
		"GET with size":        {func(o *driver.SignOptions) { o.Method, o.Size = "GET", 1 }, signet.Invalid},
		"GET with type":        {func(o *driver.SignOptions) { o.Method, o.ContentType = "GET", "a/b" }, signet.Invalid},
		"size -2":              {func(o *driver.SignOptions) { o.Size = -2 }, signet.Invalid},
		"sha256 length":        {func(o *driver.SignOptions) { o.SHA256 = sum[:31] }, signet.Invalid},
		"client network":       {func(o *driver.SignOptions) { o.ClientPrefix = netipPrefix("10.0.0.0/8") }, signet.Unimplemented},
		"part without upload":  {func(o *driver.SignOptions) { o.PartNumber = 1 }, signet.InvalidPart},
		"part 0":               {func(o *driver.SignOptions) { o.UploadID = "u" }, signet.InvalidPart},
		"part 10001":           {func(o *driver.SignOptions) { o.UploadID, o.PartNumber = "u", 10001 }, signet.InvalidPart},
		"part with sha256":     {func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.SHA256 = "u", 1, sum }, signet.Unimplemented},
		"part with type":       {func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.ContentType = "u", 1, "a/b" }, signet.Invalid},
		"no issue time":        {func(o *driver.SignOptions) { o.Now = time.Time{} }, signet.Invalid},
		"expiry 8 days":        {func(o *driver.SignOptions) { o.Expires = o.Now.Truncate(time.Second).Add(8 * 24 * time.Hour) }, signet.InvalidExpiry},
		"expiry in the past":   {func(o *driver.SignOptions) { o.Expires = o.Now.Truncate(time.Second) }, signet.InvalidExpiry},
		"expiry not a second":  {func(o *driver.SignOptions) { o.Expires = o.Expires.Add(time.Millisecond) }, signet.InvalidExpiry},
		"expiry exactly 7days": {func(o *driver.SignOptions) { o.Expires = o.Now.Truncate(time.Second).Add(7 * 24 * time.Hour) }, ""},
	}
	for name, c := range cases {
		o := base
		c.edit(&o)
		_, err := b.SignedURL(context.Background(), &o)
		if got := signet.ErrorCode(err); got != c.code {
			t.Errorf("%s: code %q (%v), want %q", name, got, err, c.code)
		}
	}
}
