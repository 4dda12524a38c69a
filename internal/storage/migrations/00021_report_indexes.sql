-- +goose Up

-- Reports over a million ledger rows (README "Reports at scale",
-- internal/storage/reports.go). Each index lets a report read a small,
-- sorted slice instead of one lookup per run or contact:
--
-- A version's runs, read whole by the funnel (entries, conversions, by
-- segment, opt-outs): an index-only scan instead of a scan of every run.
CREATE INDEX enrollments_journey_version ON enrollments (journey_id, version)
    INCLUDE (id, contact_id, started_at, ended_at);
-- Goal events by name: conversions join a report's runs to the goal's
-- events (a small share of all events) with one hash join, instead of
-- reading each contact's recent events through events_contact.
CREATE INDEX events_name ON events (name, contact_id, occurred_at);
-- A version's ledger rows by step, then contact: the contacts reached per
-- step are then a walk of the index in order (distinct without sorting
-- or hashing 400,000 rows). Replaces 00008's index, whose columns it has.
DROP INDEX messages_journey_step;
CREATE INDEX messages_journey_step ON messages (journey_id, journey_version, step_id, contact_id)
    INCLUDE (status, status_reason, channel, created_at);
-- Guardrails of the experiment report: bounced messages of a journey and
-- revocations, a small share of their tables; partial, so no other row
-- pays for them.
CREATE INDEX messages_journey_bounced ON messages (journey_id, contact_id, created_at) WHERE status = 'bounced';
CREATE INDEX consent_events_revoked ON consent_events (contact_id, occurred_at) INCLUDE (channel) WHERE status = 'revoked';

-- +goose Down
DROP INDEX messages_journey_step;
CREATE INDEX messages_journey_step ON messages (journey_id, journey_version, step_id)
    INCLUDE (status, status_reason, channel, contact_id, created_at);
DROP INDEX consent_events_revoked;
DROP INDEX messages_journey_bounced;
DROP INDEX events_name;
DROP INDEX enrollments_journey_version;
