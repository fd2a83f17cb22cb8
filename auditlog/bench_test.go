package auditlog_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/storetest"
)

// The store benchmarks are sqlite.BenchmarkVerify and
// postgres.BenchmarkVerify; scripts/audit-verify-1m runs all three.

// BenchmarkVerifyJSONLines verifies a JSON-lines export of
// storetest.AuditBenchEntries events, as `signet audit verify --file`
// does. The file is written as the export writes it: one json.Encoder
// line per event.
func BenchmarkVerifyJSONLines(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	var prev signet.AuditHash
	for i := range n {
		e := storetest.BenchEvent(i)
		e.ID, e.Seq = int64(i+1), int64(i+1)
		prev = auditlog.Chain(prev, e)
		if err := enc.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(path); err == nil {
		b.Logf("export file: %d MB", fi.Size()>>20)
	}
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		res, err := auditlog.VerifyJSONLines(f, signet.AuditHead{})
		f.Close()
		if err != nil {
			b.Fatalf("false alarm on a clean export: %v", err)
		}
		if res.Entries != int64(n) || res.Head.Hash != prev {
			b.Fatalf("verified %d entries up to %s, want %d up to %s", res.Entries, res.Head.Hash, n, prev)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkHash is the cost of encoding and hashing one event.
func BenchmarkHash(b *testing.B) {
	e := storetest.BenchEvent(1)
	for b.Loop() {
		auditlog.Hash(e)
	}
}
