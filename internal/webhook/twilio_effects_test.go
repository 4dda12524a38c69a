package webhook

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

func TestTwilioInboundUpdate(t *testing.T) {
	t.Parallel()
	received := time.Date(2025, 3, 1, 12, 0, 30, 0, time.FixedZone("CET", 3600))
	at := received.UTC()
	row := func(kind, keyword string) storage.ProviderEvent {
		return storage.ProviderEvent{Provider: ProviderTwilio, EventID: "SM1", Kind: kind, ContactID: "c_1", OccurredAt: at,
			Payload: map[string]any{"keyword": keyword, "num_media": 0}}
	}
	sms := func(status model.ConsentStatus, source string) []storage.ConsentChange {
		return []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: status, Source: source, OccurredAt: at}}
	}
	reply := func(body string) storage.ProviderEffects {
		return storage.ProviderEffects{Engaged: true, Event: &storage.Event{ID: "twilio:SM1", Name: KindSMSReplied, OccurredAt: at,
			Properties: map[string]any{"body": body, "num_media": 0, "message_sid": "SM1"}}}
	}

	tests := []struct {
		body string
		want Update
	}{
		{"STOP", Update{Event: row("sms.opt_out", "opt_out"), Effects: storage.ProviderEffects{Consents: sms(model.ConsentRevoked, "sms:STOP")}}},
		{" unsubscribe\u200B\n", Update{Event: row("sms.opt_out", "opt_out"), Effects: storage.ProviderEffects{Consents: sms(model.ConsentRevoked, "sms:UNSUBSCRIBE")}}},
		{"Start", Update{Event: row("sms.opt_in", "opt_in"), Effects: storage.ProviderEffects{Consents: sms(model.ConsentGranted, "sms:START")}}},
		{"yes", Update{Event: row("sms.opt_in", "opt_in"), Effects: storage.ProviderEffects{Consents: sms(model.ConsentGranted, "sms:YES")}}},
		{"HELP", Update{Event: row("sms.help", "help")}},
		{"info", Update{Event: row("sms.help", "help")}},
		{"please stop", Update{Event: row(KindSMSReplied, "none"), Effects: reply("please stop")}},
		{"STOP.", Update{Event: row(KindSMSReplied, "none"), Effects: reply("STOP.")}},
		{"", Update{Event: row(KindSMSReplied, "none"), Effects: reply("")}},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			t.Parallel()
			in := TwilioInbound{MessageSid: "SM1", From: "+14155550100", To: "+14155550199", Body: tt.body}
			require.Equal(t, tt.want, TwilioInboundUpdate(in, "c_1", received))
		})
	}
}

func TestTwilioStatusUpdate(t *testing.T) {
	t.Parallel()
	received := time.Date(2025, 3, 1, 12, 0, 30, 0, time.FixedZone("CET", 3600))
	at := received.UTC()
	msg := &storage.Message{ID: "m_1", ContactID: "c_1", Channel: journey.ChannelSMS}
	row := func(status string, code int, withMsg bool) storage.ProviderEvent {
		e := storage.ProviderEvent{Provider: ProviderTwilio, EventID: "SM1:" + status, Kind: "sms." + status, ContactID: "c_1",
			OccurredAt: at, Payload: map[string]any{"message_status": status, "error_code": code}}
		if withMsg {
			e.MessageID = "m_1"
		}
		return e
	}
	optOut := []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: model.ConsentRevoked, Source: "twilio:21610", OccurredAt: at}}

	tests := []struct {
		name   string
		status string
		code   int
		msg    *storage.Message
		want   Update
	}{
		{"sent", "sent", 0, msg, Update{Event: row("sent", 0, true), Effects: storage.ProviderEffects{MessageStatus: model.MessageSent}}},
		{"delivered", "delivered", 0, msg, Update{Event: row("delivered", 0, true), Effects: storage.ProviderEffects{MessageStatus: model.MessageDelivered}}},
		{"undelivered is recorded as failed", "undelivered", 30003, msg, Update{Event: row("undelivered", 30003, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageFailed, StatusReason: "twilio undelivered, error 30003"}}},
		{"failed without a code", "failed", 0, msg, Update{Event: row("failed", 0, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageFailed}}},
		{"queued is recorded only", "queued", 0, msg, Update{Event: row("queued", 0, true)}},
		{"an opt-out fails the message and revokes SMS", "failed", 21610, msg, Update{Event: row("failed", 21610, true),
			Effects: storage.ProviderEffects{MessageStatus: model.MessageFailed, StatusReason: "twilio failed, error 21610", Consents: optOut}}},
		{"an opt-out about a message Tutti does not know revokes SMS", "undelivered", 21610, nil, Update{Event: row("undelivered", 21610, false),
			Effects: storage.ProviderEffects{Consents: optOut}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := TwilioStatus{MessageSid: "SM1", MessageStatus: tt.status, ErrorCode: tt.code, To: "+14155550100"}
			require.Equal(t, tt.code == 21610, st.RecipientOptedOut())
			require.Equal(t, tt.want, TwilioStatusUpdate(st, tt.msg, "c_1", received))
		})
	}
}

func TestTwilioStatusIsLowerCase(t *testing.T) {
	t.Parallel()
	st := TwilioStatus{MessageSid: "SM1", MessageStatus: "Delivered"}
	require.Equal(t, "delivered", st.Status())
	u := TwilioStatusUpdate(st, &storage.Message{ID: "m_1", ContactID: "c_1"}, "c_1", time.Unix(0, 0))
	require.Equal(t, "SM1:delivered", u.Event.EventID)
	require.Equal(t, "sms.delivered", u.Event.Kind)
	require.Equal(t, "Delivered", u.Event.Payload["message_status"], "the payload keeps what Twilio sent")
	require.Equal(t, model.MessageDelivered, u.Effects.MessageStatus)
}

// A reply from a number a merged contact left behind as an alias: STOP
// still revokes, START grants nothing, a reply is still the contact's.
func TestUpdateViaAlias(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		body     string
		consents []model.ConsentStatus
		event    bool
	}{
		{"STOP", []model.ConsentStatus{model.ConsentRevoked}, false},
		{"START", nil, false},
		{"YES", nil, false},
		{"see you tomorrow", nil, true},
	} {
		u := TwilioInboundUpdate(TwilioInbound{MessageSid: "SM1", From: "+14155550100", To: "+14155550199", Body: tt.body}, "c_1", now).ViaAlias()
		var got []model.ConsentStatus
		for _, c := range u.Effects.Consents {
			got = append(got, c.Status)
		}
		require.Equal(t, tt.consents, got, tt.body)
		require.Equal(t, tt.event, u.Effects.Event != nil, tt.body)
	}
}
