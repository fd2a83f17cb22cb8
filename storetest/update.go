package storetest

import (
	"context"
	"fmt"
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
