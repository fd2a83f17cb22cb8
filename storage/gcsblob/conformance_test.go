package gcsblob_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
	"github.com/signetdev/signet/storage/storagetest"
)

// TestGCSConformance runs the shared storage conformance suite
// (storagetest.Run) against fake-gcs-server behind signatureGate, once
// with a service account key (GOOG4-RSA-SHA256) and once with an HMAC key
// (GOOG4-HMAC-SHA256).
//
// Who proves what:
//
//   - fake-gcs-server, the real server of this run, proves the flow: that
//     the driver's URLs and its signed listing and HEAD requests address
//     the right bucket and object (prefix and escaping included), that
//     bytes, ranges, sizes and content types round-trip, that a missing
//     object is 404, and that listing (order, paging, prefixes) and Stat
//     read its answers right. It accepts any signature, so it proves
//     nothing about signatures.
//   - signatureGate, written in the test from Google's description of V4
//     signing, proves what GCS would enforce: every request the suite or
//     the driver sends is signed by the gate's one key (RSA verified with
//     the public key, HMAC recomputed), for this method, path and query;
//     the bindings of a PUT URL (Content-Type, Content-Length) match what
//     the client sends; and the URL has not expired (400 ExpiredToken, as
//     GCS answers; hence ExpiredStatus). So the suite's tamper, wrong
//     method, expiry, content-type and size checks pass or fail on the
//     gate, not on Google: the gate shows the URLs are right by Google's
//     description, not that Google accepts them (TestConformanceVectors
//     and TestSDKAgreement tie the signer to Google's own vectors and
//     SDK).
//
// Capabilities, as GCS has them or as this harness can prove them:
//
//   - BindsContentType and BindsSize: the driver signs Content-Type and
//     Content-Length, enforced here by the gate.
//   - BindsChecksum and BindsClientPrefix are off: GCS cannot check a
//     single PUT's SHA-256 or bind a URL to a network, and the driver
//     refuses both with Unimplemented, which the suite checks.
//   - Multipart is off: fake-gcs-server has no XML API multipart uploads
//     (TestFakeGCSFlow checks that it still refuses one), so the suite
//     runs the driver through flowBackend, which hides driver.Multipart,
//     and checks that a chunked upload is then Unimplemented. The
//     driver's chunked uploads are covered by TestGCSMultipart, against
//     an in-test XML API responder that verifies signatures the same way.
func TestGCSConformance(t *testing.T) {
	p := testpeer.FakeGCS(t)
	const accessID, secret = "GOOG1EXAMPLECONFORMANCE", "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
	for _, kind := range []string{"RSA", "HMAC"} {
		t.Run(kind, func(t *testing.T) {
			bucket := p.Bucket(t)
			v := &verifier{now: time.Now}
			cfg := gcsblob.Config{Bucket: bucket, Prefix: "team/"}
			id := accessID
			if kind == "RSA" {
				keyFile, email, pub := serviceAccount(t)
				v.pub, cfg.CredentialsJSON, id = pub, keyFile, email
			} else {
				v.hmacSecret, cfg.HMACAccessID, cfg.HMACSecret = secret, accessID, secret
			}
			gate := newSignatureGate(t, p, v, id)
			cfg.Endpoint = gate.URL
			be, err := gcsblob.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			storagetest.Run(t, &storagetest.Harness{
				Backend:       flowBackend{be},
				Name:          signet.BackendGCS,
				Bucket:        bucket,
				Prefix:        "team/",
				ExpiredStatus: http.StatusBadRequest,
				// Enforced by the gate (see above).
				BindsContentType: true, BindsSize: true,
				// GCS cannot; the driver refuses them.
				BindsChecksum: false, BindsClientPrefix: false,
				// fake-gcs-server cannot; see TestGCSMultipart.
				Multipart: false,
			})

			// The gate was on the path and decided: it passed requests,
			// refused tampered ones and refused the expired one.
			if n := gate.passed.Load(); n == 0 {
				t.Error("the gate passed no request")
			}
			if n := gate.refused.Load(); n == 0 {
				t.Error("the gate refused no request")
			}
			if n := gate.expired.Load(); n == 0 {
				t.Error("the gate refused no request as expired")
			}
			t.Logf("gate: %d passed, %d refused (signature, binding), %d expired",
				gate.passed.Load(), gate.refused.Load(), gate.expired.Load())

			checkFakeAcceptsTampered(t, p, gate, be, bucket)
		})
	}
}

// checkFakeAcceptsTampered shows that the refusals come from the gate:
// fake-gcs-server itself answers a URL with a flipped signature. Should it
// start verifying, this says so.
func checkFakeAcceptsTampered(t *testing.T, p *testpeer.FakeGCSPeer, gate *signatureGate, be *gcsblob.Backend, bucket string) {
	t.Helper()
	now := time.Now()
	sign := func(method string) string {
		u, err := be.SignedURL(context.Background(), &driver.SignOptions{Method: method, Bucket: bucket, Key: "team/direct",
			Now: now, Expires: now.Truncate(time.Second).Add(time.Minute), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		return u.URL
	}
	put, err := http.NewRequest(http.MethodPut, sign(http.MethodPut), strings.NewReader("direct"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT through the gate answered %d", resp.StatusCode)
	}
	get := sign(http.MethodGet)
	i := strings.Index(get, "X-Goog-Signature=") + len("X-Goog-Signature=")
	flipped := get[:i] + map[bool]string{true: "1", false: "0"}[get[i] == '0'] + get[i+1:]
	for _, tc := range []struct {
		via, url string
		want     int
	}{
		{"the gate", flipped, http.StatusForbidden},
		{"fake-gcs-server directly", strings.Replace(flipped, gate.URL, p.Endpoint, 1), http.StatusOK},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode == tc.want:
		case tc.via == "the gate":
			t.Errorf("a flipped signature through the gate answered %d, want 403", resp.StatusCode)
		default:
			t.Logf("fake-gcs-server itself answered a flipped signature with %d: it may verify signatures now; the gate could go", resp.StatusCode)
		}
	}
}

// flowBackend is the driver without driver.Multipart, which
// fake-gcs-server lacks (see TestGCSConformance): URLs, listing and Stat
// are the driver's own.
type flowBackend struct{ b *gcsblob.Backend }

func (f flowBackend) SignedURL(ctx context.Context, o *driver.SignOptions) (*driver.SignedURL, error) {
	return f.b.SignedURL(ctx, o)
}

func (f flowBackend) List(ctx context.Context, bucket string, o *driver.ListOptions) (*driver.ListPage, error) {
	return f.b.List(ctx, bucket, o)
}

func (f flowBackend) Stat(ctx context.Context, bucket, key string) (*driver.ObjectInfo, error) {
	return f.b.Stat(ctx, bucket, key)
}
