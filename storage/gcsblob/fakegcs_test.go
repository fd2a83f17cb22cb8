package gcsblob_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
	"github.com/signetdev/signet/storage/storagetest"
)

// TestFakeGCSFlow moves bytes through the driver's URLs to and from
// fake-gcs-server.
//
// fake-gcs-server accepts ANY signature (tampered, expired or none), so
// this test proves only the flow: that the URLs address the right bucket
// and object, that the signed headers are ones a store takes, and that
// bytes and content type round-trip, with the driver's URLs used as they
// are. The conformance suite runs against the same peer behind a verifying
// gate (TestGCSConformance); signatures are proven by
// TestConformanceVectors, TestSDKAgreement and TestVerifier. The peer has
// no XML API multipart uploads; TestGCSMultipart covers them.
func TestFakeGCSFlow(t *testing.T) {
	p := testpeer.FakeGCS(t)
	bucket := p.Bucket(t)
	be := hmacBackend(t, bucket, p.Endpoint, func(c *gcsblob.Config) { c.Prefix = "team/" })
	b := storage.Open(be, &signet.Connector{Backend: signet.BackendGCS, Bucket: bucket, Prefix: "team/"})
	sign := func(method, key string, edit func(*driver.SignOptions)) *driver.SignedURL {
		t.Helper()
		now := time.Now()
		o := &driver.SignOptions{Method: method, Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1, GrantID: "grant-1"}
		if edit != nil {
			edit(o)
		}
		u, err := b.SignedURL(context.Background(), key, o)
		if err != nil {
			t.Fatalf("signing %s %s: %v", method, key, err)
		}
		return u
	}
	do := func(u *driver.SignedURL, h map[string]string, body []byte) (int, []byte, http.Header) {
		t.Helper()
		return send(t, u.Method, u.URL, h, body)
	}

	const key = "dir/a b%2e+ü&x.bin"
	body := randomBytes(70000)
	put := sign(http.MethodPut, key, func(o *driver.SignOptions) { o.ContentType, o.Size = "application/x-test", int64(len(body)) })
	if st, b, _ := do(put, put.Headers, body); st != http.StatusOK {
		t.Fatalf("PUT answered %d: %s", st, b)
	}
	get := sign(http.MethodGet, key, nil)
	st, got, h := do(get, nil, nil)
	if st != http.StatusOK || !bytes.Equal(got, body) || h.Get("Content-Type") != "application/x-test" {
		t.Errorf("GET answered %d with %d bytes, Content-Type %q; want 200, %d bytes, application/x-test", st, len(got), h.Get("Content-Type"), len(body))
	}
	head := sign(http.MethodHead, key, nil)
	if st, _, h := do(head, nil, nil); st != http.StatusOK || h.Get("Content-Length") != "70000" {
		t.Errorf("HEAD answered %d, Content-Length %q", st, h.Get("Content-Length"))
	}
	if st, got, _ := do(get, map[string]string{"Range": "bytes=100-199"}, nil); st != http.StatusPartialContent || !bytes.Equal(got, body[100:200]) {
		t.Errorf("ranged GET answered %d with %d bytes, want 206 with bytes 100-199", st, len(got))
	}
	if st, _, _ := do(sign(http.MethodGet, "missing", nil), nil, nil); st != http.StatusNotFound {
		t.Errorf("GET of a missing object answered %d, want 404", st)
	}

	// fake-gcs-server has no XML API multipart uploads, which is why
	// TestGCSMultipart runs the chunked-upload flow against an in-test
	// responder. Check that this is still so.
	if id, err := b.CreateMultipart(context.Background(), "mp.bin", &driver.MultipartOptions{Size: 10, PartSize: 10}); err == nil {
		t.Logf("fake-gcs-server answered an XML multipart initiate (upload id %q): it may support them now; run the chunked-upload flow against it", id)
	} else {
		t.Logf("fake-gcs-server refuses an XML multipart initiate, as expected: %v", err)
	}

	// The object is stored under exactly the full key (prefix included).
	resp, err := http.Get(p.Endpoint + "/storage/v1/b/" + bucket + "/o/" + url.PathEscape("team/"+key))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Name string `json:"name"`
		Size string `json:"size"`
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	if resp.StatusCode != http.StatusOK || meta.Name != "team/"+key || meta.Size != "70000" {
		t.Errorf("JSON API metadata of the object: %d %+v; want the name %q and size 70000", resp.StatusCode, meta, "team/"+key)
	}
}

// send sends a request with a plain client holding no credentials (see
// storagetest.Do: Content-Length comes from the body).
func send(t *testing.T, method, rawURL string, h map[string]string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	return storagetest.Do(t, http.DefaultClient, method, rawURL, h, body)
}

// The tests share the conformance suite's request and check helpers, as
// the Azurite and MinIO tests do.
var (
	randomBytes = storagetest.RandomBytes
	wantCode    = storagetest.WantCode
)
