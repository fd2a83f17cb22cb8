-- The change sequence: one number that every change to what authorises a
-- request moves forward, in the same transaction as the change. Servers
-- cache keys, users, memberships, teams, connectors and credentials in
-- memory and read this number (one indexed row) on every request; when it
-- differs from the number their cache was filled at, they drop the cache
-- (see http/cache.go). Triggers bump it, so no code path can forget to.
-- A key's last use (api_keys.last_used_at) does not count as a change.
CREATE TABLE change_seq (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
) STRICT;

INSERT INTO change_seq (id, seq) VALUES (1, 0);

CREATE TRIGGER teams_ins AFTER INSERT ON teams BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER teams_upd AFTER UPDATE ON teams BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER teams_del AFTER DELETE ON teams BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER users_ins AFTER INSERT ON users BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER users_upd AFTER UPDATE ON users BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER users_del AFTER DELETE ON users BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER members_ins AFTER INSERT ON members BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER members_upd AFTER UPDATE ON members BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER members_del AFTER DELETE ON members BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER api_keys_ins AFTER INSERT ON api_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER api_keys_upd AFTER UPDATE OF id, user_id, hash, created_at, revoked_at ON api_keys
	BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER api_keys_del AFTER DELETE ON api_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER connectors_ins AFTER INSERT ON connectors BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER connectors_upd AFTER UPDATE ON connectors BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER connectors_del AFTER DELETE ON connectors BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER credentials_ins AFTER INSERT ON credentials BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER credentials_upd AFTER UPDATE ON credentials BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER credentials_del AFTER DELETE ON credentials BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER revocations_ins AFTER INSERT ON revocations BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER revocations_upd AFTER UPDATE ON revocations BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER revocations_del AFTER DELETE ON revocations BEGIN UPDATE change_seq SET seq = seq + 1; END;
