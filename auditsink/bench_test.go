package auditsink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/sqlite"
)

// The delivery benchmarks append b.N entries, then time one sink taking
// them all from the log: ns/op is per entry.

func benchDeliver(b *testing.B, cfg Config) {
	path := filepath.Join(b.TempDir(), "signet.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for n := b.N; n > 0; {
		k := min(n, 1000)
		evs := make([]*signet.AuditEvent, k)
		for i := range evs {
			evs[i] = &signet.AuditEvent{Time: time.Now(), Action: signet.ActionPresignDownload, Outcome: signet.OutcomeAllowed,
				ActorUser: "alice", Team: "ml", Store: "s3", Bucket: "b", ObjectKey: "datasets/shard-00001.tar",
				ClientIP: "10.1.2.3", UserAgent: "signet/1.0", GrantID: "g_0123456789abcdef"}
		}
		if err := db.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
	cfg.Name, cfg.Batch = "bench", maxBatch
	set, err := New([]Config{cfg}, Options{Store: db, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	f := set.followers[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	go func() { set.Run(ctx); close(done) }()
	for {
		if a, pending := f.sink.(interface{ acked() (int64, bool) }); pending {
			if s, busy := a.acked(); !busy && f.curSeq.Load() == int64(b.N) || busy && s == int64(b.N) {
				break
			}
		} else if f.curSeq.Load() == int64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkDeliverFile(b *testing.B) {
	benchDeliver(b, Config{Type: TypeFile, Path: filepath.Join(b.TempDir(), "audit.jsonl")})
}

func BenchmarkDeliverWebhook(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	benchDeliver(b, Config{Type: TypeWebhook, URL: srv.URL})
}
