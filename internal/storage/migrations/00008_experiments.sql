-- +goose Up

-- Experiment assignments: which group of which experiment a contact is in,
-- recorded the first time it is decided. The group comes from a hash of
-- contact and experiment (internal/experiment), but the row, once written,
-- wins: changing a split's weights or a holdout's share later moves no one
-- already assigned, and re-entries and new journey versions find their
-- contact's group here. One table for three kinds of experiment:
--
--   a split step    journey_id, experiment = the split's experiment name,
--                   variant = the variant's name
--   a holdout       journey_id, experiment = 'holdout', variant 'holdout'
--                   (held out) or 'treatment'
--   the control     journey_id = '', experiment = 'control_group', variant
--   group           'control_group' or 'treatment' (workspace-wide)
--
-- enrollment_id and journey_version are the run that was first assigned;
-- assigned_at starts the conversion window of the experiment's reports.
CREATE TABLE assignments (
    journey_id       text NOT NULL,
    experiment       text NOT NULL,
    contact_id       text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    variant          text NOT NULL,
    enrollment_id    text NOT NULL,
    journey_version  integer NOT NULL,
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (journey_id, experiment, contact_id)
);
-- The ON DELETE CASCADE from contacts (erasure).
CREATE INDEX assignments_contact ON assignments (contact_id);

-- Reports (internal/storage/reports.go) count a journey's ledger rows by
-- version, step and status; without this they would read the whole
-- ledger. The included columns let the funnel be an index-only scan.
CREATE INDEX messages_journey_step ON messages (journey_id, journey_version, step_id)
    INCLUDE (status, status_reason, channel, contact_id, created_at);
-- Deferred sends per step: only the gate's defer decisions, a small share.
CREATE INDEX decisions_journey_deferred ON decisions (journey_id, journey_version, step_id)
    INCLUDE (idempotency_key) WHERE outcome = 'defer';

-- +goose Down
DROP INDEX decisions_journey_deferred;
DROP INDEX messages_journey_step;
DROP TABLE assignments;
