package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/transfer"
)

// treeFiles is a tree of objects below "tree/" (and one beside it).
func (e *env) uploadTree(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"a.txt":              []byte("alpha\n"),
		"sub/b.bin":          randomBytes(3<<20+5, 21),
		"sub/deep/c":         []byte("gamma"),
		"odd name ü+%2e.txt": []byte("odd"),
		"empty":              {},
	}
	for rel, b := range files {
		if _, err := transfer.Upload(context.Background(), e.c, team, "tree/"+rel, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatalf("Upload %s: %v", rel, err)
		}
	}
	// Shares "tree" as a string, not as a folder.
	if _, err := transfer.Upload(context.Background(), e.c, team, "treex/outside", strings.NewReader("no"), 2, nil); err != nil {
		t.Fatal(err)
	}
	return files
}

// checkTree fails unless dir holds exactly files.
func checkTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	seen := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		want, ok := files[filepath.ToSlash(rel)]
		got, _ := os.ReadFile(p)
		switch {
		case !ok:
			t.Errorf("unexpected file %s", rel)
		case !bytes.Equal(got, want):
			t.Errorf("%s holds %d bytes that differ from the object's %d", rel, len(got), len(want))
		}
		seen++
		return nil
	})
	if seen != len(files) {
		t.Errorf("%s holds %d files, want %d", dir, seen, len(files))
	}
}

func gets(e *env) int {
	n := 0
	for _, r := range e.faults.requests() {
		if strings.HasPrefix(r, "GET ") {
			n++
		}
	}
	return n
}

func TestDownloadDir(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	files := e.uploadTree(t)
	dir := filepath.Join(t.TempDir(), "out")
	o := &transfer.DirOptions{Options: transfer.Options{HTTP: e.HTTP, PartSize: 1 << 20}, Files: 3}
	var done atomic.Int32
	o.Done = func(*transfer.FileResult) { done.Add(1) }

	res, err := transfer.DownloadDir(ctx, e.c, team, "tree", dir, o)
	if err != nil {
		t.Fatalf("DownloadDir: %v", err)
	}
	if res.Copied != len(files) || res.Skipped != 0 || res.Failed != 0 || int(done.Load()) != len(files) {
		t.Errorf("DownloadDir: %d copied, %d skipped, %d failed, %d reported; want %d copied", res.Copied, res.Skipped, res.Failed, done.Load(), len(files))
	}
	var keys []string
	for _, f := range res.Files {
		keys = append(keys, f.Key)
		if f.Result == nil || !f.Result.Verified || f.Result.SHA256 != sum(files[strings.TrimPrefix(f.Key, "tree/")]) {
			t.Errorf("%s: %+v; want it verified", f.Key, f.Result)
		}
		if f.Key == "tree/sub/b.bin" && f.Result.Parts != 4 {
			t.Errorf("%s moved in %d ranges, want 4", f.Key, f.Result.Parts)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("results not in key order: %q", keys)
	}
	checkTree(t, dir, files)

	t.Run("RerunSkips", func(t *testing.T) {
		e.faults.set(nil, nil)
		res, err := transfer.DownloadDir(ctx, e.c, team, "tree/", dir, o)
		if err != nil || res.Skipped != len(files) || res.Copied != 0 {
			t.Fatalf("rerun: %+v, %v; want every file skipped", res, err)
		}
		if n := gets(e); n != 0 {
			t.Errorf("the rerun sent %d GETs to the store, want none", n)
		}
	})
	t.Run("RerunFetchesChanged", func(t *testing.T) {
		// Same size, other bytes: the listed SHA-256 tells them apart.
		if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("ALPHA\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "sub", "deep", "c"))
		res, err := transfer.DownloadDir(ctx, e.c, team, "tree/", dir, o)
		if err != nil || res.Copied != 2 || res.Skipped != len(files)-2 {
			t.Fatalf("rerun: %d copied, %d skipped, %v; want the 2 changed files copied", res.Copied, res.Skipped, err)
		}
		checkTree(t, dir, files)
	})
	t.Run("ErrChecksumMismatch", func(t *testing.T) {
		out := t.TempDir()
		e.faults.set(nil, func(req *http.Request, resp *http.Response) *http.Response {
			if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "deep") {
				resp.Body = &flipBody{r: resp.Body, at: 2}
			}
			return resp
		})
		defer e.faults.set(nil, nil)
		res, err := transfer.DownloadDir(ctx, e.c, team, "tree/", out, o)
		if signet.ErrorCode(err) != signet.ChecksumMismatch || res == nil || res.Failed != 1 || res.Copied != len(files)-1 {
			t.Fatalf("DownloadDir with a corrupted object: %+v, %v; want one checksum mismatch", res, err)
		}
		want := maps.Clone(files)
		delete(want, "sub/deep/c")
		checkTree(t, out, want) // neither the file nor its temporary file
	})
	t.Run("ErrSymlinkOutside", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need privileges on Windows")
		}
		out, elsewhere := t.TempDir(), t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(out, "sub")); err != nil {
			t.Fatal(err)
		}
		res, err := transfer.DownloadDir(ctx, e.c, team, "tree/", out, o)
		if err == nil || res == nil || res.Failed != 2 || res.Copied != len(files)-2 {
			t.Fatalf("DownloadDir through a link out of the directory: %+v, %v; want the 2 files below it refused", res, err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Errorf("%d entries were written outside the directory", len(ents))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		res, err := transfer.DownloadDir(ctx, e.c, team, "nothing/", filepath.Join(t.TempDir(), "new"), o)
		if err != nil || len(res.Files) != 0 {
			t.Errorf("DownloadDir of an empty prefix: %+v, %v", res, err)
		}
	})
}

// TestDownloadDirEscapingKeys checks the client's own defence: a server
// that lists keys leading out of the directory (signet's never does) gets
// nothing written and no URL asked for.
func TestDownloadDirEscapingKeys(t *testing.T) {
	for _, key := range []string{"../x", "a/../../x", "/etc/passwd", `a\..\x`, "a//b", "./a", "a/."} {
		t.Run(key, func(t *testing.T) {
			var presigns atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/objects") {
					json.NewEncoder(w).Encode(sighttp.ObjectList{Objects: []sighttp.ObjectInfo{{Key: "ok"}, {Key: key, Size: 1}}})
					return
				}
				presigns.Add(1)
				http.Error(w, "no", http.StatusTeapot)
			}))
			defer srv.Close()
			dir := t.TempDir()
			_, err := transfer.DownloadDir(context.Background(), sighttp.NewClient(srv.URL, "t"), team, "", dir, nil)
			if signet.ErrorCode(err) != signet.Invalid || !strings.Contains(err.Error(), "outside the directory") {
				t.Errorf("DownloadDir: %v; want an invalid error saying keys lead outside", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 || presigns.Load() != 0 {
				t.Errorf("%d entries written, %d other requests; want none", len(ents), presigns.Load())
			}
		})
	}
}

// BenchmarkDownloadDir downloads 64 objects of 256 KiB from the local
// store into a fresh directory, with 1, 4 and 8 files at once; the ratio
// to Files1 is what moving several files at once gains.
func BenchmarkDownloadDir(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	const n, size = 64, 256 << 10
	for i := range n {
		data := randomBytes(size, uint64(i))
		if _, err := transfer.Upload(ctx, e.c, team, fmt.Sprintf("bench/%02d.bin", i), bytes.NewReader(data), size, nil); err != nil {
			b.Fatal(err)
		}
	}
	for _, files := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("Files%d", files), func(b *testing.B) {
			b.SetBytes(n * size)
			for b.Loop() {
				dir := filepath.Join(b.TempDir(), "out")
				res, err := transfer.DownloadDir(ctx, e.c, team, "bench/", dir, &transfer.DirOptions{Files: files})
				if err != nil || res.Copied != n {
					b.Fatalf("DownloadDir: %+v, %v", res, err)
				}
			}
		})
	}
}
