package fileblob_test

import (
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet/storage/driver"
	"github.com/signetdev/signet/storage/fileblob"
	"github.com/signetdev/signet/storage/storagetest"
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
	var secrets []string
	for _, k := range keys {
		secrets = append(secrets, string(k.Secret), hex.EncodeToString(k.Secret))
	}
	return storagetest.Diagnose(t, s, dopts, secrets...)
}

// TestDiagnose checks a local store set up as signet sets it up, then
// breaks each thing the checks look at.
func TestDiagnose(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}
	team := &driver.DiagnoseOptions{Team: "ml", Networks: nets}

	t.Run("Passing", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{ListenAddr: "127.0.0.1:8080"}, nil, team)
		storagetest.WantCheck(t, checks, "directory", driver.CheckOK, "writable")
		storagetest.WantCheck(t, checks, "keys", driver.CheckOK, "1 signing key(s) loaded")
		storagetest.WantCheck(t, checks, "url", driver.CheckOK, "this machine only")
		storagetest.WantCheck(t, checks, "network", driver.CheckOK, "10.1.0.0/16")
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
		storagetest.WantCheck(t, checks, "network", driver.CheckSkip, "no network allow-list")
		storagetest.WantCheck(t, checks, "url", driver.CheckOK, "this machine only")
	})

	t.Run("DirectoryGone", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(dir, _ string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, team)
		storagetest.WantCheck(t, checks, "directory", driver.CheckFail, "gone")
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
		storagetest.WantCheck(t, checks, "directory", driver.CheckFail, "cannot write")
	})

	t.Run("OldKey", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(_, keyFile string) {
			old := time.Now().Add(-100 * 24 * time.Hour)
			if err := os.Chtimes(keyFile, old, old); err != nil {
				t.Fatal(err)
			}
		}, team)
		storagetest.WantCheck(t, checks, "keys", driver.CheckWarn, "100 days ago (over 90 days)")
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
		storagetest.WantCheck(t, checks, "keys", driver.CheckWarn, "mode 0644")
	})

	t.Run("KeyFileGone", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{}, func(_, keyFile string) {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, team)
		storagetest.WantCheck(t, checks, "keys", driver.CheckWarn, "cannot be read")
	})

	t.Run("LoopbackURLPublicListener", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://localhost:8080", ListenAddr: "[::]:8080"}, nil, team)
		storagetest.WantCheck(t, checks, "url", driver.CheckWarn, "signet listens on [::]:8080")
		if f := checks["url"].Fix; !strings.Contains(f, "public_url") {
			t.Errorf("url fix %q", f)
		}
	})

	t.Run("UnspecifiedURL", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://0.0.0.0:8080"}, nil, team)
		storagetest.WantCheck(t, checks, "url", driver.CheckWarn, "unspecified address")
	})

	t.Run("PlainHTTP", func(t *testing.T) {
		checks := diagnoseStore(t, fileblob.Options{BaseURL: "http://signet.example.com"}, nil, team)
		storagetest.WantCheck(t, checks, "url", driver.CheckWarn, "plain http")
		checks = diagnoseStore(t, fileblob.Options{BaseURL: "https://signet.example.com", ListenAddr: "10.0.0.5:443"}, nil, team)
		storagetest.WantCheck(t, checks, "url", driver.CheckOK, "https://signet.example.com")
	})
}
