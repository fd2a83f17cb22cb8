package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

// MustOpenDB opens a new database in a temporary directory and closes it
// when the test ends.
func MustOpenDB(tb testing.TB) *DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "signet.db"))
}

func mustOpenPath(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}

func TestPragmas(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	for _, pool := range []struct {
		name      string
		db        *sql.DB
		queryOnly int
	}{{"write", db.write, 0}, {"read", db.read, 1}} {
		// Hold several connections at once, so that each is a distinct
		// pooled connection that ran the DSN pragmas when it opened.
		n := 1
		if pool.name == "read" {
			n = 3
		}
		var conns []*sql.Conn
		for range n {
			c, err := pool.db.Conn(ctx)
			if err != nil {
				t.Fatalf("%s pool: %v", pool.name, err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for _, p := range []struct {
				pragma string
				want   string
			}{
				{"journal_mode", "wal"},
				{"synchronous", "2"}, // FULL
				{"foreign_keys", "1"},
				{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
				{"query_only", fmt.Sprint(pool.queryOnly)},
			} {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
					t.Errorf("%s conn %d: PRAGMA %s: %v", pool.name, i, p.pragma, err)
					continue
				}
				if got != p.want {
					t.Errorf("%s conn %d: PRAGMA %s = %s, want %s", pool.name, i, p.pragma, got, p.want)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestSchemaVersion(t *testing.T) {
	db := MustOpenDB(t)
	v, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if want := LatestSchemaVersion(); v != want || want < 1 {
		t.Errorf("SchemaVersion = %d, want %d (>= 1)", v, want)
	}
	rows, err := db.read.QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	for i, v := range got {
		if v != i+1 {
			t.Errorf("schema_migrations = %v, want 1..%d", got, LatestSchemaVersion())
			break
		}
	}
	if len(got) != LatestSchemaVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", len(got), LatestSchemaVersion())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	newer := LatestSchemaVersion() + 1
	if _, err := db.write.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", newer); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatalf("Open of a database at schema version %d succeeded", newer)
	}
	if got := signet.ErrorCode(err); got != signet.Unavailable {
		t.Errorf("Open: code %q, want %q (%v)", got, signet.Unavailable, err)
	}
	if msg := signet.ErrorMessage(err); !strings.Contains(msg, fmt.Sprint(newer)) {
		t.Errorf("Open: message %q does not name the version %d", msg, newer)
	}
}

func TestOpenInvalidPath(t *testing.T) {
	for _, p := range []string{"", ":memory:"} {
		if _, err := Open(t.Context(), p); signet.ErrorCode(err) != signet.Invalid {
			t.Errorf("Open(%q) = %v, want code invalid", p, err)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "signet.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	first := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "ml"}
	err = db.Update(t.Context(), func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "ml", UploadMaxExpiry: time.Hour}); err != nil {
			return err
		}
		return tx.AppendAudit(first)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}

	db = mustOpenPath(t, path)
	if db.Path() != path {
		t.Errorf("Path = %q, want %q", db.Path(), path)
	}
	second := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: "cv"}
	if err := db.Update(t.Context(), func(tx signet.Tx) error { return tx.AppendAudit(second) }); err != nil {
		t.Fatal(err)
	}
	if second.ID <= first.ID {
		t.Errorf("audit ID after reopen = %d, want > %d", second.ID, first.ID)
	}
	err = db.View(t.Context(), func(tx signet.Tx) error {
		tm, err := tx.Team("ml")
		if err != nil {
			return err
		}
		if tm.UploadMaxExpiry != time.Hour {
			t.Errorf("UploadMaxExpiry = %v, want 1h", tm.UploadMaxExpiry)
		}
		evs, err := tx.Audit(signet.AuditFilter{})
		if len(evs) != 2 {
			t.Errorf("Audit = %d events, want 2", len(evs))
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// TestLocked holds the write lock from another connection, as another
// process would, and checks that Update gives up with Unavailable at its
// deadline, that reads go on meanwhile (under WAL), and that writes resume
// once the lock is released.
func TestLocked(t *testing.T) {
	db := MustOpenDB(t)
	db.WriteTimeout = 300 * time.Millisecond
	ctx := t.Context()

	other, err := sql.Open("sqlite", dsn(db.Path(), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("BEGIN EXCLUSIVE: %v", err)
	}
	// Take the lock for real: a write in the exclusive transaction.
	if _, err := conn.ExecContext(ctx, "INSERT INTO settings (name, value) VALUES ('lock', 'held')"); err != nil {
		t.Fatal(err)
	}

	storetest.RunWriteLocked(t, db, db.WriteTimeout, func() error {
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		return err
	})
}

// TestTwoWriters runs read-then-write transactions from two DBs on one
// file, as two processes would. With deferred transactions the lock
// upgrade fails at once with SQLITE_BUSY; BEGIN IMMEDIATE makes them queue.
func TestTwoWriters(t *testing.T) {
	a := MustOpenDB(t)
	b := mustOpenPath(t, a.Path())
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*each)
	for i, db := range []*DB{a, b, a, b} {
		wg.Go(func() {
			for j := range each {
				errs <- db.Update(t.Context(), func(tx signet.Tx) error {
					if _, err := tx.Audit(signet.AuditFilter{Limit: 1}); err != nil {
						return err
					}
					return tx.CreateTeam(&signet.Team{Name: fmt.Sprintf("t%d-%d", i, j)})
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	err := b.View(t.Context(), func(tx signet.Tx) error {
		ts, err := tx.Teams()
		if len(ts) != 4*each {
			t.Errorf("Teams = %d, want %d", len(ts), 4*each)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// TestFull fills the database (capped with max_page_count, standing in for
// a full disk) and checks that Update fails with Unavailable, commits
// nothing, and works again, on an intact database, once there is room.
func TestFull(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	var pages int
	if err := db.write.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The write pool has a single connection, so the cap applies to Update.
	if _, err := db.write.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	evs := make([]*signet.AuditEvent, 2000)
	for i := range evs {
		evs[i] = storetest.UpdateEvent(i)
	}
	err := db.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(evs...) })
	t.Logf("Update on a full database: %v", err)
	if got := signet.ErrorCode(err); got != signet.Unavailable {
		t.Errorf("Update on a full database: code %q, want %q (%v)", got, signet.Unavailable, err)
	}
	if _, err := db.write.ExecContext(ctx, "PRAGMA max_page_count = 4294967294"); err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx signet.Tx) error {
		got, err := tx.Audit(signet.AuditFilter{})
		if len(got) != 0 {
			t.Errorf("Audit after the failed Update = %d events, want none", len(got))
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
	if err := db.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Errorf("Update after making room: %v", err)
	}
	var check string
	if err := db.read.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", check, err)
	}
}

// TestUpdateDeadline checks that a caller's deadline shorter than
// WriteTimeout also ends the wait, and that a transaction whose fn outlives
// the deadline does not commit.
func TestUpdateDeadline(t *testing.T) {
	db := MustOpenDB(t)
	storetest.RunUpdateDeadline(t, db, func(d time.Duration) { db.WriteTimeout = d }, DefaultWriteTimeout)
}

func TestClock(t *testing.T) {
	db := MustOpenDB(t)
	storetest.RunClock(t, db, func(now func() time.Time) { db.Now = now })
}

func BenchmarkAppendAudit10k(b *testing.B) { storetest.BenchmarkAppendAudit10k(b, MustOpenDB(b)) }

func BenchmarkUpdateSingle(b *testing.B) { storetest.BenchmarkUpdateSingle(b, MustOpenDB(b)) }
