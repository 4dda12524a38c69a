package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

func TestSendGridEventIgnored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    SendGridEvent
		want string
	}{
		{SendGridEvent{Event: "delivered", SGEventID: "sg1"}, ""},
		{SendGridEvent{Event: "group_resubscribe", SGEventID: "sg1"}, `event type "group_resubscribe" is not handled`},
		{SendGridEvent{Event: "", SGEventID: "sg1"}, `event type "" is not handled`},
		{SendGridEvent{Event: "open"}, "no sg_event_id to deduplicate on"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.e.Ignored(), "%+v", tt.e)
	}
}

func TestSendGridEventAboutAddress(t *testing.T) {
	t.Parallel()
	for event, want := range map[string]bool{
		"bounce": true, "spamreport": true, "unsubscribe": true, "group_unsubscribe": true,
		"processed": false, "delivered": false, "deferred": false, "open": false, "click": false, "dropped": false,
	} {
		require.Equal(t, want, SendGridEvent{Event: event}.AboutAddress(), event)
	}
}

func TestSendGridUpdate(t *testing.T) {
	t.Parallel()
	received := time.Date(2025, 3, 1, 12, 0, 30, 0, time.FixedZone("CET", 3600))
	stamped := time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
	msg := &storage.Message{ID: "m_1", ContactID: "c_1", JourneyID: "welcome", StepID: "hello", Channel: journey.ChannelEmail}
	groups := map[int64]string{42: "newsletter"}
	event := func(name string, edit func(*SendGridEvent)) SendGridEvent {
		e := SendGridEvent{Event: name, SGEventID: "sg-" + name, Timestamp: stamped.Unix(), Email: "ann@example.com"}
		if edit != nil {
			edit(&e)
		}
		return e
	}
	row := func(kind string, payload map[string]any, withMsg bool) storage.ProviderEvent {
		e := storage.ProviderEvent{Provider: ProviderSendGrid, EventID: "sg-" + payload["event"].(string), Kind: kind,
			ContactID: "c_1", OccurredAt: stamped, Payload: payload}
		if withMsg {
			e.MessageID = "m_1"
		}
		return e
	}
	revoke := func(subscription, source string) []storage.ConsentChange {
		return []storage.ConsentChange{{Channel: journey.ChannelEmail, Subscription: subscription, Status: model.ConsentRevoked,
			Source: source, OccurredAt: stamped}}
	}

	tests := []struct {
		name string
		e    SendGridEvent
		msg  *storage.Message
		want Update
	}{
		{"processed settles the row as sent", event("processed", nil), msg, Update{
			Event:   row(KindEmailProcessed, map[string]any{"event": "processed"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageSent}}},
		{"delivered", event("delivered", nil), msg, Update{
			Event:   row(KindEmailDelivered, map[string]any{"event": "delivered"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageDelivered}}},
		{"deferred is recorded only", event("deferred", func(e *SendGridEvent) { e.Reason = "try later" }), msg, Update{
			Event: row(KindEmailDeferred, map[string]any{"event": "deferred", "reason": "try later"}, true)}},
		{"a person's open is engagement and a behaviour event", event("open", nil), msg, Update{
			Event: row(KindEmailOpened, map[string]any{"event": "open"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageOpened, Engaged: true,
				Event: &storage.Event{ID: "sendgrid:sg-open", Name: KindEmailOpened, OccurredAt: stamped,
					Properties: map[string]any{"message_id": "m_1", "journey_id": "welcome", "step_id": "hello"}}}}},
		{"a machine open is delivery only", event("open", func(e *SendGridEvent) { e.SGMachineOpen = true }), msg, Update{
			Event:   row(KindEmailOpenedMachine, map[string]any{"event": "open", "sg_machine_open": true}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageDelivered}}},
		{"a click carries its url", event("click", func(e *SendGridEvent) { e.URL = "https://x.test/a" }), msg, Update{
			Event: row(KindEmailClicked, map[string]any{"event": "click", "url": "https://x.test/a"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageClicked, Engaged: true,
				Event: &storage.Event{ID: "sendgrid:sg-click", Name: KindEmailClicked, OccurredAt: stamped,
					Properties: map[string]any{"url": "https://x.test/a", "message_id": "m_1", "journey_id": "welcome", "step_id": "hello"}}}}},
		{"a hard bounce suppresses the address",
			event("bounce", func(e *SendGridEvent) { e.Type, e.Status, e.Reason = "bounce", "5.1.1", " no such user " }), msg, Update{
				Event: row(KindEmailBounced, map[string]any{"event": "bounce", "type": "bounce", "status": "5.1.1", "reason": " no such user "}, true),
				Effects: storage.ProviderEffects{MessageStatus: model.MessageBounced, StatusReason: "bounce: 5.1.1: no such user",
					Suppression: &storage.Suppression{Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail,
						Source: "sendgrid:bounce", Note: "bounce: 5.1.1: no such user"}}}},
		{"a block bounces the message but does not suppress",
			event("bounce", func(e *SendGridEvent) { e.Type, e.Reason = "blocked", "reputation" }), msg, Update{
				Event:   row(KindEmailBounced, map[string]any{"event": "bounce", "type": "blocked", "reason": "reputation"}, true),
				Effects: storage.ProviderEffects{MessageStatus: model.MessageBounced, StatusReason: "blocked: reputation"}}},
		{"a hard bounce of mail Tutti did not send still suppresses",
			event("bounce", func(e *SendGridEvent) { e.Type = "bounce" }), nil, Update{
				Event: row(KindEmailBounced, map[string]any{"event": "bounce", "type": "bounce"}, false),
				Effects: storage.ProviderEffects{Suppression: &storage.Suppression{Reason: model.SuppressHardBounce,
					Channel: journey.ChannelEmail, Source: "sendgrid:bounce", Note: "bounce"}}}},
		{"dropped keeps SendGrid's reason", event("dropped", func(e *SendGridEvent) { e.Reason = "Bounced Address" }), msg, Update{
			Event:   row(KindEmailDropped, map[string]any{"event": "dropped", "reason": "Bounced Address"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageDropped, StatusReason: "Bounced Address"}}},
		{"a spam report complains, suppresses and revokes email", event("spamreport", nil), msg, Update{
			Event: row(KindEmailSpamReported, map[string]any{"event": "spamreport"}, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageComplained, StatusReason: "spam report",
				Suppression: &storage.Suppression{Reason: model.SuppressSpamComplaint, Channel: journey.ChannelEmail, Source: "sendgrid:spamreport"},
				Consents:    revoke("", "sendgrid:spamreport")}}},
		{"a spam report about mail Tutti did not send", event("spamreport", nil), nil, Update{
			Event: row(KindEmailSpamReported, map[string]any{"event": "spamreport"}, false),
			Effects: storage.ProviderEffects{
				Suppression: &storage.Suppression{Reason: model.SuppressSpamComplaint, Channel: journey.ChannelEmail, Source: "sendgrid:spamreport"},
				Consents:    revoke("", "sendgrid:spamreport")}}},
		{"unsubscribe revokes email", event("unsubscribe", nil), msg, Update{
			Event:   row(KindEmailUnsubscribed, map[string]any{"event": "unsubscribe"}, true),
			Effects: storage.ProviderEffects{Consents: revoke("", "sendgrid:unsubscribe")}}},
		{"a configured unsubscribe group revokes its subscription",
			event("group_unsubscribe", func(e *SendGridEvent) { e.ASMGroupID = 42 }), msg, Update{
				Event:   row(KindEmailGroupUnsubscribe, map[string]any{"event": "group_unsubscribe", "asm_group_id": int64(42)}, true),
				Effects: storage.ProviderEffects{Consents: revoke("newsletter", "sendgrid:group_unsubscribe")}}},
		{"any other unsubscribe group revokes email as a whole",
			event("group_unsubscribe", func(e *SendGridEvent) { e.ASMGroupID = 7 }), nil, Update{
				Event:   row(KindEmailGroupUnsubscribe, map[string]any{"event": "group_unsubscribe", "asm_group_id": int64(7)}, false),
				Effects: storage.ProviderEffects{Consents: revoke("", "sendgrid:group_unsubscribe")}}},
		{"the payload keeps what support needs, not the address",
			event("delivered", func(e *SendGridEvent) {
				e.SGMessageID, e.BounceClassification, e.Response, e.UserAgent, e.IP = "sgm.1", "Technical", "250 OK", "Mozilla", "10.0.0.1"
			}), msg, Update{
				Event:   row(KindEmailDelivered, map[string]any{"event": "delivered", "sg_message_id": "sgm.1", "bounce_classification": "Technical"}, true),
				Effects: storage.ProviderEffects{MessageStatus: model.MessageDelivered}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Empty(t, tt.e.Ignored())
			require.Equal(t, tt.want, SendGridUpdate(tt.e, tt.msg, "c_1", received, groups))
		})
	}
}

func TestSendGridUpdateWithoutTimestampHappenedWhenReceived(t *testing.T) {
	t.Parallel()
	received := time.Date(2025, 3, 1, 12, 0, 30, 0, time.FixedZone("CET", 3600))
	u := SendGridUpdate(SendGridEvent{Event: "unsubscribe", SGEventID: "sg-1"}, nil, "c_1", received, nil)
	require.Equal(t, received.UTC(), u.Event.OccurredAt)
	require.Equal(t, time.UTC, u.Event.OccurredAt.Location())
	require.Equal(t, received.UTC(), u.Effects.Consents[0].OccurredAt)
}
