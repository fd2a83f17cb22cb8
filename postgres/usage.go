package postgres

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signetdev/signet"
)

// Usage events: what stores reported of the requests made with issued
// URLs (see signet.UsageEvent). They are data, not decisions, and are not
// part of the audit chain. Text is escaped as in the audit log (see
// escapeText): a store reports keys and addresses byte for byte.

var _ signet.UsageTx = (*tx)(nil)

const insertUsage = `INSERT INTO usage_events (occurred_at, source, source_request_id, grant_id,
		bucket, object_key, method, operation, status, bytes_sent, bytes_received, remote_addr, ingested_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
	ON CONFLICT (source, source_request_id) WHERE source_request_id <> '' DO NOTHING
	RETURNING id`

// AppendUsage stores events in one round trip, skipping those whose
// Source and RequestID match a stored event (or an earlier one of
// events), and returns how many it stored. Skipped events keep ID 0.
// Invalid if an event is nil or lacks a Time, Source or GrantID, or has
// negative byte counts; then none is stored.
func (t *tx) AppendUsage(events ...*signet.UsageEvent) (int, error) {
	const op = "postgres.AppendUsage"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	if err := signet.CheckUsageEvents(op, events); err != nil {
		return 0, err
	}
	for _, e := range events {
		if e.Status < -1<<31 || e.Status > 1<<31-1 { // the column is an integer
			return 0, invalid(op, "usage event status is out of range")
		}
	}
	if len(events) == 0 {
		return 0, nil
	}
	// Inside a batch, opens the function's savepoint (and the batch's
	// transaction) first, so that a failed insert rolls back this
	// function alone.
	if err := t.prepare(); err != nil {
		return 0, err
	}
	now := t.db.now()
	var b pgx.Batch
	for _, e := range events {
		e.Time = normalize(e.Time)
		if e.IngestedAt.IsZero() {
			e.IngestedAt = now
		}
		e.IngestedAt = normalize(e.IngestedAt)
		e.ID = 0
		b.Queue(insertUsage, e.Time, escapeText(e.Source), escapeText(e.RequestID), escapeText(e.GrantID),
			escapeText(e.Bucket), escapeText(e.ObjectKey), escapeText(e.Method), escapeText(e.Operation),
			e.Status, e.BytesSent, e.BytesReceived, escapeText(e.RemoteAddr), e.IngestedAt)
	}
	br := t.tx.SendBatch(t.ctx, &b)
	n := 0
	for _, e := range events {
		err := br.QueryRow().Scan(&e.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // a duplicate
		case err != nil:
			br.Close()
			return 0, t.fail(op, err, "", "")
		default:
			n++
		}
	}
	if err := br.Close(); err != nil {
		return 0, t.fail(op, err, "", "")
	}
	return n, nil
}

// IssuedGrants returns at most f.Limit allowed audit events with a grant
// id matching f (100 when zero or less, never more than 1000), in
// ascending ID order.
func (t *tx) IssuedGrants(f signet.GrantFilter) ([]*signet.AuditEvent, error) {
	const op = "postgres.IssuedGrants"
	if f.Teams != nil && len(f.Teams) == 0 {
		return nil, nil
	}
	limit := signet.AuditPageLimit(f.Limit)
	var b strings.Builder
	b.WriteString(auditQuery + " WHERE grant_id <> '' AND outcome = $1 AND id > $2")
	args := []any{signet.OutcomeAllowed, f.AfterID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
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
	if !f.Since.IsZero() {
		b.WriteString(" AND occurred_at >= " + arg(normalize(f.Since)))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND occurred_at < " + arg(normalize(f.Until)))
	}
	b.WriteString(" ORDER BY id LIMIT " + arg(limit))
	rows, err := t.query(b.String(), args...)
	evs, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return evs, nil
}

// GrantUsage sums the usage events of grantIDs per grant and address.
func (t *tx) GrantUsage(grantIDs []string) ([]*signet.AddressUsage, error) {
	const op = "postgres.GrantUsage"
	if len(grantIDs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(grantIDs))
	for i, g := range grantIDs {
		ids[i] = escapeText(g)
	}
	rows, err := t.query(`SELECT grant_id, remote_addr,
			count(*) FILTER (WHERE status BETWEEN 100 AND 399),
			count(*) FILTER (WHERE status NOT BETWEEN 100 AND 399),
			sum(bytes_sent)::bigint, sum(bytes_received)::bigint, min(occurred_at), max(occurred_at)
		FROM usage_events WHERE grant_id = ANY($1::text[])
		GROUP BY grant_id, remote_addr`, ids)
	us, err := collect(rows, err, func(s scanner) (*signet.AddressUsage, error) {
		var u signet.AddressUsage
		var first, last time.Time
		err := s.Scan(&u.GrantID, &u.RemoteAddr, &u.Uses, &u.Failed, &u.BytesSent, &u.BytesReceived, &first, &last)
		u.GrantID, u.RemoteAddr = unescapeText(u.GrantID), unescapeText(u.RemoteAddr)
		u.First, u.Last = first.UTC(), last.UTC()
		return &u, err
	})
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return us, nil
}

// PruneOrphanUsage deletes the usage events served before before whose
// grant id no audit event carries (auditlog.UsagePruner): those of grants
// whose entries were pruned, and of grants signet never issued. The term
// that excludes empty grant ids lets the planner probe the partial index
// audit_events_grant for each old event (it hashes the log's grant ids
// instead when many events are old). The application role may not (it
// only appends): PermissionDenied.
func (t *tx) PruneOrphanUsage(before time.Time) (int64, error) {
	const op = "postgres.PruneOrphanUsage"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	tag, err := t.exec(pruneOrphanUsage, normalize(before))
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
			return 0, signet.E(op, signet.PermissionDenied, "the database role may not delete usage events; "+
				"prune as the owner of signet's tables (signet audit prune --db URL)", err)
		}
		return 0, t.fail(op, err, "", "")
	}
	return tag.RowsAffected(), nil
}

const pruneOrphanUsage = `DELETE FROM usage_events u WHERE u.occurred_at < $1
	AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.grant_id = u.grant_id AND a.grant_id <> '')`
