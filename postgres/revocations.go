package postgres

import (
	"fmt"
	"time"

	"github.com/signetdev/signet"
	"github.com/signetdev/signet/internal/sqlstore"
)

const revocationColumns = "id, team, user_name, key_id, issued_after, issued_before, created_at, created_by"

func scanRevocation(s scanner) (*signet.Revocation, error) {
	var r signet.Revocation
	var after *time.Time
	if err := s.Scan(&r.ID, &r.Team, &r.User, &r.KeyID, &after, &r.IssuedBefore, &r.CreatedAt, &r.CreatedBy); err != nil {
		return nil, err
	}
	if after != nil {
		r.IssuedAfter = after.UTC()
	}
	r.IssuedBefore, r.CreatedAt = r.IssuedBefore.UTC(), r.CreatedAt.UTC()
	return &r, nil
}

// CreateRevocation inserts r, setting CreatedAt when zero. Invalid if its
// ID or IssuedBefore is missing, IssuedAfter is not before IssuedBefore,
// or a name is not UTF-8; Conflict if the ID is taken.
func (t *tx) CreateRevocation(r *signet.Revocation) error {
	const op = "postgres.CreateRevocation"
	if err := t.writable(op); err != nil {
		return err
	}
	if err := sqlstore.CheckRevocation(op, r); err != nil {
		return err
	}
	if err := checkText(op, "revocation id", r.ID, "team", r.Team, "user", r.User, "key", r.KeyID, "created_by", r.CreatedBy); err != nil {
		return err
	}
	after, _ := optTime(&r.IssuedAfter)
	before, created := normalize(r.IssuedBefore), t.stamp(r.CreatedAt)
	tag, err := t.exec(`INSERT INTO revocations (`+revocationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT DO NOTHING`, r.ID, r.Team, r.User, r.KeyID, after, before, created, r.CreatedBy)
	if err != nil {
		return t.fail(op, err, "", "")
	}
	if tag.RowsAffected() == 0 {
		return signet.E(op, signet.Conflict, fmt.Sprintf("revocation %q already exists", r.ID), nil)
	}
	if after != nil {
		r.IssuedAfter = *after
	}
	r.IssuedBefore, r.CreatedAt = before, created
	return nil
}

// Revocations lists the revocations whose IssuedBefore is after since (all
// when since is zero), ordered by CreatedAt, then ID.
func (t *tx) Revocations(since time.Time) ([]*signet.Revocation, error) {
	const op = "postgres.Revocations"
	q, args := "SELECT "+revocationColumns+" FROM revocations", []any{}
	if !since.IsZero() {
		q += " WHERE issued_before > $1"
		args = append(args, normalize(since))
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
	const op = "postgres.Grant"
	if id == "" {
		return nil, notFound(op, "no grant id")
	}
	g := &signet.Grant{ID: id}
	err := t.queryRow(`SELECT team, actor_user, actor_key, occurred_at FROM audit_events
		WHERE grant_id = $1 AND grant_id <> '' AND outcome = $2 ORDER BY id LIMIT 1`,
		escapeText(id), escapeText(signet.OutcomeAllowed)).
		Scan(&g.Team, &g.User, &g.KeyID, &g.IssuedAt)
	if err != nil {
		return nil, t.fail(op, err, "", fmt.Sprintf("grant %q not found", id))
	}
	g.Team, g.User, g.KeyID = unescapeText(g.Team), unescapeText(g.User), unescapeText(g.KeyID)
	g.IssuedAt = g.IssuedAt.UTC()
	return g, nil
}
