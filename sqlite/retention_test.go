package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T) signet.Store { return MustOpenDB(t) })
}

// BenchmarkAuditFilters times a page of each audit filter on a log of
// storetest.AuditBenchEntries entries (scripts/audit-filter-bench).
func BenchmarkAuditFilters(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.WriteTimeout = time.Minute
	storetest.BuildAuditLog(b, db, n)
	storetest.AppendRareEvents(b, db, n)
	storetest.BenchmarkAuditFilters(b, db, n)
}

// BenchmarkPrune times retention pruning a log of
// storetest.AuditBenchEntries entries.
func BenchmarkPrune(b *testing.B) {
	n := storetest.AuditBenchEntries(b)
	storetest.BenchmarkPrune(b, func() signet.Store {
		db, err := Open(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
		if err != nil {
			b.Fatal(err)
		}
		db.WriteTimeout = time.Minute
		return db
	}, n)
}
