-- +goose Up

-- Attribution (internal/storage/attribution.go) reads an ad-audience
-- membership period from the ledger's applied add and remove; which
-- journey step asked for the add ("journey:<journey>/<step>", or
-- "segment:<id>"...) is the member's desired_by when the batch applied it,
-- kept here because audience_members only holds the latest. Rows from
-- before this migration have ''.
ALTER TABLE audience_ledger ADD COLUMN desired_by text NOT NULL DEFAULT '';

-- Events by name, across contacts. Attribution reads one name over a
-- period (a range of this index); the journey and experiment reports read
-- a goal's events, a small share of all events, all at once, index only
-- (the contact is included) and hash join them to their runs (00021).
-- Without it both read the whole events table or probe it per contact.
CREATE INDEX events_name ON events (name, occurred_at) INCLUDE (contact_id);

-- +goose Down
DROP INDEX events_name;
ALTER TABLE audience_ledger DROP COLUMN desired_by;
