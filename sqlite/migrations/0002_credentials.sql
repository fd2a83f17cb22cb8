-- Store credentials held on behalf of connectors, sealed (AES-256-GCM) with
-- the server's secret key; the database alone never reveals them.
CREATE TABLE credentials (
	ref        TEXT    PRIMARY KEY CHECK (ref <> ''),
	team_id    INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	sealed     BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
