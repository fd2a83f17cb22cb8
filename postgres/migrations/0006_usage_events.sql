-- The store's own record of accesses made with issued URLs (see
-- docs/audit.md, "Issued versus used"): one row per request a store
-- reported (MinIO's audit webhook, S3 server access logs) that carried a
-- grant id. Only the fields below are kept; never the signature, the
-- credential, the query string or any other header. grant_id joins
-- audit_events.grant_id. A report delivered twice (a webhook retry, a log
-- file imported again) is recognised by the store's own request id.
-- Mirrors sqlite/migrations/0006.
CREATE TABLE usage_events (
	id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	occurred_at       timestamptz NOT NULL,
	source            text        COLLATE "C" NOT NULL CHECK (source <> ''),
	source_request_id text        COLLATE "C" NOT NULL DEFAULT '',
	grant_id          text        COLLATE "C" NOT NULL CHECK (grant_id <> ''),
	bucket            text        COLLATE "C" NOT NULL DEFAULT '',
	object_key        text        COLLATE "C" NOT NULL DEFAULT '',
	method            text        COLLATE "C" NOT NULL DEFAULT '',
	operation         text        COLLATE "C" NOT NULL DEFAULT '',
	status            integer     NOT NULL DEFAULT 0,
	bytes_sent        bigint      NOT NULL DEFAULT 0,
	bytes_received    bigint      NOT NULL DEFAULT 0,
	remote_addr       text        COLLATE "C" NOT NULL DEFAULT '',
	ingested_at       timestamptz NOT NULL
);

CREATE INDEX usage_events_grant ON usage_events (grant_id, occurred_at);
CREATE INDEX usage_events_time ON usage_events (occurred_at);
CREATE UNIQUE INDEX usage_events_request ON usage_events (source, source_request_id)
	WHERE source_request_id <> '';
-- Listing the URLs issued in a time window.
CREATE INDEX audit_events_grant_time ON audit_events (occurred_at) WHERE grant_id <> '';
