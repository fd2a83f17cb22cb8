package fileblob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storage"
	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// putPart uploads body as part n through a signed URL.
func (e *env) putPart(key, id string, n int, size int64, body []byte) (int, string) {
	e.t.Helper()
	u := e.sign(http.MethodPut, key, func(o *driver.SignOptions) {
		o.UploadID, o.PartNumber, o.Size = id, n, size
	})
	w := e.do(http.MethodPut, u.URL, u.Headers, body)
	return w.Code, w.Header().Get("ETag")
}

func TestMultipart(t *testing.T) {
	ctx := context.Background()
	e := MustOpen(t, fileblob.Options{})
	const ps = storage.MinPartSize
	data := make([]byte, 2*ps+100)
	for i := range data {
		data[i] = byte(i % 251) // parts differ
	}
	size := int64(len(data))
	part := func(n int) []byte {
		off := int64(n-1) * ps
		return data[off : off+storage.PartSize(size, ps, n)]
	}
	id, err := e.b.CreateMultipart(ctx, "big.bin", &driver.MultipartOptions{Size: size, PartSize: ps, ContentType: "application/x-big"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ErrPartBeyondPlan", func(t *testing.T) {
		u := e.sign(http.MethodPut, "big.bin", func(o *driver.SignOptions) { o.UploadID, o.PartNumber = id, 4 })
		wantProblem(t, e.do(http.MethodPut, u.URL, nil, []byte("x")), http.StatusBadRequest, "invalid_part")
	})
	t.Run("ErrSignedSizeNotPlanned", func(t *testing.T) {
		u := e.sign(http.MethodPut, "big.bin", func(o *driver.SignOptions) { o.UploadID, o.PartNumber, o.Size = id, 3, 5 })
		wantProblem(t, e.do(http.MethodPut, u.URL, nil, []byte("12345")), http.StatusBadRequest, "size_mismatch")
	})
	t.Run("ErrWrongBodySize", func(t *testing.T) {
		// Unbound size: the plan still decides.
		st, _ := e.putPart("big.bin", id, 3, -1, part(3)[1:])
		if st != http.StatusBadRequest {
			t.Errorf("short part: %d", st)
		}
		st, _ = e.putPart("big.bin", id, 3, -1, append(bytes.Clone(part(3)), 'x'))
		if st != http.StatusRequestEntityTooLarge {
			t.Errorf("long part: %d", st)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		if st, _ := e.putPart("other.bin", id, 1, ps, part(1)); st != http.StatusNotFound {
			t.Errorf("part PUT for another key's upload: %d, want 404", st)
		}
	})

	etags := map[int]string{}
	for _, n := range []int{3, 1, 2} {
		st, etag := e.putPart("big.bin", id, n, storage.PartSize(size, ps, n), part(n))
		if st != http.StatusOK || etag == "" {
			t.Fatalf("part %d: %d %q", n, st, etag)
		}
		sum := sha256.Sum256(part(n))
		if etag != `"`+hexString(sum[:])+`"` {
			t.Errorf("part %d ETag %s, want the quoted hex SHA-256", n, etag)
		}
		etags[n] = etag
	}
	parts, err := e.b.ListParts(ctx, "big.bin", id)
	if err != nil || len(parts) != 3 {
		t.Fatalf("ListParts = %v, %v", parts, err)
	}
	for i, p := range parts {
		if p.Number != i+1 || p.ETag != etags[i+1] || p.Size != storage.PartSize(size, ps, i+1) {
			t.Errorf("part %d = %+v", i+1, p)
		}
	}

	for _, tc := range []struct {
		name  string
		key   string
		parts []driver.Part
		code  signet.Code
	}{
		{"Missing", "big.bin", parts[:2], signet.Invalid},
		{"Extra", "big.bin", append(append([]driver.Part(nil), parts...), driver.Part{Number: 4, ETag: etags[3]}), signet.Invalid},
		{"ETag", "big.bin", []driver.Part{parts[0], {Number: 2, ETag: etags[1]}, parts[2]}, signet.Invalid},
		{"Size", "big.bin", []driver.Part{parts[0], parts[1], {Number: 3, ETag: etags[3], Size: 1}}, signet.Invalid},
		{"OtherKey", "other.bin", parts, signet.NotFound},
	} {
		t.Run("ErrComplete"+tc.name, func(t *testing.T) {
			wantCode(t, e.b.CompleteMultipart(ctx, tc.key, id, tc.parts, nil), tc.code)
		})
	}
	if _, err := e.b.ListParts(ctx, "big.bin", id); err != nil {
		t.Fatalf("refused completions disturbed the upload: %v", err)
	}

	// ETags may be given without quotes, and sizes may be left out.
	bare := make([]driver.Part, len(parts))
	for i, p := range parts {
		bare[i] = driver.Part{Number: p.Number, ETag: strings.Trim(p.ETag, `"`)}
	}
	sum := sha256.Sum256(data)
	if err := e.b.CompleteMultipart(ctx, "big.bin", id, bare, sum[:]); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	g := e.sign(http.MethodGet, "big.bin", nil)
	w := e.do(http.MethodGet, g.URL, nil, nil)
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) || w.Header().Get("Content-Type") != "application/x-big" ||
		w.Header().Get("ETag") != `"`+hexString(sum[:])+`"` {
		t.Errorf("GET of the assembled object: %d, %d bytes, %v", w.Code, w.Body.Len(), w.Header())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "uploads", id)); !os.IsNotExist(err) {
		t.Errorf("the upload directory is still there: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers", len(entries))
	}
	if st, _ := e.putPart("big.bin", id, 1, ps, part(1)); st != http.StatusNotFound {
		t.Errorf("part PUT after completion: %d, want 404", st)
	}
	wantCode(t, e.b.AbortMultipart(ctx, "big.bin", id), signet.NotFound)
}

func wantCode(t *testing.T, err error, code signet.Code) {
	t.Helper()
	if got := signet.ErrorCode(err); got != code {
		t.Errorf("code %q (%v), want %q", got, err, code)
	}
}

func TestMultipartChecksumMismatch(t *testing.T) {
	ctx := context.Background()
	e := MustOpen(t, fileblob.Options{})
	declared := sha256.Sum256([]byte("something else"))
	id, err := e.b.CreateMultipart(ctx, "sum.bin", &driver.MultipartOptions{Size: 5, PartSize: 5, SHA256: declared[:]})
	if err != nil {
		t.Fatal(err)
	}
	st, etag := e.putPart("sum.bin", id, 1, 5, []byte("hello"))
	if st != http.StatusOK {
		t.Fatalf("part PUT: %d", st)
	}
	parts := []driver.Part{{Number: 1, ETag: etag}}
	wantCode(t, e.b.CompleteMultipart(ctx, "sum.bin", id, parts, nil), signet.ChecksumMismatch)
	right := sha256.Sum256([]byte("hello"))
	// The declared checksum holds even when the completion names another.
	wantCode(t, e.b.CompleteMultipart(ctx, "sum.bin", id, parts, right[:]), signet.ChecksumMismatch)
	if _, err := os.Stat(filepath.Join(e.dir, "objects", "bkt", "team", "sum.bin")); !os.IsNotExist(err) {
		t.Errorf("an object was left behind: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ holds %d leftovers", len(entries))
	}
	if err := e.b.AbortMultipart(ctx, "sum.bin", id); err != nil {
		t.Errorf("abort after a checksum mismatch: %v", err)
	}
}

func TestMultipartConflict(t *testing.T) {
	ctx := context.Background()
	e := MustOpen(t, fileblob.Options{})
	e.put("dir/file", []byte("x"))
	id, err := e.b.CreateMultipart(ctx, "dir", &driver.MultipartOptions{Size: 1, PartSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, etag := e.putPart("dir", id, 1, 1, []byte("y"))
	wantCode(t, e.b.CompleteMultipart(ctx, "dir", id, []driver.Part{{Number: 1, ETag: etag}}, nil), signet.Conflict)
}

func TestMultipartDriverChecks(t *testing.T) {
	ctx := context.Background()
	e := MustOpen(t, fileblob.Options{MaxObjectSize: 100})
	for _, tc := range []struct {
		name        string
		bucket, key string
		opts        *driver.MultipartOptions
		code        signet.Code
	}{
		{"Bucket", "B", "k", &driver.MultipartOptions{Size: 1, PartSize: 1}, signet.Invalid},
		{"Key", "b", "/k", &driver.MultipartOptions{Size: 1, PartSize: 1}, signet.InvalidKey},
		{"NoOptions", "b", "k", nil, signet.Invalid},
		{"AboveMax", "b", "k", &driver.MultipartOptions{Size: 101, PartSize: 101}, signet.TooLarge},
		{"Plan", "b", "k", &driver.MultipartOptions{Size: 10, PartSize: 3}, signet.Invalid},
		{"ContentType", "b", "k", &driver.MultipartOptions{Size: 1, PartSize: 1, ContentType: "x\n/y"}, signet.Invalid},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			_, err := e.store.CreateMultipart(ctx, tc.bucket, tc.key, tc.opts)
			wantCode(t, err, tc.code)
		})
	}
	for _, id := range []string{"", "../objects", "0123456789ABCDEF0123456789ABCDEF", strings.Repeat("0", 31)} {
		_, err := e.store.ListParts(ctx, "b", "k", id)
		wantCode(t, err, signet.NotFound)
		wantCode(t, e.store.AbortMultipart(ctx, "b", "k", id), signet.NotFound)
	}
}
