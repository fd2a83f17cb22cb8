package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestS3BatchPresign asks for several objects in one POST
// /v1/teams/{team}/presign, uploads through each URL and downloads through
// a second batch: every URL of a batch works on MinIO, and a key outside
// the team's space fails alone.
func TestS3BatchPresign(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	var logs bytes.Buffer
	m, admin, trainer := s3Team(t, &logs)
	setS3Connector(admin, peer, bucket)
	c := sighttp.NewClient(m.URL(), trainer.token)
	ctx := context.Background()

	objects := map[string][]byte{}
	var up []sighttp.ObjectRequest
	for i := range 5 {
		key := fmt.Sprintf("batch/shard-%02d.bin", i)
		objects[key] = bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		size := int64(len(objects[key]))
		up = append(up, sighttp.ObjectRequest{Key: key, Size: &size, ContentType: "application/octet-stream", SHA256: hexSHA256(objects[key])})
	}
	resp, err := c.Presign(ctx, "ml", &sighttp.PresignRequest{Operation: "upload", Objects: up})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Objects) != len(up) {
		t.Fatalf("%d results for %d objects", len(resp.Objects), len(up))
	}
	seen := map[string]bool{}
	for _, o := range resp.Objects {
		if o.Error != nil || objects[o.Key] == nil || seen[o.Key] {
			t.Fatalf("upload result %+v", o)
		}
		seen[o.Key] = true
		if !strings.Contains(o.URL, "/"+bucket+"/ml/"+o.Key+"?") {
			t.Errorf("%s: URL does not address the team's bucket and prefix", o.Key)
		}
		// Another object's bytes under this URL: refused by the store.
		other := bytes.Repeat([]byte{'z'}, len(objects[o.Key]))
		if st := send(t, o.Method, o.URL, o.Headers, other); st < 400 {
			t.Errorf("%s: PUT of other bytes answered %d", o.Key, st)
		}
		if st := send(t, o.Method, o.URL, o.Headers, objects[o.Key]); st != http.StatusOK {
			t.Errorf("%s: PUT answered %d", o.Key, st)
		}
	}

	var down []sighttp.ObjectRequest
	for k := range objects {
		down = append(down, sighttp.ObjectRequest{Key: k})
	}
	down = append(down, sighttp.ObjectRequest{Key: "../other-team/x"})
	resp, err = c.Presign(ctx, "ml", &sighttp.PresignRequest{Operation: "download", Objects: down})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Objects) != len(down) {
		t.Fatalf("%d results for %d objects", len(resp.Objects), len(down))
	}
	for _, o := range resp.Objects {
		if o.Key == "../other-team/x" {
			if o.Error == nil || o.URL != "" {
				t.Errorf("a key outside the team's space was signed: %+v", o)
			}
			continue
		}
		if o.Error != nil {
			t.Errorf("%s: %+v", o.Key, o.Error)
			continue
		}
		if got := httpGet(t, o.URL); !bytes.Equal(got, objects[o.Key]) {
			t.Errorf("%s: downloaded %d bytes, want the %d uploaded", o.Key, len(got), len(objects[o.Key]))
		}
	}
}
