package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/atomicfile"
)

// loadSealer returns the sealer for stored credentials. The key comes from
// SIGNET_SECRET_KEY (64 hex characters) when set, else from the key file,
// which is created with a new random key (mode 0600) if it does not exist.
func loadSealer(cfg Config, getenv func(string) string) (*signet.Sealer, error) {
	if v := strings.TrimSpace(getenv("SIGNET_SECRET_KEY")); v != "" {
		key, err := hex.DecodeString(v)
		if err != nil || len(key) != 32 {
			return nil, errors.New("SIGNET_SECRET_KEY must be 64 hexadecimal characters (32 bytes)")
		}
		return signet.NewSealer(key)
	}
	path := cfg.SecretKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "secret.key")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := atomicfile.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("creating secret key file: %w", err)
		}
		return signet.NewSealer(key)
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret key file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secret key file %s must hold 64 hexadecimal characters (32 bytes)", path)
	}
	return signet.NewSealer(key)
}
