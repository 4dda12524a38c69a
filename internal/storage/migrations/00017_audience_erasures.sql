-- +goose Up

-- An erased contact must leave the ad platforms' lists too, but the
-- erasure deletes what identifies them, and the platforms match on the
-- hashes of those identifiers. So the erasure keeps, per audience the
-- contact may be in, only the hashes the platform was sent (normalised by
-- its rules), until the audience's sync has sent their removal; then the
-- row is deleted. Nothing else of the contact is kept here.
CREATE TABLE audience_erasures (
    id            bigserial PRIMARY KEY,
    audience_id   text NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    erasure_id    text NOT NULL,
    email_sha256  bytea,
    phone_sha256  bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (email_sha256 IS NOT NULL OR phone_sha256 IS NOT NULL)
);
CREATE INDEX audience_erasures_audience ON audience_erasures (audience_id, id);

-- +goose Down
DROP TABLE audience_erasures;
