-- Finding where a time range (GET /v1/audit?since=…) starts in the audit
-- log: sqlite/audit.go looks up the lowest id with a time at or after
-- since through this index when few entries match, and reads the log in
-- id order from there (times need not grow with ids, so the index cannot
-- give the pages themselves).
CREATE INDEX audit_events_time ON audit_events (occurred_at, id);
