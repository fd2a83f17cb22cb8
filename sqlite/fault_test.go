package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/signetdev/signet/internal/faulttest"
)

// setMaxPageCount sets SQLite's page limit on the writer's connection and
// returns the limit in force.
//
// This is how TestDiskFull fills the disk. When the database would need a
// page past max_page_count, SQLite fails the write with SQLITE_FULL, the
// same result code, taken down the same paths (statement, savepoint,
// transaction), as when the file system returns ENOSPC; and the limit
// applies to this one connection only, so the test fills nothing else on
// the machine. The alternatives were worse: a small file system needs
// root to mount; a file-size limit (RLIMIT_FSIZE) is per process, so it
// would hit the test binary's other files too, and SQLite reports the
// EFBIG it causes as SQLITE_IOERR_WRITE, SQLITE_FULL only for a short
// write.
func setMaxPageCount(tb testing.TB, db *DB, n int64) int64 {
	tb.Helper()
	var got int64
	// The writer has one connection, kept open (see Open): the pragma stays
	// in force for every batch until set again.
	if err := db.write.QueryRowContext(context.Background(), fmt.Sprintf("PRAGMA max_page_count = %d", n)).Scan(&got); err != nil {
		tb.Fatal(err)
	}
	return got
}

// TestDiskFull: when the audit record cannot be written because the
// database is full, presign answers 503 with Retry-After and no URL,
// /readyz reports it, and once space is back the server serves again
// without a restart, the log one chain.
func TestDiskFull(t *testing.T) {
	db := MustOpenDB(t)
	e := faulttest.Start(t, db)
	if a := e.Presign("before"); a.Status != 200 {
		t.Fatalf("presign before the fault: %d %s", a.Status, a.Body)
	}
	// Below the current size SQLite keeps the current size: no page more.
	pages := setMaxPageCount(t, db, 1)
	t.Logf("database limited to its current %d pages", pages)
	// Requests fill the free room left in the last pages, then fail.
	var full faulttest.Answer
	n := 0
	for n = 1; n <= 5000; n++ {
		if full = e.Presign(fmt.Sprintf("filling/%d", n)); full.Status != 200 {
			break
		}
	}
	if full.Status == 200 {
		t.Fatalf("%d presign requests succeeded on a database that cannot grow", n-1)
	}
	t.Logf("request %d found the database full: %d %s", n, full.Status, full.Body)
	faulttest.FailedClosed(t, "presign on a full database", full)
	faulttest.FailedClosed(t, "presign again", e.Presign("again"))
	faulttest.NotReady(t, e, "with the database full")

	setMaxPageCount(t, db, 1<<30) // space is back
	faulttest.Recovered(t, e, "after")
}
