-- signet metadata and audit schema, version 1: the PostgreSQL mirror of
-- sqlite/migrations/0001_init.sql, table for table and column for column.
--
-- Type mapping: instants are timestamptz (microsecond precision, read back
-- in UTC); durations are bigint seconds; booleans are boolean; blobs are
-- bytea; optional strings are NOT NULL DEFAULT '' and optional instants are
-- NULL. Every text column is COLLATE "C", so names compare and sort byte by
-- byte, as SQLite's BINARY collation does, whatever the database's locale.
--
-- Text in audit_events is stored escaped (see escapeText in the postgres
-- package): a backslash, NUL or invalid UTF-8 byte becomes \\, \x00 or \xHH,
-- so any Go string can be recorded and read back unchanged. All other text
-- is plain.

CREATE TABLE teams (
	id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name                text        COLLATE "C" NOT NULL UNIQUE CHECK (name <> ''),
	download_max_expiry bigint      NOT NULL DEFAULT 0 CHECK (download_max_expiry >= 0), -- seconds, 0 = default
	upload_max_expiry   bigint      NOT NULL DEFAULT 0 CHECK (upload_max_expiry >= 0),   -- seconds, 0 = default
	created_at          timestamptz NOT NULL
);

CREATE TABLE users (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name       text        COLLATE "C" NOT NULL UNIQUE CHECK (name <> ''),
	service    boolean     NOT NULL DEFAULT false,
	admin      boolean     NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL
);

CREATE TABLE members (
	team_id    bigint      NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role       text        COLLATE "C" NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
	created_at timestamptz NOT NULL,
	PRIMARY KEY (team_id, user_id)
);

CREATE INDEX members_user ON members (user_id);

CREATE TABLE api_keys (
	id           text        COLLATE "C" PRIMARY KEY,
	user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash         bytea       NOT NULL,
	created_at   timestamptz NOT NULL,
	last_used_at timestamptz,
	revoked_at   timestamptz
);

CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE connectors (
	team_id         bigint      PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
	backend         text        COLLATE "C" NOT NULL CHECK (backend <> ''),
	bucket          text        COLLATE "C" NOT NULL CHECK (bucket <> ''),
	prefix          text        COLLATE "C" NOT NULL DEFAULT '',
	region          text        COLLATE "C" NOT NULL DEFAULT '',
	endpoint        text        COLLATE "C" NOT NULL DEFAULT '',
	credentials_ref text        COLLATE "C" NOT NULL DEFAULT '',
	options         text        COLLATE "C" NOT NULL DEFAULT '{}', -- JSON object of strings
	updated_at      timestamptz NOT NULL
);

CREATE INDEX connectors_backend_bucket ON connectors (backend, bucket);

CREATE TABLE uploads (
	id              text        COLLATE "C" PRIMARY KEY,
	team_id         bigint      NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	object_key      text        COLLATE "C" NOT NULL,
	size            bigint      NOT NULL,
	part_size       bigint      NOT NULL,
	part_count      integer     NOT NULL,
	content_type    text        COLLATE "C" NOT NULL DEFAULT '',
	sha256          text        COLLATE "C" NOT NULL DEFAULT '',
	backend         text        COLLATE "C" NOT NULL DEFAULT '',
	bucket          text        COLLATE "C" NOT NULL DEFAULT '',
	store_key       text        COLLATE "C" NOT NULL DEFAULT '',
	store_upload_id text        COLLATE "C" NOT NULL DEFAULT '',
	state           text        COLLATE "C" NOT NULL CHECK (state IN ('active', 'completed', 'aborted')),
	created_by      text        COLLATE "C" NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	expires_at      timestamptz NOT NULL
);

-- Finding abandoned uploads to abort and collect.
CREATE INDEX uploads_state_expires ON uploads (state, expires_at);
CREATE INDEX uploads_team ON uploads (team_id);

-- The audit log is append-only. Team and actor are names, not foreign keys:
-- a record must outlive what it names and may name things that never
-- existed (a denial for an unknown team).
--
-- IDs are not drawn from a sequence: each appending transaction reserves
-- the next IDs by updating audit_head, whose row lock it then holds until
-- it commits. Appends are thereby serialised, IDs are assigned in commit
-- order with no gaps (a rolled-back append releases its IDs), and a reader
-- that has seen ID n has already seen every ID below it, which is what
-- paging with AfterID relies on.
CREATE TABLE audit_events (
	id          bigint      PRIMARY KEY CHECK (id > 0),
	occurred_at timestamptz NOT NULL,
	request_id  text        COLLATE "C" NOT NULL DEFAULT '',
	actor_user  text        COLLATE "C" NOT NULL DEFAULT '',
	actor_key   text        COLLATE "C" NOT NULL DEFAULT '',
	team        text        COLLATE "C" NOT NULL DEFAULT '',
	action      text        COLLATE "C" NOT NULL CHECK (action <> ''),
	outcome     text        COLLATE "C" NOT NULL CHECK (outcome <> ''),
	code        text        COLLATE "C" NOT NULL DEFAULT '',
	reason      text        COLLATE "C" NOT NULL DEFAULT '',
	store       text        COLLATE "C" NOT NULL DEFAULT '',
	bucket      text        COLLATE "C" NOT NULL DEFAULT '',
	object_key  text        COLLATE "C" NOT NULL DEFAULT '',
	upload_id   text        COLLATE "C" NOT NULL DEFAULT '',
	grant_id    text        COLLATE "C" NOT NULL DEFAULT '',
	method      text        COLLATE "C" NOT NULL DEFAULT '',
	expires_at  timestamptz,
	client_ip   text        COLLATE "C" NOT NULL DEFAULT '',
	user_agent  text        COLLATE "C" NOT NULL DEFAULT '',
	target      text        COLLATE "C" NOT NULL DEFAULT ''
);

CREATE INDEX audit_events_team ON audit_events (team, id);
CREATE INDEX audit_events_actor ON audit_events (actor_user, id);
-- Joining store access logs to issuance records by correlation id.
CREATE INDEX audit_events_grant ON audit_events (grant_id) WHERE grant_id <> '';

-- The head of the audit log: one row holding the last ID assigned. It is
-- never reset, so IDs are not reused after old events are pruned.
CREATE TABLE audit_head (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	last_id   bigint  NOT NULL CHECK (last_id >= 0)
);

INSERT INTO audit_head (last_id) VALUES (0);

CREATE TABLE settings (
	name  text COLLATE "C" PRIMARY KEY,
	value text COLLATE "C" NOT NULL
);
