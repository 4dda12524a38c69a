package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// The updates webhook decides on are accepted by ApplyProviderEvent and
// change what they say, each in one transaction.
func TestApplyProviderEventWebhookUpdates(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newEmailContact(t, s)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	apply := func(u webhook.Update) storage.ProviderEventResult {
		t.Helper()
		res, err := s.ApplyProviderEvent(ctx, u.Event, u.Effects)
		require.NoError(t, err)
		return res
	}
	sendgrid := func(name, id string, edit func(*webhook.SendGridEvent)) webhook.SendGridEvent {
		e := webhook.SendGridEvent{Event: name, SGEventID: id, Timestamp: at.Unix()}
		if edit != nil {
			edit(&e)
		}
		require.Empty(t, e.Ignored())
		return e
	}

	// A click: the ledger row, engagement and the behaviour event together.
	clicked := sentMessage(t, s, c, "webhook/click")
	click := webhook.SendGridUpdate(sendgrid("click", "sg-click", func(e *webhook.SendGridEvent) { e.URL = "https://x.test" }),
		&clicked, c.ID, at, nil)
	res := apply(click)
	require.True(t, res.New)
	require.Equal(t, model.MessageClicked, res.Message.Status)
	ev, err := s.Event(ctx, "sendgrid:sg-click")
	require.NoError(t, err)
	require.Equal(t, webhook.KindEmailClicked, ev.Name)
	require.Equal(t, clicked.ID, ev.Properties["message_id"])
	var engagedAt time.Time
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT engaged_at FROM messages WHERE id = $1`, clicked.ID).Scan(&engagedAt))
	require.True(t, engagedAt.Equal(at), "engaged when SendGrid says the click happened")
	require.False(t, apply(click).New, "a redelivered click changes nothing")

	// A hard bounce: the ledger row and a suppression of the address.
	bounced := sentMessage(t, s, c, "webhook/bounce")
	res = apply(webhook.SendGridUpdate(sendgrid("bounce", "sg-bounce", func(e *webhook.SendGridEvent) { e.Type, e.Reason = "bounce", "no such user" }),
		&bounced, c.ID, at, nil))
	require.Equal(t, model.MessageBounced, res.Message.Status)
	require.Equal(t, "bounce: no such user", res.Message.StatusReason)
	require.True(t, res.SuppressionCreated)
	require.Equal(t, model.SuppressHardBounce, res.Suppression.Reason)

	// An unsubscribe group configured as a subscription, about no message.
	apply(webhook.SendGridUpdate(sendgrid("group_unsubscribe", "sg-group", func(e *webhook.SendGridEvent) { e.ASMGroupID = 42 }),
		nil, c.ID, at, map[int64]string{42: "newsletter"}))
	hist, err := s.ConsentHistory(ctx, c.ID)
	require.NoError(t, err)
	var newsletter []string
	for _, h := range hist {
		if h.Subscription == "newsletter" {
			newsletter = append(newsletter, string(h.Status)+" by "+h.Source)
		}
	}
	require.Equal(t, []string{string(model.ConsentRevoked) + " by sendgrid:group_unsubscribe"}, newsletter)
	current, err := s.Consents(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, model.ConsentGranted, current[journey.ChannelEmail].Status, "the channel stays granted")

	// Inbound SMS: STOP revokes SMS consent, a reply is a behaviour event.
	res = apply(webhook.TwilioInboundUpdate(webhook.TwilioInbound{MessageSid: "SM-stop", From: "+14155550100", Body: "stop"}, c.ID, at))
	require.Len(t, res.Consents, 1)
	require.Equal(t, model.ConsentRevoked, res.Consents[0].Status)
	require.Equal(t, "sms:STOP", res.Consents[0].Source)
	apply(webhook.TwilioInboundUpdate(webhook.TwilioInbound{MessageSid: "SM-reply", From: "+14155550100", Body: "thanks!"}, c.ID, at.Add(time.Minute)))
	ev, err = s.Event(ctx, "twilio:SM-reply")
	require.NoError(t, err)
	require.Equal(t, webhook.KindSMSReplied, ev.Name)

	// A status callback with 21610: the SMS fails and consent is revoked.
	sms := message(c, "webhook/sms")
	sms.Channel, sms.Provider = journey.ChannelSMS, "twilio"
	sms = storagetest.InFlight(t, s, sms)
	sms, err = s.CompleteSend(ctx, sms.ID, "twilio", "SM-out", time.Time{})
	require.NoError(t, err)
	res = apply(webhook.TwilioStatusUpdate(webhook.TwilioStatus{MessageSid: "SM-out", MessageStatus: "failed", ErrorCode: 21610},
		&sms, c.ID, at.Add(2*time.Minute)))
	require.Equal(t, model.MessageFailed, res.Message.Status)
	require.Equal(t, "twilio failed, error 21610", res.Message.StatusReason)
	require.Equal(t, "twilio:21610", res.Consents[0].Source)
}

// A provider STOP or unsubscribe stores its consent delivery in the
// webhook's own transaction, with the consent in force; a redelivered one
// stores nothing more.
func TestApplyProviderEventStoresConsentDeliveries(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newEmailContact(t, s)
	v := publish(t, s, "welcome")
	require.NoError(t, s.CreateEnrollment(ctx, storage.Enrollment{ID: "e_w", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version,
		WorkflowID: "wf-w", Status: model.RunActive}, nil))
	at := time.Now().UTC().Truncate(time.Second)

	stop := webhook.TwilioInboundUpdate(webhook.TwilioInbound{MessageSid: "SM-stop", From: "+14155550100", Body: "STOP"}, c.ID, at)
	res, err := s.ApplyProviderEvent(ctx, stop.Event, stop.Effects)
	require.NoError(t, err)
	require.True(t, res.New)
	require.Equal(t, 1, res.Deliveries)
	unsub := webhook.SendGridUpdate(webhook.SendGridEvent{Event: "unsubscribe", SGEventID: "sg-unsub", Timestamp: at.Unix()}, nil, c.ID, at, nil)
	res, err = s.ApplyProviderEvent(ctx, unsub.Event, unsub.Effects)
	require.NoError(t, err)
	require.Equal(t, 1, res.Deliveries)
	res, err = s.ApplyProviderEvent(ctx, unsub.Event, unsub.Effects)
	require.NoError(t, err)
	require.False(t, res.New)
	require.Zero(t, res.Deliveries, "the first delivery of the webhook stored them")

	rows, err := s.Pool().Query(ctx, `
		SELECT d.channel, d.consent_status, ce.source FROM deliveries d JOIN consent_events ce ON ce.id = d.consent_event_id
		WHERE d.contact_id = $1 AND d.kind = 'consent' AND d.done_at IS NULL ORDER BY d.id`, c.ID)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var ch, st, src string
		require.NoError(t, rows.Scan(&ch, &st, &src))
		got = append(got, ch+" "+st)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"sms revoked", "email revoked"}, got)
}
