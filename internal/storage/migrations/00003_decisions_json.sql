-- +goose Up

-- A decision's reasons and check trace are written once, by the gate, and
-- read back whole to explain the decision; nothing queries inside them.
-- json keeps the text as sent (validated, not converted to jsonb's binary
-- form), which is cheaper on the gate's hot path.
ALTER TABLE decisions
    ALTER COLUMN reasons DROP DEFAULT,
    ALTER COLUMN checks DROP DEFAULT,
    ALTER COLUMN reasons TYPE json USING reasons::json,
    ALTER COLUMN checks TYPE json USING checks::json,
    ALTER COLUMN reasons SET DEFAULT '[]'::json,
    ALTER COLUMN checks SET DEFAULT '[]'::json;

-- +goose Down
ALTER TABLE decisions
    ALTER COLUMN reasons DROP DEFAULT,
    ALTER COLUMN checks DROP DEFAULT,
    ALTER COLUMN reasons TYPE jsonb USING reasons::jsonb,
    ALTER COLUMN checks TYPE jsonb USING checks::jsonb,
    ALTER COLUMN reasons SET DEFAULT '[]'::jsonb,
    ALTER COLUMN checks SET DEFAULT '[]'::jsonb;
