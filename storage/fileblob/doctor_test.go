package fileblob_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
)

// diagnoseStore opens a store in a fresh directory with a fresh key file
// and returns its checks by name, after edit has changed the setup.
func diagnoseStore(t *testing.T, opts fileblob.Options, before func(dir, keyFile string), dopts *driver.DiagnoseOptions) map[string]driver.Check {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "local-store.keys")
	keys, err := fileblob.LoadOrCreateKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	opts.Keys, opts.KeyFile = keys, keyFile
	if opts.BaseURL == "" {
		opts.BaseURL = "http://127.0.0.1:8080"
	}
	s, err := fileblob.Open(filepath.Join(dir, "blobs"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if before != nil {
		before(filepath.Join(dir, "blobs"), keyFile)
	}
	checks, err := s.Diagnose(context.Background(), dopts)
	if err != nil {
		t.Fatalf("Diagnose: %v", err)
	}
	byName := map[string]driver.Check{}
	for _, c := range checks {
		if _, dup := byName[c.Name]; dup {
			t.Errorf("check %q reported twice", c.Name)
		}
		byName[c.Name] = c
		if (c.Status == driver.CheckFail || c.Status == driver.CheckWarn) && c.Fix == "" {
			t.Errorf("check %q: %s without a fix: %s", c.Name, c.Status, c.Detail)
		}
		for _, k := range keys {
			if strings.Contains(c.Detail+c.Fix, string(k.Secret)) || strings.Contains(c.Detail+c.Fix, hexOf(k.Secret)) {
				t.Errorf("check %q shows a key secret", c.Name)
			}
		}
	}
	return byName
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func wantCheck(t *testing.T, checks map[string]driver.Check, name, status, detail string) {
	t.Helper()
	c, ok := checks[name]
	switch {
	case !ok:
		t.Errorf("no %q check", name)
	case c.Status != status:
		t.Errorf("check %q: %s (%s), want %s", name, c.Status, c.Detail, status)
	case !strings.Contains(c.Detail, detail):
		t.Errorf("check %q detail %q lacks %q", name, c.Detail, detail)
	}
}

// TestDiagnose checks a local store set up as signet sets it up, then
// breaks each thing the checks look at.
func TestDiagnose(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	team := &driver.DiagnoseOptions{Team: "ml", Networks: nets}

	t.Run("Passing", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{ListenAddr: "127.0.0.1:8080"}, nil, team)
		wantCheck(t, checks, "directory", driver.CheckOK, "writable")
		wantCheck(t, checks, "keys", driver.CheckOK, "1 signing key(s) loaded")
		wantCheck(t, checks, "url", driver.CheckOK, "this machine only")
		wantCheck(t, checks, "network", driver.CheckOK, "10.1.0.0/16")
		// The free space is the machine's: either is right, but it is
		// measured.
		if c := checks["disk"]; c.Status != driver.CheckOK && c.Status != driver.CheckWarn || !strings.Contains(c.Detail, "free below") {
			t.Errorf("disk check %+v", c)
		}
		if len(checks) != 5 {
			t.Errorf("%d checks, want 5", len(checks))
		}
	})

	t.Run("NoAllowList", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, nil, nil)
		wantCheck(t, checks, "network", driver.CheckSkip, "no network allow-list")
		wantCheck(t, checks, "url", driver.CheckOK, "this machine only")
	})

	t.Run("DirectoryGone", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(dir, _ string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, team)
		wantCheck(t, checks, "directory", driver.CheckFail, "gone")
	})

	t.Run("DirectoryNotWritable", func(t *testing.T) {
		// A plain file where tmp/ was: the test file cannot be created,
		// whatever the user's privileges.
		checks := diagnoseStore(t, fileblob.Options{}, func(dir, _ string) {
			tmp := filepath.Join(dir, "tmp")
			if err := os.RemoveAll(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, team)
		wantCheck(t, checks, "directory", driver.CheckFail, "cannot write")
	})

	t.Run("OldKey", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(_, keyFile string) {
			old := time.Now().Add(-100 * 24 * time.Hour)
			if err := os.Chtimes(keyFile, old, old); err != nil {
				t.Fatal(err)
			}
		}, team)
		wantCheck(t, checks, "keys", driver.CheckWarn, "100 days ago (over 90 days)")
		if f := checks["keys"].Fix; !strings.Contains(f, "local-store.keys") || !strings.Contains(f, "restart signet") {
			t.Errorf("keys fix %q does not say how to rotate", f)
		}
	})

	t.Run("KeyFileReadable", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(_, keyFile string) {
			if err := os.Chmod(keyFile, 0o644); err != nil {
				t.Fatal(err)
			}
		}, team)
		wantCheck(t, checks, "keys", driver.CheckWarn, "mode 0644")
	})

	t.Run("KeyFileGone", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(_, keyFile string) {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, team)
		wantCheck(t, checks, "keys", driver.CheckWarn, "cannot be read")
	})

	t.Run("LoopbackURLPublicListener", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://localhost:8080", ListenAddr: "[::]:8080"}, nil, team)
		wantCheck(t, checks, "url", driver.CheckWarn, "signet listens on [::]:8080")
		if f := checks["url"].Fix; !strings.Contains(f, "public_url") {
			t.Errorf("url fix %q", f)
		}
	})

	t.Run("UnspecifiedURL", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://0.0.0.0:8080"}, nil, team)
		wantCheck(t, checks, "url", driver.CheckWarn, "unspecified address")
	})

	t.Run("PlainHTTP", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://signet.example.com"}, nil, team)
		wantCheck(t, checks, "url", driver.CheckWarn, "plain http")
		checks = diagnoseStore(t, fileblob.Options{BaseURL: "https://signet.example.com", ListenAddr: "10.0.0.5:443"}, nil, team)
		wantCheck(t, checks, "url", driver.CheckOK, "https://signet.example.com")
	})
}
