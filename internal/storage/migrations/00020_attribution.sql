-- +goose Up

-- Attribution (internal/storage/attribution.go) reads an ad-audience
-- membership period from the ledger's applied add and remove; which
-- journey step asked for the add ("journey:<journey>/<step>", or
-- "segment:<id>"...) is the member's desired_by when the batch applied it,
-- kept here because audience_members only holds the latest. Rows from
-- before this migration have ''.
ALTER TABLE audience_ledger ADD COLUMN desired_by text NOT NULL DEFAULT '';

-- Conversions are one event name over a period, across contacts: without
-- this the attribution report reads the whole events table.
CREATE INDEX events_name_occurred ON events (name, occurred_at);

-- +goose Down
DROP INDEX events_name_occurred;
ALTER TABLE audience_ledger DROP COLUMN desired_by;
