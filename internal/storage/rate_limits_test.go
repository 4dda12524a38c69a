package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// reservedMessages reserves n ledger rows through the gate, for n contacts.
func reservedMessages(t *testing.T, s *storage.Store, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		c := newContact(t, s)
		_, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
		require.NoError(t, err)
		res, err := s.Gate(ctx, gateInput(c, "j1", fmt.Sprintf("k%d", i), journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
		require.NoError(t, err)
		require.True(t, res.Send())
		ids[i] = res.Message.ID
	}
	return ids
}

// A limit hands out at most N slots per window, in window order, to
// concurrent callers; a message keeps its slot while it can still use it,
// and takes a new one once it missed it.
func TestReserveRateSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storagetest.New(t)
	ids := reservedMessages(t, s, 25)
	l := ratelimit.Limit{Key: "sandbox", N: 10, Per: time.Second}
	now := time.Date(2026, 12, 2, 15, 0, 7, 100_000_000, time.UTC)

	slots := make([]storage.RateSlot, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			slot, err := s.ReserveRateSlot(ctx, id, l, now)
			if err == nil {
				slots[i] = slot
			}
			require.NoError(t, err)
		})
	}
	wg.Wait()
	per := map[time.Time]int{}
	for _, sl := range slots {
		per[sl.SlotAt]++
	}
	w := l.WindowStart(now)
	require.Equal(t, map[time.Time]int{w: 10, w.Add(time.Second): 10, w.Add(2 * time.Second): 5}, per)

	// Asked again: the same slot, ahead or usable.
	for i, id := range ids {
		again, err := s.ReserveRateSlot(ctx, id, l, now.Add(500*time.Millisecond))
		require.NoError(t, err)
		require.Equal(t, slots[i].SlotAt, again.SlotAt)
	}
	// Missed (its window is over, or about to be): a new slot, after every
	// slot handed out so far.
	late := now.Add(2*time.Second + 860*time.Millisecond) // 15:00:09.96: in the margin of the 09 window
	var missed string
	for i, id := range ids {
		if slots[i].SlotAt.Equal(w) {
			missed = id
			break
		}
	}
	again, err := s.ReserveRateSlot(ctx, missed, l, late)
	require.NoError(t, err)
	require.Equal(t, w.Add(3*time.Second), again.SlotAt, "the window being closed is skipped")
	got, err := s.RateSlotOf(ctx, missed)
	require.NoError(t, err)
	require.Equal(t, again.SlotAt, got.SlotAt)

	// A window long past restarts the count at now's.
	much := now.Add(time.Hour)
	fresh, err := s.ReserveRateSlot(ctx, ids[0], l, much)
	require.NoError(t, err)
	require.Equal(t, l.WindowStart(much), fresh.SlotAt)

	_, err = s.ReserveRateSlot(ctx, "msg_nobody", l, now)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.RateSlotOf(ctx, "msg_nobody")
	require.ErrorIs(t, err, storage.ErrNotFound)
}
