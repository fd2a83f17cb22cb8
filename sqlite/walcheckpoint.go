package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints of the write-ahead log run in the background, not in the
// writer. SQLite's default has the connection that commits copy the WAL
// into the database file once the WAL passes 1,000 pages, and fsync the
// file, inside that commit: every request waiting on the batch waited for
// it too, and so did the batches queued behind it. On a disk with slow
// syncs (a VM's network disk) that was the presign's tail: with 32
// connections the median p99.9 of five runs fell from 75 to 21 ms once the
// checkpoints ran here instead, and the writer, no longer copying, served a
// tenth more requests (docs/performance.md, sitting 7). So the write connection
// runs with wal_autocheckpoint(0), and a goroutine with a connection of its
// own runs PASSIVE checkpoints, which wait for no reader or writer, at most
// once per walCheckpointInterval while commits come in. SQLite copies only
// committed frames, so durability and crash safety are unchanged.

// walCheckpointInterval is the least time between two checkpoints. Under
// load the writer appends about 15,000 WAL pages a second, so each
// checkpoint copies one or two thousand: about what SQLite's own threshold
// of 1,000 pages copied each time.
const walCheckpointInterval = 100 * time.Millisecond

// walCatchUpFrames is how long the WAL may grow before the writer steps in.
// A background checkpoint copies what was committed when it began, and
// under a steady stream of commits the writer has appended more by the time
// it ends; SQLite starts the WAL over only once a checkpoint has copied all
// of it, so it would grow for as long as the stream lasts. When a
// checkpoint finds the WAL this long, the writer, after answering its
// batch, copies the rest itself (catchUp): nothing is appended meanwhile,
// so that checkpoint completes, and the next batch starts the WAL over.
// It copies only what the background has not, so its stall is a fraction
// of the one every commit past 1,000 pages used to take.
const walCatchUpFrames = 4096

// walJournalLimit bounds the WAL file's size once a checkpoint has let the
// writer start it again from the beginning: a burst, or a long read that
// held checkpoints back, does not leave it large for ever.
const walJournalLimit = 64 << 20

type walCheckpointer struct {
	conn   *sql.DB // one connection, its own
	ctx    context.Context
	cancel context.CancelFunc // stops the loop, interrupting a checkpoint under way
	kick   chan struct{}
	done   chan struct{}

	closeOnce sync.Once

	runs   atomic.Int64 // checkpoints run
	failed atomic.Int64 // of which failed
	behind atomic.Bool  // the last one found the WAL past walCatchUpFrames
	caught atomic.Int64 // checkpoints the writer ran (catchUp)
}

// start runs checkpoints on conn until close.
func (c *walCheckpointer) start(conn *sql.DB) {
	c.conn = conn
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.kick = make(chan struct{}, 1)
	c.done = make(chan struct{})
	go c.loop()
}

// committed tells the checkpointer that the writer committed; it never
// blocks.
func (c *walCheckpointer) committed() {
	if c.kick == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *walCheckpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.ctx.Done():
			return
		}
		c.run()
		select {
		case <-time.After(walCheckpointInterval):
		case <-c.ctx.Done():
			return
		}
	}
}

// run copies what it can of the WAL into the database file. A failure
// (disk full, an I/O error) leaves the WAL as it was, longer: the next
// commit's kick tries again, and the writer's own commits report what
// is wrong with the disk.
func (c *walCheckpointer) run() {
	c.runs.Add(1)
	if log, ok := c.checkpoint(c.ctx, c.conn); ok && log >= walCatchUpFrames {
		c.behind.Store(true)
	}
}

// checkpoint runs a PASSIVE checkpoint on db and returns how many frames
// the WAL holds; a failure is counted and reported as !ok.
func (c *walCheckpointer) checkpoint(ctx context.Context, db *sql.DB) (log int64, ok bool) {
	var busy, done int64
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		c.failed.Add(1)
		return 0, false
	}
	return log, true
}

// catchUp runs on the writer between batches: when the background found
// the WAL past walCatchUpFrames, the writer checkpoints it on its own
// connection, where no commit can come in meanwhile. Like SQLite's own
// automatic checkpoint it is PASSIVE: it does not wait for readers.
func (c *walCheckpointer) catchUp(ctx context.Context, write *sql.DB) {
	if !c.behind.CompareAndSwap(true, false) {
		return
	}
	c.caught.Add(1)
	c.checkpoint(ctx, write)
}

// close stops the checkpointer and closes its connection. SQLite
// checkpoints the WAL itself when the last connection to the file closes.
// Closing again does nothing, as closing a DB twice did before.
func (c *walCheckpointer) close() error {
	if c.cancel == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.done
		err = c.conn.Close()
	})
	return err
}

// WALCheckpoints counts the WAL checkpoints since Open: those the
// background ran, those the writer ran to catch up, and how many of either
// failed. signet serve exports them on /metrics: failures that go on mean
// the WAL is not being copied into the database file and grows.
func (db *DB) WALCheckpoints() (background, writer, failed int64) {
	c := &db.ckpt
	return c.runs.Load(), c.caught.Load(), c.failed.Load()
}
