package api

import (
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

func plainReason(r policy.Reason) string { return r.Code + " (" + r.Detail + ")" }

func TestExplainMessage(t *testing.T) {
	at := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	msg := func(status model.MessageStatus, reason string) storage.Message {
		return storage.Message{ID: "m_1", Channel: journey.ChannelEmail, Status: status, StatusReason: reason, UpdatedAt: at, SentAt: &at}
	}
	for _, tc := range []struct {
		m           storage.Message
		state, text string
	}{
		{msg(model.MessageSent, ""), WhySent, "sent on email at 2025-05-01T09:00:00Z"},
		{msg(model.MessageDelivered, ""), WhySent, "sent on email at 2025-05-01T09:00:00Z (delivered)"},
		{msg(model.MessageBounced, "550 no such user"), WhySent, "sent on email at 2025-05-01T09:00:00Z, but it bounced: 550 no such user"},
		{msg(model.MessageComplained, ""), WhySent, "sent on email at 2025-05-01T09:00:00Z; the contact reported it as spam"},
		{msg(model.MessageReserved, ""), WhySending, "allowed on email at 2025-05-01T09:00:00Z; no request has reached the provider yet"},
		{msg(model.MessageInFlight, ""), WhySending, "allowed on email; a request to the provider was being written at 2025-05-01T09:00:00Z and its answer is not recorded yet"},
		{msg(model.MessageRetrying, "503"), WhySending, "allowed on email; the last provider attempt failed and will be retried: 503"},
		{msg(model.MessageFailed, "invalid number"), WhyFailed, "not sent: allowed on email, but the provider refused it: invalid number"},
		{msg(model.MessageDropped, "bounced address"), WhyFailed, "not delivered: allowed on email, but the provider dropped it: bounced address"},
		{msg(model.MessageUnknown, ""), WhyUnknown, "allowed on email; a request reached the provider at 2025-05-01T09:00:00Z but no answer came back, and the provider cannot be asked: it may have the message, so it is not resent"},
		{msg(model.MessageSkipped, "no_consent"), WhySkipped, "not sent: skipped on email: no_consent"},
	} {
		state, text := explainMessage(tc.m, "")
		if state != tc.state || text != tc.text {
			t.Errorf("%s: got %s %q, want %s %q", tc.m.Status, state, text, tc.state, tc.text)
		}
	}
}

func TestExplainDecision(t *testing.T) {
	at := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	until := at.Add(time.Hour)
	reasons := []policy.Reason{{Code: policy.CodeQuietHours, Detail: "22:00 local"}, {Code: policy.CodeCapGlobal, Detail: "7 in 7d"}}
	for _, tc := range []struct {
		name        string
		d           storage.Decision
		m           *storage.Message
		state, text string
	}{
		{"defer", storage.Decision{Outcome: policy.OutcomeDefer, DecidedChannel: journey.ChannelSMS, Until: &until, Reasons: reasons},
			nil, WhyDeferred, "deferred on sms until 2025-05-01T10:00:00Z — quiet_hours (22:00 local); cap:global (7 in 7d)"},
		{"skip", storage.Decision{Outcome: policy.OutcomeSkip, DecidedChannel: journey.ChannelSMS, Reasons: reasons[:1]},
			nil, WhySkipped, "not sent: skipped on sms — quiet_hours (22:00 local)"},
		{"skip without reasons", storage.Decision{Outcome: policy.OutcomeSkip, DecidedChannel: journey.ChannelSMS},
			nil, WhySkipped, "not sent: skipped on sms — no reason recorded"},
		{"allow without a row", storage.Decision{Outcome: policy.OutcomeAllow, DecidedChannel: journey.ChannelEmail, MessageID: "m_9", DecidedAt: at},
			nil, WhySending, "allowed on email at 2025-05-01T09:00:00Z; no ledger row found for message m_9"},
		{"transactional bypass", storage.Decision{Outcome: policy.OutcomeAllow, DecidedChannel: journey.ChannelEmail,
			Reasons: []policy.Reason{{Code: policy.CodeTransactionalBypass, Detail: "quiet_hours"}}},
			&storage.Message{Channel: journey.ChannelEmail, Status: model.MessageSent, SentAt: &at},
			WhySent, "sent on email (transactional_bypass (quiet_hours)) at 2025-05-01T09:00:00Z"},
	} {
		state, text := explainDecision(tc.d, tc.m, plainReason)
		if state != tc.state || text != tc.text {
			t.Errorf("%s: got %s %q, want %s %q", tc.name, state, text, tc.state, tc.text)
		}
	}
}

func TestConsentEventIn(t *testing.T) {
	for _, tc := range []struct {
		r    policy.Reason
		id   int64
		find bool
	}{
		{policy.Reason{Code: policy.CodeConsentRevoked, Detail: "sms consent revoked (event 12, 2025-05-01T09:00:00Z): the contact revoked consent"}, 12, true},
		{policy.Reason{Code: policy.CodeSMSPendingDoubleOptIn, Detail: "sms consent pending (event 7, 2025-05-01T09:00:00Z)"}, 7, true},
		{policy.Reason{Code: policy.CodeNoConsent, Detail: "no email consent"}, 0, false},
		{policy.Reason{Code: policy.CodeQuietHours, Detail: "(event 3, x)"}, 0, false},
		{policy.Reason{Code: policy.CodeConsentRevoked, Detail: "revoked"}, 0, false},
	} {
		id, ok := consentEventIn(tc.r)
		if id != tc.id || ok != tc.find {
			t.Errorf("%q: got %d %v", tc.r.Detail, id, ok)
		}
	}
}
