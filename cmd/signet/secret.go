package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

// secretKey is the key that seals stored credentials, and where it came
// from (for messages; never the key itself).
type secretKey struct {
	key    []byte
	source string
}

// loadSecretKey returns the key that seals stored credentials. It comes
// from SIGNET_SECRET_KEY (64 hex characters) when set, else from the key
// file, which is created with a new random key (mode 0600) if it does not
// exist.
func loadSecretKey(cfg Config, getenv func(string) string) (secretKey, error) {
	if v := strings.TrimSpace(getenv("SIGNET_SECRET_KEY")); v != "" {
		key, err := hex.DecodeString(v)
		if err != nil || len(key) != 32 {
			return secretKey{}, errors.New("SIGNET_SECRET_KEY must be 64 hexadecimal characters (32 bytes)")
		}
		return secretKey{key, "SIGNET_SECRET_KEY"}, nil
	}
	path := cfg.SecretKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "secret.key")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		// Create, not WriteFile: of servers starting together on one data
		// directory, exactly one writes its key and the others read it.
		err = atomicfile.Create(path, []byte(hex.EncodeToString(key)+"\n"), 0o600)
		switch {
		case err == nil:
			return secretKey{key, "the secret key file " + path + " (created now)"}, nil
		case errors.Is(err, fs.ErrExist):
			b, err = os.ReadFile(path)
		default:
			return secretKey{}, fmt.Errorf("creating secret key file: %w", err)
		}
	}
	if err != nil {
		return secretKey{}, fmt.Errorf("reading secret key file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return secretKey{}, fmt.Errorf("secret key file %s must hold 64 hexadecimal characters (32 bytes)", path)
	}
	return secretKey{key, "the secret key file " + path}, nil
}

// secretKeyCheckSetting is the instance setting that holds the secret
// key's check value.
const secretKeyCheckSetting = "secret_key_check"

// check returns the value the database keeps to recognise the key:
// HMAC-SHA256 under the key of a fixed string, first 16 bytes, in hex. It
// tells whether two replicas hold the same key and reveals nothing of it.
func (k secretKey) check() string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("signet secret key check"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// checkSecretKey refuses a key that is not the one the database's other
// replicas use. Replicas share the database but each has its own data
// directory: one started without SIGNET_SECRET_KEY or a shared
// secret_key_file creates its own <data-dir>/secret.key, and credentials
// sealed by one replica would then not open on another. Bootstrap stores
// the check value in the same transaction as the instance; a database
// bootstrapped before there was one gets it here, at its next start.
//
// Replicas that start at the same moment on such an older database add
// the value with AddSetting: exactly one writes it, and the others compare
// their keys with it.
func checkSecretKey(ctx context.Context, store signet.Store, k secretKey) error {
	want := k.check()
	var stored string
	err := store.Update(ctx, func(tx signet.Tx) error {
		v, err := tx.Setting(secretKeyCheckSetting)
		switch signet.ErrorCode(err) {
		case "":
			stored = v
			return nil
		case signet.NotFound:
			// AddSetting, not SetSetting: of replicas starting together
			// on a database without a check value, exactly one writes it
			// and the others compare against it.
			stored = want
			return tx.AddSetting(secretKeyCheckSetting, want)
		default:
			return err
		}
	})
	if signet.ErrorCode(err) == signet.Conflict {
		err = store.View(ctx, func(tx signet.Tx) (err error) {
			stored, err = tx.Setting(secretKeyCheckSetting)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("checking the secret key against the database: %w", err)
	}
	if !hmac.Equal([]byte(stored), []byte(want)) {
		return fmt.Errorf("the secret key from %s is not the one this database's stored credentials are sealed with: "+
			"every replica must use the same key; set SIGNET_SECRET_KEY or secret_key_file to the key of the replicas "+
			"already running (or of the first start)", k.source)
	}
	return nil
}
