package fileblob

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/signetdev/signet/internal/atomicfile"
)

// LoadOrCreateKeys returns the signing keys kept in the file at path,
// creating the file with one new key when it does not exist.
//
// The file holds one key per line, "<id> <secret in hex>", the first being
// the active (signing) key; blank lines and lines starting with "#" are
// ignored. To rotate, add a new line at the top and restart; remove the old
// line once the URLs it signed have expired (at most 7 days). A new file is
// written to a temporary file with mode 0600, made durable, and linked into
// place, so it appears complete or not at all, and a concurrent creator
// never overwrites it. A new key has a 32-byte random secret and an id of 8
// random hex digits. Errors never contain a secret.
func LoadOrCreateKeys(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("fileblob: reading key file: %w", err)
	}
	return parseKeys(path, data)
}

func parseKeys(path string, data []byte) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 || !validKeyID(f[0]) || seen[f[0]] {
			return nil, fmt.Errorf("fileblob: key file %s, line %d: want a unique \"<id> <hex secret>\" with an id of [A-Za-z0-9._~-]", path, line)
		}
		secret, err := hex.DecodeString(f[1])
		if err != nil || len(secret) < 16 {
			return nil, fmt.Errorf("fileblob: key file %s, line %d: the secret must be at least 16 bytes in hex", path, line)
		}
		seen[f[0]] = true
		keys = append(keys, Key{ID: f[0], Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fileblob: key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("fileblob: key file %s holds no key", path)
	}
	return keys, nil
}

// createKeyFile writes a key file with one new key, unless one exists.
func createKeyFile(path string) error {
	id := make([]byte, 4)
	secret := make([]byte, 32)
	rand.Read(id)
	rand.Read(secret)
	content := fmt.Sprintf("# signet local store signing keys: \"<id> <hex secret>\", the first signs\n%s %s\n",
		hex.EncodeToString(id), hex.EncodeToString(secret))

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("fileblob: creating key file: %w", err)
	}
	err := atomicfile.Create(path, []byte(content), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // created concurrently: use that one
	}
	if err != nil {
		return fmt.Errorf("fileblob: creating key file: %w", err)
	}
	return nil
}
