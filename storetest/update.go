package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
)

// RunClock checks that s stamps what it creates with its own clock, which
// setNow replaces, at the stored precision.
func RunClock(t *testing.T, s signet.Store, setNow func(func() time.Time)) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 6789, time.UTC)
	setNow(func() time.Time { return now })
	tm := &signet.Team{Name: "ml"}
	ev := &signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed}
	err := s.Update(t.Context(), func(tx signet.Tx) error {
		if err := tx.CreateTeam(tm); err != nil {
			return err
		}
		return tx.AppendAudit(ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := now.Truncate(time.Microsecond)
	if !tm.CreatedAt.Equal(want) || !ev.Time.Equal(want) {
		t.Errorf("CreatedAt %v, Time %v; want %v from the injected clock", tm.CreatedAt, ev.Time, want)
	}
}

// UpdateEvent returns the i-th event of the Update benchmarks: a presign
// of a small request, without a time, so that the store stamps it.
func UpdateEvent(i int) *signet.AuditEvent {
	return &signet.AuditEvent{
		RequestID: fmt.Sprintf("req-%d", i), ActorUser: "alice", ActorKey: "abcdefghijklmnop",
		Team: "ml", Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
		Store: signet.BackendS3, Bucket: "data", ObjectKey: fmt.Sprintf("ml/datasets/shard-%05d.tar", i),
		GrantID: fmt.Sprintf("grant%011d", i), Method: "GET", ExpiresAt: time.Now().Add(time.Hour),
		ClientIP: "10.0.0.7", UserAgent: "signet-cli/1.0",
	}
}

// BenchmarkAppendAudit10k measures one Update appending 10,000 events.
func BenchmarkAppendAudit10k(b *testing.B, s signet.Store) {
	ctx := context.Background()
	const n = 10000
	evs := make([]*signet.AuditEvent, n)
	for i := range evs {
		evs[i] = UpdateEvent(i)
	}
	for b.Loop() {
		if err := s.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkUpdateSingle measures audited Updates one at a time: one
// durable commit each.
func BenchmarkUpdateSingle(b *testing.B, s signet.Store) {
	ctx := context.Background()
	ev := UpdateEvent(0)
	for b.Loop() {
		if err := s.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// createAudited returns an Update function that creates team name and
// audits it.
func createAudited(name string) func(signet.Tx) error {
	return func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: name}); err != nil {
			return err
		}
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed, Team: name})
	}
}

// RunWriteLocked checks s while another client holds the lock its writes
// need, as another process or a stuck replica would, and s's WriteTimeout
// is timeout: Update gives up with Unavailable at about its deadline, with
// a message that names no SQL internals; Ping reports Unavailable; reads
// go on. Once unlock releases the lock, Ping and Update succeed, and the
// failed Update left nothing behind.
func RunWriteLocked(t *testing.T, s signet.Store, timeout time.Duration, unlock func() error) {
	ctx := t.Context()
	start := time.Now()
	err := s.Update(ctx, createAudited("ml"))
	elapsed := time.Since(start)
	wantCode(t, "Update while locked", err, signet.Unavailable)
	if msg := strings.ToLower(signet.ErrorMessage(err)); strings.Contains(msg, "sql") || strings.Contains(msg, "audit_head") {
		t.Errorf("Update while locked: message %q leaks internals", msg)
	}
	t.Logf("Update while locked: %v after %v", err, elapsed)
	if elapsed > timeout+2*time.Second {
		t.Errorf("Update while locked took %v, want about WriteTimeout %v", elapsed, timeout)
	}
	wantCode(t, "Ping while locked", s.Ping(ctx), signet.Unavailable)
	err = s.View(ctx, func(tx signet.Tx) error {
		_, err := tx.Teams()
		return err
	})
	if err != nil {
		t.Errorf("View while locked: %v", err)
	}

	if err := unlock(); err != nil {
		t.Fatalf("releasing the lock: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after unlock: %v", err)
	}
	if err := s.Update(ctx, createAudited("ml")); err != nil {
		t.Errorf("Update after unlock: %v", err)
	}
	err = s.View(ctx, func(tx signet.Tx) error {
		if _, err := tx.Team("ml"); err != nil {
			return err
		}
		evs, err := tx.Audit(signet.AuditFilter{})
		if len(evs) != 1 || evs[0].ID != 1 {
			t.Errorf("Audit = %d events, want 1 with ID 1: the failed Update must leave nothing", len(evs))
		}
		return err
	})
	if err != nil {
		t.Errorf("View after unlock: %v", err)
	}
}

// RunUpdateDeadline checks that a caller's deadline shorter than s's
// WriteTimeout also ends an Update, and that an Update whose fn outlives
// its deadline (WriteTimeout, which setWriteTimeout sets) does not commit,
// even when fn ignores the failure and returns nil. Then, with the
// WriteTimeout set back to restore, the same Update commits.
func RunUpdateDeadline(t *testing.T, s signet.Store, setWriteTimeout func(time.Duration), restore time.Duration) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := s.Update(ctx, func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "slow"}); err != nil {
			return err
		}
		<-ctx.Done()
		return tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
	})
	wantCode(t, "Update past the deadline", err, signet.Unavailable)

	// fn ignores the failure and returns nil: still nothing commits.
	setWriteTimeout(100 * time.Millisecond)
	err = s.Update(t.Context(), func(tx signet.Tx) error {
		if err := tx.CreateTeam(&signet.Team{Name: "slow"}); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		err := tx.AppendAudit(&signet.AuditEvent{Action: signet.ActionTeamCreate, Outcome: signet.OutcomeAllowed})
		wantCode(t, "AppendAudit past the deadline", err, signet.Unavailable)
		return nil
	})
	wantCode(t, "Update whose fn ignored the deadline", err, signet.Unavailable)

	setWriteTimeout(restore)
	err = s.View(t.Context(), func(tx signet.Tx) error {
		_, err := tx.Team("slow")
		return err
	})
	wantCode(t, "team of the timed-out Update", err, signet.NotFound)
	if err := s.Update(t.Context(), createAudited("slow")); err != nil {
		t.Errorf("Update after the timeouts: %v", err)
	}
}
