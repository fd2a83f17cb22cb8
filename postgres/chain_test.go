package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storetest"
)

func verifyDB(t *testing.T, s signet.Store, want int64) {
	t.Helper()
	res, err := auditlog.VerifyStore(t.Context(), s, signet.AuditHead{})
	if err != nil || res.Entries != want {
		t.Errorf("VerifyStore = %d entries, %v; want %d, nil", res.Entries, err, want)
	}
}

// TestChainReplicas: two replicas (two DBs, two pools) append at once,
// some of their transactions rolling back after the append; the log is one
// chain, without gap or fork. The second replica's Updates only append, as
// presign requests do, so its batches take the two-round-trip path
// (appendOnly) while the first's read before appending.
func TestChainReplicas(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	replicas := []*DB{mustOpen(t, u), mustOpen(t, u)}
	const workers, each = 12, 40
	errBoom := errors.New("boom")
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := 0
	for w := range workers {
		db := replicas[w%len(replicas)]
		wg.Go(func() {
			for i := range each {
				n := 1 + (w+i)%4
				err := db.Update(t.Context(), func(tx signet.Tx) error {
					// Work before the append, as an admin request does.
					if w%len(replicas) == 0 {
						if _, err := tx.Teams(); err != nil {
							return err
						}
					}
					evs := make([]*signet.AuditEvent, n)
					for j := range evs {
						evs[j] = &signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
							RequestID: fmt.Sprintf("r%d-w%d-%d-%d", w%len(replicas), w, i, j), UserAgent: "ua\xff\\"}
					}
					if err := tx.AppendAudit(evs...); err != nil {
						return err
					}
					if i%7 == 3 {
						return errBoom
					}
					return nil
				})
				switch {
				case i%7 == 3 && !errors.Is(err, errBoom), i%7 != 3 && err != nil:
					t.Errorf("replica %d worker %d update %d: %v", w%len(replicas), w, i, err)
				case err == nil:
					mu.Lock()
					committed += n
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, db := range replicas {
		verifyDB(t, db, int64(committed))
	}
	t.Logf("%d events from %d writers on 2 replicas form one chain", committed, workers)
}

// TestAppendKnownHead: a writer that moved the head last sends its next
// batch of appends at that head in one round trip; when another replica
// has moved it meanwhile, that batch inserts nothing and the writer reads
// the head under its lock instead (and keeps doing so for a while); every
// append lands once, the log one chain.
func TestAppendKnownHead(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	a, b := mustOpen(t, u), mustOpen(t, u)
	appendOne := func(db *DB, id string) {
		t.Helper()
		err := db.Update(t.Context(), func(tx signet.Tx) error {
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, RequestID: id})
		})
		if err != nil {
			t.Fatalf("append %s: %v", id, err)
		}
	}
	for i := range 3 {
		appendOne(a, fmt.Sprintf("a%d", i))
	}
	if a.headRaces.known.Load() != 2 || a.headRaces.moved.Load() != 0 {
		t.Errorf("after 3 appends from one writer: %d at the known head, %d found it moved; want 2 and 0", a.headRaces.known.Load(), a.headRaces.moved.Load())
	}
	appendOne(b, "b0")
	appendOne(a, "a3")
	if a.headRaces.known.Load() != 2 || a.headRaces.moved.Load() != 1 {
		t.Errorf("after another replica appended: %d at the known head, %d found it moved; want 2 and 1", a.headRaces.known.Load(), a.headRaces.moved.Load())
	}
	appendOne(a, "a4") // within headMovedPause: read under the lock
	if a.headRaces.known.Load() != 2 || a.headRaces.moved.Load() != 1 {
		t.Errorf("right after the head moved: %d at the known head, %d found it moved; want 2 and 1", a.headRaces.known.Load(), a.headRaces.moved.Load())
	}
	verifyDB(t, a, 6)
	err := a.View(t.Context(), func(tx signet.Tx) error {
		evs, err := tx.Audit(signet.AuditFilter{Limit: 10})
		if err != nil {
			return err
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.RequestID)
		}
		if got, want := strings.Join(ids, " "), "a0 a1 a2 b0 a3 a4"; got != want {
			t.Errorf("log holds %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAppendPastHead: an entry put past the head of the chain outside
// signet makes appends fail closed (Internal, nothing committed), whether
// the batch issued statements of its own or only appends; once the entry
// is gone, appends go on and the log is one chain.
func TestAppendPastHead(t *testing.T) {
	db := MustOpenDB(t)
	appendOne := func(read bool) error {
		return db.Update(t.Context(), func(tx signet.Tx) error {
			if read {
				if _, err := tx.Teams(); err != nil {
					return err
				}
			}
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed})
		})
	}
	if err := appendOne(false); err != nil {
		t.Fatalf("first append: %v", err)
	}
	c, err := db.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, q := range []string{
		"CREATE TEMP TABLE stray AS SELECT * FROM audit_events WHERE id = 1",
		"UPDATE stray SET id = 2",
		"INSERT INTO audit_events SELECT * FROM stray",
	} {
		if _, err := c.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, read := range []bool{false, true} {
		err := appendOne(read)
		wantCode(t, fmt.Sprintf("append past a stray entry (statements first: %v)", read), err, signet.Internal)
		if err != nil && !strings.Contains(err.Error(), "past its recorded head") {
			t.Errorf("append past a stray entry: %v; want it to say the log holds an entry past its head", err)
		}
	}
	if _, err := c.Exec(t.Context(), "DELETE FROM audit_events WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	for _, read := range []bool{false, true, false} {
		if err := appendOne(read); err != nil {
			t.Fatalf("append after the stray entry went (statements first: %v): %v", read, err)
		}
	}
	verifyDB(t, db, 4)
}

// TestMigrateChainsExisting: migration 0004 links the events an older
// signet wrote, escaped text included, and appends continue the chain.
func TestMigrateChainsExisting(t *testing.T) {
	u := testpeer.PostgresURL(t)
	c := mustConn(t, u)
	if _, _, err := migrate(t.Context(), c, chainSchemaVersion-1); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exec(t.Context(), `WITH head AS (UPDATE audit_head SET last_id = 2500 RETURNING last_id)
		INSERT INTO audit_events (id, occurred_at, action, outcome, object_key, user_agent)
		SELECT g, now(), 'presign.download', 'allowed', 'k/' || g, 'ua\xff\\' FROM generate_series(1, 2500) g`)
	if err != nil {
		t.Fatal(err)
	}
	mustMigrate(t, u)
	db := mustOpen(t, u)
	verifyDB(t, db, 2500)
	ev := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}
	if err := db.Update(t.Context(), func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 2501 {
		t.Errorf("first event after the migration has Seq %d, want 2501", ev.Seq)
	}
	verifyDB(t, db, 2501)
}

// TestTamper: changes made with SQL behind signet's back are found, and
// the first bad entry named.
func TestTamper(t *testing.T) {
	u := testpeer.PostgresURL(t)
	mustMigrate(t, u)
	db := mustOpen(t, u)
	for range 10 {
		if err := db.Update(t.Context(), func(tx signet.Tx) error {
			return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed, ObjectKey: "k"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	owner := mustConn(t, u)
	exec := func(q string) {
		t.Helper()
		if _, err := owner.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := func(kind auditlog.Kind, seq int64) {
		t.Helper()
		_, err := auditlog.VerifyStore(t.Context(), db, signet.AuditHead{})
		var ve *auditlog.VerifyError
		if !errors.As(err, &ve) || ve.Kind != kind || ve.Seq != seq {
			t.Errorf("VerifyStore = %v; want %s at entry %d", err, kind, seq)
		}
	}
	exec("UPDATE audit_events SET object_key = 'other' WHERE id = 4")
	want(auditlog.HashMismatch, 4)
	exec("UPDATE audit_events SET object_key = 'k' WHERE id = 4")
	exec("DELETE FROM audit_events WHERE id = 6")
	want(auditlog.Gap, 6)
	exec("DELETE FROM audit_events WHERE id > 6")
	want(auditlog.Truncated, 6)
}

func mustReadOnly(t *testing.T, u string) *DB {
	t.Helper()
	db, err := OpenReadOnly(context.Background(), u)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenReadOnly(t *testing.T) {
	u := testpeer.PostgresURL(t)
	if _, err := OpenReadOnly(t.Context(), u); signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("OpenReadOnly of an empty database = %v, want Unavailable", err)
	}
	mustMigrate(t, u)
	db := mustOpen(t, u)
	if err := db.Update(t.Context(), func(tx signet.Tx) error {
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
	}); err != nil {
		t.Fatal(err)
	}
	ro := mustReadOnly(t, u)
	verifyDB(t, ro, 1)
	err := ro.Update(t.Context(), func(tx signet.Tx) error { return tx.CreateTeam(&signet.Team{Name: "x"}) })
	if signet.ErrorCode(err) != signet.Unavailable {
		t.Errorf("Update on a read-only DB = %v, want Unavailable", err)
	}
	// Every session of the pool is read-only on the server's side too.
	if _, err := ro.pool.Exec(t.Context(), "UPDATE audit_head SET last_id = last_id"); err == nil {
		t.Errorf("a write through a read-only DB's pool succeeded")
	}
}

// BenchmarkVerify verifies a PostgreSQL log of
// storetest.AuditBenchEntries entries through a read-only connection, as
// `signet audit verify --db postgres://...` does.
func BenchmarkVerify(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	u := testpeer.PostgresURL(b)
	mustMigrate(b, u)
	db := mustOpen(b, u)
	db.WriteTimeout = time.Minute
	storetest.BuildAuditLog(b, db, n)
	ro, err := OpenReadOnly(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	defer ro.Close()
	storetest.BenchmarkVerify(b, ro, n)
}
