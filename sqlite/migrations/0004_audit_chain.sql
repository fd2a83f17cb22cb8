-- The audit log becomes a hash chain (see package auditlog): each event
-- records the hash of the event before it and its own hash, over a
-- canonical encoding of all its fields and that link. An event's id is its
-- position in the chain (its seq). The migration's Go step (chainExisting)
-- links the events already in the log, as they stand, and sets the head.
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB CHECK (length(prev_hash) = 32);
ALTER TABLE audit_events ADD COLUMN hash BLOB CHECK (length(hash) = 32);

-- The head of the chain: the id (seq) and hash of the last event
-- appended. Appends number their events from it, so ids are assigned
-- here, no longer by AUTOINCREMENT, and a tail deleted by hand leaves a
-- gap before the next event instead of being papered over.
CREATE TABLE audit_head (
	singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
	last_id   INTEGER NOT NULL CHECK (last_id >= 0),
	hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

INSERT INTO audit_head (singleton, last_id, hash) VALUES (1, 0, zeroblob(32));
