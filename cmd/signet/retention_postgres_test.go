package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/internal/testpeer"
)

// TestPostgresRetention: serve as the role `signet migrate --app-role`
// sets up, with audit_retention: it cannot delete from the log, says so
// in its log and goes on serving; `signet audit prune` run as the owner
// prunes, and the log verifies from the checkpoint it was pruned at.
func TestPostgresRetention(t *testing.T) {
	owner := testpeer.PostgresURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	role := "signet_app_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), testpeer.PostgresURL(t))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})
	offline := cli{tb: t}
	if r := offline.run("migrate", "--db", owner, "--app-role", role); r.code != 0 {
		t.Fatalf("migrate --app-role: %s", r.stderr)
	}
	p, _ := url.Parse(owner)
	p.User = url.User(role)
	appURL := p.String()

	var offset atomic.Int64
	offset.Store(int64(-10 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.DB = "127.0.0.1:0", t.TempDir(), appURL
	cfg.AuditCheckpointInterval = time.Hour
	m := &Main{Config: cfg, Dev: true, Now: clock}
	token := mustRun(t, m)
	admin := cli{tb: t, addr: m.URL(), token: token}
	for i := range 4 {
		admin.must("team", "create", fmt.Sprintf("old-%d", i))
	}
	keyFile := filepath.Join(cfg.DataDir, defaultCheckpointKeyFile)
	cpDir := filepath.Join(cfg.DataDir, defaultCheckpointDir)
	r := offline.run("audit", "checkpoint", "--db", owner, "--key", keyFile, "--dir", cpDir)
	if r.code != 0 {
		t.Fatalf("audit checkpoint: %s", r.stderr)
	}
	var boundary int64
	fmt.Sscanf(r.stdout[strings.Index(r.stdout, ": entry ")+len(": entry "):], "%d", &boundary)
	offset.Store(0)
	admin.must("team", "create", "new-0")
	m.Close()

	// serve with retention, as the application role.
	var logs syncbuf.Buffer
	cfg.AuditRetention = Age(5 * 24 * time.Hour)
	m2 := &Main{Config: cfg, Dev: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(logs.String(), "audit retention stopped") {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "signet audit prune --db URL") || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("serve as the application role did not say how to prune:\n%s", logs.String())
	}
	admin.addr = m2.URL()
	admin.must("team", "create", "new-1") // still serving
	if evs := listAudit(t, admin, "--action", "audit.prune"); len(evs) != 0 {
		t.Fatalf("pruned as the application role: %+v", evs)
	}

	// The owner prunes, with serve's config file and the owner's URL.
	if r := offline.run("audit", "prune", "--db", owner); r.code != 2 {
		t.Errorf("audit prune without an age: exit %d, %s; want a usage error", r.code, r.stderr)
	}
	confFile := filepath.Join(t.TempDir(), "signet.yaml")
	os.WriteFile(confFile, []byte(fmt.Sprintf("data_dir: %s\ndb: %s\naudit_retention: 5d\n", cfg.DataDir, appURL)), 0o600)
	r = offline.run("audit", "prune", "--config", confFile, "--db", owner)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pruned entries 1 to %d", boundary)) {
		t.Fatalf("audit prune as the owner: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if evs := listAudit(t, admin, "--action", "audit.prune"); len(evs) != 1 || evs[0].Target != fmt.Sprintf("1-%d", boundary) {
		t.Errorf("prune entries %+v, want one for 1-%d", evs, boundary)
	}
	pub := offline.must("audit", "pubkey", "--key", keyFile)
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	os.WriteFile(pubFile, []byte(pub), 0o644)
	wantVerify(t, offline, 0, "", "--db", appURL, "--checkpoint", cpDir, "--pubkey", pubFile)
	wantVerify(t, offline, 1, "unanchored start", "--db", appURL)
}
