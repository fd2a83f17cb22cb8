package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestGCSEndToEnd drives a GCS connector with an HMAC key through the CLI
// against fake-gcs-server. fake-gcs-server accepts ANY signature, so this
// proves only the flow: the secret stays out of the output, the URLs reach
// the right bucket and object, bytes round-trip, and signet cp of an empty
// file is one PUT bound to Content-Length: 0. Signatures are proven in
// storage/gcsblob (conformance vectors, the SDK, an in-test verifier).
func TestGCSEndToEnd(t *testing.T) {
	peer := testpeer.FakeGCS(t)
	bucket := peer.Bucket(t)
	admin := serverWithTeams(t, "geo")
	admin.must("member", "add", "geo", "admin", "--role", "admin")
	const secret = "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"
	set := admin
	set.env = map[string]string{"SIGNET_HMAC_SECRET": secret}
	if out := set.must("connector", "set", "geo", "--backend", "gcs", "--bucket", bucket, "--prefix", "geo/",
		"--endpoint", peer.Endpoint, "--hmac-access-id", "GOOG1EXAMPLE", "--json"); strings.Contains(out, secret) {
		t.Fatal("connector set printed the HMAC secret")
	}
	payload := []byte("tiles")
	put := presignJSON(t, admin, "put", "geo", "tiles/a.bin", "--size", "5", "--content-type", "application/x-tile")
	if put.Headers["Content-Length"] != "5" || put.Headers["Content-Type"] != "application/x-tile" {
		t.Errorf("upload headers %v, want the bound Content-Length and Content-Type", put.Headers)
	}
	if !strings.Contains(put.URL, "X-Goog-Algorithm=GOOG4-HMAC-SHA256") {
		t.Errorf("upload URL is not HMAC-signed")
	}
	if st := send(t, put.Method, put.URL, put.Headers, payload); st != http.StatusOK {
		t.Fatalf("PUT via the signed URL answered %d", st)
	}
	get := presignJSON(t, admin, "get", "geo", "tiles/a.bin")
	if got := httpGet(t, get.URL); !bytes.Equal(got, payload) {
		t.Errorf("downloaded %q, want %q", got, payload)
	}

	// An empty file: GCS cannot check a SHA-256, but Content-Length: 0
	// leaves only the empty one, so cp sends one bound PUT.
	dir := t.TempDir()
	src := filepath.Join(dir, "empty.bin")
	os.WriteFile(src, nil, 0o600)
	admin.must("cp", src, "signet://geo/cp/empty.bin")
	back := filepath.Join(dir, "back.bin")
	admin.must("cp", "signet://geo/cp/empty.bin", back)
	if b, err := os.ReadFile(back); err != nil || len(b) != 0 {
		t.Errorf("cp of an empty file round trip: %d bytes back, %v", len(b), err)
	}
}

// TestGCSKeyless sets a keyless GCS connector and presigns through the
// server: the service account's e-mail and the server's token come from a
// metadata server (workload identity), and each URL is signed by a signBlob
// call. No real Google IAM is reachable offline, so signBlob is an in-test
// server holding an RSA key (storage/gcsblob TestGCSKeyless verifies such URLs
// with the public key); here the URL must carry the signature it made, and
// fake-gcs-server (which accepts any signature) takes the bytes.
func TestGCSKeyless(t *testing.T) {
	const email = "signer@test-project.iam.gserviceaccount.com"
	// Start the peer first: it is found below $HOME, which changes next.
	peer := testpeer.FakeGCS(t)
	bucket := peer.Bucket(t)
	// No Google credentials but the metadata server's.
	testpeer.NoGoogleCredentials(t)
	md := testpeer.GCEMetadata(t, email, "workload-token")
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iam := testpeer.StartSignBlob(t, key, email, "workload-token")

	admin := serverWithTeams(t, "geo")
	mapper := addMember(admin, "geo", "mapper", "admin", "--service")

	// The flag reaches the connector; a team admin may not make the
	// server sign with its own identity.
	if r := mapper.run("connector", "set", "geo", "--backend", "gcs", "--bucket", bucket, "--service-account", email); r.code == 0 || !strings.Contains(r.stderr, "instance admins") {
		t.Errorf("a team admin set a keyless connector: exit %d, %s", r.code, r.stderr)
	}
	out := admin.must("connector", "set", "geo", "--backend", "gcs", "--bucket", bucket, "--endpoint", peer.Endpoint,
		"--service-account", email, "--json")
	if !strings.Contains(out, `"service_account": "`+email+`"`) && !strings.Contains(out, `"service_account":"`+email+`"`) {
		t.Errorf("connector set output lacks the service account: %s", out)
	}
	// The private IAM endpoint option has no flag: set it through the API,
	// without a service account, which the metadata server then names.
	if _, err := sighttp.NewClient(admin.addr, admin.token).SetConnector(context.Background(), "geo", sighttp.ConnectorRequest{
		Backend: "gcs", Bucket: bucket, Endpoint: peer.Endpoint, Options: map[string]string{"iam_endpoint": iam.URL},
	}); err != nil {
		t.Fatal(err)
	}

	put := presignJSON(t, mapper, "put", "geo", "k/a.bin", "--size", "4")
	get := presignJSON(t, mapper, "get", "geo", "k/a.bin")
	for _, p := range []presigned{put, get} {
		u, err := url.Parse(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		made := iam.Signed(q.Get("X-Goog-Signature"))
		if q.Get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" || !strings.HasPrefix(q.Get("X-Goog-Credential"), email+"/") || !made {
			t.Errorf("%s URL: algorithm %q, credential %q, signature made by signBlob %v", p.Method, q.Get("X-Goog-Algorithm"), q.Get("X-Goog-Credential"), made)
		}
	}
	if st := send(t, put.Method, put.URL, put.Headers, []byte("data")); st != http.StatusOK {
		t.Fatalf("PUT via the keyless URL answered %d", st)
	}
	if got := httpGet(t, get.URL); string(got) != "data" {
		t.Errorf("downloaded %q", got)
	}
}
