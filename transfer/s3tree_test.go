package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage/s3blob"
	"github.com/signetdev/signet/transfer"
)

// overwrite replaces the team's key in MinIO with data, with the root
// credentials, as something other than signet would; meta is its user
// metadata.
func (e *s3Env) overwrite(t *testing.T, key string, data []byte, meta map[string]string) {
	t.Helper()
	_, err := e.peer.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(s3Prefix + key), Body: bytes.NewReader(data), Metadata: meta,
	})
	if err != nil {
		t.Fatalf("overwriting %s in MinIO: %v", key, err)
	}
}

// TestS3DownloadVerified proves that downloads from S3 are checked end to
// end: a single upload's SHA-256 is the one MinIO checked and keeps
// (x-amz-checksum-sha256), a chunked upload's the one signet verified and
// recorded as metadata when it completed it; both come back with the
// download URL and the bytes are checked against them. An object changed
// behind signet's back fails the check, and leaves no file.
func TestS3DownloadVerified(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	single := randomBytes(100<<10, 41)
	chunked := randomBytes(2*s3PartSize+777, 42)
	if _, err := transfer.UploadFile(ctx, e.c, team, "v/single.bin", writeFile(t, single), &transfer.Options{HTTP: e.HTTP}); err != nil {
		t.Fatalf("UploadFile single: %v", err)
	}
	res, err := transfer.UploadFile(ctx, e.c, team, "v/chunked.bin", writeFile(t, chunked), &transfer.Options{HTTP: e.HTTP, Threshold: -1, PartSize: s3PartSize})
	if err != nil || res.Parts != 3 {
		t.Fatalf("UploadFile chunked: %+v, %v; want 3 parts", res, err)
	}
	head, err := e.peer.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(s3Prefix + "v/chunked.bin")})
	if err != nil || head.Metadata[s3blob.SHA256Meta] != sum(chunked) {
		t.Fatalf("MinIO's metadata of the chunked object: %v, %v; want %s=%s", head.Metadata, err, s3blob.SHA256Meta, sum(chunked))
	}

	get := func(t *testing.T, key string, o *transfer.Options) (*transfer.Result, string, error) {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "dl")
		res, err := transfer.DownloadFile(ctx, e.c, team, key, dst, o)
		return res, dst, err
	}
	for _, c := range []struct {
		key  string
		data []byte
	}{{"v/single.bin", single}, {"v/chunked.bin", chunked}} {
		for _, o := range []*transfer.Options{{}, {PartSize: s3PartSize, Threshold: -1}} {
			res, dst, err := get(t, c.key, o)
			if err != nil {
				t.Fatalf("DownloadFile(%s): %v", c.key, err)
			}
			got, _ := os.ReadFile(dst)
			if !res.Verified || res.SHA256 != sum(c.data) || !bytes.Equal(got, c.data) {
				t.Errorf("DownloadFile(%s, part size %d) = %+v; want the bytes, verified", c.key, o.PartSize, res)
			}
		}
	}

	t.Run("ErrTampered", func(t *testing.T) {
		// Same size, other bytes, the metadata kept: the SHA-256 signet
		// recorded no longer matches, and the download says so.
		for _, key := range []string{"v/chunked.bin", "v/single.bin"} {
			orig := chunked
			if key == "v/single.bin" {
				orig = single
			}
			bad := bytes.Clone(orig)
			bad[len(bad)/2] ^= 1
			e.overwrite(t, key, bad, map[string]string{s3blob.SHA256Meta: sum(orig)})
			for _, o := range []*transfer.Options{{}, {PartSize: s3PartSize, Threshold: -1}} {
				_, dst, err := get(t, key, o)
				if signet.ErrorCode(err) != signet.ChecksumMismatch {
					t.Errorf("DownloadFile of tampered %s (part size %d): %v; want checksum_mismatch", key, o.PartSize, err)
				}
				if _, serr := os.Stat(dst); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("DownloadFile left %s after a mismatch", dst)
				}
				if _, serr := os.Stat(dst + ".signet-part"); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("DownloadFile left its partial file after a mismatch")
				}
			}
			var buf bytes.Buffer
			_, err := transfer.Download(ctx, e.c, team, key, &buf, nil)
			if signet.ErrorCode(err) != signet.ChecksumMismatch {
				t.Errorf("Download of tampered %s: %v; want checksum_mismatch", key, err)
			}
		}
	})
	t.Run("ReplacedUnverified", func(t *testing.T) {
		// Replaced without signet's metadata (and without an S3 SHA-256):
		// nothing says what the object should be, and the download says
		// it is not verified rather than pretend.
		other := randomBytes(5000, 43)
		e.overwrite(t, "v/chunked.bin", other, nil)
		res, _, err := get(t, "v/chunked.bin", nil)
		if err != nil || res.Verified || res.SHA256 != sum(other) {
			t.Errorf("DownloadFile of a replaced object: %+v, %v; want the new bytes, unverified", res, err)
		}
	})
}

// TestS3DownloadDir downloads a tree from MinIO with DownloadDir. S3 lists
// no checksums, so a rerun recognises complete files by size and the
// object's time, which DownloadDir gave each file; every download is still
// verified against the SHA-256 that comes with its URL.
func TestS3DownloadDir(t *testing.T) {
	e := newS3Env(t)
	ctx := context.Background()
	files := map[string][]byte{
		"a.txt":         []byte("alpha\n"),
		"sub/big.bin":   randomBytes(s3PartSize+99, 44),
		"sub/ü & x.txt": []byte("odd"),
	}
	for rel, b := range files {
		if _, err := transfer.UploadFile(ctx, e.c, team, "tree/"+rel, writeFile(t, b), &transfer.Options{HTTP: e.HTTP}); err != nil {
			t.Fatalf("UploadFile %s: %v", rel, err)
		}
	}
	if _, err := transfer.UploadFile(ctx, e.c, team, "treex", writeFile(t, []byte("beside")), nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := &transfer.DirOptions{Options: transfer.Options{PartSize: 1 << 20}}
	res, err := transfer.DownloadDir(ctx, e.c, team, "tree", dir, o)
	if err != nil || res.Copied != len(files) {
		t.Fatalf("DownloadDir: %+v, %v; want %d files", res, err, len(files))
	}
	for _, f := range res.Files {
		if !f.Result.Verified {
			t.Errorf("%s was not verified", f.Key)
		}
	}
	checkTree(t, dir, files)

	res, err = transfer.DownloadDir(ctx, e.c, team, "tree/", dir, o)
	if err != nil || res.Skipped != len(files) || res.Copied != 0 {
		t.Fatalf("rerun: %d copied, %d skipped, %v; want all skipped", res.Copied, res.Skipped, err)
	}
	// Rewritten locally: another modification time, so fetched again.
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("ALPHA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = transfer.DownloadDir(ctx, e.c, team, "tree/", dir, o)
	if err != nil || res.Copied != 1 || res.Skipped != len(files)-1 {
		t.Fatalf("rerun after a change: %d copied, %d skipped, %v; want the changed file copied", res.Copied, res.Skipped, err)
	}
	checkTree(t, dir, files)
}
