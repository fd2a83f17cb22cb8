package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/postgres"
)

// TestConfigDBPostgres: a postgres:// URL as the config file's db is the
// database serve and migrate use, not a SQLite path.
func TestConfigDBPostgres(t *testing.T) {
	writeConfig := func(body string) string {
		p := filepath.Join(t.TempDir(), "signet.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// serve opens (and, empty, migrates) the configured database before
	// it listens; a busy address then stops it before it serves forever.
	url := testpeer.PostgresURL(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	conf := writeConfig(fmt.Sprintf("addr: %s\ndata_dir: %s\ndb: %q\n", busy.Addr(), dir, url))
	r := cli{tb: t}.run("serve", "--config", conf)
	if r.code == 0 || !strings.Contains(r.stderr, "listening on") {
		t.Fatalf("serve: exit %d, stderr %q; want it to fail at listening, past opening the database", r.code, r.stderr)
	}
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("the database in the config file was not migrated by serve: %v", err)
	}
	db.Close()
	if _, err := os.Stat(filepath.Join(dir, "signet.db")); err == nil {
		t.Error("serve created a SQLite database in the data directory")
	}

	// migrate --config migrates the configured database.
	url2 := testpeer.PostgresURL(t)
	r = cli{tb: t}.run("migrate", "--config", writeConfig(fmt.Sprintf("db: %q\n", url2)))
	want := fmt.Sprintf("schema migrated from version 0 to %d", postgres.LatestSchemaVersion())
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("migrate --config: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
}
