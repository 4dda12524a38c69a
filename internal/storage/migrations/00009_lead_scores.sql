-- +goose Up

-- Lead scores (internal/score): the workspace's scoring model, versioned,
-- and each contact's bands as last stored, so that a change is detected
-- once and emitted once as a score.band_changed event.
--
-- score_models holds every version ever PUT; the latest is in force.
-- intent_events and has_fit are read by the ingest path (TrackEvent's
-- statement and the contact upsert) to decide, in SQL, whether a change
-- can move the contact's score: only then is the contact marked in
-- score_pending. backfilled_through / backfilled_at are the sweep's cursor
-- over all contacts, scoring them once under a new version.
CREATE TABLE score_models (
    version            integer PRIMARY KEY,
    model              jsonb NOT NULL,
    intent_events      text[] NOT NULL,
    has_fit            boolean NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    backfilled_through text NOT NULL DEFAULT '',
    backfilled_at      timestamptz
);

-- A contact's scores and bands as last stored. next_check_at is the moment
-- time alone will move its intent or combined band (score.NextBandChange),
-- or the first moment an event dated in the future starts to count: the
-- sweep reads only rows whose moment has come, through the partial index.
-- Bands are '' for a score without bands.
CREATE TABLE contact_scores (
    contact_id     text PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    model_version  integer NOT NULL,
    fit            double precision NOT NULL,
    intent         double precision NOT NULL,
    combined       double precision NOT NULL,
    fit_band       text NOT NULL,
    intent_band    text NOT NULL,
    combined_band  text NOT NULL,
    scored_at      timestamptz NOT NULL,
    next_check_at  timestamptz
);
CREATE INDEX contact_scores_next_check ON contact_scores (next_check_at) WHERE next_check_at IS NOT NULL;

-- The scoring outbox: a contact whose stored events or attributes changed
-- in a way the model reads, marked in the change's own transaction. The
-- worker's scorer claims a mark with a lease (claimed_until, in a statement
-- of its own, so that no row lock is held while it waits for the contact's
-- locks), rescores the contact and deletes the mark in one transaction,
-- under the contact's delivery lock (so a change committed meanwhile marks
-- it again rather than being missed). A scorer that dies leaves its lease
-- to expire, and a mark whose rescoring failed is retried then.
CREATE TABLE score_pending (
    contact_id    text PRIMARY KEY REFERENCES contacts(id) ON DELETE CASCADE,
    marked_at     timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz NOT NULL DEFAULT '-infinity'
);
CREATE INDEX score_pending_marked ON score_pending (marked_at);

-- +goose Down
DROP TABLE score_pending;
DROP TABLE contact_scores;
DROP TABLE score_models;
