-- +goose Up

-- Consent changes and support exits go through the delivery outbox too
-- (00006), so the API and the provider webhooks answer once PostgreSQL has
-- committed, whether Temporal is reachable or not. Two kinds join 'signal'
-- and 'start', which are an event's:
--
--   'consent': a channel-level consent change, stored in the change's own
--   transaction; it tells the contact's running journeys the consent then in
--   force (channel, consent_status) and names the change (consent_event_id).
--   The send gate reads consent from PostgreSQL before every send, so this
--   delivery only ends or updates a run early: an opt-out is final when it
--   commits, not when the run hears of it.
--
--   'exit': support asking one run to end, stored with its exit request; it
--   names the request (exit_request_id, which holds support's words) and
--   the run's workflow id.
--
-- A contact's deliveries are still delivered one at a time in id order,
-- whatever their kind: an opt-out posted after an event reaches the runs
-- after it. Rows without an event have no event to cascade from, so an
-- erasure deletes the contact's deliveries by contact_id.
ALTER TABLE deliveries ALTER COLUMN event_id DROP NOT NULL;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check CHECK (kind IN ('signal', 'start', 'consent', 'exit'));
ALTER TABLE deliveries
    ADD COLUMN channel          text CHECK (channel IN ('email', 'sms', 'ads')),
    ADD COLUMN consent_status   text CHECK (consent_status IN ('granted', 'revoked', 'pending')),
    ADD COLUMN consent_event_id bigint REFERENCES consent_events(id) ON DELETE CASCADE,
    ADD COLUMN exit_request_id  text REFERENCES exit_requests(id) ON DELETE CASCADE,
    ADD COLUMN workflow_id      text NOT NULL DEFAULT '';
-- Each kind carries what it needs and nothing of another kind's.
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_event_kinds CHECK ((event_id IS NOT NULL) = (kind IN ('signal', 'start'))),
    ADD CONSTRAINT deliveries_consent_kind CHECK (
        (kind = 'consent') = (channel IS NOT NULL AND consent_status IS NOT NULL AND consent_event_id IS NOT NULL)
        AND (kind = 'consent' OR (channel IS NULL AND consent_status IS NULL AND consent_event_id IS NULL))),
    ADD CONSTRAINT deliveries_exit_kind CHECK (
        (kind = 'exit') = (exit_request_id IS NOT NULL AND workflow_id <> '')
        AND (kind = 'exit' OR (exit_request_id IS NULL AND workflow_id = '')));
CREATE INDEX deliveries_consent_event ON deliveries (consent_event_id) WHERE consent_event_id IS NOT NULL;
CREATE INDEX deliveries_exit_request ON deliveries (exit_request_id) WHERE exit_request_id IS NOT NULL;
-- Erasure deletes by contact (deliveries_pending covers only pending rows).
CREATE INDEX deliveries_contact ON deliveries (contact_id);

-- +goose Down
DELETE FROM deliveries WHERE kind IN ('consent', 'exit');
DROP INDEX deliveries_contact;
DROP INDEX deliveries_exit_request;
DROP INDEX deliveries_consent_event;
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_exit_kind,
    DROP CONSTRAINT deliveries_consent_kind,
    DROP CONSTRAINT deliveries_event_kinds,
    DROP COLUMN workflow_id,
    DROP COLUMN exit_request_id,
    DROP COLUMN consent_event_id,
    DROP COLUMN consent_status,
    DROP COLUMN channel;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check CHECK (kind IN ('signal', 'start'));
ALTER TABLE deliveries ALTER COLUMN event_id SET NOT NULL;
