package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/auditlog"
	"github.com/signetdev/signet/internal/sqlstore"
)

// auditTextColumns are the text columns of audit_events, in the order
// AppendAudit passes them.
const auditTextColumns = `request_id, actor_user, actor_key, team, action, outcome, code, reason,
	store, bucket, object_key, upload_id, grant_id, method, client_ip, user_agent, target`

const numAuditText = 17

// lockAuditHead takes the row lock of audit_head, which the transaction
// keeps until it commits or rolls back, and reads the head of the chain:
// the Seq (ID) and Hash of the last event appended.
//
// Appends therefore run one at a time from here to their commit, across
// all replicas, and:
//
//   - IDs follow commit order. PostgreSQL releases a transaction's locks
//     only after its commit is visible to new snapshots, so by the time a
//     transaction can reserve IDs above another's, the other's events are
//     visible. A reader that sees event n sees every event below n, and
//     paging with AfterID never skips an event that commits late. A
//     sequence, whose values are handed out at insert time and not in
//     commit order, cannot promise that: a transaction holding ID 7 may
//     commit after a reader has seen ID 8 and moved its cursor past 7.
//   - IDs have no gaps and the chain no forks: a rolled-back append undoes
//     its move of the head, and the next append links to the head as the
//     last committed append left it.
//   - Under READ COMMITTED, a SELECT FOR UPDATE that waited for the lock
//     returns the row as the previous holder committed it.
//
// The price is that appends do not overlap from the lock to the commit,
// WAL flush included, so audited commits are bounded by one flush each
// however many replicas write; signet appends last in its transactions to
// keep that window short, and group commit (commit.go) appends the events
// of many Updates under one lock and one flush. The counter row was preferred to an advisory
// lock plus a sequence because it gives gap-free IDs, as SQLite's
// AUTOINCREMENT does, does not depend on the sequence's CACHE setting, and
// holds the hash the next append links to.
const lockAuditHead = `SELECT last_id, hash FROM audit_head FOR UPDATE`

// insertEvents inserts events from one array per column, $3 to $24 (the
// arguments chainArgs builds, after the head's $1 and $2).
const insertEvents = `INSERT INTO audit_events (id, occurred_at, expires_at, prev_hash, hash, ` + auditTextColumns + `)
	SELECT * FROM unnest($3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::bytea[], $7::bytea[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
		$15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],
		$22::text[], $23::text[], $24::text[])`

// appendAudit inserts events and moves the head to $1 (last ID) and $2
// (its hash), in one statement.
const appendAudit = `WITH appended AS (` + insertEvents + `)
	UPDATE audit_head SET last_id = $1, hash = $2`

// appendAuditAt is appendAudit for a head the writer believes it knows:
// it moves the head from $25 (last ID) and $26 (its hash) only, taking its
// row lock, and inserts the events only if it did, so a head another
// replica has moved (the lock waited for, the row found changed) inserts
// nothing. Inserting no row is how the writer learns it was wrong.
const appendAuditAt = `WITH moved AS (
		UPDATE audit_head SET last_id = $1, hash = $2 WHERE last_id = $25 AND hash = $26 RETURNING 1
	)
	` + insertEvents + `
	WHERE EXISTS (SELECT 1 FROM moved)`

const auditQuery = `SELECT id, occurred_at, expires_at, prev_hash, hash, ` + auditTextColumns + ` FROM audit_events`

// auditFields returns pointers to e's text fields in the order of
// auditTextColumns, with code standing in for e.Code.
func auditFields(e *signet.AuditEvent, code *string) [numAuditText]*string {
	return [numAuditText]*string{&e.RequestID, &e.ActorUser, &e.ActorKey, &e.Team, &e.Action, &e.Outcome,
		code, &e.Reason, &e.Store, &e.Bucket, &e.ObjectKey, &e.UploadID, &e.GrantID, &e.Method,
		&e.ClientIP, &e.UserAgent, &e.Target}
}

func scanAudit(s scanner) (*signet.AuditEvent, error) {
	var e signet.AuditEvent
	var expires *time.Time
	var prev, hash []byte
	var text [numAuditText]string
	dest := []any{&e.ID, &e.Time, &expires, &prev, &hash}
	for i := range text {
		dest = append(dest, &text[i])
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	var code string
	for i, f := range auditFields(&e, &code) {
		*f = unescapeText(text[i])
	}
	e.Code = signet.Code(code)
	e.Seq = e.ID
	e.Time = e.Time.UTC()
	if expires != nil {
		e.ExpiresAt = expires.UTC()
	}
	// A missing hash reads as zero, which verification reports as a
	// mismatch at this entry.
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
	var h signet.AuditHead
	var hash []byte
	if err := t.queryRow("SELECT last_id, hash FROM audit_head").Scan(&h.Seq, &hash); err != nil {
		return h, t.fail("postgres.AuditHead", err, "", "")
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// AppendAudit appends events to the audit log in order, setting their IDs
// and Seqs (equal), PrevHash and Hash, their Time when zero, and times to
// the stored precision. Invalid if an event is nil or lacks an Action or
// Outcome; then none is appended. Every string is kept byte for byte,
// including NUL and invalid UTF-8 (see escapeText), and hashed as such.
// Inside Update the events are inserted at the end of the group commit's
// batch (see commit.go), and their IDs and hashes are set by the time
// Update returns.
func (t *tx) AppendAudit(events ...*signet.AuditEvent) error {
	const op = "postgres.AppendAudit"
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

// Audit returns at most f.Limit events matching f (100 when zero or less,
// never more than 1000), in ascending ID order.
func (t *tx) Audit(f signet.AuditFilter) ([]*signet.AuditEvent, error) {
	const op = "postgres.Audit"
	if err := f.Check(); err != nil {
		err.(*signet.Error).Op = op
		return nil, err
	}
	if f.Teams != nil && len(f.Teams) == 0 {
		return nil, nil
	}
	limit := signet.AuditPageLimit(f.Limit)
	evs, err := sqlstore.AuditPage(f, limit, t.queryAudit, func(afterID int64) (int64, bool, error) {
		return t.sinceStart(ceilMicro(f.Since), afterID)
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
	b.WriteString(auditQuery + " WHERE id > $1")
	args := []any{f.AfterID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if upTo > 0 {
		b.WriteString(" AND id <= " + arg(upTo))
	}
	if f.Team != "" {
		b.WriteString(" AND team = " + arg(escapeText(f.Team)))
	}
	if f.Teams != nil {
		teams := make([]string, len(f.Teams))
		for i, team := range f.Teams {
			teams[i] = escapeText(team)
		}
		b.WriteString(" AND team = ANY(" + arg(teams) + "::text[])")
	}
	if f.Actor != "" {
		b.WriteString(" AND actor_user = " + arg(escapeText(f.Actor)))
	}
	if f.Action != "" {
		b.WriteString(" AND action = " + arg(escapeText(f.Action)))
	}
	if f.Outcome != "" {
		b.WriteString(" AND outcome = " + arg(escapeText(f.Outcome)))
	}
	if f.KeyPrefix != "" {
		// escapeText works character by character and is injective, so
		// for a prefix that does not end inside a character (f.Check)
		// the escaped prefix starts the escaped key exactly when the
		// prefix starts the key.
		b.WriteString(" AND starts_with(object_key, " + arg(escapeText(f.KeyPrefix)) + ")")
	}
	if !f.Since.IsZero() {
		b.WriteString(" AND occurred_at >= " + arg(ceilMicro(f.Since)))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND occurred_at < " + arg(ceilMicro(f.Until)))
	}
	b.WriteString(" ORDER BY id LIMIT " + arg(limit))
	rows, err := t.query(b.String(), args...)
	return collect(rows, err, scanAudit)
}

// PruneAudit deletes the audit events with Seq at or below through, for
// retention (auditlog.Retention), and returns how many it deleted. The
// head stays as it is, and is not locked: appends and this delete touch
// different rows. PermissionDenied for a role without DELETE on the log,
// such as the one `signet migrate --app-role` sets up.
func (t *tx) PruneAudit(through int64) (int64, error) {
	const op = "postgres.PruneAudit"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	tag, err := t.exec("DELETE FROM audit_events WHERE id <= $1", through)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
			return 0, signet.E(op, signet.PermissionDenied, "the database role may not delete from the audit log; "+
				"prune as the owner of signet's tables (signet audit prune --db URL)", err)
		}
		return 0, t.fail(op, err, "", "")
	}
	return tag.RowsAffected(), nil
}

// sinceStart finds, through the time index, the lowest id above afterID
// of an entry whose time is at or after since, or 0 if there is none,
// when fewer than sinceLookup entries after afterID are that recent: ok
// reports that it looked them all up.
func (t *tx) sinceStart(since time.Time, afterID int64) (lo int64, ok bool, err error) {
	var first *int64
	var n int
	// The order makes the plan an index scan from since, whatever the
	// planner guesses of a generic plan's selectivity.
	err = t.queryRow(`SELECT min(id), count(*) FROM (SELECT id FROM audit_events
		WHERE occurred_at >= $1 AND id > $2 ORDER BY occurred_at LIMIT $3) s`, since, afterID, sinceLookup).Scan(&first, &n)
	if err != nil || n >= sinceLookup || first == nil {
		return 0, err == nil && n == 0, err
	}
	return *first, true, nil
}

// sinceLookup bounds the entries of the time index sinceStart reads.
// A variable, for tests.
var sinceLookup = 100_000

// ceilMicro returns v in UTC rounded up to the microsecond, the stored
// precision: the stored instants at or after ceilMicro(v) are those at or
// after v.
func ceilMicro(v time.Time) time.Time {
	t := v.UTC().Truncate(time.Microsecond)
	if t.Before(v) {
		t = t.Add(time.Microsecond)
	}
	return t
}

// chainExisting runs with migration 0004, which adds the chain: it links
// the events already in the log, in ID order, as they stand (their IDs
// become their Seqs), and sets the head. The chain so attests to the
// entries from the migration on; what happened to them before it cannot
// be known. IDs were gap-free before (see lockAuditHead), so a gap among
// them was made by hand, and verification reports it.
func chainExisting(ctx context.Context, ptx pgx.Tx) error {
	var head signet.AuditHead
	for {
		rows, err := ptx.Query(ctx, auditQuery+" WHERE id > $1 ORDER BY id LIMIT 10000", head.Seq)
		evs, err := collect(rows, err, scanAudit)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		head.Hash = auditlog.Chain(head.Hash, evs...)
		ids := make([]int64, len(evs))
		prevs := make([][]byte, len(evs))
		hashes := make([][]byte, len(evs))
		for i, e := range evs {
			ids[i], prevs[i], hashes[i] = e.ID, e.PrevHash[:], e.Hash[:]
		}
		if _, err := ptx.Exec(ctx, `UPDATE audit_events a SET prev_hash = u.prev_hash, hash = u.hash
			FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, prev_hash, hash)
			WHERE a.id = u.id`, ids, prevs, hashes); err != nil {
			return err
		}
		head.Seq = evs[len(evs)-1].Seq
	}
	// The head's last_id may be above the last event if events were
	// deleted by hand; keep it, so that verification reports the gap.
	_, err := ptx.Exec(ctx, "UPDATE audit_head SET last_id = greatest(last_id, $1), hash = $2", head.Seq, head.Hash[:])
	return err
}
