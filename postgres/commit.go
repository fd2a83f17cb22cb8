package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/deadline"
	"github.com/signetdev/signet/internal/sqlstore"
)

// Group commit, as in the sqlite package. Every Update is handed to one
// writer goroutine per DB, which runs the functions waiting at that moment
// one after another in a single READ COMMITTED transaction and commits
// them with one WAL flush. Each function runs inside its own savepoint, so
// one that fails is rolled back alone; a commit that fails fails every
// function in the batch.
//
// What makes it pay on PostgreSQL is where the audit events go. Appends
// serialise on the row lock of audit_head from the lock to the commit,
// WAL flush included (see lockAuditHead), so one transaction per request
// means one flush per request, across all replicas. Here AppendAudit only
// checks and stamps the events and keeps them in memory; when the function
// returns nil they join the batch's list, and at the end of the batch the
// writer locks the head once, chains the whole list and inserts it in one
// statement, just before the commit. The transaction begins at the first
// statement a function issues. A batch of presign requests, which issue no
// statement of their own inside Update and so never begin it there, costs
// one flush and, however many requests it carries, one round trip when the
// writer knows the head (BEGIN, an insert conditional on that head and
// COMMIT sent together) or two when it does not (BEGIN and the lock of the
// head, then the insert and COMMIT): see appendOnly. Savepoints are opened
// only by functions that issue statements, at their first one.
//
// A function that issues a statement after its own AppendAudit (AuditHead,
// say) has its pending events inserted first, inside its savepoint, so it
// reads its own appends. It does not see the audit events of the earlier
// functions of the batch, which are inserted at the end; it does see their
// other changes. Taking the head lock last also keeps the lock order of
// one Update per transaction (its other locks, then the head), so batches
// of several replicas do not deadlock on it.

// batch is the state one writer transaction shares among its functions.
type batch struct {
	db     *DB
	ptx    pgx.Tx               // begun at a function's first statement (begin)
	events []*signet.AuditEvent // appended by functions that returned nil, in order
	err    error                // set when the transaction itself failed
	// inserted is set once a function's own events were inserted inside
	// its savepoint (prepare), moving the head before the batch's end.
	inserted bool
}

// begin returns the batch's transaction, beginning it if no function has
// issued a statement yet. A failure to begin fails the batch.
func (b *batch) begin(ctx context.Context) (pgx.Tx, error) {
	if b.ptx == nil && b.err == nil {
		ptx, err := b.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite})
		if err != nil {
			b.err = storeError("postgres.Update", withContext(ctx, err), "")
			return nil, b.err
		}
		b.ptx = ptx
	}
	return b.ptx, b.err
}

// Update runs fn in a read-write READ COMMITTED transaction and commits it
// durably when fn returns nil; otherwise it rolls back fn's changes and
// returns fn's error unchanged. Updates from concurrent callers may share
// one transaction and one commit (group commit, above), but each one's
// changes commit or roll back as a unit. If fn cannot start, or its commit
// be made durable, within WriteTimeout, or the database fails, Update
// returns an Unavailable error and none of fn's changes are committed,
// unless the connection was lost during the commit itself, whose outcome
// the client cannot know. If fn carried on after a statement failed and
// returns nil, Update returns Internal: PostgreSQL has rolled fn's changes
// back.
func (db *DB) Update(ctx context.Context, fn func(signet.Tx) error) error {
	const op = "postgres.Update"
	if db.readOnly {
		return errReadOnly(op)
	}
	ctx, cancel := db.withWriteTimeout(ctx)
	defer cancel()
	return db.queue.Submit(ctx, op, fn, func(err error) error { return storeError(op, err, "") })
}

// runBatch runs the waiting requests of reqs in one transaction.
func (db *DB) runBatch(reqs []*sqlstore.Request) {
	const op = "postgres.Update"
	live := sqlstore.Claim(reqs)
	if len(live) == 0 {
		return
	}
	finish := func(err error) { sqlstore.Finish(live, err) }
	ctx, cancel := db.withWriteTimeout(context.Background())
	defer cancel()
	b := &batch{db: db}
	defer func() {
		if b.ptx != nil {
			rollback(b.ptx) // no-op after Commit
		}
	}()
	ok := 0
	for _, r := range live {
		// fn's statements run under the batch's deadline, not the
		// caller's: a caller that goes away must not cancel (and so
		// abort) the transaction the others share. A caller whose
		// deadline passed meanwhile gets nothing committed.
		t := &tx{ctx: ctx, db: db, batch: b, req: r}
		r.Run(op, t, func(err error) error { return storeError(op, err, "") })
		if b.err == nil {
			if err := t.endSavepoint(r.Err == nil); err != nil {
				if r.Err == nil && signet.ErrorCode(err) == signet.Internal {
					r.Err = err // fn went on after a failed statement; rolled back alone
				} else {
					b.err = err
				}
			}
		}
		if b.err != nil {
			finish(b.err)
			return
		}
		if r.Err == nil {
			ok++
			b.events = append(b.events, t.pending...)
		}
	}
	if ok == 0 || (b.ptx == nil && len(b.events) == 0) {
		finish(nil) // every fn failed, or none changed anything
		return
	}
	db.commits.Add(1)
	db.grouped.Add(int64(ok))
	if b.ptx == nil {
		finish(db.appendOnly(ctx, b.events))
		return
	}
	// The head this process knows after the commit: where the batch's
	// last insert moves it, or where it was if the batch inserted no
	// event; unknown after an insert inside a function's savepoint.
	head := db.head
	head.ok = head.ok && !b.inserted
	db.head.ok = false
	if len(b.events) > 0 {
		h, err := insertAudit(ctx, b.ptx, b.events)
		if err != nil {
			finish(err)
			return
		}
		head.ok, head.last, head.hash = true, h.last, h.hash
	}
	if err := b.ptx.Commit(ctx); err != nil {
		finish(storeError(op, withContext(ctx, err), ""))
		return
	}
	db.head = head
	finish(nil)
}

// prepare runs before each statement of a batched function: it opens the
// function's savepoint at its first statement and inserts the events the
// function appended so far, so that its statements see them.
func (t *tx) prepare() error {
	if t.batch == nil {
		return nil
	}
	if t.batch.err != nil {
		return t.batch.err
	}
	if t.tx == nil {
		ptx, err := t.batch.begin(t.ctx)
		if err != nil {
			return err
		}
		t.tx = ptx
	}
	if !t.savepoint {
		if _, err := t.tx.Exec(t.ctx, "SAVEPOINT u"); err != nil {
			t.batch.err = storeError("postgres.Update", withContext(t.ctx, err), "")
			return t.batch.err
		}
		t.savepoint = true
	}
	if len(t.pending) > 0 {
		evs := t.pending
		t.pending = nil
		t.batch.inserted = true
		if _, err := insertAudit(t.ctx, t.tx, evs); err != nil {
			return err
		}
	}
	return nil
}

// endSavepoint releases the function's savepoint, if it opened one, or
// rolls back to it. A release that fails because a statement failed and
// the function carried on rolls back instead and returns Internal; any
// other failure is the transaction's.
func (t *tx) endSavepoint(keep bool) error {
	const op = "postgres.Update"
	if !t.savepoint {
		return nil
	}
	if keep {
		_, err := t.tx.Exec(t.ctx, "RELEASE SAVEPOINT u")
		if err == nil {
			return nil
		}
		if _, rerr := t.tx.Exec(t.ctx, "ROLLBACK TO SAVEPOINT u; RELEASE SAVEPOINT u"); rerr != nil {
			return storeError(op, withContext(t.ctx, rerr), "")
		}
		if t.ctx.Err() != nil {
			return storeError(op, withContext(t.ctx, err), "")
		}
		return signet.E(op, signet.Internal, "internal database error", err)
	}
	if _, err := t.tx.Exec(t.ctx, "ROLLBACK TO SAVEPOINT u; RELEASE SAVEPOINT u"); err != nil {
		return storeError(op, withContext(t.ctx, err), "")
	}
	return nil
}

// errRow is a pgx.Row that fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Stats reports how many commits carried how many Updates: the ratio is
// what group commit saves.
func (db *DB) Stats() signet.CommitStats {
	return signet.CommitStats{Commits: db.commits.Load(), Updates: db.grouped.Load()}
}

// appendAudit checks nothing (AppendAudit did) and stamps events, and
// keeps them for the batch's end, see above: every writable tx runs inside
// a batch (runBatch).
func (t *tx) appendAudit(events []*signet.AuditEvent) error {
	const op = "postgres.AppendAudit"
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
	t.pending = append(t.pending, events...)
	return nil
}

// insertAudit appends stamped events to the log in ptx: it locks and reads
// the head (see lockAuditHead), numbers and chains the events, and inserts
// them and moves the head in one statement. Two round trips.
func insertAudit(ctx context.Context, ptx pgx.Tx, events []*signet.AuditEvent) (knownHead, error) {
	const op = "postgres.AppendAudit"
	var last int64
	var prev []byte
	if err := ptx.QueryRow(ctx, lockAuditHead).Scan(&last, &prev); err != nil {
		return knownHead{}, storeError(op, withContext(ctx, err), "")
	}
	args := chainArgs(last, prev, events)
	if _, err := ptx.Exec(ctx, appendAudit, args...); err != nil {
		return knownHead{}, appendFailed(ctx, err)
	}
	var h knownHead
	h.learn(args)
	return h, nil
}

// beginWrite begins a batch's transaction when the writer sends BEGIN
// itself (appendOnly): what pool.BeginTx sends for the options begin uses.
const beginWrite = "begin isolation level read committed read write"

// learn records, as known, the head that appendAudit or appendAuditAt with
// args moves to.
func (h *knownHead) learn(args []any) {
	h.ok, h.last, h.hash = true, args[0].(int64), args[1].([]byte)
}

// AuditHeadRaces reports how many batches of audit appends this process
// committed in one round trip at the head it knew (appendOnly), and how
// many it sent that way but found the head moved by another replica, and
// appended under the head's lock instead. A rising second count means replicas append at
// the same time; each such batch costs two more round trips.
func (db *DB) AuditHeadRaces() (known, moved int64) {
	return db.headRaces.known.Load(), db.headRaces.moved.Load()
}

// knownHead is the head of the chain as this process's writer last moved
// it, so that the next batch of appends can be sent without reading it
// first (appendOnly). Only the writer goroutine uses it.
type knownHead struct {
	ok        bool
	last      int64
	hash      []byte
	skipUntil time.Time // after another replica moved the head: read it first until then
}

// headMovedPause is how long, after another replica moved the head under
// it, the writer reads the head first instead of guessing it: replicas
// that append at the same time would otherwise pay a wasted round trip for
// most batches.
const headMovedPause = time.Second

// appendOnly commits events, all that a batch whose functions issued no
// statement changed (a batch of presign requests). When the writer knows
// the head (it moved it last), it sends BEGIN, the insert conditional on
// the head (appendAuditAt) and COMMIT together: one round trip. Otherwise,
// or when another replica moved the head meanwhile, it takes two on one
// connection: BEGIN and the lock of the head (lockAuditHead) together,
// then the insert and COMMIT together. Either way the head's row lock is
// held from the statement that takes it to the commit, as in insertAudit.
func (db *DB) appendOnly(ctx context.Context, events []*signet.AuditEvent) error {
	const op = "postgres.Update"
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		db.head.ok = false
		return storeError(op, withContext(ctx, err), "")
	}
	committed := false
	defer func() {
		if !committed {
			db.head.ok = false
			rollbackConn(c)
		}
		c.Release()
	}()
	var last int64
	var prev []byte
	if h := &db.head; h.ok && time.Now().After(h.skipUntil) {
		args := append(chainArgs(h.last, h.hash, events), h.last, h.hash)
		inserted, err := sendCommit(ctx, c, appendAuditAt, args)
		if err != nil {
			return err
		}
		switch inserted {
		case int64(len(events)):
			db.headRaces.known.Add(1)
			committed = true
			h.learn(args)
			return nil
		case 0:
		default:
			// The statement inserts all the events or none; anything else
			// is committed already and must not be inserted again.
			committed = true
			h.ok = false
			return signet.E(op, signet.Internal, "internal database error",
				fmt.Errorf("audit append at the known head inserted %d of %d events", inserted, len(events)))
		}
		// Another replica moved the head: nothing was inserted, and the
		// empty transaction committed. Read the head, under its lock.
		db.headRaces.moved.Add(1)
		h.skipUntil = time.Now().Add(headMovedPause)
	}
	var lock pgx.Batch
	lock.Queue(beginWrite)
	lock.Queue(lockAuditHead).QueryRow(func(row pgx.Row) error { return row.Scan(&last, &prev) })
	if err := c.SendBatch(ctx, &lock).Close(); err != nil {
		return storeError(op, withContext(ctx, err), "")
	}
	args := chainArgs(last, prev, events)
	if _, err := sendCommit(ctx, c, appendAudit, args); err != nil {
		return err
	}
	committed = true
	db.head.learn(args)
	return nil
}

// sendCommit sends the audit insert query with args and COMMIT together
// on c, beginning the transaction first unless one is open, and returns
// how many rows the query inserted or changed.
func sendCommit(ctx context.Context, c *pgxpool.Conn, query string, args []any) (int64, error) {
	const op = "postgres.Update"
	var b pgx.Batch
	begin := c.Conn().PgConn().TxStatus() == 'I' // no transaction open yet
	if begin {
		b.Queue(beginWrite)
	}
	b.Queue(query, args...)
	b.Queue("commit")
	br := c.SendBatch(ctx, &b)
	if begin {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return 0, storeError(op, withContext(ctx, err), "")
		}
	}
	ct, err := br.Exec()
	if err != nil {
		br.Close()
		return 0, appendFailed(ctx, err)
	}
	tag, err := br.Exec()
	if err != nil {
		br.Close()
		return 0, storeError(op, withContext(ctx, err), "")
	}
	if err := br.Close(); err != nil {
		return 0, storeError(op, withContext(ctx, err), "")
	}
	if tag.String() != "COMMIT" {
		// The server answers COMMIT of a failed transaction with ROLLBACK.
		return 0, signet.E(op, signet.Internal, "internal database error", fmt.Errorf("commit answered %q", tag.String()))
	}
	return ct.RowsAffected(), nil
}

// rollbackConn ends the transaction open on c, if any, so that the
// connection goes back to the pool clean; one that cannot roll back within
// cancelGrace is closed, and the pool drops it.
func rollbackConn(c *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	if _, err := c.Exec(ctx, "rollback"); err != nil {
		c.Conn().Close(ctx)
	}
}

// chainArgs numbers stamped events after the head (last, prev), chains
// them and returns the arguments of appendAudit.
func chainArgs(last int64, prev []byte, events []*signet.AuditEvent) []any {
	var head signet.AuditHash
	copy(head[:], prev)

	n := len(events)
	ids := make([]int64, n)
	at := make([]time.Time, n)
	expires := make([]pgtype.Timestamptz, n)
	for i, e := range events {
		ids[i] = last + 1 + int64(i)
		e.ID, e.Seq = ids[i], ids[i]
		at[i] = e.Time
		if !e.ExpiresAt.IsZero() {
			expires[i] = pgtype.Timestamptz{Time: e.ExpiresAt, Valid: true}
		}
	}
	head = auditlog.Chain(head, events...)

	prevs := make([][]byte, n)
	hashes := make([][]byte, n)
	var text [numAuditText][]string
	for c := range text {
		text[c] = make([]string, n)
	}
	for i, e := range events {
		prevs[i], hashes[i] = e.PrevHash[:], e.Hash[:]
		code := string(e.Code)
		for c, f := range auditFields(e, &code) {
			text[c][i] = escapeText(*f)
		}
	}
	args := []any{ids[n-1], head[:], ids, at, expires, prevs, hashes}
	for c := range text {
		args = append(args, text[c])
	}
	return args
}

// appendFailed maps the failure of appendAudit.
func appendFailed(ctx context.Context, err error) error {
	const op = "postgres.AppendAudit"
	err = storeError(op, withContext(ctx, err), "")
	if signet.ErrorCode(err) == signet.Conflict {
		// Only a change made outside signet puts an event past the
		// head: fail closed.
		return signet.E(op, signet.Internal, "internal database error",
			fmt.Errorf("audit log holds an entry past its recorded head (changed outside signet?): %w", err))
	}
	return err
}
