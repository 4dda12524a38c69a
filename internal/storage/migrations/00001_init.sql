-- +goose Up

-- Contacts: one row per person. Every identifier is unique where present, so a
-- lookup by any of them finds one contact. Email is stored lower-cased and
-- trimmed; phone in E.164. PII lives here and nowhere in Temporal.
CREATE TABLE contacts (
    id           text PRIMARY KEY,
    external_id  text UNIQUE,
    email        text UNIQUE,
    phone        text UNIQUE,
    time_zone    text,
    attributes   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_has_identifier CHECK (external_id IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL),
    CONSTRAINT contacts_attributes_object CHECK (jsonb_typeof(attributes) = 'object')
);

-- Consent history: append-only, one row per change, never updated.
CREATE TABLE consent_events (
    id           bigserial PRIMARY KEY,
    contact_id   text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel      text NOT NULL CHECK (channel IN ('email', 'sms', 'ads')),
    status       text NOT NULL CHECK (status IN ('granted', 'revoked', 'pending')),
    source       text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, channel, occurred_at DESC);

-- Current consent per channel: the latest consent_events row by occurred_at,
-- kept in step with the history in the same transaction.
CREATE TABLE consents (
    contact_id        text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    channel           text NOT NULL CHECK (channel IN ('email', 'sms', 'ads')),
    status            text NOT NULL CHECK (status IN ('granted', 'revoked', 'pending')),
    source            text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    consent_event_id  bigint NOT NULL REFERENCES consent_events(id),
    PRIMARY KEY (contact_id, channel)
);
-- Deleting a contact (erasure requests) deletes its consent_events; the
-- foreign keys pointing at them are checked through these indexes rather
-- than by a sequential scan of consents and messages per deleted event.
CREATE INDEX consents_consent_event ON consents (consent_event_id);

-- Events from the backend (purchase, cart abandoned, page viewed...). The
-- client-supplied id makes tracking idempotent: a retried POST is a no-op.
CREATE TABLE events (
    id           text PRIMARY KEY,
    contact_id   text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    name         text NOT NULL,
    properties   jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_contact ON events (contact_id, occurred_at DESC);

-- Journey definitions: each publish adds an immutable version.
CREATE TABLE journeys (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE journey_versions (
    journey_id    text NOT NULL REFERENCES journeys(id),
    version       integer NOT NULL CHECK (version > 0),
    spec          jsonb NOT NULL,
    trigger_event text,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (journey_id, version)
);
CREATE INDEX journey_versions_trigger ON journey_versions (trigger_event) WHERE trigger_event IS NOT NULL;

-- Published versions are immutable: refuse any UPDATE at the database level.
-- +goose StatementBegin
CREATE FUNCTION journey_versions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'journey versions are immutable (journey %, version %)', OLD.journey_id, OLD.version;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER journey_versions_no_update BEFORE UPDATE ON journey_versions
    FOR EACH ROW EXECUTE FUNCTION journey_versions_immutable();

-- Enrollments: one row per run of a journey for a contact. At most one active
-- run per (contact, journey), enforced by a partial unique index.
CREATE TABLE enrollments (
    id             text PRIMARY KEY,
    contact_id     text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    journey_id     text NOT NULL,
    version        integer NOT NULL,
    workflow_id    text NOT NULL,
    status         text NOT NULL CHECK (status IN ('active', 'completed', 'converted', 'exited', 'failed')),
    exit_reason    text,
    current_step   text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    ended_at       timestamptz,
    FOREIGN KEY (journey_id, version) REFERENCES journey_versions(journey_id, version)
);
CREATE UNIQUE INDEX enrollments_one_active ON enrollments (contact_id, journey_id) WHERE status = 'active';
CREATE INDEX enrollments_contact ON enrollments (contact_id, started_at DESC);
CREATE INDEX enrollments_journey ON enrollments (journey_id, contact_id, ended_at DESC);

-- Message ledger: one row per send attempt decision. The idempotency key
-- (workflow id + step + visit) is unique, so a retried activity finds the row
-- and never sends twice.
CREATE TABLE messages (
    id                   text PRIMARY KEY,
    idempotency_key      text NOT NULL UNIQUE,
    contact_id           text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    journey_id           text NOT NULL,
    journey_version      integer NOT NULL,
    step_id              text NOT NULL,
    channel              text NOT NULL CHECK (channel IN ('email', 'sms', 'ads')),
    class                text NOT NULL CHECK (class IN ('marketing', 'transactional')),
    provider             text NOT NULL,
    provider_message_id  text,
    status               text NOT NULL CHECK (status IN ('sending', 'retrying', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'bounced', 'skipped', 'unknown')),
    status_reason        text,
    consent_event_id     bigint REFERENCES consent_events(id),
    attempts             integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz
);
CREATE INDEX messages_contact ON messages (contact_id, created_at DESC);
CREATE INDEX messages_provider_id ON messages (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_consent_event ON messages (consent_event_id) WHERE consent_event_id IS NOT NULL;

-- Sandbox outbox: what the sandbox provider "sent", in full, so a person can
-- read exactly what would have gone out. Only used in sandbox mode.
CREATE TABLE sandbox_messages (
    id                text PRIMARY KEY,
    message_id        text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel           text NOT NULL,
    recipient         text NOT NULL,
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_messages_created ON sandbox_messages (created_at DESC);
-- For the ON DELETE CASCADE from messages.
CREATE INDEX sandbox_messages_message ON sandbox_messages (message_id);

-- +goose Down
DROP TABLE sandbox_messages;
DROP TABLE messages;
DROP TABLE enrollments;
DROP TRIGGER journey_versions_no_update ON journey_versions;
DROP FUNCTION journey_versions_immutable();
DROP TABLE journey_versions;
DROP TABLE journeys;
DROP TABLE events;
DROP TABLE consents;
DROP TABLE consent_events;
DROP TABLE contacts;
