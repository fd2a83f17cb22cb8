-- Revocations of issued URLs (see docs/security.md, "Revocation"). A
-- revocation matches a grant when every selector it sets matches: team,
-- user (the actor who was issued the grant), key (the API key that asked
-- for it), and the grant's issue time in [issued_after, issued_before).
-- issued_before is always set (the revocation's own time unless an
-- earlier one was asked for); issued_after is NULL when unbounded. Names
-- are not foreign keys: a revocation must outlive what it names.
CREATE TABLE revocations (
	id            TEXT    PRIMARY KEY,
	team          TEXT    NOT NULL DEFAULT '',
	user_name     TEXT    NOT NULL DEFAULT '',
	key_id        TEXT    NOT NULL DEFAULT '',
	issued_after  INTEGER,
	issued_before INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	created_by    TEXT    NOT NULL DEFAULT '',
	CHECK (issued_after IS NULL OR issued_after < issued_before)
) STRICT;

-- Loading the revocations that can still match an unexpired URL.
CREATE INDEX revocations_issued_before ON revocations (issued_before);
