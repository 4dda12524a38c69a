-- +goose Up

-- Consent per subscription type. '' is the channel-level record (the one every
-- marketing send needs); 'newsletter', 'product', 'promotions'... are the
-- subscription types a journey can declare. History keeps the same shape.
ALTER TABLE consent_events ADD COLUMN subscription text NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN subscription text NOT NULL DEFAULT '';
ALTER TABLE consents DROP CONSTRAINT consents_pkey;
ALTER TABLE consents ADD PRIMARY KEY (contact_id, channel, subscription);
DROP INDEX consent_events_contact;
CREATE INDEX consent_events_contact ON consent_events (contact_id, channel, subscription, occurred_at DESC);

-- Engagement (opens, clicks, replies, site visits) feeds the "unengaged for N
-- days" rule; country picks the quiet-hours rule when the phone does not.
ALTER TABLE contacts ADD COLUMN last_engaged_at timestamptz;
ALTER TABLE contacts ADD COLUMN country text CHECK (country IS NULL OR country ~ '^[A-Z]{2}$');

-- Suppressions: global (journey_id NULL) or per journey, for every channel
-- (channel NULL) or one. Lifting keeps the row (lifted_at) as history; at
-- most one active row per (contact, reason, journey, channel).
CREATE TABLE suppressions (
    id          text PRIMARY KEY,
    contact_id  text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    reason      text NOT NULL CHECK (reason IN ('converted', 'in_opportunity', 'do_not_contact',
                                               'hard_bounce', 'spam_complaint', 'unengaged')),
    journey_id  text,
    channel     text CHECK (channel IS NULL OR channel IN ('email', 'sms', 'ads')),
    source      text NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    lifted_at   timestamptz,
    lifted_by   text
);
CREATE UNIQUE INDEX suppressions_one_active ON suppressions
    (contact_id, reason, COALESCE(journey_id, ''), COALESCE(channel, '')) WHERE lifted_at IS NULL;
CREATE INDEX suppressions_contact ON suppressions (contact_id, created_at DESC);

-- Ledger additions. 'dropped' and 'complained' come from provider webhooks.
-- An abandonment journey's SMS names its abandonment event: the unique index
-- makes "at most one SMS per abandonment event" hold even under races.
ALTER TABLE messages ADD COLUMN abandonment_event_id text;
ALTER TABLE messages ADD COLUMN decision_id bigint;
ALTER TABLE messages ADD COLUMN engaged_at timestamptz;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN
    ('sending', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'bounced',
     'dropped', 'complained', 'skipped', 'unknown'));
CREATE UNIQUE INDEX messages_one_abandonment_sms ON messages (contact_id, journey_id, abandonment_event_id)
    WHERE channel = 'sms' AND abandonment_event_id IS NOT NULL AND status NOT IN ('skipped', 'failed', 'dropped');
-- The gate reads a contact's recent sends inside its transaction.
DROP INDEX messages_contact;
CREATE INDEX messages_contact ON messages (contact_id, created_at DESC) INCLUDE (channel, class, status);

-- Every gate decision, so "why was (or wasn't) contact X sent step Y of
-- journey Z" has an answer: outcome, reasons and the full check trace.
CREATE TABLE decisions (
    id               bigserial PRIMARY KEY,
    idempotency_key  text NOT NULL,
    contact_id       text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    journey_id       text NOT NULL,
    journey_version  integer NOT NULL,
    step_id          text NOT NULL,
    channel          text NOT NULL,
    class            text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('allow', 'defer', 'skip', 'fallback')),
    decided_channel  text NOT NULL,
    defer_until      timestamptz,
    reasons          jsonb NOT NULL DEFAULT '[]'::jsonb,
    checks           jsonb NOT NULL DEFAULT '[]'::jsonb,
    consent_event_id bigint,
    message_id       text,
    decided_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_contact_step ON decisions (contact_id, journey_id, step_id, decided_at DESC);

-- Provider webhook events, deduplicated on the provider's event id
-- (SendGrid sg_event_id, Twilio MessageSid + status): a redelivered webhook
-- changes nothing.
CREATE TABLE provider_events (
    provider     text NOT NULL,
    event_id     text NOT NULL,
    kind         text NOT NULL,
    message_id   text,
    contact_id   text,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX provider_events_message ON provider_events (message_id) WHERE message_id IS NOT NULL;

-- +goose Down
DROP TABLE provider_events;
DROP TABLE decisions;
DROP INDEX messages_contact;
CREATE INDEX messages_contact ON messages (contact_id, created_at DESC);
DROP INDEX messages_one_abandonment_sms;
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
UPDATE messages SET status = 'failed' WHERE status IN ('dropped', 'complained');
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN
    ('sending', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'bounced', 'skipped', 'unknown'));
ALTER TABLE messages DROP COLUMN engaged_at;
ALTER TABLE messages DROP COLUMN decision_id;
ALTER TABLE messages DROP COLUMN abandonment_event_id;
DROP TABLE suppressions;
ALTER TABLE contacts DROP COLUMN country;
ALTER TABLE contacts DROP COLUMN last_engaged_at;
DROP INDEX consent_events_contact;
CREATE INDEX consent_events_contact ON consent_events (contact_id, channel, occurred_at DESC);
DELETE FROM consents WHERE subscription <> '';
ALTER TABLE consents DROP CONSTRAINT consents_pkey;
ALTER TABLE consents ADD PRIMARY KEY (contact_id, channel);
ALTER TABLE consents DROP COLUMN subscription;
ALTER TABLE consent_events DROP COLUMN subscription;
