package gcsblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
	"github.com/signetdev/signet/storage/storagetest"
)

const hmacSecret = "doctor-hmac-secret-value"

// gcsDiagnose runs Diagnose and returns its checks by name, checking that
// each failure and warning has a fix and that no check shows the secret.
func gcsDiagnose(t *testing.T, b *gcsblob.Backend, opts *driver.DiagnoseOptions) map[string]driver.Check {
	t.Helper()
	checks := storagetest.Diagnose(t, b, opts, hmacSecret)
	if len(checks) != 8 {
		t.Errorf("%d checks, want 8", len(checks))
	}
	return checks
}

// hmacBackend opens the driver for bucket at endpoint with an HMAC key
// (secret hmacSecret), below prefix ml/; edit, when not nil, changes the
// configuration first.
func hmacBackend(t *testing.T, bucket, endpoint string, edit func(*gcsblob.Config)) *gcsblob.Backend {
	t.Helper()
	cfg := gcsblob.Config{Bucket: bucket, Prefix: "ml/", Endpoint: endpoint, HMACAccessID: "GOOG1DOCTOR", HMACSecret: hmacSecret}
	if edit != nil {
		edit(&cfg)
	}
	be, err := gcsblob.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

var gcsNets = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("10.1.0.0/16")}

// TestGCSDiagnose checks buckets of fake-gcs-server: a bare one, one with
// versioning, a missing one, and a skewed clock. fake-gcs-server answers
// the JSON API without authentication, so the HMAC connector's metadata
// checks run; it keeps versioning but not CORS, lifecycle rules, a default
// KMS key or an IP filter (it drops them when a bucket is created, checked
// below), so the passing side of those is TestGCSDiagnoseMetadata's.
func TestGCSDiagnose(t *testing.T) {
	p := testpeer.FakeGCS(t)
	opts := &driver.DiagnoseOptions{Team: "ml", Origins: []string{"https://app.example.com"}, Networks: gcsNets}

	bare := gcsDiagnose(t, hmacBackend(t, p.Bucket(t), p.Endpoint, nil), opts)
	storagetest.WantCheck(t, bare, "credentials", driver.CheckOK, "HMAC key present")
	storagetest.WantCheck(t, bare, "bucket", driver.CheckOK, "listable")
	storagetest.WantCheck(t, bare, "clock", driver.CheckOK, "store clock is")
	storagetest.WantCheck(t, bare, "cors", driver.CheckFail, "https://app.example.com PUT")
	storagetest.WantCheck(t, bare, "lifecycle", driver.CheckFail, "no lifecycle rule")
	storagetest.WantCheck(t, bare, "versioning", driver.CheckWarn, "versioning off")
	storagetest.WantCheck(t, bare, "encryption", driver.CheckOK, "Google-managed")
	storagetest.WantCheck(t, bare, "network", driver.CheckFail, "no enabled IP filter")
	for name, want := range map[string]string{
		"cors":       "--cors-file=cors.json",
		"lifecycle":  `"AbortIncompleteMultipartUpload"`,
		"versioning": "--versioning",
		"network":    "signet policy render ml > ipfilter.json && gcloud storage buckets update gs://",
	} {
		if f := bare[name].Fix; !strings.Contains(f, want) {
			t.Errorf("%s fix %q lacks %q", name, f, want)
		}
	}
	if f := bare["lifecycle"].Fix; !strings.Contains(f, `"matchesPrefix":["ml/"]`) {
		t.Errorf("lifecycle fix %q does not cover the prefix", f)
	}

	// A bucket created with versioning and the other settings: the peer
	// keeps versioning only.
	name := testpeer.RandomName("signet-")
	body := fmt.Sprintf(`{"name":%q,"versioning":{"enabled":true},"cors":[{"origin":["https://app.example.com"],"method":["GET","HEAD","PUT"],"responseHeader":["ETag"]}],"lifecycle":{"rule":[{"action":{"type":"AbortIncompleteMultipartUpload"},"condition":{"age":2}}]}}`, name)
	resp, err := http.Post(p.Endpoint+"/storage/v1/b", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("creating a bucket with versioning: %s", resp.Status)
	}
	versioned := gcsDiagnose(t, hmacBackend(t, name, p.Endpoint, nil), opts)
	storagetest.WantCheck(t, versioned, "versioning", driver.CheckOK, "versioning enabled")
	if c := versioned["cors"]; c.Status == driver.CheckOK {
		t.Logf("fake-gcs-server now keeps bucket CORS: %s", c.Detail)
	} else {
		t.Logf("fake-gcs-server drops bucket CORS and lifecycle rules (cors: %s, lifecycle: %s): their passing side is tested against an in-test JSON API answer", c.Status, versioned["lifecycle"].Status)
	}

	t.Run("MissingBucket", func(t *testing.T) {
		checks := gcsDiagnose(t, hmacBackend(t, "signet-missing-bucket", p.Endpoint, nil), opts)
		// GCS answers the listing 404 NoSuchBucket, fake-gcs-server 500;
		// the JSON API's 404 tells.
		storagetest.WantCheck(t, checks, "bucket", driver.CheckFail, "cannot list prefix ml/ in bucket signet-missing-bucket")
		if f := checks["bucket"].Fix; !strings.Contains(f, "gcloud storage buckets create gs://signet-missing-bucket") {
			t.Errorf("bucket fix %q", f)
		}
		storagetest.WantCheck(t, checks, "versioning", driver.CheckSkip, "does not exist")
		storagetest.WantCheck(t, checks, "clock", driver.CheckOK, "store clock is")
	})

	t.Run("SkewedClock", func(t *testing.T) {
		be := hmacBackend(t, p.Bucket(t), p.Endpoint, func(c *gcsblob.Config) {
			c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		})
		checks := gcsDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "clock", driver.CheckFail, "ahead of signet's")
	})

	t.Run("Keyless", func(t *testing.T) {
		// fake-gcs-server accepts any signature; the point is the token
		// and signBlob path.
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		const email = "signer@test-project.iam.gserviceaccount.com"
		iam := testpeer.StartSignBlob(t, key, email, "token-1")
		be, err := gcsblob.Open(context.Background(), gcsblob.Config{
			Bucket: p.Bucket(t), Endpoint: p.Endpoint, ServiceAccount: email,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "token-1"}), IAMEndpoint: iam.URL,
		})
		if err != nil {
			t.Fatal(err)
		}
		checks := gcsDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "credentials", driver.CheckOK, "Google signed a request as "+email)
		storagetest.WantCheck(t, checks, "bucket", driver.CheckOK, "listable")
		storagetest.WantCheck(t, checks, "versioning", driver.CheckWarn, "versioning off")

		iam.Fail.Store(http.StatusForbidden)
		checks = gcsDiagnose(t, be, opts)
		storagetest.WantCheck(t, checks, "credentials", driver.CheckFail, "keyless signing does not work")
		if f := checks["credentials"].Fix; !strings.Contains(f, "roles/iam.serviceAccountTokenCreator") {
			t.Errorf("credentials fix %q", f)
		}
	})
}

// TestGCSDiagnoseMetadata reads bucket settings fake-gcs-server does not
// keep from an in-test server that answers the JSON API's bucket resource
// as GCS documents it (and an empty XML listing), and what an HMAC
// connector sees when the JSON API wants a token.
func TestGCSDiagnoseMetadata(t *testing.T) {
	var meta string
	status, refuse := http.StatusOK, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/storage/v1/b/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, meta)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		if refuse {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>`)
			return
		}
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01"><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>`)
	}))
	t.Cleanup(srv.Close)
	be := hmacBackend(t, "signet-doctor", srv.URL, nil)
	opts := &driver.DiagnoseOptions{Team: "ml", Origins: []string{"https://app.example.com"}, Networks: gcsNets}

	meta = `{"name":"signet-doctor","versioning":{"enabled":false},"softDeletePolicy":{"retentionDurationSeconds":"604800"},
		"cors":[{"origin":["https://app.example.com"],"method":["GET","HEAD","PUT"],"responseHeader":["Content-Type","ETag"],"maxAgeSeconds":3600}],
		"encryption":{"defaultKmsKeyName":"projects/p/locations/eu/keyRings/r/cryptoKeys/k"},
		"lifecycle":{"rule":[{"action":{"type":"Delete"},"condition":{"age":30}},{"action":{"type":"AbortIncompleteMultipartUpload"},"condition":{"age":2,"matchesPrefix":["ml/"]}}]},
		"ipFilter":{"mode":"Enabled","publicNetworkSource":{"allowedIpCidrRanges":["203.0.113.0/24","198.51.100.7"]},
			"vpcNetworkSources":[{"network":"projects/p/global/networks/n","allowedIpCidrRanges":["10.0.0.0/8"]}]}}`
	good := gcsDiagnose(t, be, opts)
	storagetest.WantCheck(t, good, "cors", driver.CheckOK, "ETag exposed")
	storagetest.WantCheck(t, good, "lifecycle", driver.CheckOK, "after 2 day(s)")
	storagetest.WantCheck(t, good, "versioning", driver.CheckOK, "soft delete keeps")
	storagetest.WantCheck(t, good, "encryption", driver.CheckOK, "cryptoKeys/k")
	storagetest.WantCheck(t, good, "network", driver.CheckOK, "admits the team's networks")

	// The same settings, each a little off.
	meta = `{"name":"signet-doctor","softDeletePolicy":{"retentionDurationSeconds":"0"},
		"cors":[{"origin":["https://app.example.com"],"method":["GET","PUT"],"responseHeader":["Content-Type"]}],
		"lifecycle":{"rule":[{"action":{"type":"AbortIncompleteMultipartUpload"},"condition":{"age":2,"matchesPrefix":["other/"]}}]},
		"ipFilter":{"mode":"Enabled","publicNetworkSource":{"allowedIpCidrRanges":["198.51.100.0/24"]}}}`
	bad := gcsDiagnose(t, be, opts)
	storagetest.WantCheck(t, bad, "cors", driver.CheckFail, "https://app.example.com HEAD, https://app.example.com (ETag not a response header)")
	storagetest.WantCheck(t, bad, "lifecycle", driver.CheckFail, "no lifecycle rule")
	storagetest.WantCheck(t, bad, "versioning", driver.CheckWarn, "no soft delete")
	storagetest.WantCheck(t, bad, "network", driver.CheckFail, "does not admit the team's networks 203.0.113.0/24")

	// The public networks admitted, the private one under no VPC source.
	meta = `{"name":"signet-doctor","ipFilter":{"mode":"Enabled","publicNetworkSource":{"allowedIpCidrRanges":["203.0.113.0/24"]}}}`
	storagetest.WantCheck(t, gcsDiagnose(t, be, opts), "network", driver.CheckWarn, "private networks 10.1.0.0/16")
	meta = `{"name":"signet-doctor","ipFilter":{"mode":"Disabled"}}`
	storagetest.WantCheck(t, gcsDiagnose(t, be, opts), "network", driver.CheckFail, "no enabled IP filter")

	// GCS wants an OAuth token for the JSON API, which an HMAC key is not.
	status, meta = http.StatusUnauthorized, `{"error":{"code":401,"message":"Anonymous caller does not have storage.buckets.get access"}}`
	hmac := gcsDiagnose(t, be, opts)
	for _, name := range []string{"cors", "lifecycle", "versioning", "encryption", "network"} {
		storagetest.WantCheck(t, hmac, name, driver.CheckSkip, "HMAC key authenticates the XML API only")
		if f := hmac[name].Fix; !strings.Contains(f, "gcloud storage buckets describe gs://signet-doctor") {
			t.Errorf("%s fix %q", name, f)
		}
	}
	storagetest.WantCheck(t, hmac, "bucket", driver.CheckOK, "listable")

	// A wrong HMAC secret: GCS refuses the signed listing.
	refuse = true
	wrong := gcsDiagnose(t, be, opts)
	storagetest.WantCheck(t, wrong, "credentials", driver.CheckFail, "SignatureDoesNotMatch (HTTP 403)")
	storagetest.WantCheck(t, wrong, "bucket", driver.CheckSkip, "refused the credentials")
}

// TestGCSDiagnoseUnreachable: a store that does not answer is reported as
// such, with the cause.
func TestGCSDiagnoseUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	checks := gcsDiagnose(t, hmacBackend(t, "nlp-data", "http://"+addr, nil), nil)
	storagetest.WantCheck(t, checks, "bucket", driver.CheckFail, "cannot list prefix ml/ in bucket nlp-data: no answer from the store (connection refused)")
	storagetest.WantCheck(t, checks, "lifecycle", driver.CheckWarn, "no answer from the JSON API (connection refused)")
}
