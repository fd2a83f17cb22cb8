package sqlite

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

// BenchmarkGroupCommit: 32 callers per core append one audit event each
// per Update, as concurrent presign requests do; it reports Updates per
// second and how many shared a commit.
func BenchmarkGroupCommit(b *testing.B) {
	db := MustOpenDB(b)
	var n atomic.Int64
	b.SetParallelism(32)
	before := db.Stats()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := storetest.UpdateEvent(int(n.Add(1)))
			if err := db.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := db.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	b.ReportMetric(float64(st.Updates-before.Updates)/float64(max(1, st.Commits-before.Commits)), "updates/commit")
}
