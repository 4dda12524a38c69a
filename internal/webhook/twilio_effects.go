package webhook

import (
	"fmt"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
)

// KindSMSReplied is an inbound SMS that is not a keyword: the provider
// event kind, and the behaviour event journeys can wait for.
const KindSMSReplied = "sms.replied"

// TwilioInboundUpdate is what an inbound SMS from the contact changes. A
// body that is exactly a carrier keyword changes SMS consent: an opt-out
// keyword revokes it, an opt-in keyword grants it (which also confirms a
// pending double opt-in, and re-subscribes after a STOP). HELP and INFO are
// recorded only. Anything else is a reply: the behaviour event sms.replied,
// and engagement. received is when the webhook arrived.
func TwilioInboundUpdate(in TwilioInbound, contactID string, received time.Time) Update {
	kw := ClassifySMSKeyword(in.Body)
	u := Update{Event: storage.ProviderEvent{
		Provider: ProviderTwilio, EventID: in.MessageSid, ContactID: contactID, OccurredAt: received.UTC(),
		Payload: map[string]any{"keyword": kw.String(), "num_media": in.NumMedia},
	}}
	switch kw {
	case KeywordOptOut, KeywordOptIn:
		status, kind := model.ConsentRevoked, "sms.opt_out"
		if kw == KeywordOptIn {
			status, kind = model.ConsentGranted, "sms.opt_in"
		}
		u.Event.Kind = kind
		u.Effects.Consents = []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: status,
			Source: "sms:" + keywordText(in.Body), OccurredAt: u.Event.OccurredAt}}
	case KeywordHelp:
		u.Event.Kind = "sms.help"
	default:
		u.Event.Kind = KindSMSReplied
		u.Effects.Engaged = true
		u.Effects.Event = &storage.Event{ID: "twilio:" + in.MessageSid, Name: KindSMSReplied, OccurredAt: u.Event.OccurredAt,
			Properties: map[string]any{"body": in.Body, "num_media": in.NumMedia, "message_sid": in.MessageSid}}
	}
	return u
}

// RecipientOptedOut reports whether the callback carries Twilio's error
// 21610: the recipient had replied STOP, an SMS opt-out.
func (st TwilioStatus) RecipientOptedOut() bool {
	return st.ErrorCode == provider.TwilioCodeUnsubscribed
}

// Status is MessageStatus in lower case, as Tutti names it.
func (st TwilioStatus) Status() string {
	return strings.ToLower(st.MessageStatus)
}

// TwilioStatusUpdate is what a status callback changes, deduplicated on
// MessageSid and status. msg is the SMS it is about, nil if Tutti does not
// know it; contactID is msg's contact, or for an unknown message with
// RecipientOptedOut, the contact with the recipient's number. sent,
// delivered, undelivered and failed move msg's ledger row (undelivered is
// recorded as failed; storage never moves a row backwards). An opt-out
// revokes SMS consent as an inbound STOP does. received is when the webhook
// arrived.
func TwilioStatusUpdate(st TwilioStatus, msg *storage.Message, contactID string, received time.Time) Update {
	status := st.Status()
	u := Update{Event: storage.ProviderEvent{
		Provider: ProviderTwilio, EventID: st.MessageSid + ":" + status, Kind: "sms." + status,
		ContactID: contactID, OccurredAt: received.UTC(),
		Payload: map[string]any{"message_status": st.MessageStatus, "error_code": st.ErrorCode},
	}}
	if msg != nil {
		u.Event.MessageID = msg.ID
		reason := ""
		if st.ErrorCode != 0 {
			reason = fmt.Sprintf("twilio %s, error %d", status, st.ErrorCode)
		}
		switch status {
		case "sent":
			u.Effects.MessageStatus = model.MessageSent
		case "delivered":
			u.Effects.MessageStatus = model.MessageDelivered
		case "undelivered", "failed":
			u.Effects.MessageStatus, u.Effects.StatusReason = model.MessageFailed, reason
		}
	}
	if st.RecipientOptedOut() {
		u.Effects.Consents = []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: model.ConsentRevoked,
			Source: provider.TwilioOptOutSource, OccurredAt: u.Event.OccurredAt}}
	}
	return u
}
