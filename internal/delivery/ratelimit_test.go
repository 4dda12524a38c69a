package delivery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
)

// sendWaiting sends msg as a run does: a deferral is waited for (the run's
// durable timer) and the send asked again, until it settles.
func (b *testBundle) sendWaiting(t *testing.T, msg delivery.Message) (delivery.Result, int) {
	t.Helper()
	waits := 0
	for range 100 {
		res, err := b.svc.Send(b.ctx, msg)
		require.NoError(t, err)
		if res.Status != delivery.StatusDeferred {
			return res, waits
		}
		require.Equal(t, "rate_limit:twilio", res.Reason)
		waits++
		time.Sleep(time.Until(res.DeferUntil))
	}
	t.Fatal("send never settled")
	return delivery.Result{}, 0
}

// 60 SMS sent at once under twilio=10/s: every one is sent once, each
// request begins inside the window of a slot the limit handed out, and no
// second of the clock sees more than 10 begin. (The count is of when each
// request began: the fence's last moment before it is written.)
func TestRateLimitNeverExceeded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	limits, err := ratelimit.Parse("twilio=10/s")
	require.NoError(t, err)
	b.svc.Limits = limits
	var (
		mu     sync.Mutex
		begins = map[string]time.Time{} // by message: its last attempt's, the one written
	)
	b.svc.Faults = &delivery.Faults{BeforeWrite: func(_ context.Context, m storage.Message) {
		mu.Lock()
		begins[m.ID] = time.Now()
		mu.Unlock()
	}}
	const n = 60
	contacts := make([]storage.Contact, n)
	for i := range contacts {
		contacts[i] = b.contact(t)
	}
	waited := make([]int, n)
	var wg sync.WaitGroup
	for i, c := range contacts {
		wg.Go(func() {
			res, waits := b.sendWaiting(t, message(c, journey.ChannelSMS, fmt.Sprintf("rl-%d", i)))
			require.Equal(t, model.MessageSent, res.Status)
			waited[i] = waits
		})
	}
	wg.Wait()

	require.Len(t, begins, n)
	perSecond := map[int64]int{}
	for _, at := range begins {
		perSecond[at.Unix()]++
	}
	for sec, k := range perSecond {
		require.LessOrEqual(t, k, 10, "second %s", time.Unix(sec, 0).UTC())
	}
	require.GreaterOrEqual(t, len(perSecond), n/10, "60 requests at 10 a second take at least 6 seconds")
	total := 0
	for _, w := range waited {
		total += w
	}
	require.Positive(t, total, "sends beyond the first window waited for their slots")
	for _, c := range contacts {
		require.Equal(t, 1, b.requestsTo(c, journey.ChannelSMS), "sent once")
	}
}

// A send waiting for its slot asks the gate again when the slot comes: an
// opt-out recorded while it waited stops it.
func TestRateLimitWaitIsDecidedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	limits, err := ratelimit.Parse("twilio=1/h")
	require.NoError(t, err)
	b.svc.Limits = limits
	first, second := b.contact(t), b.contact(t)
	res, err := b.svc.Send(b.ctx, message(first, journey.ChannelSMS, "h-1"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)

	msg := message(second, journey.ChannelSMS, "h-2")
	res, err = b.svc.Send(b.ctx, msg)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusDeferred, res.Status)
	require.Equal(t, "rate_limit:twilio", res.Reason)
	require.True(t, res.DeferUntil.After(time.Now()), "the next hour's slot")
	slot, err := b.store.RateSlotOf(b.ctx, res.MessageID)
	require.NoError(t, err)
	require.Equal(t, res.DeferUntil, slot.SlotAt)

	// Asked again before the slot: the same slot, still waiting.
	again, err := b.svc.Send(b.ctx, msg)
	require.NoError(t, err)
	require.Equal(t, res.DeferUntil, again.DeferUntil)

	// The contact opts out while the send waits: at its slot the gate
	// decides again and skips it.
	_, _, err = b.store.RecordConsentChange(b.ctx, storage.ConsentChange{ContactID: second.ID, Channel: journey.ChannelSMS,
		Status: model.ConsentRevoked, Source: "api"})
	require.NoError(t, err)
	b.svc.Now = func() time.Time { return slot.SlotAt.Add(time.Second) }
	res, err = b.svc.Send(b.ctx, msg)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Zero(t, b.requestsTo(second, journey.ChannelSMS))
}
