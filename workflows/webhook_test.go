package workflows

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// alertSpec posts a sales alert, then sends an email.
func alertSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: alert
name: Sales alert
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: alert_sales
    webhook: {destination: sales, payload: {contact_id: '{{ .contact.id }}', email: '{{ .contact.email }}'}}
  - id: thanks
    send: {channel: email, email: {subject: Thanks, text: Thanks}}
`))
	require.NoError(t, err)
	return spec
}

// A destination that answers 503 twice and then 429 (Retry-After 30s)
// before taking the post: the run waits on durable timers between the
// attempts (backoff, and never less than the Retry-After), every attempt
// carries the same idempotency key, the ledger row ends sent, and the run
// goes on. The real activity runs against a real database and a local
// receiver; the test environment's clock skips the waits.
func TestJourney_WebhookRetriedUntilTheDestinationTakesIt(t *testing.T) {
	store := storagetest.New(t)
	ctx := context.Background()
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "lead@example.com"})
	require.NoError(t, err)

	var mu sync.Mutex
	script := []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusTooManyRequests}
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get(provider.IdempotencyHeader))
		status := http.StatusOK
		if len(script) > 0 {
			status, script = script[0], script[1:]
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "30")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	acts := &activities.Activities{Store: store, Delivery: &delivery.Service{Store: store, Policy: policy.DefaultSettings(),
		WebhookDestinations: map[string]provider.WebhookDestination{
			"sales": {Name: "sales", URL: srv.URL, Secret: []byte("whsec_0123456789abcdef")}}}}

	h := newHarness(t)
	var a *activities.Activities
	h.env.OnActivity(a.PostWebhook, mock.Anything, mock.Anything).Return(acts.PostWebhook)
	steps := journeySteps(h)
	var attemptsAt []time.Time
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "PostWebhook" {
			attemptsAt = append(attemptsAt, h.env.Now())
		}
	})
	in := input(alertSpec(t))
	in.ContactID = c.ID
	res := h.run(t, in)
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"thanks"}, h.sentSteps(), "the journey goes on after the post")

	require.Len(t, keys, 4)
	for _, k := range keys {
		require.Equal(t, "enrollment/e_1/alert_sales/1", k)
	}
	require.Len(t, attemptsAt, 4)
	require.GreaterOrEqual(t, attemptsAt[1].Sub(attemptsAt[0]), sendRetryBase, "backoff")
	require.GreaterOrEqual(t, attemptsAt[3].Sub(attemptsAt[2]), 30*time.Second, "the Retry-After is respected")
	require.Equal(t, []string{"alert_sales"}, *steps, "the run parks at the step while it waits to retry")

	m, err := store.MessageByKey(ctx, keys[0])
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, m.Status)
	require.Equal(t, journey.ChannelWebhook, m.Channel)
	require.Equal(t, 4, m.Attempts)

	var final JourneyState
	v, err := h.env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	require.NoError(t, v.Get(&final))
	require.Equal(t, journey.KindWebhook, final.StepsTaken[0].Kind)
	require.Equal(t, "sent", final.StepsTaken[0].Outcome)
}
