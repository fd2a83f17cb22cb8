package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/transfer"
)

// writeTree creates files (path relative to dir → content) below dir.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// writeRunTree writes the tree the cp -r tests copy, and extra, below a
// new directory, and returns the directory and its files: a small file at
// the top and one two levels down, an empty one, and sub/b.bin, two parts
// at 5 MiB.
func writeRunTree(t *testing.T, extra map[string][]byte) (string, map[string][]byte) {
	t.Helper()
	big := make([]byte, 6<<20+7)
	rand.Read(big)
	files := map[string][]byte{
		"a.txt":          []byte("alpha\n"),
		"sub/b.bin":      big,
		"sub/deep/c.txt": []byte("gamma\n"),
		"empty":          nil,
	}
	maps.Copy(files, extra)
	src := filepath.Join(t.TempDir(), "run")
	writeTree(t, src, files)
	return src, files
}

// hexSHA256 is the SHA-256 of b in lower-case hex, as signet prints and
// takes it.
func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// decodeSummary parses the --json output of signet cp.
func decodeSummary(t *testing.T, out string) cpSummary {
	t.Helper()
	var s cpSummary
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("cp --json printed %q: %v", out, err)
	}
	return s
}

func TestCpRecursive(t *testing.T) {
	c := serverWithTeams(t)
	src, files := writeRunTree(t, nil)
	if runtime.GOOS != "windows" {
		// A link to a file inside the tree is copied; a link to a
		// directory is reported, not followed.
		if err := os.Symlink(filepath.Join("sub", "deep", "c.txt"), filepath.Join(src, "link.txt")); err != nil {
			t.Fatal(err)
		}
		files["link.txt"] = files["sub/deep/c.txt"]
		if err := os.Symlink("sub", filepath.Join(src, "subdir")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("JSON", func(t *testing.T) {
		resume := t.TempDir()
		r := c.run("cp", "-r", "--json", "--part-size", "5242880", "--resume-dir", resume, src, "signet://default/runs/1")
		if r.code != 0 {
			t.Fatalf("cp -r: exit %d: %s", r.code, r.stderr)
		}
		s := decodeSummary(t, r.stdout)
		if s.Copied != len(files) || s.Failed != 0 || len(s.Files) != len(files) {
			t.Errorf("summary: %d copied, %d failed, %d files; want %d copied", s.Copied, s.Failed, len(s.Files), len(files))
		}
		var total int64
		for _, f := range s.Files {
			rel, _ := filepath.Rel(src, f.Src)
			rel = filepath.ToSlash(rel)
			want, ok := files[rel]
			switch {
			case !ok:
				t.Errorf("copied %s, which is not a file of the tree", f.Src)
			case f.Dst != "signet://default/runs/1/"+rel:
				t.Errorf("%s went to %s, want signet://default/runs/1/%s", f.Src, f.Dst, rel)
			case f.Size != int64(len(want)) || f.SHA256 != hexSHA256(want) || !f.Verified || f.Seconds < 0 || f.Error != "":
				t.Errorf("summary entry %+v; want %d bytes with sha256 %s, verified", f, len(want), hexSHA256(want))
			}
			total += f.Size
			if rel == "sub/b.bin" && f.Parts != 2 {
				t.Errorf("sub/b.bin went in %d parts, want 2", f.Parts)
			}
		}
		if s.Bytes != total {
			t.Errorf("summary bytes %d, want %d", s.Bytes, total)
		}
		if runtime.GOOS != "windows" {
			want := []cpSkipped{{Path: filepath.Join(src, "subdir"), Reason: "symbolic link to a directory (not followed)"}}
			if !slices.Equal(s.Skipped, want) {
				t.Errorf("skipped %+v, want %+v", s.Skipped, want)
			}
		}
		if ents, _ := os.ReadDir(resume); len(ents) != 0 {
			t.Errorf("%d resume state files left after a successful copy", len(ents))
		}

		// Every object comes back, verified against the store's checksum.
		out := t.TempDir()
		for rel, want := range files {
			dst := filepath.Join(out, filepath.FromSlash(rel))
			os.MkdirAll(filepath.Dir(dst), 0o755)
			s := decodeSummary(t, c.must("cp", "--json", "signet://default/runs/1/"+rel, dst))
			if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
				t.Errorf("%s came back as %d bytes that differ", rel, len(got))
			}
			if len(s.Files) != 1 || !s.Files[0].Verified || s.Files[0].SHA256 != hexSHA256(want) {
				t.Errorf("download summary of %s: %+v; want it verified", rel, s.Files)
			}
		}
	})

	t.Run("Quiet", func(t *testing.T) {
		r := c.run("cp", "-r", "--quiet", "--resume-dir", t.TempDir(), src, "signet://default/runs/2/")
		if r.code != 0 || r.stderr != "" || r.stdout != "" {
			t.Errorf("cp -r --quiet: exit %d, stdout %q, stderr %q; want success and no output", r.code, r.stdout, r.stderr)
		}
		r = c.run("cp", "-q", "signet://default/runs/2/a.txt", filepath.Join(t.TempDir(), "a.txt"))
		if r.code != 0 || r.stderr != "" || r.stdout != "" {
			t.Errorf("cp -q download: exit %d, stdout %q, stderr %q; want success and no output", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("Text", func(t *testing.T) {
		r := c.run("cp", "-r", src, "signet://default/runs/3/")
		if r.code != 0 {
			t.Fatalf("cp -r: exit %d: %s", r.code, r.stderr)
		}
		// One line per file, the skipped entries, and a total.
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if n := len(files) + 1 + 1; runtime.GOOS != "windows" && len(lines) != n {
			t.Errorf("cp -r printed %d lines, want %d:\n%s", len(lines), n, r.stderr)
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "copied 5 files") {
			t.Errorf("last line %q, want the totals", last)
		}
		if r.stdout != "" {
			t.Errorf("cp -r printed %q on stdout", r.stdout)
		}
	})

	t.Run("ErrSymlinkEscapes", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("symbolic links need privileges on Windows")
		}
		tree := filepath.Join(t.TempDir(), "tree")
		writeTree(t, tree, map[string][]byte{"ok.txt": []byte("ok")})
		secret := filepath.Join(t.TempDir(), "secret")
		os.WriteFile(secret, []byte("not for the bucket"), 0o600)
		if err := os.Symlink(secret, filepath.Join(tree, "leak")); err != nil {
			t.Fatal(err)
		}
		r := c.run("cp", "-r", tree, "signet://default/escape/")
		if r.code != 1 || !strings.Contains(r.stderr, "outside") {
			t.Errorf("cp -r of a tree with an escaping link: exit %d, stderr %q; want a refusal", r.code, r.stderr)
		}
		// Nothing was sent, not even the harmless file.
		if r := c.run("cp", "signet://default/escape/ok.txt", filepath.Join(t.TempDir(), "x")); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
			t.Errorf("after a refused tree: exit %d %q; want not_found", r.code, r.stderr)
		}
	})

	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"cp", "-r", "signet://default/runs/1/", "-"}, // a tree cannot go to stdout
			{"cp", src, "signet://default/x/"},            // a directory without -r
			{"cp", "-r", "-", "signet://default/x"},
			{"cp", "--json", "signet://default/runs/1/a.txt", "-"},
		} {
			if r := c.run(args...); r.code != 2 {
				t.Errorf("signet %s: exit %d (%s), want 2", strings.Join(args, " "), r.code, r.stderr)
			}
		}
	})

	t.Run("Stream", func(t *testing.T) {
		in := cli{tb: t, addr: c.addr, token: c.token, stdin: strings.NewReader("from a pipe\n")}
		s := decodeSummary(t, in.must("cp", "--json", "-", "signet://default/streamed"))
		if len(s.Files) != 1 || s.Files[0].Src != "-" || s.Files[0].Size != 12 {
			t.Errorf("stream upload summary %+v", s)
		}
		if out := c.must("cp", "signet://default/streamed", "-"); out != "from a pipe\n" {
			t.Errorf("download to stdout: %q", out)
		}
	})
}

// TestCpResume interrupts an upload made by the library and finishes it
// with signet cp, which finds the state through --resume-dir.
func TestCpResume(t *testing.T) {
	m, token := MustRunMain(t)
	c := cli{tb: t, addr: m.URL(), token: token}
	data := make([]byte, 21<<20)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "ckpt.pt")
	os.WriteFile(src, data, 0o600)
	resume := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := transfer.UploadFile(ctx, sighttp.NewClient(m.URL(), token), "default", "ckpt/step-1.pt", src, &transfer.Options{
		PartSize: 5 << 20, Concurrency: 1, ResumeDir: resume,
		Progress: func(done, total int64) {
			if done > 11<<20 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: %v, want context.Canceled", err)
	}
	s := decodeSummary(t, c.must("cp", "--json", "--part-size", "5242880", "--resume-dir", resume, src, "signet://default/ckpt/step-1.pt"))
	if len(s.Files) != 1 || s.Files[0].ResumedParts < 2 || s.Files[0].Parts != 5 {
		t.Errorf("cp summary %+v; want 5 parts, at least 2 resumed", s.Files)
	}
	out := filepath.Join(t.TempDir(), "back.pt")
	c.must("cp", "signet://default/ckpt/step-1.pt", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("the resumed object differs from the file")
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := &progressBar{w: &buf, desc: "model.bin"}
	p.update(0, -1) // size unknown: no bar yet
	if buf.Len() != 0 {
		t.Errorf("bar drawn before the size is known: %q", buf.String())
	}
	p.update(4<<20, 10<<20) // a resumed upload: 4 MiB were stored
	p.update(7<<20, 10<<20)
	p.update(10<<20, 10<<20)
	p.finish(true)
	out := buf.String()
	for _, want := range []string{"model.bin (4.0 MiB already stored)", "100%", "6.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output %q lacks %q", out, want)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("bar output %q does not end its line", out)
	}
}

func TestUserCacheDir(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" || runtime.GOOS == "plan9" {
		t.Skip("XDG layout only")
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"}, "/x/cache"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache"},
		{map[string]string{"XDG_CACHE_HOME": "relative"}, ""},
		{nil, ""},
	} {
		if got := userCacheDir(env(tc.env)); got != tc.want {
			t.Errorf("userCacheDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
