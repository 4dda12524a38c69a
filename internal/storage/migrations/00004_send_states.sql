-- +goose Up

-- A send's ledger row now says what is known about the provider call:
--   reserved   the gate allowed it; no request has been written yet
--   in_flight  a request is being (or was) written; until the provider
--              answers, it may or may not have the message
--   retrying   the provider refused it in a way a retry can fix
--   sent ...   settled by the provider's answer or a webhook
-- A row left 'sending' by the old code may have reached the provider: it is
-- in flight, which a retry settles by reading back (Twilio) or marks unknown.
UPDATE messages SET status = 'in_flight' WHERE status = 'sending';
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN
    ('reserved', 'in_flight', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'bounced',
     'dropped', 'complained', 'skipped', 'unknown'));

-- flight_deadline: the request of an in-flight send is written before this
-- time or never (the sender's context ends then). An opt-out waits for the
-- contact's in-flight sends of that channel until they settle or this passes.
ALTER TABLE messages ADD COLUMN flight_deadline timestamptz;
-- subscription: the subscription type the send rests on ('' channel-level),
-- re-checked under the contact's lock just before the request is written.
ALTER TABLE messages ADD COLUMN subscription text NOT NULL DEFAULT '';
-- status_detail: the provider's own words about a failure. It may quote the
-- address, so it stays here; status_reason holds a code.
ALTER TABLE messages ADD COLUMN status_detail text;

CREATE INDEX messages_in_flight ON messages (contact_id, channel) WHERE status = 'in_flight';
CREATE INDEX messages_unknown ON messages (updated_at DESC, id) WHERE status = 'unknown';

-- +goose Down
DROP INDEX messages_unknown;
DROP INDEX messages_in_flight;
ALTER TABLE messages DROP COLUMN status_detail;
ALTER TABLE messages DROP COLUMN subscription;
ALTER TABLE messages DROP COLUMN flight_deadline;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
UPDATE messages SET status = 'sending' WHERE status IN ('reserved', 'in_flight');
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN
    ('sending', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'bounced',
     'dropped', 'complained', 'skipped', 'unknown'));
