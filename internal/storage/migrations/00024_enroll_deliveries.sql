-- +goose Up

-- Enrollments through the outbox (POST /v1/journeys/{id}/enrollments with
-- `Prefer: respond-async`): the API records the enrollment and, in the same
-- transaction, an 'enroll' delivery that asks the dispatcher to start its
-- run, and answers 202 at PostgreSQL speed whether Temporal is reachable or
-- not. The row names the enrollment (enrollment_id, set when it is stored,
-- not when it is done) and the journey version it was enrolled in; it has
-- no event. It is delivered in the contact's order like every other kind, so
-- an event, consent change or exit stored after the enrollment reaches the
-- run after its start.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check CHECK (kind IN ('signal', 'start', 'consent', 'exit', 'enroll'));
-- 00006's unnamed check: a journey for the kinds that start runs, and only for them.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_journey_kinds CHECK ((kind IN ('start', 'enroll')) = (journey_id <> ''));
ALTER TABLE deliveries ADD CONSTRAINT deliveries_enroll_kind CHECK (kind <> 'enroll' OR enrollment_id <> '');
-- "Has this enrollment's start still to happen?" (SettleVanishedEnrollment
-- must not drop a row whose run the dispatcher has yet to start).
CREATE INDEX deliveries_pending_enroll ON deliveries (enrollment_id) WHERE kind = 'enroll' AND done_at IS NULL;

-- +goose Down
DELETE FROM deliveries WHERE kind = 'enroll';
DROP INDEX deliveries_pending_enroll;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_enroll_kind;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_journey_kinds;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_check CHECK ((kind = 'start') = (journey_id <> ''));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_kind_check CHECK (kind IN ('signal', 'start', 'consent', 'exit'));
