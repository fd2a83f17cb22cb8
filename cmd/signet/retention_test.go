package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/sqlite"
)

// listAudit runs `signet audit list --all --json args` and decodes it.
func listAudit(t *testing.T, c cli, args ...string) []*signet.AuditEvent {
	t.Helper()
	out := c.must(append([]string{"audit", "list", "--all", "--limit", "1000", "--json"}, args...)...)
	var evs []*signet.AuditEvent
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("audit list output %q: %v", out, err)
	}
	return evs
}

// TestAuditRetention runs a server whose clock starts ten days back, so
// that its first entries are old, then: the audit list and export filters
// through the CLI; `signet audit prune` on a copy of the database;
// verification of the pruned log with and without the checkpoint it was
// pruned at, and tampering with it; and serve's own retention.
func TestAuditRetention(t *testing.T) {
	var offset atomic.Int64
	offset.Store(int64(-10 * 24 * time.Hour))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AuditCheckpointInterval = time.Hour
	m := &Main{Config: cfg, Dev: true, Now: clock}
	token := mustRun(t, m)
	admin := cli{tb: t, addr: m.URL(), token: token}
	offline := cli{tb: t}
	dbPath := filepath.Join(cfg.DataDir, "signet.db")
	keyFile := filepath.Join(cfg.DataDir, defaultCheckpointKeyFile)
	cpDir := filepath.Join(cfg.DataDir, defaultCheckpointDir)

	for i := range 5 {
		admin.must("team", "create", fmt.Sprintf("old-%d", i))
	}
	admin.run("presign", "get", "default", "data/old.csv") // allowed
	// A checkpoint of the old entries.
	r := offline.run("audit", "checkpoint", "--db", dbPath, "--key", keyFile, "--dir", cpDir)
	if r.code != 0 {
		t.Fatalf("audit checkpoint: %s", r.stderr)
	}
	var boundary int64
	fmt.Sscanf(r.stdout[strings.Index(r.stdout, ": entry ")+len(": entry "):], "%d", &boundary)
	if boundary < 7 {
		t.Fatalf("checkpoint at entry %d (%s)", boundary, r.stdout)
	}
	offset.Store(0) // now
	for i := range 3 {
		admin.must("team", "create", fmt.Sprintf("new-%d", i))
	}
	admin.run("presign", "get", "default", "data/new.csv")
	admin.run("presign", "get", "nosuchteam", "data/x")

	// Filters, through the CLI.
	if evs := listAudit(t, admin, "--action", "team.create", "--since", "24h"); len(evs) != 3 ||
		evs[0].Target != "new-0" && evs[0].Team != "new-0" {
		t.Errorf("team.create since 24h: %d events, first %+v; want the 3 new teams", len(evs), evs[0])
	}
	if evs := listAudit(t, admin, "--action", "team.create", "--until", "5d"); len(evs) != 5 {
		t.Errorf("team.create until 5 days ago: %d events, want the 5 old ones", len(evs))
	}
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if evs := listAudit(t, admin, "--prefix", "data/", "--since", since); len(evs) != 1 || evs[0].ObjectKey != "data/new.csv" {
		t.Errorf("prefix data/ since %s: %d events, want data/new.csv", since, len(evs))
	}
	if evs := listAudit(t, admin, "--prefix", "data/"); len(evs) != 2 {
		t.Errorf("prefix data/: %d events, want 2", len(evs))
	}
	if evs := listAudit(t, admin, "--outcome", "denied", "--since", "1h"); len(evs) != 1 || evs[0].Team != "nosuchteam" {
		t.Errorf("denied in the last hour: %d events, want the presign for nosuchteam", len(evs))
	}
	export := admin.must("audit", "export", "--since", "24h", "--action", "presign.download")
	if n := strings.Count(export, "\n"); n != 2 || !strings.Contains(export, `"object_key":"data/new.csv"`) {
		t.Errorf("export since 24h of presign.download: %d lines: %s", n, export)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--until", "-3h"}, {"--since", "5x"}} {
		if r := admin.run(append([]string{"audit", "list"}, bad...)...); r.code != 2 {
			t.Errorf("audit list %v: exit %d, %s; want a usage error", bad, r.code, r.stderr)
		}
	}
	if r := admin.run("audit", "list", "--outcome", "maybe"); r.code != 1 || !strings.Contains(r.stderr, "outcome must be") {
		t.Errorf("audit list --outcome maybe: exit %d, %s", r.code, r.stderr)
	}

	// signet audit prune, on a copy of the database.
	dir := t.TempDir()
	pruned := filepath.Join(dir, "pruned.db")
	copyDB(t, dbPath, pruned)
	pub := offline.must("audit", "pubkey", "--key", keyFile)
	pubFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubFile, []byte(pub), 0o644)
	r = offline.run("audit", "prune", "--db", pruned, "--older-than", "5d", "--data-dir", cfg.DataDir)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pruned entries 1 to %d at checkpoint", boundary)) {
		t.Fatalf("audit prune: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	r = offline.run("audit", "prune", "--db", pruned, "--older-than", "5d", "--data-dir", cfg.DataDir)
	if r.code != 0 || !strings.Contains(r.stderr, "nothing pruned: no entry is older") {
		t.Errorf("audit prune again: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	cp := []string{"--checkpoint", cpDir, "--pubkey", pubFile}
	r = wantVerify(t, offline, 0, "", append([]string{"--db", pruned}, cp...)...)
	if !strings.Contains(r.stdout, fmt.Sprintf("entries up to %d were pruned", boundary)) {
		t.Errorf("verify of the pruned copy printed %q", r.stdout)
	}
	wantVerify(t, offline, 1, "entry 1: unanchored start", "--db", pruned)
	// Tampering with what is left is still found.
	first := boundary + 1
	tamper := func(name, fault string, stmts ...string) {
		t.Run("Pruned/"+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.db")
			copyDB(t, pruned, p)
			sqlOn(t, p, stmts...)
			wantVerify(t, offline, 1, fault, append([]string{"--db", p}, cp...)...)
		})
	}
	tamper("Edit", fmt.Sprintf("entry %d: hash mismatch", first+2),
		fmt.Sprintf("UPDATE audit_events SET reason = 'x' WHERE id = %d", first+2))
	tamper("Delete", fmt.Sprintf("entry %d: gap", first+2),
		fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", first+2))
	tamper("DeleteFirst", "unanchored start",
		fmt.Sprintf("DELETE FROM audit_events WHERE id = %d", first))
	t.Run("Pruned/PruneRecordRewritten", func(t *testing.T) {
		// The prune entry rewritten into another, and the chain after it
		// recomputed: the latest checkpoint is older, so only the missing
		// record of the prune tells.
		p := filepath.Join(t.TempDir(), "t.db")
		copyDB(t, pruned, p)
		ro, err := sqlite.OpenReadOnly(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		var evs []*signet.AuditEvent
		err = ro.View(t.Context(), func(tx signet.Tx) (err error) {
			evs, err = tx.Audit(signet.AuditFilter{Limit: 1000})
			return err
		})
		ro.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Action == signet.ActionAuditPrune {
				e.Action, e.Target = signet.ActionTeamCreate, "x"
			}
		}
		last := auditlog.Chain(evs[0].PrevHash, evs...)
		var stmts []string
		for _, e := range evs {
			stmts = append(stmts, fmt.Sprintf("UPDATE audit_events SET action = '%s', target = '%s', prev_hash = x'%s', hash = x'%s' WHERE id = %d",
				e.Action, e.Target, e.PrevHash, e.Hash, e.ID))
		}
		sqlOn(t, p, append(stmts, fmt.Sprintf("UPDATE audit_head SET hash = x'%s'", last))...)
		wantVerify(t, offline, 1, fmt.Sprintf("entry %d: unanchored start", first), append([]string{"--db", p}, cp...)...)
	})
	tamper("Reorder", fmt.Sprintf("entry %d: hash mismatch", first+1),
		fmt.Sprintf("UPDATE audit_events SET id = -1 WHERE id = %d", first+1),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = %d", first+1, first+2),
		fmt.Sprintf("UPDATE audit_events SET id = %d WHERE id = -1", first+2))
	tamper("DeleteMore", "unanchored start",
		fmt.Sprintf("DELETE FROM audit_events WHERE id <= %d", first+1))

	// serve prunes by itself with audit_retention, and audits it.
	m.Close()
	var logs syncbuf.Buffer
	cfg.AuditRetention = Age(5 * 24 * time.Hour)
	m2 := &Main{Config: cfg, Dev: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Close() })
	admin.addr = m2.URL()
	deadline := time.Now().Add(30 * time.Second)
	var prunes []*signet.AuditEvent
	for time.Now().Before(deadline) {
		if prunes = listAudit(t, admin, "--action", "audit.prune"); len(prunes) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(prunes) != 1 || prunes[0].Target != fmt.Sprintf("1-%d", boundary) || prunes[0].ActorUser != "signet" {
		t.Fatalf("prune entries %+v; want one, for 1-%d; log:\n%s", prunes, boundary, logs.String())
	}
	if !strings.Contains(logs.String(), "audit log pruned") {
		t.Errorf("serve did not log the prune:\n%s", logs.String())
	}
	all := listAudit(t, admin)
	if all[0].Seq != boundary+1 {
		t.Errorf("the served log starts at %d, want %d", all[0].Seq, boundary+1)
	}
	exportFile := filepath.Join(dir, "export.jsonl")
	os.WriteFile(exportFile, []byte(admin.must("audit", "export")), 0o644)
	wantVerify(t, offline, 0, "", append([]string{"--file", exportFile}, cp...)...)
	wantVerify(t, offline, 1, fmt.Sprintf("line 1: entry %d: unanchored start", boundary+1), "--file", exportFile)
	wantVerify(t, offline, 0, "", append([]string{"--db", dbPath}, cp...)...)
}

func TestConfigAuditRetention(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{"audit_retention: 30d\n", 30 * 24 * time.Hour, ""},
		{"audit_retention: 720h\n", 720 * time.Hour, ""},
		{"audit_retention: 0\n", 0, ""},
		{"addr: x\n", 0, ""},
		{"audit_retention: -1h\n", 0, "negative"},
		{"audit_retention: a month\n", 0, "not a duration"},
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(c.yaml), 0o644)
		cfg := DefaultConfig()
		err := ReadConfigFile(p, &cfg)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error saying %q", c.yaml, err, c.err)
		case c.err == "" && time.Duration(cfg.AuditRetention) != c.want:
			t.Errorf("%q: audit_retention %v, want %v", c.yaml, time.Duration(cfg.AuditRetention), c.want)
		}
	}
}
