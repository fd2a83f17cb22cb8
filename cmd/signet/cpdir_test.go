package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpRecursiveDownload copies a tree up and back down with cp -r, then
// reruns the download, which finds every file complete.
func TestCpRecursiveDownload(t *testing.T) {
	c := serverWithTeams(t)
	src, files := writeRunTree(t, map[string][]byte{"odd ü + %2e.txt": []byte("odd\n")})
	c.must("cp", "-r", "-q", "--resume-dir", t.TempDir(), src, "signet://default/runs/7/")
	c.must("cp", "-q", filepath.Join(src, "a.txt"), "signet://default/runs/70/not-below-7")

	out := filepath.Join(t.TempDir(), "out")
	t.Run("JSON", func(t *testing.T) {
		r := c.run("cp", "-r", "--json", "--part-size", "2097152", "--files", "2", "signet://default/runs/7", out)
		if r.code != 0 {
			t.Fatalf("cp -r download: exit %d: %s", r.code, r.stderr)
		}
		s := decodeSummary(t, r.stdout)
		if s.Copied != len(files) || s.Failed != 0 || len(s.Skipped) != 0 {
			t.Errorf("summary: %d copied, %d failed, %d skipped; want %d copied", s.Copied, s.Failed, len(s.Skipped), len(files))
		}
		for _, f := range s.Files {
			rel := strings.TrimPrefix(f.Src, "signet://default/runs/7/")
			want, ok := files[rel]
			switch {
			case !ok:
				t.Errorf("downloaded %s, which is not below the prefix", f.Src)
			case f.Dst != filepath.Join(out, filepath.FromSlash(rel)):
				t.Errorf("%s went to %s", f.Src, f.Dst)
			case f.Size != int64(len(want)) || f.SHA256 != hexSHA256(want) || !f.Verified:
				t.Errorf("summary entry %+v; want %d bytes, verified", f, len(want))
			}
			if got, err := os.ReadFile(f.Dst); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s holds other bytes (%v)", f.Dst, err)
			}
			if rel == "sub/b.bin" && f.Parts != 4 {
				t.Errorf("sub/b.bin came in %d ranges, want 4", f.Parts)
			}
		}
	})
	t.Run("RerunSkips", func(t *testing.T) {
		r := c.run("cp", "-r", "signet://default/runs/7/", out)
		if r.code != 0 {
			t.Fatalf("rerun: exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) != len(files)+1 {
			t.Errorf("rerun printed %d lines, want one per file and a total:\n%s", len(lines), r.stderr)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "skipped signet://default/runs/7/") || !strings.HasSuffix(l, "is already complete") {
				t.Errorf("rerun line %q; want the file skipped", l)
			}
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "copied 0 files") || !strings.Contains(last, "5 already complete") {
			t.Errorf("last line %q", last)
		}
	})
	t.Run("Text", func(t *testing.T) {
		os.WriteFile(filepath.Join(out, "a.txt"), []byte("ALPHA\n"), 0o600)
		r := c.run("cp", "-r", "signet://default/runs/7/", out)
		if r.code != 0 || !strings.Contains(r.stderr, "downloaded signet://default/runs/7/a.txt to "+filepath.Join(out, "a.txt")+": 6 bytes") ||
			!strings.Contains(r.stderr, "(verified)") || !strings.Contains(r.stderr, "copied 1 files") {
			t.Errorf("rerun after a change: exit %d:\n%s", r.code, r.stderr)
		}
		if got, _ := os.ReadFile(filepath.Join(out, "a.txt")); !bytes.Equal(got, files["a.txt"]) {
			t.Error("the changed file was not restored")
		}
	})
	t.Run("ErrFileInTheWay", func(t *testing.T) {
		// A file where a folder must go fails that object only.
		o2 := t.TempDir()
		os.WriteFile(filepath.Join(o2, "sub"), []byte("in the way"), 0o600)
		r := c.run("cp", "-r", "--json", "signet://default/runs/7/", o2)
		s := decodeSummary(t, r.stdout)
		if r.code != 1 || s.Failed != 2 || s.Copied != len(files)-2 {
			t.Errorf("exit %d, %d failed, %d copied; want the 2 files below sub/ failed:\n%s", r.code, s.Failed, s.Copied, r.stderr)
		}
	})
}

// TestCpRecursiveDownloadS3 runs signet cp -r both ways against MinIO,
// through a connector with stored credentials: every file comes back
// verified (S3 keeps a single upload's SHA-256, signet records a chunked
// upload's), and a rerun skips them all.
func TestCpRecursiveDownloadS3(t *testing.T) {
	admin, _, _ := minioTeam(t)
	admin.must("member", "add", "ml", "admin", "--role", "admin")

	big := make([]byte, 11<<20+3)
	rand.Read(big)
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "sub/big.bin": big, "sub/ü x.txt": []byte("odd\n")}
	out := cpTreeRoundTrip(t, admin, "ml", "S3", files)
	s := decodeSummary(t, admin.must("cp", "-r", "--json", "signet://ml/run/", out))
	if s.Copied != 0 || len(s.Skipped) != len(files) {
		t.Errorf("rerun: %d copied, %d skipped; want all skipped", s.Copied, len(s.Skipped))
	}
}

// TestCpRecursiveDownloadAzure runs signet cp -r both ways against
// Azurite: Azure keeps no checksum of its own, so every file comes back
// verified against the SHA-256 signet recorded when it committed the
// upload, which the listing also carries, so a rerun compares checksums.
func TestCpRecursiveDownloadAzure(t *testing.T) {
	admin := azureTeam(t)

	big := make([]byte, 6<<20+5)
	rand.Read(big)
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "sub/big.bin": big, "sub/ü x.txt": []byte("odd\n")}
	out := cpTreeRoundTrip(t, admin, "cv", "Azurite", files)
	// Same size, other bytes, and the object's time: only the checksum
	// the listing carries tells it apart.
	a := filepath.Join(out, "a.txt")
	fi, _ := os.Stat(a)
	os.WriteFile(a, []byte("ALPHA\n"), 0o600)
	os.Chtimes(a, fi.ModTime(), fi.ModTime())
	s := decodeSummary(t, admin.must("cp", "-r", "--json", "signet://cv/run/", out))
	if s.Copied != 1 || len(s.Skipped) != len(files)-1 {
		t.Errorf("rerun: %d copied, %d skipped; want only the changed file copied", s.Copied, len(s.Skipped))
	}
	if got, _ := os.ReadFile(a); !bytes.Equal(got, files["a.txt"]) {
		t.Error("the changed file was not restored")
	}
}

// cpTreeRoundTrip copies files up below signet://team/run/ with cp -r
// (in 5 MiB parts) and back down into a new folder, which it returns,
// failing unless every file comes back with its bytes, verified.
func cpTreeRoundTrip(t *testing.T, admin cli, team, store string, files map[string][]byte) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "run")
	writeTree(t, src, files)
	admin.must("cp", "-r", "-q", "--part-size", "5242880", "--resume-dir", t.TempDir(), src, "signet://"+team+"/run/")

	out := filepath.Join(t.TempDir(), "out")
	s := decodeSummary(t, admin.must("cp", "-r", "--json", "signet://"+team+"/run/", out))
	if s.Copied != len(files) || s.Failed != 0 {
		t.Fatalf("cp -r from %s: %+v", store, s)
	}
	for _, f := range s.Files {
		rel := strings.TrimPrefix(f.Src, "signet://"+team+"/run/")
		got, _ := os.ReadFile(f.Dst)
		if !f.Verified || f.SHA256 != hexSHA256(files[rel]) || !bytes.Equal(got, files[rel]) {
			t.Errorf("%s: %+v; want the bytes, verified", rel, f)
		}
	}
	return out
}
