package webhook

import (
	"strconv"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// KindEmailOpenedMachine is the provider_events kind of an open SendGrid
// attributes to a machine (Apple Mail Privacy Protection prefetching the
// tracking pixel). It is recorded, and counts as delivery, but it is not
// engagement: no email.opened event is stored or signalled, so a journey's
// wait_for email.opened is not fooled by it.
const KindEmailOpenedMachine = "email.opened.machine"

// Ignored says why Tutti does not act on the event at all, before anything
// is looked up: a kind it does not handle, or no sg_event_id to deduplicate
// on. It is "" for an event to act on.
func (e SendGridEvent) Ignored() string {
	switch {
	case e.Kind() == "":
		return "event type " + strconv.Quote(e.Event) + " is not handled"
	case e.SGEventID == "":
		return "no sg_event_id to deduplicate on"
	}
	return ""
}

// AboutAddress reports whether the event is acted on even when it is about
// no Tutti message, through the contact with the event's email address.
// Only what the recipient asked for about their address counts (an
// unsubscribe or spam report from mail sent outside Tutti on the same
// account still means it), and a bounce, which may suppress the address.
// Delivery and engagement of mail Tutti did not send are not its business.
func (e SendGridEvent) AboutAddress() bool {
	switch e.Event {
	case "bounce", "spamreport", "unsubscribe", "group_unsubscribe":
		return true
	}
	return false
}

// SendGridUpdate is what an event Tutti acts on (Ignored is "") changes.
// msg is the email it is about, nil if none (then AboutAddress must hold);
// contactID is the contact it is about: msg's contact when msg is set.
// received is when the webhook arrived, the event's time if it carries none.
// asmGroups maps the unsubscribe groups configured as subscription types to
// their subscription.
func SendGridUpdate(e SendGridEvent, msg *storage.Message, contactID string, received time.Time, asmGroups map[int64]string) Update {
	occurred := received.UTC()
	if e.Timestamp > 0 {
		occurred = e.Time()
	}
	u := Update{Event: storage.ProviderEvent{
		Provider: ProviderSendGrid, EventID: e.SGEventID, Kind: e.Kind(), ContactID: contactID, OccurredAt: occurred,
		Payload: sendGridPayload(e),
	}}
	fx := &u.Effects
	if msg != nil {
		u.Event.MessageID = msg.ID
	}
	setStatus := func(status model.MessageStatus, reason string) {
		if msg != nil {
			fx.MessageStatus, fx.StatusReason = status, reason
		}
	}
	engagement := func(name string, props map[string]any) {
		fx.Engaged = true
		if msg != nil {
			props["message_id"], props["journey_id"], props["step_id"] = msg.ID, msg.JourneyID, msg.StepID
		}
		fx.Event = &storage.Event{ID: "sendgrid:" + e.SGEventID, Name: name, Properties: props, OccurredAt: occurred}
	}
	revokeEmail := func(subscription, source string) {
		fx.Consents = append(fx.Consents, storage.ConsentChange{Channel: journey.ChannelEmail, Subscription: subscription,
			Status: model.ConsentRevoked, Source: source, OccurredAt: occurred})
	}

	switch e.Event {
	case "processed":
		// Settles a row a crash left unknown; a sent row stays sent.
		setStatus(model.MessageSent, "")
	case "delivered":
		setStatus(model.MessageDelivered, "")
	case "deferred":
		// Recorded only: SendGrid keeps trying, and says so when it stops.
	case "open":
		if e.IsMachineOpen() {
			// See KindEmailOpenedMachine: delivery, not engagement; nothing
			// is signalled to journeys.
			u.Event.Kind = KindEmailOpenedMachine
			setStatus(model.MessageDelivered, "")
			break
		}
		setStatus(model.MessageOpened, "")
		engagement(KindEmailOpened, map[string]any{})
	case "click":
		setStatus(model.MessageClicked, "")
		engagement(KindEmailClicked, map[string]any{"url": e.URL})
	case "bounce":
		reason := strings.TrimSpace(strings.Join(nonEmpty(e.Type, e.Status, e.Reason), ": "))
		setStatus(model.MessageBounced, reason)
		// Only a hard bounce (the address itself was rejected) suppresses
		// it; a block is about the message or sending reputation.
		if e.HardBounce() {
			fx.Suppression = &storage.Suppression{Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail,
				Source: "sendgrid:bounce", Note: reason}
		}
	case "dropped":
		setStatus(model.MessageDropped, e.Reason)
	case "spamreport":
		setStatus(model.MessageComplained, "spam report")
		fx.Suppression = &storage.Suppression{Reason: model.SuppressSpamComplaint, Channel: journey.ChannelEmail,
			Source: "sendgrid:spamreport"}
		revokeEmail("", "sendgrid:spamreport")
	case "unsubscribe":
		revokeEmail("", "sendgrid:unsubscribe")
	case "group_unsubscribe":
		// An unsubscribe group configured as a subscription type
		// (SENDGRID_ASM_GROUP_SUBSCRIPTIONS) revokes just that
		// subscription; any other group revokes email marketing as a
		// whole, since not knowing what the contact left must not mean
		// mailing them anyway.
		if sub := asmGroups[e.ASMGroupID]; sub != "" {
			revokeEmail(sub, "sendgrid:group_unsubscribe")
		} else {
			revokeEmail("", "sendgrid:group_unsubscribe")
		}
	}
	return u
}

// sendGridPayload is what provider_events keeps of a SendGrid event: the
// fields support needs, not the address (the ledger and contact have it).
func sendGridPayload(e SendGridEvent) map[string]any {
	p := map[string]any{"event": e.Event}
	for k, v := range map[string]string{
		"sg_message_id": e.SGMessageID, "type": e.Type, "reason": e.Reason, "status": e.Status,
		"bounce_classification": e.BounceClassification, "url": e.URL,
	} {
		if v != "" {
			p[k] = v
		}
	}
	if e.ASMGroupID != 0 {
		p["asm_group_id"] = e.ASMGroupID
	}
	if e.SGMachineOpen {
		p["sg_machine_open"] = true
	}
	return p
}

// nonEmpty is ss trimmed, without the blank ones.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}
