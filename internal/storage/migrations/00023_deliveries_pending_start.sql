-- +goose Up

-- Storing an event asks whether its contact has a start still pending (a
-- run that may exist soon, so the event gets a signal delivery too). With
-- only deliveries_pending (contact_id, id) that question read every
-- pending delivery of the contact from the heap to find a 'start' among
-- them, a cost that grew with the outbox exactly when the dispatcher
-- lagged (Temporal down). This index answers it from the index alone.
CREATE INDEX deliveries_pending_start ON deliveries (contact_id) WHERE kind = 'start' AND done_at IS NULL;

-- +goose Down
DROP INDEX deliveries_pending_start;
