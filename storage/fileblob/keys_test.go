package fileblob_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet/storage/fileblob"
)

func TestLoadOrCreateKeys(t *testing.T) {
	t.Run("OKCreate", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sub", "keys")
		keys, err := fileblob.LoadOrCreateKeys(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || len(keys[0].Secret) != 32 || len(keys[0].ID) != 8 {
			t.Fatalf("keys %v", keys)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, %v; want 0600", fi.Mode(), err)
		}
		again, err := fileblob.LoadOrCreateKeys(path)
		if err != nil || len(again) != 1 || again[0].ID != keys[0].ID || string(again[0].Secret) != string(keys[0].Secret) {
			t.Errorf("second load gave other keys: %v, %v", again, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Errorf("%d files next to the key file, want none", len(entries)-1)
		}
	})
	t.Run("OKConcurrentCreate", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		var wg sync.WaitGroup
		got := make([][]fileblob.Key, 8)
		errs := make([]error, 8)
		for i := range got {
			wg.Go(func() { got[i], errs[i] = fileblob.LoadOrCreateKeys(path) })
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || len(got[i]) != 1 || got[i][0].ID != got[0][0].ID || string(got[i][0].Secret) != string(got[0][0].Secret) {
				t.Errorf("caller %d got %v, %v", i, got[i], errs[i])
			}
		}
	})
	t.Run("OKRotated", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		content := "# comment\n\nnew " + strings.Repeat("ab", 32) + "\n  old " + strings.Repeat("cd", 16) + "  \n"
		os.WriteFile(path, []byte(content), 0o600)
		keys, err := fileblob.LoadOrCreateKeys(path)
		if err != nil || len(keys) != 2 || keys[0].ID != "new" || keys[1].ID != "old" || len(keys[1].Secret) != 16 {
			t.Errorf("keys %v, %v", keys, err)
		}
	})
	const secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	for name, content := range map[string]string{
		"Empty":       "# nothing\n",
		"OneField":    "k1\n",
		"ThreeFields": "k1 " + secret + " extra\n",
		"BadHex":      "k1 " + secret[:63] + "g\n",
		"ShortSecret": "k1 00112233\n",
		"BadID":       "k/1 " + secret + "\n",
		"RepeatedID":  "k1 " + secret + "\nk1 " + secret + "\n",
	} {
		t.Run("Err"+name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			os.WriteFile(path, []byte(content), 0o600)
			_, err := fileblob.LoadOrCreateKeys(path)
			if err == nil {
				t.Fatal("malformed key file accepted")
			}
			if strings.Contains(err.Error(), secret[:32]) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
}

func TestOpenRemovesStaleTmp(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o700)
	old, fresh := filepath.Join(tmp, "old"), filepath.Join(tmp, "fresh")
	os.WriteFile(old, []byte("x"), 0o600)
	os.WriteFile(fresh, []byte("x"), 0o600)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	mustOpenAt(t, dir, fileblob.Options{})
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale temporary file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file removed: %v", err)
	}
}
