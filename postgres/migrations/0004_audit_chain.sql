-- The audit log becomes a hash chain (see package auditlog): each event
-- records the hash of the event before it and its own hash, over a
-- canonical encoding of all its fields (the text unescaped) and that link.
-- An event's id is its position in the chain (its seq). The migration's Go
-- step (chainExisting) links the events already in the log, as they
-- stand, and sets the head. Mirrors sqlite/migrations/0004.
ALTER TABLE audit_events
	ADD COLUMN prev_hash bytea CHECK (octet_length(prev_hash) = 32),
	ADD COLUMN hash      bytea CHECK (octet_length(hash) = 32);

-- The head also holds the hash of the last event, which the next append
-- links to while it holds the row's lock.
ALTER TABLE audit_head
	ADD COLUMN hash bytea NOT NULL
		DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
		CHECK (octet_length(hash) = 32);
