-- +goose Up

-- One run per key value (journey.Trigger.Key, README "Journeys"): a journey
-- keyed by a property of its triggering event (cart_id) runs once per
-- value of it. run_key is the run's key digest (journey.RunKeyDigest, a
-- keyed hash, never the value), '' for a journey without a key; the one
-- active run a contact may have is now one per journey and key value.
ALTER TABLE enrollments ADD COLUMN run_key text NOT NULL DEFAULT '';
DROP INDEX enrollments_one_active;
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (contact_id, journey_id, run_key) WHERE status = 'active';

-- The secret key digests are made with. It is made here, once per
-- database, from PostgreSQL's strong random source (two version 4 UUIDs:
-- 244 random bits), and it never leaves PostgreSQL but for the processes
-- that compute digests: Temporal, which sees the digests in workflow ids,
-- never has it, so it cannot test guesses of a key value against them.
-- It must not change while keyed runs are active: their digests are
-- recomputed from each event that should reach them.
CREATE TABLE run_key_secret (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     bytea NOT NULL CHECK (length(secret) >= 30)
);
INSERT INTO run_key_secret (secret)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- +goose Down
DROP TABLE run_key_secret;
DROP INDEX enrollments_one_active;
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (contact_id, journey_id) WHERE status = 'active';
ALTER TABLE enrollments DROP COLUMN run_key;
