package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/deadline"
	"github.com/signetdev/signet/internal/sqlstore"
)

// Group commit. Every Update is handed to one writer goroutine, which runs
// the functions waiting at that moment one after another in a single
// transaction, each inside its own savepoint, and commits them with one
// fsync. A function that fails is rolled back to its savepoint alone; a
// commit that fails fails every function in the batch. So each Update
// keeps its all-or-nothing meaning, and concurrent requests share the cost
// of making their records durable instead of queueing for one fsync each.

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
	ctx, cancel := deadline.Within(ctx, db.WriteTimeout)
	defer cancel()
	return db.queue.Submit(ctx, "sqlite.Update", fn, func(err error) error { return storeError("sqlite.Update", err, "") })
}

// batch is the state the functions of one writer transaction share.
//
// The head of the audit chain is read once per batch, moved in memory by
// each append and written back once, before the commit; a function that
// is rolled back to its savepoint takes its move of the head with it. A
// function's savepoint is opened only at its first statement, and
// AppendAudit inserts the function's events when it returns nil (or at
// its next statement), so the usual audited request, which only appends
// one event, costs one prepared insert in the batch and no savepoint: a
// single-row INSERT is atomic by itself.
type batch struct {
	head   signet.AuditHead
	loaded bool  // head was read in this transaction
	dirty  bool  // head moved since; written at the end
	err    error // the transaction itself failed

	// rows are the chained events of functions that issued no statement
	// (one event each, the usual audited request), not yet inserted.
	// They are inserted together, several rows per INSERT, before the
	// next function's savepoint opens (so that its rollback cannot take
	// them) and before the head is written at the end of the batch. A
	// failure to insert them fails the batch, as a failed commit would.
	rows []*signet.AuditEvent
	args []any
}

// headState is what a rollback to a savepoint restores.
type headState struct {
	head          signet.AuditHead
	loaded, dirty bool
}

// runBatch runs the waiting requests of reqs in one transaction.
func (db *DB) runBatch(reqs []*sqlstore.Request) {
	const op = "sqlite.Update"
	live := sqlstore.Claim(reqs)
	if len(live) == 0 {
		return
	}
	finish := func(err error) { sqlstore.Finish(live, err) }
	ctx, cancel := deadline.Within(context.Background(), db.WriteTimeout)
	defer cancel()
	stx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		finish(storeError(op, err, ""))
		return
	}
	defer stx.Rollback() // no-op after Commit
	b := &batch{}
	var audit *sql.Stmt // the prepared insert, shared by the batch
	ok := 0
	for _, r := range live {
		// fn's statements run under the batch's deadline, not the
		// caller's: a caller that goes away must not interrupt (and so
		// roll back) the transaction the others share. A caller whose
		// deadline passed meanwhile gets nothing committed.
		t := &tx{ctx: ctx, db: db, tx: stx, audit: audit, batch: b, req: r}
		before := headState{b.head, b.loaded, b.dirty}
		r.Run(op, t, func(err error) error { return storeError(op, err, "") })
		if r.Err == nil && len(t.pending) > 0 {
			if len(t.pending) == 1 && !t.savepoint {
				// One row: the INSERT is atomic, no savepoint needed.
				// Should it fail, SQLite may have rolled back the whole
				// transaction (disk full, I/O error), and without a
				// savepoint to release nothing would tell: fail the
				// batch, as a failed commit would.
				evs := t.pending
				t.pending = nil
				if t.failed = t.chainAudit(evs); t.failed != nil {
					b.err = t.failed
				}
			} else {
				t.begin() // opens the savepoint and inserts
			}
		}
		if r.Err == nil {
			r.Err = t.failed
		}
		if b.err == nil && t.savepoint {
			stmt := "RELEASE u"
			if r.Err != nil {
				stmt = "ROLLBACK TO u; RELEASE u"
			}
			if _, err := stx.ExecContext(ctx, stmt); err != nil {
				// The savepoint is gone when SQLite rolled back the
				// whole transaction after a failure (disk full, I/O):
				// that failure, if it was the store's, is the cause.
				b.err = storeError(op, err, "")
				if signet.ErrorCode(r.Err) == signet.Unavailable {
					b.err = r.Err
				}
			}
		}
		if b.err != nil {
			if r.Err == nil {
				r.Err = b.err
			}
			finish(b.err)
			return
		}
		audit = t.audit
		if r.Err != nil {
			b.head, b.loaded, b.dirty = before.head, before.loaded, before.dirty
			continue
		}
		ok++
	}
	if ok == 0 {
		finish(nil) // every fn failed; nothing to commit
		return
	}
	if err := (&tx{ctx: ctx, db: db, tx: stx, batch: b}).flushRows(); err != nil {
		finish(err)
		return
	}
	if b.dirty {
		if _, err := db.execWrite(ctx, stx, writeHead, b.head.Seq, b.head.Hash[:]); err != nil {
			finish(storeError(op, err, ""))
			return
		}
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
	db.ckpt.committed()
	finish(nil)
	db.ckpt.catchUp(ctx, db.write)
}

// begin runs before each statement of a batched function: it opens the
// function's savepoint at its first statement and inserts the events the
// function appended so far, so that its statements see them. A failure to
// open the savepoint fails the batch; one to insert fails the function
// (runBatch reports it whatever the function returns).
func (t *tx) begin() {
	b := t.batch
	if b == nil || b.err != nil {
		return
	}
	if !t.savepoint {
		if err := t.flushRows(); err != nil {
			b.err = err
			return
		}
		if _, err := t.tx.ExecContext(t.ctx, "SAVEPOINT u"); err != nil {
			b.err = storeError("sqlite.Update", err, "")
			return
		}
		t.savepoint = true
	}
	if len(t.pending) > 0 && t.failed == nil {
		evs := t.pending
		t.pending = nil
		t.failed = t.insertAudit(evs)
	}
}

// appendAudit stamps events and keeps them for begin or the function's
// end. Every writable tx runs inside a batch (runBatch).
func (t *tx) appendAudit(events []*signet.AuditEvent) error {
	const op = "sqlite.AppendAudit"
	for _, e := range events {
		e.Time = t.stamp(e.Time)
		if !e.ExpiresAt.IsZero() {
			e.ExpiresAt = normalize(e.ExpiresAt)
		}
	}
	// Fail now, as an insert would, once the transaction or the caller
	// has run out of time.
	if err := deadline.Expired(t.ctx); err != nil {
		return storeError(op, err, "")
	}
	if err := deadline.Expired(t.req.Ctx); err != nil {
		return storeError(op, err, "")
	}
	if t.batch.err != nil {
		return t.batch.err
	}
	if t.failed != nil {
		return t.failed
	}
	t.pending = append(t.pending, events...)
	return nil
}

// batchHead returns the head of the chain as this batch has moved it,
// reading it on first use.
func (t *tx) batchHead() (signet.AuditHead, error) {
	b := t.batch
	if !b.loaded {
		var hash []byte
		if err := t.db.queryRowWrite(t.ctx, t.tx, readHead).Scan(&b.head.Seq, &hash); err != nil {
			return signet.AuditHead{}, t.fail("sqlite.AuditHead", err, "", "")
		}
		copy(b.head.Hash[:], hash)
		b.loaded = true
	}
	return b.head, nil
}

// chainAudit numbers and chains the stamped events of a function that
// issued no statement after the batch's head, moves the head, and keeps
// them for flushRows.
func (t *tx) chainAudit(events []*signet.AuditEvent) error {
	b := t.batch
	head, err := t.batchHead()
	if err != nil {
		return err
	}
	b.head, b.dirty = chainAfter(head, events), true
	b.rows = append(b.rows, events...)
	return nil
}

// chainAfter numbers stamped events from head on, chains them to it and
// returns the head after them.
func chainAfter(head signet.AuditHead, events []*signet.AuditEvent) signet.AuditHead {
	for i, e := range events {
		e.ID = head.Seq + 1 + int64(i)
		e.Seq = e.ID
	}
	return signet.AuditHead{Seq: events[len(events)-1].ID, Hash: auditlog.Chain(head.Hash, events...)}
}

// appendAuditArgs appends the values of insertAudit for e to args.
func appendAuditArgs(args []any, e *signet.AuditEvent) []any {
	var expires sql.NullInt64
	if !e.ExpiresAt.IsZero() {
		expires = sql.NullInt64{Int64: micros(e.ExpiresAt), Valid: true}
	}
	return append(args, e.ID, micros(e.Time), e.RequestID, e.ActorUser, e.ActorKey, e.Team,
		e.Action, e.Outcome, string(e.Code), e.Reason, e.Store, e.Bucket, e.ObjectKey, e.UploadID,
		e.GrantID, e.Method, expires, e.ClientIP, e.UserAgent, e.Target, e.PrevHash[:], e.Hash[:])
}

// rowChunks are the row counts of the multi-row audit inserts, prepared
// once on the write connection; flushRows inserts the batch's rows with
// the largest that fit, so that a batch of n rows takes a few statements
// instead of n.
var rowChunks = [...]int{64, 16, 4, 1}

// insertAuditRows is insertAudit for n rows, for each n of rowChunks.
var insertAuditRows = func() map[int]string {
	m := map[int]string{}
	head, one, _ := strings.Cut(insertAudit, "VALUES ")
	for _, n := range rowChunks[:len(rowChunks)-1] {
		// OR ROLLBACK: a statement that may fail after writing some of
		// its rows otherwise keeps a statement journal (a copy of every
		// page it changes, spilled to a temporary file) to undo just
		// itself. A failed insert fails the whole batch anyway, so it
		// may as well roll back the whole transaction.
		m[n] = strings.Replace(head, "INSERT INTO", "INSERT OR ROLLBACK INTO", 1) + "VALUES " + one + strings.Repeat(", "+one, n-1)
	}
	m[1] = insertAudit
	return m
}()

// flushRows inserts the batch's chained rows that are not in the table
// yet.
func (t *tx) flushRows() error {
	const op = "sqlite.AppendAudit"
	b := t.batch
	rows := b.rows
	b.rows = b.rows[:0]
	for len(rows) > 0 {
		n := 1
		for _, c := range rowChunks {
			if c <= len(rows) {
				n = c
				break
			}
		}
		args := b.args[:0]
		for _, e := range rows[:n] {
			args = appendAuditArgs(args, e)
		}
		b.args = args
		if _, err := t.db.execWrite(t.ctx, t.tx, insertAuditRows[n], args...); err != nil {
			return t.auditFail(op, err)
		}
		rows = rows[n:]
	}
	clear(b.args)
	return nil
}

// insertAudit numbers, chains and inserts stamped events after the
// batch's head, and moves that head in memory (written at the batch's
// end). On failure the head stays where it was.
func (t *tx) insertAudit(events []*signet.AuditEvent) error {
	const op = "sqlite.AppendAudit"
	head, err := t.batchHead()
	if err != nil {
		return err
	}
	newHead := chainAfter(head, events)
	if t.audit == nil {
		t.audit = t.db.writeStmt(t.ctx, t.tx, insertAudit) // closed by the transaction's end
		if t.audit == nil {
			st, err := t.tx.PrepareContext(t.ctx, insertAudit)
			if err != nil {
				return t.fail(op, err, "", "")
			}
			t.audit = st
		}
	}
	var args []any
	for _, e := range events {
		args = appendAuditArgs(args[:0], e)
		if _, err := t.audit.ExecContext(t.ctx, args...); err != nil {
			return t.auditFail(op, err)
		}
	}
	t.batch.head, t.batch.dirty = newHead, true
	return nil
}

// Statements of every batch, prepared once on the write connection.
const (
	readHead  = "SELECT last_id, hash FROM audit_head"
	writeHead = "UPDATE audit_head SET last_id = ?, hash = ?"
)

// prepareWrites prepares the writer's statements on the write connection,
// which is free while Open runs. Parsing them again for every batch was a
// tenth of the writer's time. database/sql prepares them again by itself
// should the connection ever be replaced.
func (db *DB) prepareWrites(ctx context.Context) {
	db.writeStmts = map[string]*sql.Stmt{}
	qs := []string{readHead, writeHead}
	for _, n := range rowChunks {
		qs = append(qs, insertAuditRows[n])
	}
	for _, q := range qs {
		if st, err := db.write.PrepareContext(ctx, q); err == nil {
			db.writeStmts[q] = st
		}
	}
}

// writeStmt returns query prepared for the write transaction stx, or nil
// when preparing it at Open failed.
func (db *DB) writeStmt(ctx context.Context, stx *sql.Tx, query string) *sql.Stmt {
	if db == nil || db.writeStmts[query] == nil {
		return nil
	}
	return stx.StmtContext(ctx, db.writeStmts[query])
}

// execWrite runs query on stx, prepared when it can.
func (db *DB) execWrite(ctx context.Context, stx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := db.writeStmt(ctx, stx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return stx.ExecContext(ctx, query, args...)
}

// queryRowWrite runs query on stx, prepared when it can.
func (db *DB) queryRowWrite(ctx context.Context, stx *sql.Tx, query string, args ...any) *sql.Row {
	if st := db.writeStmt(ctx, stx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return stx.QueryRowContext(ctx, query, args...)
}

// Stats reports how many commits carried how many Updates: the ratio is
// what group commit saves.
func (db *DB) Stats() signet.CommitStats {
	return signet.CommitStats{Commits: db.commits.Load(), Updates: db.grouped.Load()}
}
