-- A team's allowed client networks: canonical CIDR prefixes joined by
-- commas; empty allows every network.
ALTER TABLE teams ADD COLUMN allow_networks TEXT NOT NULL DEFAULT '';
