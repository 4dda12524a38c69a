-- +goose Up

-- Provider rate limits (internal/ratelimit, README "Provider rate limits").
-- A limit's count lives in one row per key: the newest window a slot was
-- handed out in and how many it has handed out. Windows only move forward,
-- so the next free slot is always this window (if it has room) or the next
-- one: reserving is one upsert, and every worker shares the count.
CREATE TABLE rate_windows (
    key           text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    used          int NOT NULL CHECK (used > 0)
);

-- The slot each limited message holds: the start of the window its
-- request must begin in. A send whose slot is still ahead waits for it
-- (the run's durable timer); one that missed its window takes a new one.
CREATE TABLE rate_slots (
    message_id   text PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    limit_key    text NOT NULL,
    slot_at      timestamptz NOT NULL,
    reserved_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE rate_slots;
DROP TABLE rate_windows;
