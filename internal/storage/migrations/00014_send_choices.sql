-- +goose Up

-- What a send step chose before it sent (README "Send at the best hour",
-- "Choose the channel"): the channel of channel: best, the instant of
-- send_time: best, and the evidence behind them (counts, the prior's
-- weight, the chosen hour-of-week cell), for tutti why. One row per send,
-- keyed like its ledger row, so a retried choice finds its own answer.
-- Counts and codes only: nothing here identifies the person beyond the
-- contact id, and erasing the contact erases its choices.
CREATE TABLE send_choices (
    idempotency_key  text PRIMARY KEY,
    contact_id       text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    journey_id       text NOT NULL,
    step_id          text NOT NULL,
    channel          text NOT NULL,
    send_at          timestamptz,
    evidence         jsonb NOT NULL,
    chosen_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX send_choices_step ON send_choices (contact_id, journey_id, step_id, chosen_at DESC);

-- +goose Down
DROP TABLE send_choices;
