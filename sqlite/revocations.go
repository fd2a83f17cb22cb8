package sqlite

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
)

const revocationColumns = "id, team, user_name, key_id, issued_after, issued_before, created_at, created_by"

func scanRevocation(s scanner) (*signet.Revocation, error) {
	var r signet.Revocation
	var after sql.NullInt64
	var before, created int64
	if err := s.Scan(&r.ID, &r.Team, &r.User, &r.KeyID, &after, &before, &created, &r.CreatedBy); err != nil {
		return nil, err
	}
	if after.Valid {
		r.IssuedAfter = fromMicros(after.Int64)
	}
	r.IssuedBefore, r.CreatedAt = fromMicros(before), fromMicros(created)
	return &r, nil
}

// CreateRevocation inserts r, setting CreatedAt when zero. Invalid if its
// ID or IssuedBefore is missing or IssuedAfter is not before IssuedBefore;
// Conflict if the ID is taken.
func (t *tx) CreateRevocation(r *signet.Revocation) error {
	const op = "sqlite.CreateRevocation"
	if err := t.writable(op); err != nil {
		return err
	}
	if err := sqlstore.CheckRevocation(op, r); err != nil {
		return err
	}
	after, _ := optMicros(&r.IssuedAfter)
	before, created := normalize(r.IssuedBefore), t.stamp(r.CreatedAt)
	_, err := t.exec(`INSERT INTO revocations (`+revocationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Team, r.User, r.KeyID, after, micros(before), micros(created), r.CreatedBy)
	if err != nil {
		return t.fail(op, err, fmt.Sprintf("revocation %q already exists", r.ID), "")
	}
	if !r.IssuedAfter.IsZero() {
		r.IssuedAfter = normalize(r.IssuedAfter)
	}
	r.IssuedBefore, r.CreatedAt = before, created
	return nil
}

// Revocations lists the revocations whose IssuedBefore is after since (all
// when since is zero), ordered by CreatedAt, then ID.
func (t *tx) Revocations(since time.Time) ([]*signet.Revocation, error) {
	const op = "sqlite.Revocations"
	q, args := "SELECT "+revocationColumns+" FROM revocations", []any{}
	if !since.IsZero() {
		q += " WHERE issued_before > ?"
		args = append(args, micros(normalize(since)))
	}
	rows, err := t.query(q+" ORDER BY created_at, id", args...)
	rs, err := collect(rows, err, scanRevocation)
	if err != nil {
		return nil, t.fail(op, err, "", "")
	}
	return rs, nil
}

// Grant returns what the audit log recorded of a grant: the first allowed
// event carrying its correlation id. NotFound.
func (t *tx) Grant(id string) (*signet.Grant, error) {
	const op = "sqlite.Grant"
	if id == "" {
		return nil, signet.E(op, signet.NotFound, "no grant id", nil)
	}
	g := &signet.Grant{ID: id}
	var at int64
	err := t.queryRow(`SELECT team, actor_user, actor_key, occurred_at FROM audit_events
		WHERE grant_id = ? AND grant_id <> '' AND outcome = ? ORDER BY id LIMIT 1`, id, signet.OutcomeAllowed).
		Scan(&g.Team, &g.User, &g.KeyID, &at)
	if err != nil {
		return nil, t.fail(op, err, "", fmt.Sprintf("grant %q not found", id))
	}
	g.IssuedAt = fromMicros(at)
	return g, nil
}
