package sqlite

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/storetest"
)

// walFrames returns how many frames the WAL holds and how many of them a
// checkpoint has copied into the database file, read from the WAL index
// (the -shm file, in native byte order; sqlite.org/walformat.html: mxFrame
// at byte 16 of the header, nBackfill at byte 96), so that looking does not
// checkpoint anything itself.
func walFrames(t *testing.T, db *DB) (log, done uint32) {
	t.Helper()
	shm, err := os.ReadFile(db.path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	if len(shm) < 100 {
		t.Fatalf("WAL index of %d bytes", len(shm))
	}
	return binary.NativeEndian.Uint32(shm[16:]), binary.NativeEndian.Uint32(shm[96:])
}

// TestWALCheckpoints: the writer's commits leave the checkpoints to the
// background, a steady stream of commits does not make the WAL grow with
// the log, and once the commits stop the WAL is copied in full.
func TestWALCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MB")
	}
	db := MustOpenDB(t)
	ctx := context.Background()
	var auto, pageSize int64
	if err := db.write.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint is %d, want 0: it would checkpoint inside commits", auto)
	}
	if err := db.write.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}

	// About 100 MB of audit rows in 1,250 commits back to back: many
	// times what the WAL may hold before the writer steps in.
	reason := strings.Repeat("r", 4000)
	for i := range 1250 {
		evs := make([]*signet.AuditEvent, 20)
		for j := range evs {
			evs[j] = storetest.UpdateEvent(i*20 + j)
			evs[j].Reason = reason
		}
		if err := db.Update(ctx, func(tx signet.Tx) error { return tx.AppendAudit(evs...) }); err != nil {
			t.Fatal(err)
		}
	}
	if db.ckpt.runs.Load() == 0 {
		t.Fatal("no checkpoint ran")
	}
	if n := db.ckpt.failed.Load(); n != 0 {
		t.Errorf("%d checkpoints failed", n)
	}
	main, err := os.Stat(db.path)
	if err != nil {
		t.Fatal(err)
	}
	wal, err := os.Stat(db.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d checkpoints, %d by the writer; database %d bytes, WAL %d bytes", db.ckpt.runs.Load(), db.ckpt.caught.Load(), main.Size(), wal.Size())
	if main.Size() < 80<<20 {
		t.Errorf("database file is %d bytes: the checkpoints did not copy the log into it", main.Size())
	}
	if db.ckpt.caught.Load() == 0 {
		t.Error("the writer never caught up: under steady commits the background alone cannot start the WAL over")
	}
	// Left to the background alone it holds the whole log (over 100 MB
	// here); started over it holds what came in between two catch-ups,
	// walCatchUpFrames pages and what a checkpoint's run lets pile up
	// (about 35 MB here), more on a slower disk.
	if limit := main.Size() * 6 / 10; wal.Size() > limit {
		t.Errorf("WAL is %d bytes, over %d (%d pages of %d bytes start the catch-up): it grew with the log instead of starting over",
			wal.Size(), limit, walCatchUpFrames, pageSize)
	}

	// Once the commits stop, the next checkpoint copies every frame.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, done := walFrames(t, db)
		if log == done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the last commit the WAL holds %d frames, %d of them copied", log, done)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWALCheckpointerClose: Close stops the checkpointer, and a database
// opened again finds everything committed.
func TestWALCheckpointerClose(t *testing.T) {
	path := t.TempDir() + "/signet.db"
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ev := storetest.UpdateEvent(1)
	if err := db.Update(context.Background(), func(tx signet.Tx) error { return tx.AppendAudit(ev) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.ckpt.done:
	default:
		t.Fatal("the checkpointer still runs after Close")
	}
	db = mustOpenPath(t, path)
	var evs []*signet.AuditEvent
	if err := db.View(context.Background(), func(tx signet.Tx) error {
		var err error
		evs, err = tx.Audit(signet.AuditFilter{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].GrantID != ev.GrantID {
		t.Fatalf("after reopening: %d entries, want the one committed", len(evs))
	}
}
