package main

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/internal/testpeer"
)

// startWithKey runs a server on db with its own data directory dir and,
// when key is not empty, SIGNET_SECRET_KEY=key; without it the server
// uses (or creates) dir/secret.key. It returns the server, or the error
// Run returned.
func startWithKey(t *testing.T, db, dir, key string) (*Main, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.DB = "127.0.0.1:0", dir, db
	m := &Main{Config: cfg, Dev: true, Getenv: func(name string) string {
		if name == "SIGNET_SECRET_KEY" {
			return key
		}
		return ""
	}}
	if err := m.Run(context.Background()); err != nil {
		return nil, err
	}
	t.Cleanup(func() { m.Close() })
	return m, nil
}

// keyOf returns the key in dir/secret.key.
func keyOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// refusedForKey fails the test unless err is the refusal of a key that
// does not match the database's, naming where the key came from and
// holding none of the keys.
func refusedForKey(t *testing.T, err error, source string, keys ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("a replica with another secret key started; want it refused")
	}
	msg := err.Error()
	if !strings.Contains(msg, "is not the one this database's stored credentials are sealed with") || !strings.Contains(msg, source) {
		t.Errorf("refusal = %q, want it to say the key from %s does not match", msg, source)
	}
	for _, k := range keys {
		if strings.Contains(msg, k) {
			t.Errorf("refusal holds a secret key: %q", msg)
		}
	}
}

// TestSecretKeyCheckPostgres starts replicas on one PostgreSQL database
// with separate data directories. One without SIGNET_SECRET_KEY creates
// its own key file, whose key cannot open what the first replica sealed:
// it must refuse to start. One given the first replica's key starts.
func TestSecretKeyCheckPostgres(t *testing.T) {
	url := testpeer.PostgresURL(t)
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	a, err := startWithKey(t, url, dirA, "")
	if err != nil {
		t.Fatal(err)
	}
	keyA := keyOf(t, dirA)

	_, err = startWithKey(t, url, dirB, "")
	refusedForKey(t, err, filepath.Join(dirB, "secret.key"), keyA, keyOf(t, dirB))

	c, err := startWithKey(t, url, dirC, keyA)
	if err != nil {
		t.Fatalf("a replica with the first replica's key (SIGNET_SECRET_KEY) was refused: %v", err)
	}
	// Both serve the one instance.
	token, err := os.ReadFile(filepath.Join(dirA, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	cli{tb: t, addr: c.URL(), token: strings.TrimSpace(string(token))}.must("whoami")
	a.Close()
	c.Close()

	// A database bootstrapped before the check value existed gets one at
	// its next start, from the key that start holds; from then on other
	// keys are refused.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DELETE FROM settings WHERE name = $1", secretKeyCheckSetting); err != nil {
		t.Fatal(err)
	}
	if _, err := startWithKey(t, url, dirB, ""); err != nil {
		t.Fatalf("start on a database without a check value: %v", err)
	}
	var check string
	if err := conn.QueryRow(context.Background(), "SELECT value FROM settings WHERE name = $1", secretKeyCheckSetting).Scan(&check); err != nil {
		t.Fatalf("no check value written at the start: %v", err)
	}
	if check == keyOf(t, dirB) || len(check) != 32 {
		t.Errorf("check value %q: want 16 bytes of HMAC in hex, not the key", check)
	}
	_, err = startWithKey(t, url, dirA, "")
	refusedForKey(t, err, filepath.Join(dirA, "secret.key"), keyA)
}

// TestSecretKeyCheckSQLite: the embedded store keeps the check value too,
// so a changed secret key file (a lost key replaced by a new one) is
// refused at start instead of failing every credential later.
func TestSecretKeyCheckSQLite(t *testing.T) {
	dir := t.TempDir()
	m, err := startWithKey(t, "", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	key := keyOf(t, dir)
	other := make([]byte, 32)
	other[0] = 1
	if err := os.WriteFile(filepath.Join(dir, "secret.key"), []byte(hex.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = startWithKey(t, "", dir, "")
	refusedForKey(t, err, filepath.Join(dir, "secret.key"), key, hex.EncodeToString(other))
	_, err = startWithKey(t, "", dir, hex.EncodeToString(other))
	refusedForKey(t, err, "SIGNET_SECRET_KEY", key, hex.EncodeToString(other))
	if _, err := startWithKey(t, "", dir, key); err != nil {
		t.Fatalf("the original key, from SIGNET_SECRET_KEY: %v", err)
	}
}

// TestSecretKeyFileConcurrentCreate: servers starting together on one data
// directory without SIGNET_SECRET_KEY all end up with the one key in
// dir/secret.key. (Each used to write its own key over the others', and
// all but the last then held a key on no disk, which the database check
// refused.)
func TestSecretKeyFileConcurrentCreate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	const n = 16
	keys := make([]secretKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = loadSecretKey(cfg, func(string) string { return "" }) })
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for i, k := range keys {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if hex.EncodeToString(k.key) != strings.TrimSpace(string(b)) {
			t.Errorf("start %d holds a key other than the file's", i)
		}
		if strings.HasSuffix(k.source, "(created now)") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d starts say they created the key file, want 1", created)
	}
}
