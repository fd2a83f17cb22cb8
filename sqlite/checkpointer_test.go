package sqlite_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/syncbuf"
	"github.com/signetdev/signet/sqlite"
	"github.com/signetdev/signet/storetest"
)

// These tests run auditlog's Checkpointer on a real SQLite store, changed
// behind its back with SQL.

var base = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// wantFault checks that err is a *VerifyError of kind at seq.
func wantFault(t *testing.T, err error, kind auditlog.Kind, seq int64) {
	t.Helper()
	var ve *auditlog.VerifyError
	if !errors.As(err, &ve) || ve.Kind != kind || ve.Seq != seq {
		t.Errorf("error = %v; want %s at entry %d", err, kind, seq)
	}
}

// openStore opens a SQLite store in a temporary directory.
func openStore(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signet.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func appendN(t *testing.T, s signet.Store, n int) {
	t.Helper()
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		evs[i] = &signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, ObjectKey: "k"}
	}
	if err := s.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Fatal(err)
	}
}

// rawExec changes the database behind the store's back, as an insider
// with access to the file would.
func rawExec(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	return len(entries)
}

func TestCheckpointer(t *testing.T) {
	db, path := openStore(t)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	key := mustKey(t)
	now := base
	c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir, Now: func() time.Time { return now }}
	ctx := context.Background()

	// Empty log.
	cp, _, err := c.Checkpoint(ctx)
	if err != nil || cp.Seq != 0 {
		t.Fatalf("checkpoint of an empty log = %+v, %v", cp, err)
	}
	appendN(t, db, 5)
	now = now.Add(time.Minute)
	cp, p, err := c.Checkpoint(ctx)
	if err != nil || cp.Seq != 5 {
		t.Fatalf("checkpoint = %+v, %v; want seq 5", cp, err)
	}
	if back, err := auditlog.ReadCheckpoint(p); err != nil || back.Verify(key.Public().(ed25519.PublicKey)) != nil {
		t.Errorf("written checkpoint does not verify: %v", err)
	}
	// Idle: a new checkpoint of the same head.
	now = now.Add(time.Minute)
	if cp2, _, err := c.Checkpoint(ctx); err != nil || cp2.Seq != 5 || cp2.Hash != cp.Hash || !cp2.Time.After(cp.Time) {
		t.Errorf("idle checkpoint = %+v, %v", cp2, err)
	}
	appendN(t, db, 3)
	now = now.Add(time.Minute)
	if cp, _, err = c.Checkpoint(ctx); err != nil || cp.Seq != 8 {
		t.Fatalf("checkpoint = %+v, %v; want seq 8", cp, err)
	}
	files := countFiles(t, dir)

	// Entries appended since the last checkpoint are verified before
	// the next one is signed.
	appendN(t, db, 3)
	rawExec(t, path, "UPDATE audit_events SET object_key = 'other' WHERE id = 10")
	_, _, err = c.Checkpoint(ctx)
	wantFault(t, err, auditlog.HashMismatch, 10)
	if n := countFiles(t, dir); n != files {
		t.Errorf("%d files after a failed check, want %d: a checkpoint was written", n, files)
	}
	rawExec(t, path, "UPDATE audit_events SET object_key = 'k' WHERE id = 10")
	// A restarted checkpointer picks up from the directory and checks the
	// entry of the last checkpoint.
	rawExec(t, path, "UPDATE audit_events SET object_key = 'other' WHERE id = 8")
	c2 := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
	_, _, err = c2.Checkpoint(ctx)
	wantFault(t, err, auditlog.HashMismatch, 8)
	rawExec(t, path, "UPDATE audit_events SET object_key = 'k' WHERE id = 8")
	if cp, _, err := c2.Checkpoint(ctx); err != nil || cp.Seq != 11 {
		t.Errorf("checkpoint after the damage was undone = %+v, %v; want seq 11", cp, err)
	}
	// Entries cut from the tail, head and all.
	rawExec(t, path, "DELETE FROM audit_events WHERE id > 9")
	rawExec(t, path, "UPDATE audit_head SET last_id = 9, hash = (SELECT hash FROM audit_events WHERE id = 9)")
	_, _, err = c2.Checkpoint(ctx)
	wantFault(t, err, auditlog.Truncated, 11)
}

// TestCheckpointerRestoredBackup: a database restored from a copy older
// than the last checkpoint is refused, even once it has grown past it.
func TestCheckpointerRestoredBackup(t *testing.T) {
	ctx := context.Background()
	db, path := openStore(t)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	key := mustKey(t)
	appendN(t, db, 4)
	backup := filepath.Join(t.TempDir(), "backup.db")
	copyDB(t, path, backup)
	appendN(t, db, 4)
	c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
	if _, _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	old, err := sqlite.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	c = &auditlog.Checkpointer{Store: old, Key: key, Dir: dir}
	_, _, err = c.Checkpoint(ctx)
	wantFault(t, err, auditlog.Truncated, 8)
	appendN(t, old, 6) // written on after the restore: as long as before, and more
	_, _, err = c.Checkpoint(ctx)
	wantFault(t, err, auditlog.CheckpointMismatch, 8)
}

// copyDB takes a backup of the database as it stands (VACUUM INTO, one
// consistent snapshot): copying the file, even after a checkpoint, races
// the store's background checkpoints (walcheckpoint.go).
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	rawExec(t, from, "VACUUM INTO ?", to)
}

func TestRunCheckpointer(t *testing.T) {
	db, _ := openStore(t)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	appendN(t, db, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- auditlog.RunCheckpointer(ctx, db, mustKey(t), dir, 10*time.Millisecond,
			slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for countFiles(t, dir) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunCheckpointer = %v, want nil after cancel", err)
	}
	if n := countFiles(t, dir); n < 3 {
		t.Errorf("%d checkpoints written while idle, want at least 3", n)
	}
	if strings.Contains(logs.String(), "PRIVATE") {
		t.Errorf("the log shows the key: %s", logs.String())
	}
	if err := auditlog.RunCheckpointer(context.Background(), db, nil, dir, time.Second, nil); err == nil {
		t.Errorf("RunCheckpointer without a key succeeded")
	}
}

// BenchmarkVerify verifies a SQLite log of storetest.AuditBenchEntries
// entries, opened read-only, as `signet audit verify --db FILE` does.
func BenchmarkVerify(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	path := filepath.Join(b.TempDir(), "audit.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	db.WriteTimeout = time.Minute
	storetest.BuildAuditLog(b, db, n)
	db.Close()
	if fi, err := os.Stat(path); err == nil {
		b.Logf("database file: %d MB", fi.Size()>>20)
	}
	ro, err := sqlite.OpenReadOnly(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	storetest.BenchmarkVerify(b, ro, n)
}

// TestCheckpointerMoveAside: after a restore from an old backup, moving
// the checkpoints newer than it aside lets the running checkpointer start
// again from the latest one that still matches, at its next run, with no
// restart (docs/audit.md, "Checkpoints").
func TestCheckpointerMoveAside(t *testing.T) {
	ctx := context.Background()
	db, path := openStore(t)
	dir := filepath.Join(t.TempDir(), "checkpoints")
	key := mustKey(t)
	appendN(t, db, 4)
	c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
	cp4, _, err := c.Checkpoint(ctx)
	if err != nil || cp4.Seq != 4 {
		t.Fatalf("checkpoint = %+v, %v; want seq 4", cp4, err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	copyDB(t, path, backup)
	appendN(t, db, 4)
	var newer []string
	for range 2 {
		_, p, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newer = append(newer, p)
	}
	db.Close()

	// serve restarts on the restored copy.
	old, err := sqlite.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	c = &auditlog.Checkpointer{Store: old, Key: key, Dir: dir}
	_, _, err = c.Checkpoint(ctx)
	wantFault(t, err, auditlog.Truncated, 8)
	aside := t.TempDir()
	for _, p := range newer {
		if err := os.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	cp, _, err := c.Checkpoint(ctx)
	if err != nil || cp.Seq != 4 || cp.Hash != cp4.Hash {
		t.Fatalf("checkpoint after moving the newer ones aside = %+v, %v; want entry 4 again", cp, err)
	}
	appendN(t, old, 2)
	if cp, _, err := c.Checkpoint(ctx); err != nil || cp.Seq != 6 {
		t.Errorf("next checkpoint = %+v, %v; want entry 6", cp, err)
	}
}

// prunedStore returns a store whose entries 1 to 10, ten days old, were
// pruned for retention at a checkpoint of entry 10, followed by entries
// 11 to 13 and the prune's record, 14; and the directory that holds the
// checkpoints, which the pruning replica wrote (10 and 13, the anchor and
// its latest).
func prunedStore(t *testing.T, key ed25519.PrivateKey) (*sqlite.DB, string, string) {
	t.Helper()
	ctx := context.Background()
	db, path := openStore(t)
	old := time.Now().Add(-10 * 24 * time.Hour)
	var evs []*signet.AuditEvent
	for i := range 10 {
		evs = append(evs, &signet.AuditEvent{Time: old.Add(time.Duration(i) * time.Minute),
			Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, ObjectKey: "k"})
	}
	if err := db.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pruner")
	c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
	if cp, _, err := c.Checkpoint(ctx); err != nil || cp.Seq != 10 {
		t.Fatalf("checkpoint = %+v, %v; want entry 10", cp, err)
	}
	appendN(t, db, 3)
	if _, _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r := &auditlog.Retention{Store: db, MaxAge: 5 * 24 * time.Hour, Dir: dir, Pub: key.Public().(ed25519.PublicKey), Actor: "signet"}
	if pruned, _, err := r.Prune(ctx); err != nil || len(pruned) != 1 || pruned[0].Through != 10 {
		t.Fatalf("Prune = %+v, %v; want entries 1 to 10", pruned, err)
	}
	return db, path, dir
}

// copyAnchor copies the checkpoint of entry seq from one directory to
// another, as an operator would.
func copyAnchor(t *testing.T, from, to string, seq int64) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(from, fmt.Sprintf("checkpoint-%020d-*.json", seq)))
	if len(matches) == 0 {
		t.Fatalf("no checkpoint of entry %d in %s", seq, from)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, filepath.Base(matches[0])), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointerPruned: a checkpointer whose directory lacks the
// checkpoint a prune was made at (another replica's, or one down since
// before the prune) signs nothing, and says which checkpoint is missing
// and where to get it, apart from tampering; once it is copied in, the
// next run signs.
func TestCheckpointerPruned(t *testing.T) {
	ctx := context.Background()
	key := mustKey(t)

	t.Run("EmptyDir", func(t *testing.T) {
		db, _, pruner := prunedStore(t, key)
		dir := filepath.Join(t.TempDir(), "replica")
		c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
		_, _, err := c.Checkpoint(ctx)
		wantMissingAnchor(t, err, 11, dir, nil)
		if n := countFiles(t, dir); n != 0 {
			t.Errorf("%d files written without the anchor", n)
		}
		copyAnchor(t, pruner, dir, 10)
		if cp, _, err := c.Checkpoint(ctx); err != nil || cp.Seq != 14 {
			t.Errorf("checkpoint with the anchor copied in = %+v, %v; want entry 14", cp, err)
		}
	})
	t.Run("OlderDir", func(t *testing.T) {
		// A replica whose latest checkpoint is of entry 5, from before
		// the prune.
		db, _, pruner := prunedStore(t, key)
		dir := filepath.Join(t.TempDir(), "replica")
		var five *auditlog.Checkpoint
		if err := db.View(ctx, func(tx signet.Tx) error {
			evs, err := tx.Audit(signet.AuditFilter{Limit: 1})
			if err == nil {
				// Entry 5 is gone; sign a checkpoint of it with the hash
				// entry 11 does not link to: any entry before the anchor.
				five = auditlog.Sign(key, signet.AuditHead{Seq: 5, Hash: evs[0].Hash}, base)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := auditlog.WriteCheckpoint(dir, five); err != nil {
			t.Fatal(err)
		}
		c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
		_, _, err := c.Checkpoint(ctx)
		wantMissingAnchor(t, err, 11, dir, five)
		copyAnchor(t, pruner, dir, 10)
		if cp, _, err := c.Checkpoint(ctx); err != nil || cp.Seq != 14 {
			t.Errorf("checkpoint with the anchor copied in = %+v, %v; want entry 14", cp, err)
		}
	})
	t.Run("AnchorMismatch", func(t *testing.T) {
		// A checkpoint of entry 10 with another hash is no anchor.
		db, _, _ := prunedStore(t, key)
		dir := filepath.Join(t.TempDir(), "replica")
		if _, err := auditlog.WriteCheckpoint(dir, auditlog.Sign(key, signet.AuditHead{Seq: 10, Hash: signet.AuditHash{1}}, base)); err != nil {
			t.Fatal(err)
		}
		c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
		_, _, err := c.Checkpoint(ctx)
		wantFault(t, err, auditlog.CheckpointMismatch, 11)
	})
	t.Run("ForeignAnchor", func(t *testing.T) {
		// The anchor signed by another key is not read.
		db, _, pruner := prunedStore(t, key)
		dir := filepath.Join(t.TempDir(), "replica")
		copyAnchor(t, pruner, dir, 10)
		c := &auditlog.Checkpointer{Store: db, Key: mustKey(t), Dir: dir}
		_, _, err := c.Checkpoint(ctx)
		wantMissingAnchor(t, err, 11, dir, nil)
	})
	t.Run("DeletedNotPruned", func(t *testing.T) {
		// Entries deleted by hand, past the prune, are tampering: no
		// audit.prune entry records them.
		db, path, pruner := prunedStore(t, key)
		rawExec(t, path, "DELETE FROM audit_events WHERE id <= 11")
		dir := filepath.Join(t.TempDir(), "replica")
		c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
		_, _, err := c.Checkpoint(ctx)
		wantFault(t, err, auditlog.Unanchored, 1)
		copyAnchor(t, pruner, dir, 10)
		_, _, err = c.Checkpoint(ctx)
		wantFault(t, err, auditlog.Gap, 10)
	})
	t.Run("NoPruneRecord", func(t *testing.T) {
		// Entries deleted by hand exactly at a checkpoint: the anchor
		// matches, but no audit.prune entry records the deletion, so
		// nothing is signed, as signet audit verify would not pass it.
		db, path := openStore(t)
		dir := filepath.Join(t.TempDir(), "checkpoints")
		appendN(t, db, 6)
		c := &auditlog.Checkpointer{Store: db, Key: key, Dir: dir}
		if _, _, err := c.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		appendN(t, db, 2)
		rawExec(t, path, "DELETE FROM audit_events WHERE id <= 6")
		_, _, err := c.Checkpoint(ctx)
		wantFault(t, err, auditlog.Unanchored, 7)
	})
	t.Run("Run", func(t *testing.T) {
		// serve's log says what is missing, apart from tampering, and
		// the running checkpointer signs once the anchor is copied in.
		db, _, pruner := prunedStore(t, key)
		dir := filepath.Join(t.TempDir(), "replica")
		var logs syncbuf.Buffer
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- auditlog.RunCheckpointer(ctx, db, key, dir, 10*time.Millisecond,
				slog.New(slog.NewTextHandler(&logs, nil)))
		}()
		defer func() { cancel(); <-done }()
		waitFor(t, func() bool { return strings.Count(logs.String(), "level=ERROR") >= 2 })
		if s := logs.String(); !strings.Contains(s, `kind="missing anchor"`) || strings.Contains(s, "failed verification") {
			t.Errorf("log without the anchor:\n%s", s)
		}
		copyAnchor(t, pruner, dir, 10)
		waitFor(t, func() bool {
			cp, _, _, err := auditlog.LatestCheckpoint(dir, key.Public().(ed25519.PublicKey))
			return err == nil && cp != nil && cp.Seq == 14
		})
	})
}

// wantMissingAnchor checks that err is an *auditlog.AnchorError for a log
// starting at first, naming dir and the latest checkpoint in it, and that
// it is not reported as tampering.
func wantMissingAnchor(t *testing.T, err error, first int64, dir string, latest *auditlog.Checkpoint) {
	t.Helper()
	var ae *auditlog.AnchorError
	var ve *auditlog.VerifyError
	switch {
	case !errors.As(err, &ae):
		t.Errorf("error = %v; want a missing anchor", err)
	case errors.As(err, &ve):
		t.Errorf("error = %v: a missing anchor reported as a %s", err, ve.Kind)
	case ae.First != first || ae.Dir != dir:
		t.Errorf("missing anchor for a log starting at %d in %s; want %d in %s", ae.First, ae.Dir, first, dir)
	case (ae.Latest == nil) != (latest == nil) || latest != nil && ae.Latest.Seq != latest.Seq:
		t.Errorf("missing anchor names latest checkpoint %+v, want %+v", ae.Latest, latest)
	}
}

// waitFor polls cond for up to 5 seconds, and fails the test if it does
// not hold by then.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
