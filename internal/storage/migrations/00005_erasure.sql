-- +goose Up

-- Erasure (DELETE /v1/contacts/{id}): everything that identifies the person
-- is deleted in one transaction. What is kept is this record that the
-- erasure happened, by the contact's random id (no email, phone or external
-- id), and the proof of consent and opt-out below. active_workflow_ids are
-- the journey runs that were active, so a retried request can tell them
-- again; enrollment_ids let a run that ends after the erasure find its
-- deleted enrollment row erased rather than missing.
CREATE TABLE erasures (
    id                   text PRIMARY KEY,
    contact_id           text NOT NULL UNIQUE,
    erased_at            timestamptz NOT NULL DEFAULT now(),
    active_workflow_ids  text[] NOT NULL DEFAULT '{}',
    enrollment_ids       text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX erasures_enrollments ON erasures USING gin (enrollment_ids);

-- Proof of consent and opt-out outliving an erasure: the contact's consent
-- at erasure (per channel and subscription), under a keyed hash
-- (HMAC-SHA256, TUTTI_ERASURE_HASH_KEY) of each normalised identifier it
-- was known by. A contact created or updated later with one of those
-- identifiers starts with the opt-outs recorded again (source
-- erasure-proof:<id>), so an import or webhook cannot silently bring back
-- someone who said stop.
CREATE TABLE erasure_proofs (
    id               bigserial PRIMARY KEY,
    erasure_id       text NOT NULL REFERENCES erasures(id),
    identifier_kind  text NOT NULL CHECK (identifier_kind IN ('email', 'phone', 'external_id')),
    identifier_hash  bytea NOT NULL CHECK (length(identifier_hash) = 32),
    channel          text NOT NULL CHECK (channel IN ('email', 'sms', 'ads')),
    subscription     text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('granted', 'revoked', 'pending')),
    source           text NOT NULL,
    occurred_at      timestamptz NOT NULL
);
CREATE INDEX erasure_proofs_identifier ON erasure_proofs (identifier_hash, identifier_kind);
CREATE INDEX erasure_proofs_erasure ON erasure_proofs (erasure_id);

-- Support's exit requests. The free-text reason ("customer called, asked to
-- stop") stays here: the exit signal carries only the code support_exit and
-- this row's id, and the run's enrollment points back at the request that
-- ended it.
CREATE TABLE exit_requests (
    id             text PRIMARY KEY,
    enrollment_id  text NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    contact_id     text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    reason         text NOT NULL,
    requested_by   text NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exit_requests_enrollment ON exit_requests (enrollment_id);
CREATE INDEX exit_requests_contact ON exit_requests (contact_id);
ALTER TABLE enrollments ADD COLUMN exit_request_id text REFERENCES exit_requests(id) ON DELETE SET NULL;

-- provider_events has no foreign key to contacts (a webhook may name a
-- contact that is later erased); erasure deletes a contact's rows by
-- contact_id and by message_id.
CREATE INDEX provider_events_contact ON provider_events (contact_id) WHERE contact_id IS NOT NULL;

-- +goose Down
DROP INDEX provider_events_contact;
ALTER TABLE enrollments DROP COLUMN exit_request_id;
DROP TABLE exit_requests;
DROP TABLE erasure_proofs;
DROP TABLE erasures;
