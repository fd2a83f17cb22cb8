package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/signetdev/signet"
)

// Group commit. Every Update is handed to one writer goroutine, which runs
// the functions waiting at that moment one after another in a single
// transaction, each inside its own savepoint, and commits them with one
// fsync. A function that fails is rolled back to its savepoint alone; a
// commit that fails fails every function in the batch. So each Update
// keeps its all-or-nothing meaning, and concurrent requests share the cost
// of making their records durable instead of queueing for one fsync each.

// maxBatch bounds how many Updates share one transaction.
const maxBatch = 256

// Request states: a request can be cancelled only while it waits.
const (
	waiting int32 = iota
	running
	cancelled
)

type request struct {
	ctx   context.Context // the caller's, bounded by WriteTimeout
	fn    func(signet.Tx) error
	state atomic.Int32
	err   error         // fn's error, then the commit's
	done  chan struct{} // closed when err is final
}

// Update runs fn in a read-write transaction and commits it durably when fn
// returns nil; otherwise it rolls back fn's changes and returns fn's error
// unchanged. Updates from concurrent callers may share one transaction and
// one commit (group commit), but each one's changes commit or roll back as
// a unit, and fn sees the changes of the Updates before it. If fn cannot
// start, or its commit be made durable, within WriteTimeout, Update returns
// an Unavailable error and none of fn's changes are committed.
func (db *DB) Update(ctx context.Context, fn func(signet.Tx) error) error {
	if db.readOnly() {
		return errReadOnly("sqlite.Update")
	}
	if db.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, db.WriteTimeout)
		defer cancel()
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case db.queue <- r:
	case <-db.closing:
		return signet.E("sqlite.Update", signet.Unavailable, "audit store unavailable: database is closed", nil)
	case <-ctx.Done():
		return storeError("sqlite.Update", ctx.Err(), "")
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(waiting, cancelled) {
			return storeError("sqlite.Update", ctx.Err(), "")
		}
		// fn already runs: its outcome is decided by the commit, which
		// is itself bounded by WriteTimeout; report that outcome.
		<-r.done
		return r.err
	}
}

// writer runs batches of Updates until the database is closed.
func (db *DB) writer() {
	defer close(db.writerDone)
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-db.queue:
			batch = append(batch[:0], r)
		case <-db.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-db.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.runBatch(batch)
	}
}

// runBatch runs the waiting requests of batch in one transaction.
func (db *DB) runBatch(batch []*request) {
	const op = "sqlite.Update"
	var live []*request
	for _, r := range batch {
		if r.state.CompareAndSwap(waiting, running) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	finish := func(err error) {
		for _, r := range live {
			if r.err == nil {
				r.err = err
			}
			close(r.done)
		}
	}
	ctx := context.Background()
	if db.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, db.WriteTimeout)
		defer cancel()
	}
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		finish(storeError(op, err, ""))
		return
	}
	defer stx.Rollback() // no-op after Commit
	t := &tx{ctx: ctx, db: db, tx: stx}
	ok := 0
	for _, r := range live {
		if _, err := stx.ExecContext(ctx, "SAVEPOINT u"); err != nil {
			finish(storeError(op, err, ""))
			return
		}
		// fn's statements run under the batch's deadline, not the
		// caller's: a caller that goes away must not interrupt (and so
		// roll back) the transaction the others share. A caller whose
		// deadline passed meanwhile gets nothing committed.
		r.err = run(r.fn, t)
		if r.err == nil && r.ctx.Err() != nil {
			r.err = storeError(op, r.ctx.Err(), "")
		}
		stmt := "RELEASE u"
		if r.err != nil {
			stmt = "ROLLBACK TO u; RELEASE u"
		} else {
			ok++
		}
		if _, err := stx.ExecContext(ctx, stmt); err != nil {
			finish(storeError(op, err, ""))
			return
		}
	}
	if ok == 0 {
		finish(nil) // every fn failed; nothing to commit
		return
	}
	db.commits.Add(1)
	db.grouped.Add(int64(ok))
	if err := stx.Commit(); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		finish(storeError(op, err, ""))
		return
	}
	finish(nil)
}

// run calls fn, turning a panic into an Internal error so that one bad
// caller cannot stop the writer.
func run(fn func(signet.Tx) error, t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = signet.E("sqlite.Update", signet.Internal, "internal error", fmt.Errorf("panic in Update: %v", p))
		}
	}()
	return fn(t)
}

// Stats counts the writer's work since Open.
type Stats struct {
	Commits int64 // transactions the writer committed (or tried to)
	Updates int64 // successful Update calls those transactions carried
}

// Stats reports how many commits carried how many Updates: the ratio is
// what group commit saves.
func (db *DB) Stats() Stats {
	return Stats{Commits: db.commits.Load(), Updates: db.grouped.Load()}
}
