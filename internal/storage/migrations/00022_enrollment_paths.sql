-- +goose Up

-- The path a run took: the ids of its steps in order, written when it
-- ends, for the journey report's conversion by path. NULL for runs still
-- active and runs that ended before paths were recorded. path_truncated:
-- the run dropped its oldest steps to keep its state bounded, so the
-- path lacks its front.
ALTER TABLE enrollments ADD COLUMN path text[];
ALTER TABLE enrollments ADD COLUMN path_truncated boolean;

-- +goose Down
ALTER TABLE enrollments DROP COLUMN path_truncated;
ALTER TABLE enrollments DROP COLUMN path;
