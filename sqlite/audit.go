package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/sqlstore"
)

// The audit log is a hash chain (see package auditlog). The one row of
// audit_head holds the Seq and Hash of the last event appended. An append
// numbers its events from the next Seq on (the event's ID is its Seq),
// links them with auditlog.Chain, inserts them and moves the head, all in
// the transaction of the Update. Appends are serialised by the single
// writer. Group commit (commit.go) reads audit_head once per batch, moves
// the head in memory and writes it back once, before the commit; a
// function it rolls back to its savepoint takes its rows and its move of
// the head with it, so the next function continues from the head as it
// was: no gap and no fork. Nothing is cached outside the transaction, so
// nothing can go stale; inside Update, read the head with AuditHead, not
// from the table.

const insertAudit = `INSERT INTO audit_events (id, occurred_at, request_id, actor_user, actor_key, team,
		action, outcome, code, reason, store, bucket, object_key, upload_id, grant_id, method,
		expires_at, client_ip, user_agent, target, prev_hash, hash)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const auditQuery = `SELECT id, occurred_at, request_id, actor_user, actor_key, team,
	action, outcome, code, reason, store, bucket, object_key, upload_id, grant_id, method,
	expires_at, client_ip, user_agent, target, prev_hash, hash
	FROM audit_events`

func scanAudit(s scanner) (*signet.AuditEvent, error) {
	var e signet.AuditEvent
	var at int64
	var expires sql.NullInt64
	var prev, hash []byte
	if err := s.Scan(&e.ID, &at, &e.RequestID, &e.ActorUser, &e.ActorKey, &e.Team,
		&e.Action, &e.Outcome, &e.Code, &e.Reason, &e.Store, &e.Bucket, &e.ObjectKey, &e.UploadID,
		&e.GrantID, &e.Method, &expires, &e.ClientIP, &e.UserAgent, &e.Target, &prev, &hash); err != nil {
		return nil, err
	}
	e.Seq = e.ID
	e.Time = fromMicros(at)
	if p := fromOptMicros(expires); p != nil {
		e.ExpiresAt = *p
	}
	// A missing or malformed hash reads as zero, which verification
	// reports as a mismatch at this entry.
	if len(prev) == len(e.PrevHash) {
		copy(e.PrevHash[:], prev)
	}
	if len(hash) == len(e.Hash) {
		copy(e.Hash[:], hash)
	}
	return &e, nil
}

// AuditHead returns the Seq and Hash of the last event appended, from
// audit_head.
func (t *tx) AuditHead() (signet.AuditHead, error) {
	if t.batch != nil {
		// Inside group commit the head moves in memory and is written
		// once, at the end of the batch (commit.go).
		t.begin()
		if t.failed != nil {
			return signet.AuditHead{}, t.failed
		}
		return t.batchHead()
	}
	var h signet.AuditHead
	var hash []byte
	if err := t.queryRow("SELECT last_id, hash FROM audit_head").Scan(&h.Seq, &hash); err != nil {
		return h, t.fail("sqlite.AuditHead", err, "", "")
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// AppendAudit appends events to the audit log in order, setting their IDs
// and Seqs (equal), PrevHash and Hash, their Time when zero, and times to
// the stored precision. Invalid if an event is nil or lacks an Action or
// Outcome; then none is appended.
func (t *tx) AppendAudit(events ...*signet.AuditEvent) error {
	const op = "sqlite.AppendAudit"
	if err := t.writable(op); err != nil {
		return err
	}
	if err := signet.CheckAuditEvents(op, events); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	return t.appendAudit(events)
}

// auditFail maps a failed insert into the log. An event already holding
// the next Seq means the log and its head disagree, which only a change
// made outside signet causes: the append fails closed, as Internal.
func (t *tx) auditFail(op string, err error) error {
	e := t.fail(op, err, "", "")
	if signet.ErrorCode(e) == signet.Conflict {
		return signet.E(op, signet.Internal, "internal database error",
			fmt.Errorf("audit log holds an entry past its recorded head (changed outside signet?): %w", err))
	}
	return e
}

// Audit returns at most f.Limit events matching f (100 when zero or less,
// never more than 1000), in ascending ID order.
func (t *tx) Audit(f signet.AuditFilter) ([]*signet.AuditEvent, error) {
	const op = "sqlite.Audit"
	if err := f.Check(); err != nil {
		err.(*signet.Error).Op = op
		return nil, err
	}
	if f.Teams != nil && len(f.Teams) == 0 {
		return nil, nil
	}
	limit := signet.AuditPageLimit(f.Limit)
	evs, err := sqlstore.AuditPage(f, limit, t.queryAudit, func(afterID int64) (int64, bool, error) {
		return t.sinceStart(ceilMicros(f.Since), afterID)
	})
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return evs, nil
}

// queryAudit returns at most limit events matching f, with IDs up to
// upTo when it is not 0.
func (t *tx) queryAudit(f signet.AuditFilter, upTo int64, limit int) ([]*signet.AuditEvent, error) {
	var b strings.Builder
	b.WriteString(auditQuery + " WHERE id > ?")
	args := []any{f.AfterID}
	if upTo > 0 {
		b.WriteString(" AND id <= ?")
		args = append(args, upTo)
	}
	if f.Team != "" {
		b.WriteString(" AND team = ?")
		args = append(args, f.Team)
	}
	if f.Teams != nil {
		b.WriteString(" AND team IN (?" + strings.Repeat(", ?", len(f.Teams)-1) + ")")
		for _, team := range f.Teams {
			args = append(args, team)
		}
	}
	if f.Actor != "" {
		b.WriteString(" AND actor_user = ?")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		b.WriteString(" AND action = ?")
		args = append(args, f.Action)
	}
	// Outcome, prefix and time are checked on the rows an index, or the
	// id order, yields. The unary + keeps the planner from trading the id
	// order of a page for an index on another column (migration 0008),
	// which would sort every match for each page.
	if f.Outcome != "" {
		b.WriteString(" AND +outcome = ?")
		args = append(args, f.Outcome)
	}
	if f.KeyPrefix != "" {
		// A range in byte order (BINARY collation compares with
		// memcmp), exact for any bytes.
		b.WriteString(" AND +object_key >= ?")
		args = append(args, f.KeyPrefix)
		if end, ok := prefixEnd(f.KeyPrefix); ok {
			b.WriteString(" AND +object_key < ?")
			args = append(args, end)
		}
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND +occurred_at >= ?")
		args = append(args, ceilMicros(f.Since))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND +occurred_at < ?")
		args = append(args, ceilMicros(f.Until))
	}
	b.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, limit)
	rows, err := t.query(b.String(), args...)
	return collect(rows, err, scanAudit)
}

// PruneAudit deletes the audit events with Seq at or below through, for
// retention (auditlog.Retention), and returns how many it deleted. The
// head stays as it is.
func (t *tx) PruneAudit(through int64) (int64, error) {
	const op = "sqlite.PruneAudit"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	res, err := t.exec("DELETE FROM audit_events WHERE id <= ?", through)
	if err != nil {
		return 0, t.fail(op, err, "", "")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.fail(op, err, "", "")
	}
	return n, nil
}

// sinceStart finds, through the time index, the lowest id above afterID
// of an entry whose time is at or after since (microseconds), or 0 if
// there is none, when fewer than sinceLookup entries after afterID are
// that recent: ok reports that it looked them all up.
func (t *tx) sinceStart(since, afterID int64) (lo int64, ok bool, err error) {
	var first sql.NullInt64
	var n int
	err = t.queryRow(`SELECT min(id), count(*) FROM (SELECT id FROM audit_events INDEXED BY audit_events_time
		WHERE occurred_at >= ? AND id > ? LIMIT ?)`, since, afterID, sinceLookup).Scan(&first, &n)
	if err != nil || n >= sinceLookup {
		return 0, false, err
	}
	return first.Int64, true, nil
}

// sinceLookup bounds the entries of the time index sinceStart reads.
// A variable, for tests.
var sinceLookup = 100_000

// prefixEnd returns the least string greater than every string that
// starts with prefix, in byte order, and false if there is none (prefix is
// empty or all 0xff bytes): the exclusive end of the prefix's range.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// ceilMicros returns v in microseconds since the epoch, rounded up: the
// stored instants at or after ceilMicros(v) are those at or after v.
func ceilMicros(v time.Time) int64 {
	us := v.UnixMicro()
	if v.Sub(time.UnixMicro(us)) > 0 {
		us++
	}
	return us
}

// chainExisting runs with migration 0004, which adds the chain: it links
// the events already in the log, in ID order, as they stand (their IDs
// become their Seqs), and sets the head. The chain so attests to the
// entries from the migration on; what happened to them before it cannot
// be known. IDs were gap-free before (AUTOINCREMENT inside transactions),
// so a gap among them was made by hand, and verification reports it.
func chainExisting(ctx context.Context, stx *sql.Tx) error {
	t := &tx{ctx: ctx, tx: stx}
	var head signet.AuditHead
	upd, err := stx.PrepareContext(ctx, "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?")
	if err != nil {
		return err
	}
	defer upd.Close()
	for {
		rows, err := t.query(auditQuery+" WHERE id > ? ORDER BY id LIMIT 10000", head.Seq)
		evs, err := collect(rows, err, scanAudit)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		head.Hash = auditlog.Chain(head.Hash, evs...)
		for _, e := range evs {
			if _, err := upd.ExecContext(ctx, e.PrevHash[:], e.Hash[:], e.ID); err != nil {
				return err
			}
		}
		head.Seq = evs[len(evs)-1].Seq
	}
	// AUTOINCREMENT's counter is above the last event if events were
	// deleted by hand; keep it, so that verification reports the gap.
	_, err = stx.ExecContext(ctx, `UPDATE audit_head SET hash = ?, last_id = max(?,
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0))`, head.Hash[:], head.Seq)
	if err != nil {
		return errors.Join(errors.New("setting the audit head"), err)
	}
	return nil
}
