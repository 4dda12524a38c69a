-- +goose Up

-- An audience may follow a segment: every pass of its sync adds the
-- segment's current members (who may be added: ads consent, no
-- suppression) and removes those who left it. Journeys' audience steps
-- still add and remove on top.
ALTER TABLE audiences ADD COLUMN segment_id text REFERENCES segments(id);

-- +goose Down
ALTER TABLE audiences DROP COLUMN segment_id;
