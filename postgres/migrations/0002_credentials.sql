-- Store credentials held on behalf of connectors, sealed (AES-256-GCM) with
-- the server's secret key; the database alone never reveals them.
CREATE TABLE credentials (
	ref        text        COLLATE "C" PRIMARY KEY CHECK (ref <> ''),
	team_id    bigint      NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	sealed     bytea       NOT NULL,
	created_at timestamptz NOT NULL
);
