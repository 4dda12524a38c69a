package delivery

import (
	"context"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Provider rate limits (internal/ratelimit). A send the gate allowed takes
// a slot under its provider's (or sender's) limit before it is delivered:
// the ledger row stays reserved, and a slot that is not yet usable comes
// back to the run as a deferral until the slot (Reason "rate_limit:KEY"),
// which the run waits for on a durable timer before asking again. Asking
// again goes through the gate again (consent may have been revoked while it
// waited, or quiet hours begun) and finds the slot it holds. The fence
// checks the slot once more right before the request is written, since
// connecting takes time; a send past its window takes a new slot. So a
// request begins only inside its slot's window, and no window gets more
// than the limit's N.

// rateSlot is the usable slot a send goes out under.
type rateSlot struct {
	limit ratelimit.Limit
	at    time.Time
}

// sender is the sender a channel's messages go out from, for a limit
// keyed by sender.
func (s *Service) sender(ch journey.Channel) string {
	switch ch {
	case journey.ChannelEmail:
		return s.Sender.EmailFrom
	case journey.ChannelSMS:
		return s.Sender.SMSFrom
	}
	return ""
}

// rateSlot takes the reserved message's slot under its limit: nil, nil if
// no limit applies; the slot if it is usable now; or, if not yet, the
// deferral to answer.
func (s *Service) rateSlot(ctx context.Context, gate storage.GateResult) (*rateSlot, *Result, error) {
	m := gate.Message
	l, ok := s.Limits.For(m.Provider, s.sender(m.Channel))
	if !ok {
		return nil, nil, nil
	}
	now := s.now()
	slot, err := s.Store.ReserveRateSlot(ctx, m.ID, l, now)
	if err != nil {
		return nil, nil, err
	}
	if l.Usable(slot.SlotAt, now) {
		return &rateSlot{limit: l, at: slot.SlotAt}, nil, nil
	}
	return nil, s.rateWait(m, l, slot.SlotAt), nil
}

// rateWait is the deferral of message m until its slot at under l.
func (s *Service) rateWait(m storage.Message, l ratelimit.Limit, at time.Time) *Result {
	metrics.RecordRateWait(l.Key)
	s.logger().Info("rate limit: send waits for its slot", "message_id", m.ID, "limit", l.String(), "slot", at)
	return &Result{MessageID: m.ID, Status: StatusDeferred, Reason: "rate_limit:" + l.Key,
		Channel: m.Channel, Provider: m.Provider, DeferUntil: at}
}

func deref(r *Result) Result {
	if r == nil {
		return Result{}
	}
	return *r
}
