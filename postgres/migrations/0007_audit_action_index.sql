-- Filtering the audit log by action (GET /v1/audit?action=…), paged in id
-- order like the team and actor filters. Mirrors
-- sqlite/migrations/0007_audit_action_index.sql.
CREATE INDEX audit_events_action ON audit_events (action, id);
