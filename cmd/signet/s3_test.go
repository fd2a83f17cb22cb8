package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/signetdev/signet"
)

// TestS3EndToEnd drives signet through the CLI against a real MinIO: a
// team's connector with stored credentials, single-object URLs with their
// bindings, and signet cp through multipart upload and back.
func TestS3EndToEnd(t *testing.T) {
	// The secret comes from the environment, never a flag, and never
	// comes back (minioTeam checks).
	admin, _, bucket := minioTeam(t, "--json")
	trainer := addMember(admin, "ml", "trainer", "member", "--service")
	admin.must("member", "add", "ml", "admin", "--role", "admin")

	var conn signet.Connector
	json.Unmarshal([]byte(admin.must("connector", "get", "ml", "--json")), &conn)
	if conn.Backend != "s3" || conn.CredentialsRef == "" {
		t.Errorf("connector %+v", conn)
	}

	// Upload with every binding, then download.
	payload := []byte("weights from a training job\n")
	put := presignJSON(t, trainer, "put", "ml", "ckpt/w.bin",
		"--size", "28", "--content-type", "application/octet-stream", "--sha256", hexSHA256(payload))
	if !strings.Contains(put.URL, "/"+bucket+"/ml/ckpt/w.bin?") {
		t.Errorf("upload URL does not address the team's bucket and prefix")
	}
	// The store itself refuses a tampered URL (the peer verifies).
	if st := send(t, put.Method, strings.Replace(put.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1), put.Headers, payload); st != 403 {
		t.Fatalf("MinIO answered %d to a tampered URL; invalid environment", st)
	}
	// Other content than declared is refused by the store.
	if st := send(t, put.Method, put.URL, put.Headers, bytes.ToUpper(payload)); st < 400 {
		t.Errorf("PUT of other content than the signed SHA-256 answered %d", st)
	}
	if st := send(t, put.Method, put.URL, put.Headers, payload); st != 200 {
		t.Fatalf("PUT via presigned URL answered %d", st)
	}
	getURL := strings.TrimSpace(trainer.must("presign", "get", "ml", "ckpt/w.bin"))
	if got := httpGet(t, getURL); !bytes.Equal(got, payload) {
		t.Errorf("downloaded %q", got)
	}

	// signet cp through S3 multipart upload and back.
	cpRoundTrip(t, trainer, 21<<20+333, "cp round trip through MinIO")
}

func send(t *testing.T, method, url string, headers map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
