package activities_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

const (
	sgKey     = "SG.test-key"
	twSID     = "AC00000000000000000000000000000001"
	twToken   = "test-auth-token"
	fromPhone = "+15005550006"
)

type bundle struct {
	store  *storage.Store
	sg     *providertest.FakeSendGrid
	tw     *providertest.FakeTwilio
	acts   *activities.Activities
	env    *testsuite.TestActivityEnvironment
	ctx    context.Context
	alice  storage.Contact
	spec   journey.Spec
	jv     storage.JourneyVersion
	nextID int
}

// setup wires the real activities to a fresh database and to fake SendGrid
// and Twilio servers reached through the real SDK clients.
func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{
		store: storagetest.New(t),
		sg:    providertest.NewFakeSendGrid(t, sgKey),
		tw:    providertest.NewFakeTwilio(t, twSID, twToken),
		ctx:   ctx,
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	// No cooldowns or quiet hours unless a test sets them: most tests here
	// are about the provider calls, not about timing rules.
	settings := policy.DefaultSettings()
	settings.Cooldowns = nil
	settings.QuietHours = nil
	b.acts = &activities.Activities{
		Store: b.store,
		Delivery: &delivery.Service{
			Policy: settings,
			Store:  b.store,
			Email:  provider.NewSendGrid(sgKey, b.sg.URL(), hc),
			SMS:    provider.NewTwilio(twSID, twToken, b.tw.URL(), hc),
			Sender: delivery.Identity{EmailFrom: "hello@tutti.test", EmailFromName: "Tutti", SMSFrom: fromPhone},
		},
	}
	var suite testsuite.WorkflowTestSuite
	b.env = suite.NewTestActivityEnvironment()
	b.env.RegisterActivity(b.acts)

	var err error
	b.alice, _, err = b.store.UpsertContact(ctx, storage.ContactInput{
		Email: "alice@example.com", Phone: "+14155550101", Attributes: map[string]any{"first_name": "Alice"},
	})
	require.NoError(t, err)
	b.spec, err = journey.ParseAndValidate([]byte(`
id: welcome
name: Welcome
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Hi {{ .contact.first_name }}", html: "<p>Hello {{ .contact.first_name }}</p>", text: "Hello {{ .contact.first_name }}"}
  - id: nudge
    send:
      channel: sms
      sms: {body: "Hi {{ .contact.first_name }}, reply STOP to opt out"}
  - id: promo
    send:
      channel: email
      email: {template_id: d-1234567890abcdef, data: {name: "{{ .contact.first_name }}", plan: "{{ .contact.plan }}"}}
`))
	require.NoError(t, err)
	b.jv, err = b.store.PublishJourney(ctx, b.spec)
	require.NoError(t, err)
	return b
}

func (b *bundle) grant(t *testing.T, ch journey.Channel) {
	t.Helper()
	_, _, err := b.store.RecordConsent(b.ctx, b.alice.ID, ch, model.ConsentGranted, "test", time.Now().Add(-time.Minute))
	require.NoError(t, err)
}

func (b *bundle) input(step string) activities.SendInput {
	idx := b.spec.StepIndex(step)
	return activities.SendInput{
		IdempotencyKey: "journey/welcome/contact/" + b.alice.ID + "/" + step + "/1",
		ContactID:      b.alice.ID,
		JourneyID:      b.spec.ID,
		JourneyVersion: b.jv.Version,
		StepID:         step,
		Class:          journey.ClassMarketing,
		Send:           *b.spec.Steps[idx].Send,
	}
}

func (b *bundle) send(t *testing.T, in activities.SendInput) (activities.SendResult, error) {
	t.Helper()
	v, err := b.env.ExecuteActivity(b.acts.Send, in)
	if err != nil {
		return activities.SendResult{}, err
	}
	var res activities.SendResult
	require.NoError(t, v.Get(&res))
	return res, nil
}

func TestSend_EmailThroughSendGridWireFormat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)

	res, err := b.send(t, b.input("hello"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, "sendgrid", res.Provider)
	require.NotEmpty(t, res.ProviderMessageID)

	reqs := b.sg.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, "Bearer "+sgKey, r.Header.Get("Authorization"))
	require.Equal(t, "alice@example.com", r.Body.Personalizations[0].To[0].Email)
	require.Equal(t, "Hi Alice", r.Body.Subject)
	require.Equal(t, "hello@tutti.test", r.Body.From.Email)
	require.Equal(t, res.MessageID, r.Body.CustomArgs["tutti_message_id"])
	require.Equal(t, "hello", r.Body.CustomArgs["tutti_step_id"])

	m, err := b.store.MessageByKey(b.ctx, b.input("hello").IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, m.Status)
	require.Equal(t, res.ProviderMessageID, m.ProviderMessageID)
	require.NotNil(t, m.ConsentEventID, "the ledger row references the consent that allowed it")
}

func TestSend_DynamicTemplateMissingDataIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)

	res, err := b.send(t, b.input("promo")) // alice has no "plan" attribute
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Contains(t, res.Reason, "missing_template_data")
	require.Empty(t, b.sg.Requests())
}

func TestSend_NoConsentNeverSends(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res, err := b.send(t, b.input("hello"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, "no_consent", res.Reason)
	require.Empty(t, b.sg.Requests())

	m, err := b.store.MessageByKey(b.ctx, b.input("hello").IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, m.Status)
}

func TestSend_SMSThroughTwilioWireFormat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelSMS)

	res, err := b.send(t, b.input("nudge"))
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, "twilio", res.Provider)

	reqs := b.tw.Requests()
	require.Len(t, reqs, 1)
	user, pass, ok := reqs[0].BasicAuth()
	require.True(t, ok)
	require.Equal(t, twSID, user)
	require.Equal(t, twToken, pass)
	require.Equal(t, "+14155550101", reqs[0].Form.Get("To"))
	require.Equal(t, fromPhone, reqs[0].Form.Get("From"))
	require.Equal(t, "Hi Alice, reply STOP to opt out", reqs[0].Form.Get("Body"))
	require.Equal(t, reqs[0].SID, res.ProviderMessageID)
}

func TestSend_RetriedActivityNeverSendsTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	in := b.input("hello")

	first, err := b.send(t, in)
	require.NoError(t, err)
	// Temporal retries the activity (say the worker died before reporting
	// completion): the ledger answers, the provider is not called again.
	second, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Len(t, b.sg.Requests(), 1)
}

func TestSend_ProviderOutageRetriesThenSendsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	b.sg.FailNext(2, http.StatusServiceUnavailable, `{"errors":[{"message":"service unavailable"}]}`)
	in := b.input("hello")

	for i := 0; i < 2; i++ {
		// A refusal comes back as a result: the workflow waits out its
		// backoff on a durable timer and asks again.
		res, err := b.send(t, in)
		require.NoError(t, err, "attempt %d", i+1)
		require.Equal(t, delivery.StatusRetry, res.Status)
		require.Equal(t, "sendgrid:http_503", res.Reason)
		require.Nil(t, res.Unsettled, "the ledger was written")
		m, err := b.store.MessageByKey(b.ctx, in.IdempotencyKey)
		require.NoError(t, err)
		require.Equal(t, model.MessageRetrying, m.Status)
		require.Equal(t, "sendgrid:http_503", m.StatusReason)
		require.Contains(t, m.StatusDetail, "service unavailable", "the provider's words stay in Postgres")
	}
	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, res.Status)

	m, err := b.store.MessageByKey(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, 3, m.Attempts)
	require.Len(t, b.sg.Requests(), 3, "two refused attempts and one accepted")
}

func TestSend_InterruptedProviderCallIsNotResent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	in := b.input("hello")

	// A worker that died after writing its request to SendGrid leaves the
	// row in flight: the provider may have the message, and SendGrid cannot
	// be asked, so it is recorded unknown and never resent.
	storagetest.InFlight(t, b.store, storage.Message{
		IdempotencyKey: in.IdempotencyKey, ContactID: b.alice.ID, JourneyID: "welcome", JourneyVersion: b.jv.Version,
		StepID: "hello", Channel: journey.ChannelEmail, Class: "marketing", Provider: "sendgrid",
	})

	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageUnknown, res.Status)
	require.Empty(t, b.sg.Requests())
}

func TestSend_InvalidAddressIsPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	b.sg.FailNext(1, http.StatusBadRequest, `{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email"}]}`)

	res, err := b.send(t, b.input("hello"))
	require.NoError(t, err, "a 4xx is a result, not a retry")
	require.Equal(t, model.MessageFailed, res.Status)
	require.Equal(t, "sendgrid:http_400", res.Reason, "a code in history, not the provider's words")
	m, err := b.store.Message(b.ctx, res.MessageID)
	require.NoError(t, err)
	require.Contains(t, m.StatusDetail, "valid address", "the words stay in Postgres, for support")
	require.Len(t, b.sg.Requests(), 1)
}

func TestSend_Twilio21610RecordsSMSOptOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelSMS)
	b.tw.FailNext(1, http.StatusBadRequest, `{"code":21610,"message":"Attempt to send to unsubscribed recipient","more_info":"https://www.twilio.com/docs/errors/21610","status":400}`)

	res, err := b.send(t, b.input("nudge"))
	require.NoError(t, err)
	require.Equal(t, model.MessageFailed, res.Status)

	consents, err := b.store.Consents(b.ctx, b.alice.ID)
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, consents[journey.ChannelSMS].Status)
	require.Equal(t, "twilio:21610", consents[journey.ChannelSMS].Source)
}

func TestSend_ConsentRevokedBetweenRetriesSkips(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelSMS)
	b.tw.FailNext(1, http.StatusTooManyRequests, `{"code":20429,"message":"Too Many Requests","status":429}`)
	in := b.input("nudge")

	first, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusRetry, first.Status)
	_, _, err = b.store.RecordConsent(b.ctx, b.alice.ID, journey.ChannelSMS, model.ConsentRevoked, "inbound:STOP", time.Now())
	require.NoError(t, err)

	res, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, "consent_revoked", res.Reason)
	require.Len(t, b.tw.Requests(), 1, "only the throttled attempt reached Twilio")
}

func TestEvaluateCondition_ReadsConsentAndAttributes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelSMS)
	eval := func(expr string) activities.EvaluateConditionResult {
		v, err := b.env.ExecuteActivity(b.acts.EvaluateCondition, activities.EvaluateConditionInput{
			ContactID: b.alice.ID,
			Condition: expr,
			Journey:   activities.JourneyContext{ID: "welcome", Version: 1, EventCounts: map[string]int{"email.opened": 2}},
		})
		require.NoError(t, err)
		var res activities.EvaluateConditionResult
		require.NoError(t, v.Get(&res))
		return res
	}
	require.Equal(t, activities.EvaluateConditionResult{Value: true}, eval(`consent.sms == "granted"`))
	require.Equal(t, activities.EvaluateConditionResult{Value: false}, eval(`consent.email == "granted"`))
	require.Equal(t, activities.EvaluateConditionResult{Value: true}, eval(`contact.first_name == "Alice" && journey.events["email.opened"] >= 2`))
	res := eval(`contact.plan == "pro"`)
	require.False(t, res.Value)
	require.NotEmpty(t, res.Error, "a missing attribute is reported, not guessed")
}
