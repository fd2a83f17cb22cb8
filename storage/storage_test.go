package storage_test

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// MustOpenStore opens a local store in a temporary directory: the portable
// layer is tested against a real driver.
func MustOpenStore(tb testing.TB) *fileblob.Store {
	tb.Helper()
	s, err := fileblob.Open(tb.TempDir(), fileblob.Options{
		BaseURL: "http://blob.test",
		Keys:    []fileblob.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}},
		Now:     func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func MustOpenBucket(tb testing.TB, prefix string) *storage.Bucket {
	tb.Helper()
	return storage.Open(MustOpenStore(tb), &signet.Connector{Backend: signet.BackendLocal, Bucket: "bkt", Prefix: prefix})
}

func getOpts() *driver.SignOptions {
	return &driver.SignOptions{Method: http.MethodGet, Now: now, Expires: now.Add(time.Hour), Size: -1}
}

func TestOpen(t *testing.T) {
	s := MustOpenStore(t)
	ctx := context.Background()
	for name, b := range map[string]*storage.Bucket{
		"NoConnector": storage.Open(s, nil),
		"NoBackend":   storage.Open(nil, &signet.Connector{Backend: "s3", Bucket: "b"}),
		"NoBucket":    storage.Open(s, &signet.Connector{Backend: "local"}),
		"BadPrefix":   storage.Open(s, &signet.Connector{Backend: "local", Bucket: "b", Prefix: "../"}),
		"NoSlash":     storage.Open(s, &signet.Connector{Backend: "local", Bucket: "b", Prefix: "ml"}),
	} {
		t.Run("ErrInvalid"+name, func(t *testing.T) {
			_, err := b.SignedURL(ctx, "k", getOpts())
			wantCode(t, err, signet.Invalid)
			_, err = b.CreateMultipart(ctx, "k", &driver.MultipartOptions{Size: 1, PartSize: 1})
			wantCode(t, err, signet.Invalid)
			_, err = b.ListParts(ctx, "k", "id")
			wantCode(t, err, signet.Invalid)
		})
	}
}

func wantCode(t *testing.T, err error, code signet.Code) {
	t.Helper()
	if got := signet.ErrorCode(err); got != code {
		t.Errorf("code %q (%v), want %q", got, err, code)
	}
}

func TestSignedURL(t *testing.T) {
	ctx := context.Background()
	b := MustOpenBucket(t, "teams/a/")

	t.Run("OK", func(t *testing.T) {
		o := getOpts()
		o.Bucket, o.Key = "other-bucket", "other-key" // ignored: the Bucket decides
		u, err := b.SignedURL(ctx, "x/y.bin", o)
		if err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(u.URL)
		if err != nil || pu.Path != "/blob/bkt/teams/a/x/y.bin" || u.Method != http.MethodGet {
			t.Errorf("URL %s addresses %q, want /blob/bkt/teams/a/x/y.bin", u.URL, pu.Path)
		}
		if o.Bucket != "other-bucket" || o.Key != "other-key" {
			t.Error("SignedURL modified the caller's options")
		}
		if got := b.StoreKey("x/y.bin"); got != "teams/a/x/y.bin" {
			t.Errorf("StoreKey = %q", got)
		}
	})
	t.Run("OKMaxExpiry", func(t *testing.T) {
		o := getOpts()
		o.Expires = now.Add(signet.MaxExpiry)
		if _, err := b.SignedURL(ctx, "k", o); err != nil {
			t.Error(err)
		}
	})
	t.Run("OKPut", func(t *testing.T) {
		o := getOpts()
		o.Method, o.Size, o.ContentType, o.SHA256 = http.MethodPut, 0, "text/plain; charset=utf-8", make([]byte, 32)
		o.ClientPrefix = netip.MustParsePrefix("10.1.2.3/8")
		o.UploadID, o.PartNumber = strings.Repeat("a", 32), 10000
		o.GrantID = "g_1.2~3-4"
		if _, err := b.SignedURL(ctx, "k", o); err != nil {
			t.Error(err)
		}
	})

	for _, tc := range []struct {
		name string
		key  string
		edit func(*driver.SignOptions)
		code signet.Code
	}{
		{"KeyTraversal", "../x", nil, signet.InvalidKey},
		{"KeyEmpty", "", nil, signet.InvalidKey},
		{"KeyTooLongWithPrefix", strings.Repeat("a", 1020), nil, signet.InvalidKey},
		{"MethodDelete", "k", func(o *driver.SignOptions) { o.Method = "DELETE" }, signet.Invalid},
		{"MethodLower", "k", func(o *driver.SignOptions) { o.Method = "get" }, signet.Invalid},
		{"NoNow", "k", func(o *driver.SignOptions) { o.Now = time.Time{} }, signet.Invalid},
		{"ExpiryAtNow", "k", func(o *driver.SignOptions) { o.Expires = now }, signet.InvalidExpiry},
		{"ExpiryPast", "k", func(o *driver.SignOptions) { o.Expires = now.Add(-time.Second) }, signet.InvalidExpiry},
		{"ExpiryZero", "k", func(o *driver.SignOptions) { o.Expires = time.Time{} }, signet.InvalidExpiry},
		{"ExpiryAboveCap", "k", func(o *driver.SignOptions) { o.Expires = now.Add(signet.MaxExpiry + time.Second) }, signet.InvalidExpiry},
		{"ExpirySubSecond", "k", func(o *driver.SignOptions) { o.Expires = now.Add(time.Hour + time.Millisecond) }, signet.InvalidExpiry},
		{"SizeOnGet", "k", func(o *driver.SignOptions) { o.Size = 0 }, signet.Invalid},
		{"TypeOnHead", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "HEAD", "text/plain" }, signet.Invalid},
		{"SHA256OnGet", "k", func(o *driver.SignOptions) { o.SHA256 = make([]byte, 32) }, signet.Invalid},
		{"SizeBelowMinusOne", "k", func(o *driver.SignOptions) { o.Method, o.Size = "PUT", -2 }, signet.Invalid},
		{"SHA256Short", "k", func(o *driver.SignOptions) { o.Method, o.SHA256 = "PUT", make([]byte, 31) }, signet.Invalid},
		{"SHA256Empty", "k", func(o *driver.SignOptions) { o.Method, o.SHA256 = "PUT", []byte{} }, signet.Invalid},
		{"TypeNoSubtype", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "PUT", "text" }, signet.Invalid},
		{"TypeNewline", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "PUT", "text/plain\r\nX-Evil: 1" }, signet.Invalid},
		{"TypeNUL", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "PUT", "text/plain\x00" }, signet.Invalid},
		{"TypeNonASCII", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "PUT", "text/plaïn" }, signet.Invalid},
		{"TypeLong", "k", func(o *driver.SignOptions) { o.Method, o.ContentType = "PUT", "text/"+strings.Repeat("a", 300) }, signet.Invalid},
		{"GrantSpace", "k", func(o *driver.SignOptions) { o.GrantID = "a b" }, signet.Invalid},
		{"GrantLong", "k", func(o *driver.SignOptions) { o.GrantID = strings.Repeat("a", 129) }, signet.Invalid},
		{"PartWithoutUpload", "k", func(o *driver.SignOptions) { o.Method, o.PartNumber = "PUT", 1 }, signet.InvalidPart},
		{"PartZero", "k", func(o *driver.SignOptions) { o.Method, o.UploadID = "PUT", "u" }, signet.InvalidPart},
		{"PartNegative", "k", func(o *driver.SignOptions) { o.Method, o.UploadID, o.PartNumber = "PUT", "u", -1 }, signet.InvalidPart},
		{"Part10001", "k", func(o *driver.SignOptions) { o.Method, o.UploadID, o.PartNumber = "PUT", "u", 10001 }, signet.InvalidPart},
		{"PartOnGet", "k", func(o *driver.SignOptions) { o.UploadID, o.PartNumber = "u", 1 }, signet.InvalidPart},
		{"UploadIDControl", "k", func(o *driver.SignOptions) { o.Method, o.UploadID, o.PartNumber = "PUT", "u\n", 1 }, signet.InvalidPart},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			o := getOpts()
			if tc.edit != nil {
				tc.edit(o)
			}
			u, err := b.SignedURL(ctx, tc.key, o)
			wantCode(t, err, tc.code)
			if u != nil {
				t.Error("a URL was returned with the error")
			}
		})
	}
	t.Run("ErrNilOptions", func(t *testing.T) {
		_, err := b.SignedURL(ctx, "k", nil)
		wantCode(t, err, signet.Invalid)
	})
}

// signOnly hides the store's Multipart capability: a real backend that
// cannot do chunked uploads.
type signOnly struct{ driver.Backend }

func TestMultipartUnimplemented(t *testing.T) {
	b := storage.Open(signOnly{MustOpenStore(t)}, &signet.Connector{Backend: "plain", Bucket: "bkt"})
	ctx := context.Background()
	_, err := b.CreateMultipart(ctx, "k", &driver.MultipartOptions{Size: 1, PartSize: 1})
	wantCode(t, err, signet.Unimplemented)
	if msg := signet.ErrorMessage(err); msg != "backend plain does not support chunked uploads" {
		t.Errorf("message %q", msg)
	}
	_, err = b.ListParts(ctx, "k", "id")
	wantCode(t, err, signet.Unimplemented)
	wantCode(t, b.CompleteMultipart(ctx, "k", "id", []driver.Part{{Number: 1}}, nil), signet.Unimplemented)
	wantCode(t, b.AbortMultipart(ctx, "k", "id"), signet.Unimplemented)
}

func TestMultipart(t *testing.T) {
	ctx := context.Background()
	b := MustOpenBucket(t, "team/")
	t.Run("OK", func(t *testing.T) {
		id, err := b.CreateMultipart(ctx, "big", &driver.MultipartOptions{Size: 10, PartSize: 10, ContentType: "text/plain"})
		if err != nil {
			t.Fatal(err)
		}
		parts, err := b.ListParts(ctx, "big", id)
		if err != nil || len(parts) != 0 {
			t.Errorf("ListParts = %v, %v", parts, err)
		}
		// The upload belongs to the full key: another key does not see it.
		_, err = b.ListParts(ctx, "other", id)
		wantCode(t, err, signet.NotFound)
		if err := b.AbortMultipart(ctx, "big", id); err != nil {
			t.Error(err)
		}
	})
	for _, tc := range []struct {
		name string
		key  string
		opts *driver.MultipartOptions
		code signet.Code
	}{
		{"Key", "a//b", &driver.MultipartOptions{Size: 10, PartSize: 10}, signet.InvalidKey},
		{"NilOptions", "k", nil, signet.Invalid},
		{"TooLarge", "k", &driver.MultipartOptions{Size: 5*tib + 1, PartSize: 0}, signet.TooLarge},
		{"ZeroSize", "k", &driver.MultipartOptions{Size: 0, PartSize: 0}, signet.Invalid},
		{"PartSizeNotPlanned", "k", &driver.MultipartOptions{Size: 10, PartSize: 20}, signet.Invalid},
		{"PartSizeTooSmall", "k", &driver.MultipartOptions{Size: 20 * mib, PartSize: mib}, signet.Invalid},
		{"ContentType", "k", &driver.MultipartOptions{Size: 10, PartSize: 10, ContentType: "bad"}, signet.Invalid},
		{"SHA256", "k", &driver.MultipartOptions{Size: 10, PartSize: 10, SHA256: []byte{1}}, signet.Invalid},
	} {
		t.Run("ErrCreate"+tc.name, func(t *testing.T) {
			_, err := b.CreateMultipart(ctx, tc.key, tc.opts)
			wantCode(t, err, tc.code)
		})
	}
	for _, tc := range []struct {
		name  string
		parts []driver.Part
		sum   []byte
		code  signet.Code
	}{
		{"NoParts", nil, nil, signet.InvalidPart},
		{"Unordered", []driver.Part{{Number: 2}, {Number: 1}}, nil, signet.InvalidPart},
		{"Gap", []driver.Part{{Number: 1}, {Number: 3}}, nil, signet.InvalidPart},
		{"Zero", []driver.Part{{Number: 0}}, nil, signet.InvalidPart},
		{"SHA256", []driver.Part{{Number: 1}}, []byte{1, 2}, signet.Invalid},
	} {
		t.Run("ErrComplete"+tc.name, func(t *testing.T) {
			wantCode(t, b.CompleteMultipart(ctx, "k", "id", tc.parts, tc.sum), tc.code)
		})
	}
	t.Run("ErrUploadID", func(t *testing.T) {
		_, err := b.ListParts(ctx, "k", "")
		wantCode(t, err, signet.InvalidPart)
		wantCode(t, b.AbortMultipart(ctx, "k", "a\x00"), signet.InvalidPart)
		_, err = b.ListParts(ctx, "k", strings.Repeat("0", 32))
		wantCode(t, err, signet.NotFound)
	})
}
