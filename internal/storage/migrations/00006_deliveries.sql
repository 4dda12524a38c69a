-- +goose Up

-- The delivery outbox. POST /v1/events stores an event and, in the same
-- transaction, what the event must still do in Temporal: one 'signal' row
-- (tell the contact's running journeys) and one 'start' row per journey the
-- event triggers (journey_id and the version that was latest when the event
-- was received). The worker's dispatcher (internal/api/dispatch.go) takes
-- them oldest first, one contact at a time, until Temporal has taken each;
-- done_at marks a delivery finished, with its outcome. A 202 from the API
-- therefore means "stored, and it will reach every run that should see it".
--
-- Rows go with their event (and the event with its contact, on erasure).
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    event_id         text NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    contact_id       text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('signal', 'start')),
    journey_id       text NOT NULL DEFAULT '',
    journey_version  int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    -- A dispatcher's claim: its token and the end of its lease.
    claim_token      text NOT NULL DEFAULT '',
    claimed_until    timestamptz,
    done_at          timestamptz,
    -- What the delivery did: "signalled 2", "enrolled", "not_enrolled
    -- already_active"...; enrollment_id is the run a 'start' made, so later
    -- events of the contact reach it (DeliveryTargets).
    outcome          text NOT NULL DEFAULT '',
    enrollment_id    text NOT NULL DEFAULT '',
    CHECK ((kind = 'start') = (journey_id <> ''))
);
-- The dispatcher's queue: pending rows by contact, in order.
CREATE INDEX deliveries_pending ON deliveries (contact_id, id) WHERE done_at IS NULL;
CREATE INDEX deliveries_event ON deliveries (event_id);
-- Runs started by deliveries, for the signal rows that follow them.
CREATE INDEX deliveries_started ON deliveries (contact_id, id) WHERE kind = 'start' AND enrollment_id <> '';

-- +goose Down
DROP TABLE deliveries;
