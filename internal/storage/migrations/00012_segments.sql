-- +goose Up

-- Segments: shared, declarative audiences ("hot leads", "no purchase in 30
-- days"), defined and versioned like journeys. A definition is validated
-- (internal/segment) before it is stored; a version is never changed, the
-- latest one is the segment's.
CREATE TABLE segments (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE segment_versions (
    segment_id     text NOT NULL REFERENCES segments(id),
    version        integer NOT NULL CHECK (version > 0),
    definition     jsonb NOT NULL,
    time_dependent boolean NOT NULL,
    defined_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, version)
);

-- Membership with its history: a row per stay in a segment. An open row
-- (exited_at NULL) says the contact is a member; at most one per contact
-- and segment, which the unique partial index enforces, so two evaluations
-- racing for one contact cannot both record an entry.
CREATE TABLE segment_memberships (
    id              bigserial PRIMARY KEY,
    segment_id      text NOT NULL REFERENCES segments(id),
    contact_id      text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    segment_version integer NOT NULL,
    entered_at      timestamptz NOT NULL DEFAULT now(),
    exited_at       timestamptz,
    CHECK (exited_at IS NULL OR exited_at >= entered_at)
);
CREATE UNIQUE INDEX segment_memberships_open ON segment_memberships (segment_id, contact_id) WHERE exited_at IS NULL;
CREATE INDEX segment_memberships_contact ON segment_memberships (contact_id, entered_at DESC);

-- The segment outbox: contacts whose segments must be evaluated again. A
-- change (an event, an attribute, a consent, a suppression) adds a row in
-- its own transaction, and only while a segment exists. The evaluator reads
-- a contact's rows, then its data, and deletes those rows (by id) in the
-- transaction that records what it found: a change committed after it read
-- the rows leaves its own row for the next evaluation, so none is lost,
-- and none is counted twice. Rows are only ever inserted and deleted by
-- id, never updated: a change waits for no evaluator, and no evaluator for
-- a change (see segment_eval.go for the locks).
CREATE TABLE segment_evaluations (
    id         bigserial PRIMARY KEY,
    contact_id text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    queued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segment_evaluations_contact ON segment_evaluations (contact_id, id);

-- Attributes, consent and suppressions change in many places (the API, the
-- webhooks, erasure proofs); triggers queue the contact wherever they do.
-- Events are queued by the statement that stores them (trackEventStatement),
-- which keeps event ingest to one statement per event.
-- +goose StatementBegin
CREATE FUNCTION segment_queue_contact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM segments) THEN
        INSERT INTO segment_evaluations (contact_id) VALUES (NEW.contact_id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION segment_queue_contact_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM segments) THEN
        INSERT INTO segment_evaluations (contact_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER segment_queue_contacts AFTER INSERT OR UPDATE OF attributes, external_id, email, phone, time_zone, country
    ON contacts FOR EACH ROW EXECUTE FUNCTION segment_queue_contact_row();
CREATE TRIGGER segment_queue_consents AFTER INSERT OR UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION segment_queue_contact();
CREATE TRIGGER segment_queue_suppressions AFTER INSERT OR UPDATE ON suppressions
    FOR EACH ROW EXECUTE FUNCTION segment_queue_contact();

-- A journey triggered by a segment starts on that segment's
-- segment.entered (trigger_event), and only that segment's.
ALTER TABLE journey_versions ADD COLUMN trigger_segment text;

-- +goose Down
ALTER TABLE journey_versions DROP COLUMN trigger_segment;
DROP TRIGGER segment_queue_suppressions ON suppressions;
DROP TRIGGER segment_queue_consents ON consents;
DROP TRIGGER segment_queue_contacts ON contacts;
DROP FUNCTION segment_queue_contact_row();
DROP FUNCTION segment_queue_contact();
DROP TABLE segment_evaluations;
DROP TABLE segment_memberships;
DROP TABLE segment_versions;
DROP TABLE segments;
