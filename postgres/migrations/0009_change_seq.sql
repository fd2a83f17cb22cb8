-- The change sequence: one number that every change to what authorises a
-- request moves forward, in the same transaction as the change. Replicas
-- cache keys, users, memberships, teams, connectors and credentials in
-- memory and read this number (one indexed row) on every request; when it
-- differs from the number their cache was filled at, they drop the cache
-- (see http/cache.go). Triggers bump it, so no code path can forget to.
-- A key's last use (api_keys.last_used_at) does not count as a change.
-- Mirrors sqlite/migrations/0009_change_seq.sql.
CREATE TABLE change_seq (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	seq       bigint  NOT NULL
);

INSERT INTO change_seq (seq) VALUES (0);

CREATE FUNCTION signet_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE change_seq SET seq = seq + 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER teams_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON teams
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER users_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER members_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON members
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER api_keys_change AFTER INSERT OR UPDATE OF id, user_id, hash, created_at, revoked_at OR DELETE OR TRUNCATE ON api_keys
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER connectors_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON connectors
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER credentials_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credentials
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
CREATE TRIGGER revocations_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON revocations
	FOR EACH STATEMENT EXECUTE FUNCTION signet_change();
