package activities_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// at pins the gate's clock.
func (b *bundle) at(t time.Time) { b.acts.Delivery.Now = func() time.Time { return t } }

func TestSend_QuietHoursDeferToTheWindowOpening(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelSMS)
	settings := policy.DefaultSettings() // SMS 08:00-21:00 in the recipient's time
	b.acts.Delivery.Policy = settings
	// Alice's phone is a San Francisco number: 23:30 there is 07:30 UTC.
	b.at(time.Date(2026, 6, 2, 6, 30, 0, 0, time.UTC))

	res, err := b.send(t, b.input("nudge"))
	require.NoError(t, err)
	require.Equal(t, delivery.StatusDeferred, res.Status)
	require.Equal(t, policy.CodeQuietHours, res.Reason)
	require.Equal(t, time.Date(2026, 6, 2, 15, 0, 0, 0, time.UTC), res.DeferUntil.UTC(), "08:00 in Los Angeles (PDT)")
	require.Empty(t, b.tw.Requests(), "nothing sent at night")
	_, err = b.store.MessageByKey(b.ctx, b.input("nudge").IdempotencyKey)
	require.ErrorIs(t, err, storage.ErrNotFound, "a deferral holds no ledger row")

	// The workflow asks again at the window's opening: it goes out.
	b.at(res.DeferUntil)
	res, err = b.send(t, b.input("nudge"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Len(t, b.tw.Requests(), 1)
}

func TestSend_CooldownSkipsWhenTheJourneySaysSo(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	settings := policy.DefaultSettings()
	b.acts.Delivery.Policy = settings // email cooldown 16h
	b.at(time.Now())
	_, err := b.send(t, b.input("hello"))
	require.NoError(t, err)

	in := b.input("promo")
	_, _, err = b.store.UpsertContact(b.ctx, storage.ContactInput{ID: b.alice.ID, Attributes: map[string]any{"plan": "pro"}})
	require.NoError(t, err)
	in.Policy = &journey.Policy{OnCap: journey.OnCapSkip}
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeCooldownEmail, res.Reason)
	require.Len(t, b.sg.Requests(), 1)
}

func TestSend_TransactionalIsExemptFromCaps(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	settings := policy.DefaultSettings()
	settings.GlobalCap = policy.FrequencyCap{Max: 1, Window: 7 * 24 * time.Hour}
	b.acts.Delivery.Policy = settings
	_, err := b.send(t, b.input("hello"))
	require.NoError(t, err)

	in := b.input("hello")
	in.IdempotencyKey += "-receipt"
	in.Class = journey.ClassTransactional
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Len(t, b.sg.Requests(), 2)
}

func TestSend_FallbackChannelWhenTheFirstIsBlocked(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelEmail) // no SMS consent
	in := b.input("nudge")
	in.Send.Email = &journey.EmailMessage{Subject: "Hi {{ .contact.first_name }}", Text: "We could not text you."}
	in.Policy = &journey.Policy{FallbackChannel: journey.ChannelEmail}
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, journey.ChannelEmail, res.Channel)
	require.Empty(t, b.tw.Requests())
	require.Len(t, b.sg.Requests(), 1)
	require.Equal(t, "Hi Alice", b.sg.Requests()[0].Body.Subject)
	m, err := b.store.MessageByKey(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, journey.ChannelEmail, m.Channel)
	require.Equal(t, "sendgrid", m.Provider)
	require.NotNil(t, m.ConsentEventID, "the email consent that allowed the fallback")
}

func TestSend_AbandonmentJourneySendsOneSMSPerEvent(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelSMS)
	eventAt := time.Date(2026, 6, 2, 18, 0, 0, 0, time.UTC) // 11:00 in San Francisco
	b.at(eventAt.Add(time.Hour))
	in := b.input("nudge")
	in.Policy = &journey.Policy{Abandonment: true}
	in.Abandonment = &activities.AbandonmentRef{EventID: "cart-77", OccurredAt: eventAt}
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)

	second := in
	second.IdempotencyKey, second.StepID = in.IdempotencyKey+"-again", "nudge_again"
	res, err = b.send(t, second)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeAbandonmentSMSAlreadySent, res.Reason)

	// Another abandonment, 49 hours ago: too late for an SMS.
	late := in
	late.IdempotencyKey = in.IdempotencyKey + "-late"
	late.Abandonment = &activities.AbandonmentRef{EventID: "cart-78", OccurredAt: eventAt.Add(-48 * time.Hour)}
	res, err = b.send(t, late)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeAbandonmentWindowExpired, res.Reason)
	require.Len(t, b.tw.Requests(), 1)
}

func TestSend_SuppressedContactIsSkippedWithReason(t *testing.T) {
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	_, _, err := b.store.AddSuppression(b.ctx, storage.Suppression{ContactID: b.alice.ID, Reason: model.SuppressInOpportunity, Source: "crm"})
	require.NoError(t, err)
	res, err := b.send(t, b.input("hello"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeSuppressedInOpportunity, res.Reason)
	require.NotZero(t, res.DecisionID)
	require.Empty(t, b.sg.Requests())
}

func TestSend_MissingAddressIsTheGatesDecision(t *testing.T) {
	b := setup(t)
	bob, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{ExternalID: "bob", Phone: "+14155550122", Attributes: map[string]any{"first_name": "Bob"}})
	require.NoError(t, err)
	for _, ch := range []journey.Channel{journey.ChannelEmail, journey.ChannelSMS} {
		_, _, err := b.store.RecordConsent(b.ctx, bob.ID, ch, model.ConsentGranted, "test", time.Now().Add(-time.Minute))
		require.NoError(t, err)
	}
	in := b.input("hello")
	in.ContactID, in.IdempotencyKey = bob.ID, "bob/hello/1"
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeNoEmail, res.Reason)
	require.NotZero(t, res.DecisionID, "decided and explainable")

	// With an SMS fallback on the step, the same contact is texted instead.
	in.IdempotencyKey = "bob/hello/2"
	in.Send.SMS = &journey.SMSMessage{Body: "Hi {{ .contact.first_name }}, welcome!"}
	in.Policy = &journey.Policy{FallbackChannel: journey.ChannelSMS}
	res, err = b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, journey.ChannelSMS, res.Channel)
	require.Len(t, b.tw.Requests(), 1)
	require.Empty(t, b.sg.Requests())
}
