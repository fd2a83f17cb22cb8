package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

func verifyDB(t *testing.T, s signet.Store, want int64) {
	t.Helper()
	res, err := auditlog.VerifyStore(context.Background(), s, signet.AuditHead{})
	if err != nil || res.Entries != want {
		t.Errorf("VerifyStore = %d entries, %v; want %d, nil", res.Entries, err, want)
	}
}

// TestGroupCommitChain puts Updates that append and then fail between
// Updates that append and succeed, in one group-committed transaction:
// each failed one is rolled back to its savepoint together with its move
// of the chain's head, and the chain has neither gap nor fork.
func TestGroupCommitChain(t *testing.T) {
	db := MustOpenDB(t)
	errBoom := errors.New("boom")
	first := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}
	errs := queueUpdates(t, db, first, 48, func(i int, tx signet.Tx) error {
		evs := []*signet.AuditEvent{
			{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, RequestID: fmt.Sprintf("%d-a", i)},
			{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, RequestID: fmt.Sprintf("%d-b", i)},
		}
		if err := tx.AppendAudit(evs...); err != nil {
			return err
		}
		if i%3 == 1 {
			return errBoom
		}
		return nil
	})
	ok := 0
	for i, err := range errs {
		switch {
		case i%3 == 1 && !errors.Is(err, errBoom), i%3 != 1 && err != nil:
			t.Errorf("Update %d: %v", i, err)
		case err == nil:
			ok++
		}
	}
	st := db.Stats()
	t.Logf("%d updates in %d commits", st.Updates, st.Commits)
	if st.Commits > 3 {
		t.Logf("the Updates were not grouped as planned (%d commits); the test still checks the chain", st.Commits)
	}
	verifyDB(t, db, int64(1+2*ok))
}

// queueUpdates holds the writer in a first Update, which appends first,
// while n Updates running fn(i, tx) queue behind it, so that they share
// the next group-committed transaction; then it lets them all run and
// returns each one's error.
func queueUpdates(t *testing.T, db *DB, first *signet.AuditEvent, n int, fn func(i int, tx signet.Tx) error) []error {
	t.Helper()
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() {
		firstErr = db.Update(ctx, func(tx signet.Tx) error {
			close(started)
			<-release
			return tx.AppendAudit(first)
		})
	})
	<-started
	errs := make([]error, n)
	var queued sync.WaitGroup
	for i := range n {
		queued.Add(1)
		wg.Go(func() {
			queued.Done()
			errs[i] = db.Update(ctx, func(tx signet.Tx) error { return fn(i, tx) })
		})
	}
	queued.Wait()
	time.Sleep(50 * time.Millisecond) // let the Updates reach the queue
	close(release)
	wg.Wait()
	if firstErr != nil {
		t.Errorf("first Update: %v", firstErr)
	}
	return errs
}

// makeV3 creates a database at schema version 3, before the chain, holding
// n audit events, as an older signet left it.
func makeV3(t *testing.T, path string, n int) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(createMigrationsTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range loadMigrations()[:3] {
		if _, err := raw.Exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		raw.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", m.Version)
	}
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Commit()
	for i := range n {
		_, err := tx.Exec(`INSERT INTO audit_events (occurred_at, action, outcome, object_key, user_agent, expires_at)
			VALUES (?, 'presign.download', 'allowed', ?, ?, ?)`, time.Now().UnixMicro(), fmt.Sprintf("k/%d", i), "ua\xff", nil)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrateChainsExisting: migration 0004 links the events an older
// signet wrote, and appends continue the chain.
func TestMigrateChainsExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	makeV3(t, path, 2500)
	db := mustOpenPath(t, path)
	verifyDB(t, db, 2500)
	ev := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}
	if err := db.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 2501 {
		t.Errorf("first event after the migration has Seq %d, want 2501", ev.Seq)
	}
	verifyDB(t, db, 2501)
}

// TestMigrateKeepsGap: events deleted from the tail by hand before the
// migration show as missing, not as a shorter, intact log.
func TestMigrateKeepsGap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	makeV3(t, path, 10)
	raw, _ := sql.Open("sqlite", "file:"+path)
	raw.Exec("DELETE FROM audit_events WHERE id > 7")
	raw.Close()
	db := mustOpenPath(t, path)
	_, err := auditlog.VerifyStore(context.Background(), db, signet.AuditHead{})
	var ve *auditlog.VerifyError
	if !errors.As(err, &ve) || ve.Kind != auditlog.Truncated || ve.Seq != 8 {
		t.Errorf("VerifyStore = %v, want entries from 8 reported missing", err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "none.db")); signet.ErrorCode(err) != signet.NotFound {
		t.Errorf("OpenReadOnly of a missing file = %v, want NotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Errorf("OpenReadOnly created the file")
	}
	old := filepath.Join(dir, "old.db")
	makeV3(t, old, 3)
	if _, err := OpenReadOnly(ctx, old); signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("OpenReadOnly of a schema-3 file = %v, want Unavailable", err)
	}
	var v int
	raw, _ := sql.Open("sqlite", "file:"+old)
	raw.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&v)
	raw.Close()
	if v != 3 {
		t.Errorf("schema version after OpenReadOnly = %d, want 3 (not migrated)", v)
	}

	path := filepath.Join(dir, "signet.db")
	db := mustOpenPath(t, path)
	appendEvents(t, db, 3)
	db.Close()
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	defer ro.Close()
	verifyDB(t, ro, 3)
	err = ro.Update(ctx, func(tx signet.Tx) error { return tx.CreateTeam(&signet.Team{Name: "x"}) })
	if signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("Update on a read-only DB = %v, want Unavailable", err)
	}
	if err := ro.Ping(ctx); signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("Ping on a read-only DB = %v, want Unavailable", err)
	}
}

func appendEvents(t *testing.T, db *DB, n int) {
	t.Helper()
	for range n {
		err := db.Update(context.Background(), func(tx signet.Tx) error {
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestAppendPastHead: an event inserted by hand at the next Seq makes
// appends fail closed, as Internal, rather than fork the chain.
func TestAppendPastHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	db := mustOpenPath(t, path)
	appendEvents(t, db, 2)
	raw, _ := sql.Open("sqlite", "file:"+path)
	if _, err := raw.Exec("INSERT INTO audit_events (id, occurred_at, action, outcome) VALUES (3, 0, 'x', 'y')"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	err := db.Update(context.Background(), func(tx signet.Tx) error {
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
	})
	if signet.ErrorCode(err) != signet.Internal {
		t.Errorf("append onto a forged entry = %v, want Internal", err)
	}
}
