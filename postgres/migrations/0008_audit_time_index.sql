-- Finding where a time range (GET /v1/audit?since=…) starts in the audit
-- log (see postgres/audit.go). Mirrors
-- sqlite/migrations/0008_audit_time_index.sql.
CREATE INDEX audit_events_time ON audit_events (occurred_at, id);
