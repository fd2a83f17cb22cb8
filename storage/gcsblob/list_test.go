package gcsblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/gcsblob"
)

// TestFakeGCSStatSHA256 checks that Stat reads the SHA-256 a verified
// chunked upload records (x-goog-meta-signet-sha256) from the object's
// headers. fake-gcs-server has no XML multipart uploads, so the object is
// written with a PUT carrying that metadata, as CompleteMultipart leaves
// it.
func TestFakeGCSStatSHA256(t *testing.T) {
	p := testpeer.FakeGCS(t)
	bucket := p.Bucket(t)
	be := hmacBackend(t, bucket, p.Endpoint, func(c *gcsblob.Config) { c.Prefix = "" })
	body := []byte("checked bytes")
	sum := sha256.Sum256(body)
	now := time.Now()
	u, err := be.SignedURL(context.Background(), &driver.SignOptions{Method: "PUT", Bucket: bucket, Key: "a/b c", Now: now,
		Expires: now.Truncate(time.Second).Add(time.Hour), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", u.URL, bytes.NewReader(body))
	req.Header.Set("x-goog-meta-"+gcsblob.SHA256Meta, hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	info, err := be.Stat(context.Background(), bucket, "a/b c")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if !bytes.Equal(info.SHA256, sum[:]) || info.Size != int64(len(body)) || info.ETag == "" {
		t.Errorf("Stat = %+v; want size %d, an ETag and the SHA-256 %x", info, len(body), sum)
	}
}
