package sqlite

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/signetdev/signet"
)

// Usage events: what stores reported of the requests made with issued
// URLs (see signet.UsageEvent). They are data, not decisions, and are not
// part of the audit chain.

var _ signet.UsageTx = (*tx)(nil)

const insertUsage = `INSERT INTO usage_events (occurred_at, source, source_request_id, grant_id,
		bucket, object_key, method, operation, status, bytes_sent, bytes_received, remote_addr, ingested_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (source, source_request_id) WHERE source_request_id <> '' DO NOTHING
	RETURNING id`

// AppendUsage stores events, skipping those whose Source and RequestID
// match a stored event (or an earlier one of events), and returns how
// many it stored. Skipped events keep ID 0. Invalid if an event is nil or
// lacks a Time, Source or GrantID, or has negative byte counts; then none
// is stored.
func (t *tx) AppendUsage(events ...*signet.UsageEvent) (int, error) {
	const op = "sqlite.AppendUsage"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	if err := signet.CheckUsageEvents(op, events); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	st, err := t.tx.PrepareContext(t.ctx, insertUsage)
	if err != nil {
		return 0, t.fail(op, err, "", "")
	}
	defer st.Close()
	now := t.db.now()
	n := 0
	for _, e := range events {
		e.Time = normalize(e.Time)
		if e.IngestedAt.IsZero() {
			e.IngestedAt = now
		}
		e.IngestedAt = normalize(e.IngestedAt)
		e.ID = 0
		err := st.QueryRowContext(t.ctx, micros(e.Time), e.Source, e.RequestID, e.GrantID,
			e.Bucket, e.ObjectKey, e.Method, e.Operation, e.Status, e.BytesSent, e.BytesReceived,
			e.RemoteAddr, micros(e.IngestedAt)).Scan(&e.ID)
		switch {
		case errors.Is(err, sql.ErrNoRows): // a duplicate
		case err != nil:
			return 0, t.fail(op, err, "", "")
		default:
			n++
		}
	}
	return n, nil
}

// IssuedGrants returns at most f.Limit allowed audit events with a grant
// id matching f (100 when zero or less, never more than 1000), in
// ascending ID order.
func (t *tx) IssuedGrants(f signet.GrantFilter) ([]*signet.AuditEvent, error) {
	const op = "sqlite.IssuedGrants"
	if f.Teams != nil && len(f.Teams) == 0 {
		return nil, nil
	}
	limit := signet.AuditPageLimit(f.Limit)
	var b strings.Builder
	b.WriteString(auditQuery + " WHERE grant_id <> '' AND outcome = ? AND id > ?")
	args := []any{signet.OutcomeAllowed, f.AfterID}
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
	if !f.Since.IsZero() {
		b.WriteString(" AND occurred_at >= ?")
		args = append(args, micros(normalize(f.Since)))
	}
	if !f.Until.IsZero() {
		b.WriteString(" AND occurred_at < ?")
		args = append(args, micros(normalize(f.Until)))
	}
	b.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, limit)
	rows, err := t.query(b.String(), args...)
	evs, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return evs, nil
}

// GrantUsage sums the usage events of grantIDs per grant and address.
func (t *tx) GrantUsage(grantIDs []string) ([]*signet.AddressUsage, error) {
	const op = "sqlite.GrantUsage"
	var out []*signet.AddressUsage
	for len(grantIDs) > 0 {
		chunk := grantIDs[:min(len(grantIDs), 500)]
		grantIDs = grantIDs[len(chunk):]
		args := make([]any, len(chunk))
		for i, g := range chunk {
			args[i] = g
		}
		rows, err := t.query(`SELECT grant_id, remote_addr,
				sum(CASE WHEN status BETWEEN 100 AND 399 THEN 1 ELSE 0 END),
				sum(CASE WHEN status BETWEEN 100 AND 399 THEN 0 ELSE 1 END),
				sum(bytes_sent), sum(bytes_received), min(occurred_at), max(occurred_at)
			FROM usage_events WHERE grant_id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)
			GROUP BY grant_id, remote_addr`, args...)
		us, err := collect(rows, err, func(s scanner) (*signet.AddressUsage, error) {
			var u signet.AddressUsage
			var first, last int64
			err := s.Scan(&u.GrantID, &u.RemoteAddr, &u.Uses, &u.Failed, &u.BytesSent, &u.BytesReceived, &first, &last)
			u.First, u.Last = fromMicros(first), fromMicros(last)
			return &u, err
		})
		if err != nil {
			return nil, t.fail(op, err, "", "")
		}
		out = append(out, us...)
	}
	return out, nil
}

// PruneOrphanUsage deletes the usage events served before before whose
// grant id no audit event carries (auditlog.UsagePruner): those of grants
// whose entries were pruned, and of grants signet never issued. Each old
// event costs a probe of the partial index audit_events_grant (the term
// that excludes empty grant ids lets SQLite use it).
func (t *tx) PruneOrphanUsage(before time.Time) (int64, error) {
	const op = "sqlite.PruneOrphanUsage"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	res, err := t.tx.ExecContext(t.ctx, pruneOrphanUsage, micros(normalize(before)))
	if err != nil {
		return 0, t.fail(op, err, "", "")
	}
	return res.RowsAffected()
}

const pruneOrphanUsage = `DELETE FROM usage_events WHERE occurred_at < ?
	AND NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.grant_id = usage_events.grant_id AND a.grant_id <> '')`
