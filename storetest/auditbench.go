package storetest

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// BenchmarkAuditFilters times one page (100 events) of GET /v1/audit's
// filters on s, which must hold a log built by BuildAuditLog of n entries
// followed by AppendRareEvents. The sub-benchmarks' times compare with
// "none", the first page of the whole log, in the same run.
// scripts/audit-filter-bench runs it.
func BenchmarkAuditFilters(b *testing.B, s signet.Store, n int) {
	b.Helper()
	recent := BenchEvent(n - n/100).Time // the last 1% of the log
	for _, c := range []struct {
		name string
		f    signet.AuditFilter
		want int // matches at least (a full page) or exactly
	}{
		{"none", signet.AuditFilter{}, 100},
		{"team", signet.AuditFilter{Team: "team-3"}, 100},
		{"actor", signet.AuditFilter{Actor: "svc-trainer-5"}, 100},
		{"action-rare", signet.AuditFilter{Action: signet.ActionKeyRevoke}, rareEvents},
		{"outcome-rare", signet.AuditFilter{Outcome: signet.OutcomeDenied}, rareEvents},
		{"prefix", signet.AuditFilter{KeyPrefix: "team-3/runs/"}, 100},
		{"prefix-rare", signet.AuditFilter{KeyPrefix: "team-3/runs/2031-05-06/shard-0000100"}, 1},
		{"since-start", signet.AuditFilter{Since: BenchEvent(0).Time}, 100},
		{"since-last-1pct", signet.AuditFilter{Since: recent}, 100},
		{"since-last-1pct-team", signet.AuditFilter{Team: "team-3", Since: recent}, 100},
		{"until-first-1pct", signet.AuditFilter{Until: BenchEvent(n / 100).Time}, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := c.f
			f.Limit = 100
			for b.Loop() {
				var evs []*signet.AuditEvent
				err := s.View(context.Background(), func(tx signet.Tx) (err error) {
					evs, err = tx.Audit(f)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				if len(evs) < c.want {
					b.Fatalf("%d events, want at least %d", len(evs), c.want)
				}
			}
		})
	}
}

// rareEvents is how many events AppendRareEvents appends.
const rareEvents = 10

// AppendRareEvents appends rareEvents denied key revocations, for the
// filters of BenchmarkAuditFilters that match little.
func AppendRareEvents(tb testing.TB, s signet.Store, n int) {
	tb.Helper()
	evs := make([]*signet.AuditEvent, rareEvents)
	for i := range evs {
		evs[i] = BenchEvent(n + i)
		evs[i].Action, evs[i].Outcome = signet.ActionKeyRevoke, signet.OutcomeDenied
	}
	if err := s.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPrune builds a log of n old entries in s, with a checkpoint
// every 10,000, and times auditlog.Retention pruning all of them, in
// transactions of DefaultPruneBatch entries (verification included).
func BenchmarkPrune(b *testing.B, open func() signet.Store, n int) {
	b.Helper()
	pub, key, _ := ed25519.GenerateKey(nil)
	for b.Loop() {
		b.StopTimer()
		s := open()
		BuildAuditLog(b, s, n)
		dir := b.TempDir()
		for seq := int64(10_000); seq <= int64(n); seq += 10_000 {
			var hash signet.AuditHash
			err := s.View(context.Background(), func(tx signet.Tx) error {
				evs, err := tx.Audit(signet.AuditFilter{AfterID: seq - 1, Limit: 1})
				if err == nil {
					hash = evs[0].Hash
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := auditlog.WriteCheckpoint(dir, auditlog.Sign(key, signet.AuditHead{Seq: seq, Hash: hash}, time.Now())); err != nil {
				b.Fatal(err)
			}
		}
		later := BenchEvent(n).Time.Add(2 * time.Hour) // every entry is old
		r := &auditlog.Retention{Store: s, MaxAge: time.Hour, Dir: dir, Pub: pub, Now: func() time.Time { return later }}
		b.StartTimer()
		pruned, _, err := r.Prune(context.Background())
		b.StopTimer()
		if err != nil || len(pruned) == 0 || pruned[len(pruned)-1].Through != int64(n/10_000*10_000) {
			b.Fatalf("Prune = %d prunes, %v", len(pruned), err)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
