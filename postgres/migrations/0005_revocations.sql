-- Revocations of issued URLs (see docs/security.md, "Revocation"). A
-- revocation matches a grant when every selector it sets matches: team,
-- user (the actor who was issued the grant), key (the API key that asked
-- for it), and the grant's issue time in [issued_after, issued_before).
-- issued_before is always set (the revocation's own time unless an
-- earlier one was asked for); issued_after is NULL when unbounded. Names
-- are not foreign keys: a revocation must outlive what it names. Mirrors
-- sqlite/migrations/0005.
CREATE TABLE revocations (
	id            text        COLLATE "C" PRIMARY KEY,
	team          text        COLLATE "C" NOT NULL DEFAULT '',
	user_name     text        COLLATE "C" NOT NULL DEFAULT '',
	key_id        text        COLLATE "C" NOT NULL DEFAULT '',
	issued_after  timestamptz,
	issued_before timestamptz NOT NULL,
	created_at    timestamptz NOT NULL,
	created_by    text        COLLATE "C" NOT NULL DEFAULT '',
	CHECK (issued_after IS NULL OR issued_after < issued_before)
);

-- Loading the revocations that can still match an unexpired URL.
CREATE INDEX revocations_issued_before ON revocations (issued_before);
