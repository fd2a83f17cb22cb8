package storetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
)

// AuditBenchEntries is the size of the logs the audit verification
// benchmarks build: SIGNET_AUDIT_BENCH_N, default one million.
// scripts/audit-verify-1m runs those benchmarks once each.
func AuditBenchEntries(tb testing.TB) int {
	if s := os.Getenv("SIGNET_AUDIT_BENCH_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			tb.Fatalf("SIGNET_AUDIT_BENCH_N=%q is not a positive number", s)
		}
		return n
	}
	return 1_000_000
}

// BenchEvent returns the i-th event of a realistic issuance log, about
// 400 bytes of fields, with times as the stores keep them (UTC, whole
// microseconds).
func BenchEvent(i int) *signet.AuditEvent {
	base := base.UTC().Truncate(time.Microsecond)
	return &signet.AuditEvent{
		Time:      base.Add(time.Duration(i) * time.Millisecond),
		RequestID: fmt.Sprintf("01JBENCH%018d", i),
		ActorUser: "svc-trainer-" + strconv.Itoa(i%17),
		ActorKey:  "k_" + strconv.Itoa(i%97) + "abcdefghijklmnop",
		Team:      "team-" + strconv.Itoa(i%13),
		Action:    signet.ActionPresignDownload,
		Outcome:   signet.OutcomeAllowed,
		Store:     signet.BackendS3,
		Bucket:    "ml-datasets-prod",
		ObjectKey: fmt.Sprintf("team-%d/runs/2031-05-06/shard-%08d.parquet", i%13, i),
		GrantID:   fmt.Sprintf("g_%024x", i),
		Method:    "GET",
		ExpiresAt: base.Add(time.Hour + time.Duration(i)*time.Millisecond),
		ClientIP:  fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
		UserAgent: "signet-go/1.4 (linux; amd64) training-job/7",
	}
}

// benchBatch is how many events one Update appends in BuildAuditLog.
const benchBatch = 10_000

// BuildAuditLog appends n BenchEvents to s, 10,000 per Update, and logs
// the rate.
func BuildAuditLog(tb testing.TB, s signet.Store, n int) {
	tb.Helper()
	start := time.Now()
	for done := 0; done < n; {
		m := min(benchBatch, n-done)
		evs := make([]*signet.AuditEvent, m)
		for i := range evs {
			evs[i] = BenchEvent(done + i)
		}
		err := s.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) })
		if err != nil {
			tb.Fatalf("appending events %d to %d: %v", done+1, done+m, err)
		}
		done += m
	}
	el := time.Since(start)
	tb.Logf("built a log of %d entries in %s (%.0f appends/s in batches of %d)", n, el.Round(time.Millisecond),
		float64(n)/el.Seconds(), benchBatch)
}

// BenchmarkVerify times auditlog.VerifyStore on s, which must hold a
// clean log of n entries: any fault is a false alarm and fails the
// benchmark.
func BenchmarkVerify(b *testing.B, s signet.Store, n int) {
	b.Helper()
	for b.Loop() {
		res, err := auditlog.VerifyStore(context.Background(), s, signet.AuditHead{})
		if err != nil {
			b.Fatalf("false alarm on a clean log: %v", err)
		}
		if res.Entries != int64(n) {
			b.Fatalf("verified %d entries, want %d", res.Entries, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
