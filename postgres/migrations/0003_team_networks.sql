-- A team's allowed client networks: canonical CIDR prefixes joined by
-- commas; empty allows every network. Mirrors sqlite/migrations/0003.
ALTER TABLE teams ADD COLUMN allow_networks text COLLATE "C" NOT NULL DEFAULT '';
