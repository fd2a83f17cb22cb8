package gcsblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// TestGCSEmptyObject: GCS cannot check a SHA-256, but a PUT bound to
// Content-Length: 0 can only carry no bytes, whose SHA-256 is known. So
// the SHA-256 of no bytes with size 0 is accepted, and the verifier
// refuses a body of one byte; any other SHA-256 stays Unimplemented.
func TestGCSEmptyObject(t *testing.T) {
	const secret = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
	srv := verifyingStore(t, &verifier{hmacSecret: secret, now: time.Now})
	be, err := gcsblob.Open(context.Background(), gcsblob.Config{Bucket: "b-1", Endpoint: srv.URL, HMACAccessID: "GOOG1ID", HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(size int64, sum []byte) (*driver.SignedURL, error) {
		now := time.Now()
		return be.SignedURL(context.Background(), &driver.SignOptions{Method: http.MethodPut, Bucket: "b-1", Key: "empty",
			Now: now, Expires: now.Truncate(time.Second).Add(time.Hour), Size: size, SHA256: sum})
	}
	empty := sha256.Sum256(nil)
	u, err := sign(0, empty[:])
	if err != nil {
		t.Fatalf("signing an empty upload bound to its SHA-256: %v", err)
	}
	if u.Headers["Content-Length"] != "0" {
		t.Errorf("headers %v, want Content-Length: 0", u.Headers)
	}
	put := func(body []byte) int {
		req, _ := http.NewRequest(u.Method, u.URL, bytes.NewReader(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(nil); st != http.StatusOK {
		t.Errorf("PUT of no bytes answered %d, want 200", st)
	}
	if st := put([]byte("x")); st != http.StatusForbidden {
		t.Errorf("PUT of one byte answered %d, want 403", st)
	}
	one := sha256.Sum256([]byte("x"))
	for _, tc := range []struct {
		what string
		size int64
		sum  []byte
	}{
		{"another SHA-256 with size 0", 0, one[:]},
		{"the empty SHA-256 with size 1", 1, empty[:]},
		{"the empty SHA-256 unsized", -1, empty[:]},
	} {
		_, err := sign(tc.size, tc.sum)
		wantCode(t, tc.what, err, signet.Unimplemented)
	}
}
