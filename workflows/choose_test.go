package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

func waterfallSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: cart
name: Cart reminder
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: remind
    send:
      waterfall: [{channel: email}, {channel: sms, after: 24h}]
      email: {subject: "Your cart", text: "Still there"}
      sms: {body: "Your cart is waiting"}
  - id: done
    exit: {reason: completed}
`))
	require.NoError(t, err)
	return spec
}

// sendAt records when each send was asked for, by channel.
type sendAt struct {
	channel journey.Channel
	key     string
	at      time.Duration
}

func (h *harness) timedSends(start time.Time, result func(activities.SendInput) activities.SendResult) *[]sendAt {
	var out []sendAt
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		out = append(out, sendAt{channel: in.Send.Channel, key: in.IdempotencyKey, at: h.env.Now().Sub(start)})
		if result != nil {
			return result(in), nil
		}
		return activities.SendResult{Status: model.MessageSent, MessageID: "m_" + string(in.Send.Channel), Channel: in.Send.Channel}, nil
	}
	return &out
}

func TestWaterfall(t *testing.T) {
	opened := func(h *harness, after time.Duration, occurred func() time.Time) {
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(SignalEvent, EventSignal{EventID: "ev-open", Name: "email.opened", OccurredAt: occurred()})
		}, after)
	}
	for _, tc := range []struct {
		name   string
		setup  func(h *harness, start time.Time)
		result func(activities.SendInput) activities.SendResult
		want   []sendAt
		status model.RunStatus
	}{
		{name: "no engagement: sms 24h after the email",
			want: []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}, {journey.ChannelSMS, "enrollment/e_1/remind/1/waterfall/1", 24 * time.Hour}}},
		{name: "an open within 24h: no sms",
			setup: func(h *harness, start time.Time) { opened(h, 3*time.Hour, h.env.Now) },
			want:  []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}}},
		{name: "an sms reply counts too",
			setup: func(h *harness, start time.Time) {
				h.env.RegisterDelayedCallback(func() {
					h.env.SignalWorkflow(SignalEvent, EventSignal{EventID: "ev-r", Name: "sms.replied", OccurredAt: h.env.Now()})
				}, time.Hour)
			},
			want: []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}}},
		{name: "an open that happened before the email does not count",
			setup: func(h *harness, start time.Time) {
				opened(h, time.Hour, func() time.Time { return start.Add(-48 * time.Hour) })
			},
			want: []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}, {journey.ChannelSMS, "enrollment/e_1/remind/1/waterfall/1", 24 * time.Hour}}},
		{name: "an open after the 24h comes too late: the sms is out",
			setup: func(h *harness, start time.Time) { opened(h, 25*time.Hour, h.env.Now) },
			want:  []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}, {journey.ChannelSMS, "enrollment/e_1/remind/1/waterfall/1", 24 * time.Hour}}},
		{name: "an email the gate skipped: the sms at once",
			result: func(in activities.SendInput) activities.SendResult {
				if in.Send.Channel == journey.ChannelEmail {
					return activities.SendResult{Status: model.MessageSkipped, Reason: "no_consent", Channel: journey.ChannelEmail}
				}
				return activities.SendResult{Status: model.MessageSent, MessageID: "m_sms", Channel: journey.ChannelSMS}
			},
			want: []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}, {journey.ChannelSMS, "enrollment/e_1/remind/1/waterfall/1", 0}}},
		{name: "the goal during the wait ends the run: no sms",
			setup: func(h *harness, start time.Time) {
				h.signalAfter(2*time.Hour, SignalEvent, EventSignal{EventID: "ev-p", Name: "purchase", OccurredAt: h.env.Now()})
			},
			want: []sendAt{{journey.ChannelEmail, "enrollment/e_1/remind/1", 0}}, status: model.RunConverted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			start := h.env.Now()
			sends := h.timedSends(start, tc.result)
			if tc.setup != nil {
				tc.setup(h, start)
			}
			res := h.run(t, input(waterfallSpec(t)))
			status := tc.status
			if status == "" {
				status = model.RunCompleted
			}
			require.Equal(t, status, res.Status)
			require.Equal(t, tc.want, *sends)
			for _, s := range h.sends {
				require.Empty(t, s.Send.Waterfall, "each stage is one plain send")
			}
		})
	}
}

func bestSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: promo
name: Promo
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: offer
    send:
      channel: best
      send_time: best
      within: 24h
      email: {subject: "Offer", text: "Hi"}
      sms: {body: "Offer"}
`))
	require.NoError(t, err)
	return spec
}

// send_time: best and channel: best: the choice comes from the activity,
// the run waits for the chosen instant on a timer, and then sends on the
// chosen channel through the one send path, under the choice's key.
func TestBestTimeAndChannel(t *testing.T) {
	h := newHarness(t)
	start := h.env.Now()
	var chosen []activities.ChooseSendInput
	var a *activities.Activities
	h.env.OnActivity(a.ChooseSend, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ChooseSendInput) (activities.ChooseSendResult, error) {
			chosen = append(chosen, in)
			return activities.ChooseSendResult{Channel: journey.ChannelSMS, SendAt: in.Now.Add(5*time.Hour + 30*time.Minute)}, nil
		})
	sends := h.timedSends(start, nil)
	res := h.run(t, input(bestSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Len(t, chosen, 1)
	require.Equal(t, "enrollment/e_1/offer/1", chosen[0].IdempotencyKey)
	require.True(t, chosen[0].Now.Equal(start))
	require.Equal(t, []sendAt{{journey.ChannelSMS, "enrollment/e_1/offer/1", 5*time.Hour + 30*time.Minute}}, *sends)
	s := h.sends[0].Send
	require.Empty(t, s.SendTime, "the send itself is a plain one")
	require.Zero(t, s.Within)
}

// A choice in the past (or none) sends at once; an exit while waiting for
// the chosen time sends nothing.
func TestBestTimeInterrupted(t *testing.T) {
	h := newHarness(t)
	var a *activities.Activities
	h.env.OnActivity(a.ChooseSend, mock.Anything, mock.Anything).Return(
		activities.ChooseSendResult{Channel: journey.ChannelEmail, SendAt: h.env.Now().Add(10 * time.Hour)}, nil)
	sends := h.timedSends(h.env.Now(), nil)
	h.signalAfter(time.Hour, SignalExit, ExitSignal{Reason: ExitSupport})
	res := h.run(t, input(bestSpec(t)))
	require.Equal(t, model.RunExited, res.Status)
	require.Empty(t, *sends)
}
