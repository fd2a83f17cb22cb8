package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestCheckpointExport runs signet with checkpoints exported to a bucket
// of the real S3 test server: every checkpoint signet writes arrives there,
// byte for byte and verifiable with the public key, and an object already
// at a checkpoint's name is never replaced.
func TestCheckpointExport(t *testing.T) {
	peer := testpeer.MinIO(t)
	bucket := peer.Bucket(t)
	root := peer.Client()
	getenv := func(k string) string {
		switch k {
		case envExportKeyID:
			return peer.AccessKeyID
		case envExportSecret:
			return peer.SecretAccessKey
		}
		return ""
	}
	export := &CheckpointExport{URL: "s3://" + bucket + "/audit/", Endpoint: peer.Endpoint, Region: peer.Region, PathStyle: true}

	cfg := DefaultConfig()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.AuditCheckpointInterval = 50 * time.Millisecond
	cfg.AuditCheckpointExport = export
	m := &Main{Config: cfg, Dev: true, Getenv: getenv}
	token := mustRun(t, m)
	admin := cli{tb: t, addr: m.URL(), token: token}
	key, err := auditlog.ReadKey(filepath.Join(cfg.DataDir, defaultCheckpointKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)

	remote := func(name string) []byte {
		out, err := root.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("audit/" + name)})
		if err != nil {
			return nil
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	// Move the log on between checkpoints, then wait for the local
	// checkpoints of that moment to be in the bucket.
	admin.must("team", "create", "a")
	time.Sleep(150 * time.Millisecond)
	admin.must("team", "create", "b")
	dir := filepath.Join(cfg.DataDir, defaultCheckpointDir)
	var names []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		names, _ = auditlog.CheckpointFiles(dir)
		missing := 0
		for _, n := range names {
			if remote(n) == nil {
				missing++
			}
		}
		if len(names) >= 2 && missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d checkpoints not exported after 15 s", missing, len(names))
		}
		time.Sleep(50 * time.Millisecond)
	}
	seqs := map[int64]bool{}
	for _, n := range names {
		local, _ := os.ReadFile(filepath.Join(dir, n))
		got := remote(n)
		if !bytes.Equal(local, got) {
			t.Errorf("%s: exported bytes differ from the local file", n)
		}
		var cp auditlog.Checkpoint
		if err := json.Unmarshal(got, &cp); err != nil || cp.Verify(pub) != nil {
			t.Errorf("%s: exported checkpoint does not verify (%v)", n, err)
		}
		seqs[cp.Seq] = true
	}
	if len(seqs) < 2 {
		t.Errorf("exported checkpoints cover %d distinct heads, want the log's progress (2 or more)", len(seqs))
	}

	t.Run("NeverOverwrites", func(t *testing.T) {
		src := filepath.Join(dir, names[0])
		data, _ := os.ReadFile(src)
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, names[0]), data, 0o644)
		x, err := newCheckpointExporter(context.Background(), &CheckpointExport{URL: "s3://" + bucket + "/other/", Endpoint: peer.Endpoint, PathStyle: true}, d, getenv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("other/" + names[0]), Body: strings.NewReader("planted")}); err != nil {
			t.Fatal(err)
		}
		if n, err := x.exportOnce(context.Background()); err == nil || n != 0 || !strings.Contains(err.Error(), "other content") {
			t.Errorf("export over a different object: %d, %v", n, err)
		}
		out, _ := root.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("other/" + names[0])})
		if b, _ := io.ReadAll(out.Body); string(b) != "planted" {
			t.Errorf("the existing object was replaced: %q", b)
		}
		// The same bytes already there count as exported (a restart after
		// an upload whose marker was not written).
		again, err := newCheckpointExporter(context.Background(), export, d, getenv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := again.exportOnce(context.Background()); err != nil || n != 1 {
			t.Errorf("re-export of identical bytes: %d, %v", n, err)
		}
	})

	t.Run("BadURL", func(t *testing.T) {
		for _, u := range []string{"http://bucket/x", "s3:///x", "s3://user@bucket/x"} {
			if _, err := newCheckpointExporter(context.Background(), &CheckpointExport{URL: u}, t.TempDir(), getenv, nil); err == nil {
				t.Errorf("url %q accepted", u)
			}
		}
	})
}
