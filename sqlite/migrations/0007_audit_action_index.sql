-- Filtering the audit log by action (GET /v1/audit?action=…), paged in id
-- order like the team and actor filters. Outcome and object-key prefix
-- filters have no index of their own: they are checked while the log is
-- read in id order (see sqlite/audit.go), so that appends pay for fewer
-- indexes. (Time ranges: 0008.)
CREATE INDEX audit_events_action ON audit_events (action, id);
