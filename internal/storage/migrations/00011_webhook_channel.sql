-- +goose Up

-- The webhook step's posts take the messages' one path (the gate decides
-- and reserves a ledger row, the fence moves it in flight, the answer
-- settles it) on a channel of their own: 'webhook' (journey.ChannelWebhook).
-- Its rows are not messages to the contact: the gate counts them under no
-- cap, and the fence checks their suppressions but no channel consent.
ALTER TABLE messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE messages ADD CONSTRAINT messages_channel_check
    CHECK (channel IN ('email', 'sms', 'ads', 'webhook'));

-- +goose Down
DELETE FROM messages WHERE channel = 'webhook';
ALTER TABLE messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE messages ADD CONSTRAINT messages_channel_check
    CHECK (channel IN ('email', 'sms', 'ads'));
