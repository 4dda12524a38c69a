package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/ratelimit"
)

// RateSlot is the slot a message holds under a provider rate limit.
type RateSlot struct {
	MessageID  string    `json:"message_id"`
	LimitKey   string    `json:"limit_key"`
	SlotAt     time.Time `json:"slot_at"`
	ReservedAt time.Time `json:"reserved_at"`
}

// reserveRateWindow hands out the next slot of a limit ($1 key, $2 the
// first window the slot may be in, $3 slots per window, $4 the window's
// length): the newest window if it is not before $2 and has room, else the
// one after it, else $2's. SET reads the row as it was, so window_start and
// used change together. The row lock serialises every send under the key,
// for the length of this statement's transaction only.
const reserveRateWindow = `
INSERT INTO rate_windows AS w (key, window_start, used) VALUES ($1, $2, 1)
ON CONFLICT (key) DO UPDATE SET
	window_start = CASE WHEN w.window_start < $2 THEN $2
	                    WHEN w.used >= $3 THEN w.window_start + $4::interval
	                    ELSE w.window_start END,
	used = CASE WHEN w.window_start < $2 OR w.used >= $3 THEN 1 ELSE w.used + 1 END
RETURNING window_start`

// ReserveRateSlot gives the message (a reserved ledger row) its slot under
// limit l at now: the slot it already holds while that is still ahead or
// usable (ratelimit.Limit.Usable), else a new one, the earliest the limit
// has room for. The caller sends only when l.Usable(slot, now) and
// otherwise waits until the slot. The message's row is locked while the
// slot is read and taken, so concurrent attempts of one message take one
// slot between them.
func (s *Store) ReserveRateSlot(ctx context.Context, messageID string, l ratelimit.Limit, now time.Time) (RateSlot, error) {
	var slot RateSlot
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM messages WHERE id = $1 FOR NO KEY UPDATE`, messageID).Scan(&exists); err != nil {
			return notFound(err, "message %s", messageID)
		}
		err := tx.QueryRow(ctx, `SELECT message_id, limit_key, slot_at, reserved_at FROM rate_slots WHERE message_id = $1`, messageID).
			Scan(&slot.MessageID, &slot.LimitKey, &slot.SlotAt, &slot.ReservedAt)
		switch {
		case err == nil && slot.LimitKey == l.Key && (now.Before(slot.SlotAt) || l.Usable(slot.SlotAt, now)):
			return nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		first := l.WindowStart(now)
		if !l.Usable(first, now) {
			first = first.Add(l.Per)
		}
		var at time.Time
		if err := tx.QueryRow(ctx, reserveRateWindow, l.Key, first, l.N, l.Per).Scan(&at); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO rate_slots (message_id, limit_key, slot_at) VALUES ($1, $2, $3)
			ON CONFLICT (message_id) DO UPDATE SET limit_key = $2, slot_at = $3, reserved_at = now()
			RETURNING message_id, limit_key, slot_at, reserved_at`, messageID, l.Key, at).
			Scan(&slot.MessageID, &slot.LimitKey, &slot.SlotAt, &slot.ReservedAt)
	})
	if err != nil {
		return RateSlot{}, fmt.Errorf("rate slot for message %s under %s: %w", messageID, l.Key, err)
	}
	slot.SlotAt, slot.ReservedAt = slot.SlotAt.UTC(), slot.ReservedAt.UTC()
	return slot, nil
}

// RateSlotOf is the slot a message holds, for `tutti why`; ErrNotFound if
// it never took one.
func (s *Store) RateSlotOf(ctx context.Context, messageID string) (RateSlot, error) {
	var slot RateSlot
	err := s.pool.QueryRow(ctx, `SELECT message_id, limit_key, slot_at, reserved_at FROM rate_slots WHERE message_id = $1`, messageID).
		Scan(&slot.MessageID, &slot.LimitKey, &slot.SlotAt, &slot.ReservedAt)
	if err != nil {
		return RateSlot{}, notFound(err, "rate slot of message %s", messageID)
	}
	slot.SlotAt, slot.ReservedAt = slot.SlotAt.UTC(), slot.ReservedAt.UTC()
	return slot, nil
}
