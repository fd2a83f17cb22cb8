package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/testpeer"
	"github.com/signetdev/signet/storetest"
)

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}

// TestRetentionAppRole: the role `signet migrate --app-role` sets up may
// not delete from the log, so retention run as it deletes nothing and
// says how to prune instead; the owner prunes.
func TestRetentionAppRole(t *testing.T) {
	role := appRole(t)
	owner := testpeer.PostgresURL(t)
	mustMigrate(t, owner)
	if err := Harden(t.Context(), owner, role); err != nil {
		t.Fatalf("Harden: %v", err)
	}
	p, err := url.Parse(owner)
	if err != nil {
		t.Fatal(err)
	}
	p.User = url.User(role)
	app := mustOpen(t, p.String())

	evs := make([]*signet.AuditEvent, 10)
	for i := range evs {
		evs[i] = &signet.AuditEvent{Time: time.Now().Add(-48 * time.Hour), Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed}
	}
	if err := app.Update(t.Context(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	if _, err := auditlog.WriteCheckpoint(dir, auditlog.Sign(key, signet.AuditHead{Seq: 6, Hash: evs[5].Hash}, time.Now())); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := &auditlog.Retention{Store: app, MaxAge: 24 * time.Hour, Dir: dir, Pub: pub,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, _, err := r.Prune(t.Context()); signet.ErrorCode(err) != signet.PermissionDenied {
		t.Errorf("Prune as %s = %v, want PermissionDenied", role, err)
	}
	// Run stops, and says why, rather than failing at every interval.
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	select {
	case err := <-done:
		if signet.ErrorCode(err) != signet.PermissionDenied || !strings.Contains(logs.String(), "signet audit prune --db") {
			t.Errorf("Run = %v, logged %q; want PermissionDenied and how to prune", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
	var n int
	err = app.View(t.Context(), func(tx signet.Tx) error {
		all, err := tx.Audit(signet.AuditFilter{})
		n = len(all)
		return err
	})
	if err != nil || n != 10 {
		t.Errorf("%d entries, %v, after pruning was refused; want 10", n, err)
	}

	// The owner may.
	r.Store = mustOpen(t, owner)
	pruned, _, err := r.Prune(t.Context())
	if err != nil || len(pruned) != 1 || pruned[0].Through != 6 {
		t.Fatalf("Prune as the owner = %+v, %v; want 1 to 6", pruned, err)
	}
	cps, err := auditlog.CheckpointsBetween(dir, pub, 6, 6)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := auditlog.VerifyStore(t.Context(), app, signet.AuditHead{}, cps...); err != nil || res.PrunedThrough != 6 || res.Entries != 5 {
		t.Errorf("VerifyStore after pruning = %+v, %v; want entries 7 to 11", res, err)
	}
	var ve *auditlog.VerifyError
	if _, err := auditlog.VerifyStore(t.Context(), app, signet.AuditHead{}); !errors.As(err, &ve) || ve.Kind != auditlog.Unanchored {
		t.Errorf("VerifyStore without the checkpoint = %v, want an unanchored start", err)
	}
}

// BenchmarkAuditFilters times a page of each audit filter on a log of
// storetest.AuditBenchEntries entries (scripts/audit-filter-bench).
func BenchmarkAuditFilters(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	u := testpeer.PostgresURL(b)
	mustMigrate(b, u)
	db := mustOpen(b, u)
	db.WriteTimeout = time.Minute
	storetest.BuildAuditLog(b, db, n)
	storetest.AppendRareEvents(b, db, n)
	// What autovacuum would do: the planner's statistics of the new log.
	if _, err := mustConn(b, u).Exec(context.Background(), "ANALYZE audit_events"); err != nil {
		b.Fatal(err)
	}
	storetest.BenchmarkAuditFilters(b, db, n)
}

// BenchmarkPrune times retention pruning a log of
// storetest.AuditBenchEntries entries.
func BenchmarkPrune(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	storetest.BenchmarkPrune(b, func() signet.Store {
		u := testpeer.PostgresURL(b)
		mustMigrate(b, u)
		db, err := Open(context.Background(), u)
		if err != nil {
			b.Fatal(err)
		}
		db.WriteTimeout = time.Minute
		return db
	}, n)
}

// appRole returns the name of a new role for the application, which the
// test's cleanup drops with its grants. Call it before the test opens its
// databases, so that the cleanup runs after they are dropped.
func appRole(t *testing.T) string {
	admin := testpeer.PostgresURL(t)
	role := randomName("signet_app_")
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("dropping role: %v", err)
			return
		}
		defer c.Close(context.Background())
		for _, s := range []string{"DROP OWNED BY " + pgx.Identifier{role}.Sanitize(), "DROP ROLE IF EXISTS " + pgx.Identifier{role}.Sanitize()} {
			if _, err := c.Exec(context.Background(), s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	return role
}
