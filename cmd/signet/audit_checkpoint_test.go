package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/sqlite"
)

// TestAuditCheckpointPruned: signet audit checkpoint with a directory that
// lacks the checkpoint the log was pruned at (another replica's, or an
// empty one) writes nothing and says which file to copy in, not that the
// log was tampered with; with that file copied in, it signs.
func TestAuditCheckpointPruned(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "signet.db")
	appendAt := func(at time.Time, n int) {
		t.Helper()
		db, err := sqlite.Open(context.Background(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		evs := make([]*signet.AuditEvent, n)
		for i := range evs {
			evs[i] = &signet.AuditEvent{Time: at, Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Target: "t"}
		}
		if err := db.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
			t.Fatal(err)
		}
	}
	appendAt(time.Now().Add(-10*24*time.Hour), 6)
	offline := cli{tb: t}
	keyFile := filepath.Join(dir, "ck.key")
	pruner := filepath.Join(dir, "pruner")
	if out := offline.must("audit", "checkpoint", "--db", dbPath, "--key", keyFile, "--dir", pruner); !strings.Contains(out, ": entry 6,") {
		t.Fatalf("audit checkpoint printed %q; want entry 6", out)
	}
	appendAt(time.Now(), 2)
	offline.must("audit", "prune", "--db", dbPath, "--older-than", "5d", "--pubkey", keyFile, "--dir", pruner)

	replica := filepath.Join(dir, "replica")
	r := offline.run("audit", "checkpoint", "--db", dbPath, "--key", keyFile, "--dir", replica)
	if r.code != 1 || strings.Contains(r.stderr, "not intact") || !strings.Contains(r.stderr, "missing anchor") ||
		!strings.Contains(r.stderr, "checkpoint-00000000000000000006-*.json") || !strings.Contains(r.stderr, replica) {
		t.Errorf("audit checkpoint without the anchor: exit %d, stdout %q, stderr %q; want exit 1 naming the file to copy into %s",
			r.code, r.stdout, r.stderr, replica)
	}
	if entries, _ := os.ReadDir(replica); len(entries) != 0 {
		t.Errorf("%d files written without the anchor", len(entries))
	}

	anchors, _ := filepath.Glob(filepath.Join(pruner, "checkpoint-00000000000000000006-*.json"))
	if len(anchors) != 1 {
		t.Fatalf("anchors in %s: %v", pruner, anchors)
	}
	b, err := os.ReadFile(anchors[0])
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(replica, 0o755)
	if err := os.WriteFile(filepath.Join(replica, filepath.Base(anchors[0])), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Entries 7 and 8, and the prune's record, 9.
	if out := offline.must("audit", "checkpoint", "--db", dbPath, "--key", keyFile, "--dir", replica); !strings.Contains(out, ": entry 9,") {
		t.Errorf("audit checkpoint with the anchor copied in printed %q; want entry 9", out)
	}
	wantVerify(t, offline, 0, "", "--db", dbPath, "--checkpoint", replica, "--pubkey", keyFile)
}
