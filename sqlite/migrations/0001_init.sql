-- signet metadata and audit schema, version 1.
--
-- Conventions, kept so that PostgreSQL can mirror this schema column for
-- column: plain types only; instants are INTEGER microseconds since the Unix
-- epoch, UTC (PostgreSQL: timestamptz, which has the same precision);
-- durations are INTEGER seconds; booleans are INTEGER 0/1 (PostgreSQL:
-- boolean); optional strings are NOT NULL DEFAULT '' and optional instants
-- are NULL. Tables are STRICT so SQLite enforces the declared types.

CREATE TABLE teams (
	id                  INTEGER PRIMARY KEY,
	name                TEXT    NOT NULL UNIQUE CHECK (name <> ''),
	download_max_expiry INTEGER NOT NULL DEFAULT 0 CHECK (download_max_expiry >= 0), -- seconds, 0 = default
	upload_max_expiry   INTEGER NOT NULL DEFAULT 0 CHECK (upload_max_expiry >= 0),   -- seconds, 0 = default
	created_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE CHECK (name <> ''),
	service    INTEGER NOT NULL DEFAULT 0 CHECK (service IN (0, 1)),
	admin      INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
	team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role       TEXT    NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (team_id, user_id)
) STRICT;

CREATE INDEX members_user ON members (user_id);

CREATE TABLE api_keys (
	id           TEXT    PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash         BLOB    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at   INTEGER
) STRICT;

CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE connectors (
	team_id         INTEGER PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
	backend         TEXT    NOT NULL CHECK (backend <> ''),
	bucket          TEXT    NOT NULL CHECK (bucket <> ''),
	prefix          TEXT    NOT NULL DEFAULT '',
	region          TEXT    NOT NULL DEFAULT '',
	endpoint        TEXT    NOT NULL DEFAULT '',
	credentials_ref TEXT    NOT NULL DEFAULT '',
	options         TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
	updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX connectors_backend_bucket ON connectors (backend, bucket);

CREATE TABLE uploads (
	id              TEXT    PRIMARY KEY,
	team_id         INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	object_key      TEXT    NOT NULL,
	size            INTEGER NOT NULL,
	part_size       INTEGER NOT NULL,
	part_count      INTEGER NOT NULL,
	content_type    TEXT    NOT NULL DEFAULT '',
	sha256          TEXT    NOT NULL DEFAULT '',
	backend         TEXT    NOT NULL DEFAULT '',
	bucket          TEXT    NOT NULL DEFAULT '',
	store_key       TEXT    NOT NULL DEFAULT '',
	store_upload_id TEXT    NOT NULL DEFAULT '',
	state           TEXT    NOT NULL CHECK (state IN ('active', 'completed', 'aborted')),
	created_by      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL
) STRICT;

-- Finding abandoned uploads to abort and collect.
CREATE INDEX uploads_state_expires ON uploads (state, expires_at);
CREATE INDEX uploads_team ON uploads (team_id);

-- The audit log is append-only. Team and actor are names, not foreign keys:
-- a record must outlive what it names and may name things that never
-- existed (a denial for an unknown team).
CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	occurred_at INTEGER NOT NULL,
	request_id  TEXT    NOT NULL DEFAULT '',
	actor_user  TEXT    NOT NULL DEFAULT '',
	actor_key   TEXT    NOT NULL DEFAULT '',
	team        TEXT    NOT NULL DEFAULT '',
	action      TEXT    NOT NULL CHECK (action <> ''),
	outcome     TEXT    NOT NULL CHECK (outcome <> ''),
	code        TEXT    NOT NULL DEFAULT '',
	reason      TEXT    NOT NULL DEFAULT '',
	store       TEXT    NOT NULL DEFAULT '',
	bucket      TEXT    NOT NULL DEFAULT '',
	object_key  TEXT    NOT NULL DEFAULT '',
	upload_id   TEXT    NOT NULL DEFAULT '',
	grant_id    TEXT    NOT NULL DEFAULT '',
	method      TEXT    NOT NULL DEFAULT '',
	expires_at  INTEGER,
	client_ip   TEXT    NOT NULL DEFAULT '',
	user_agent  TEXT    NOT NULL DEFAULT '',
	target      TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_events_team ON audit_events (team, id);
CREATE INDEX audit_events_actor ON audit_events (actor_user, id);
-- Joining store access logs to issuance records by correlation id.
CREATE INDEX audit_events_grant ON audit_events (grant_id) WHERE grant_id <> '';

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
