package activities_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
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
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

const hookSecret = "whsec_0123456789abcdef"

// receivedPost is one request the receiver got, with what it checked.
type receivedPost struct {
	key       string
	body      map[string]any
	signedOK  bool
	userAgent string
}

// receiver is a local webhook destination. It checks every post's
// signature itself (HMAC-SHA256 over "<t>.<body>", computed here, not with
// provider.VerifyWebhook) and answers with the next status of its script,
// then 200.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	posts  []receivedPost
}

func newReceiver(t *testing.T, script ...int) *receiver {
	rc := &receiver{script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		p := receivedPost{key: r.Header.Get("Idempotency-Key"), userAgent: r.Header.Get("User-Agent")}
		p.signedOK = signedBy([]byte(hookSecret), raw, r.Header.Get("Tutti-Signature"))
		_ = json.Unmarshal(raw, &p.body)
		rc.mu.Lock()
		rc.posts = append(rc.posts, p)
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.Header().Set("X-Request-Id", "rcv-"+strconv.Itoa(len(rc.posts)))
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []receivedPost {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedPost(nil), rc.posts...)
}

// signedBy checks "t=<unix>,v1=<hex>" the way a receiver in any language
// would: recompute the HMAC over "<t>.<body>" and compare.
func signedBy(secret, body []byte, header string) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

type hookBundle struct {
	store *storage.Store
	acts  *activities.Activities
	env   *testsuite.TestActivityEnvironment
	ctx   context.Context
	rc    *receiver
	ana   storage.Contact
}

// setupHook wires the real webhook activity to a fresh database and to a
// local receiver configured as the destination "sales".
func setupHook(t *testing.T, script ...int) *hookBundle {
	t.Helper()
	b := &hookBundle{store: storagetest.New(t), ctx: context.Background(), rc: newReceiver(t, script...)}
	b.acts = &activities.Activities{
		Store: b.store,
		Delivery: &delivery.Service{
			Store:   b.store,
			Policy:  policy.DefaultSettings(),
			Webhook: &provider.Webhook{HTTP: &http.Client{Timeout: 10 * time.Second}},
			WebhookDestinations: map[string]provider.WebhookDestination{
				"sales": {Name: "sales", URL: b.rc.srv.URL + "/hooks/tutti", Secret: []byte(hookSecret)},
			},
		},
	}
	var suite testsuite.WorkflowTestSuite
	b.env = suite.NewTestActivityEnvironment()
	b.env.RegisterActivity(b.acts)
	var err error
	// No consent on any channel: a webhook post needs none.
	b.ana, _, err = b.store.UpsertContact(b.ctx, storage.ContactInput{
		Email: "ana@example.com", Attributes: map[string]any{"first_name": "Ana", "plan": "pro"}})
	require.NoError(t, err)
	return b
}

func (b *hookBundle) input(key string) activities.WebhookInput {
	return activities.WebhookInput{
		IdempotencyKey: key,
		ContactID:      b.ana.ID,
		JourneyID:      "pricing_interest",
		JourneyVersion: 2,
		StepID:         "alert_sales",
		Webhook: journey.Webhook{Destination: "sales", Payload: map[string]any{
			"contact": map[string]any{"id": "{{ .contact.id }}", "email": "{{ .contact.email }}"},
			"plan":    "{{ .contact.plan }}",
			"journey": "{{ .journey.id }}",
			"score":   3,
		}},
	}
}

func (b *hookBundle) post(t *testing.T, in activities.WebhookInput) activities.SendResult {
	t.Helper()
	v, err := b.env.ExecuteActivity(b.acts.PostWebhook, in)
	require.NoError(t, err)
	var res activities.SendResult
	require.NoError(t, v.Get(&res))
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "ana@example.com", "the result goes into workflow history")
	return res
}

func (b *hookBundle) ledger(t *testing.T, key string) storage.Message {
	t.Helper()
	m, err := b.store.MessageByKey(b.ctx, key)
	require.NoError(t, err)
	return m
}

// A 503 is retried with the same idempotency key, and the second attempt's
// 200 settles the same ledger row as sent. Both posts are signed with the
// destination's secret and carry the payload rendered from the contact.
func TestPostWebhook_RetriedAfter5xxWithTheSameKey(t *testing.T) {
	t.Parallel()
	b := setupHook(t, http.StatusServiceUnavailable)
	in := b.input("enrollment/e1/alert_sales/1")

	first := b.post(t, in)
	require.Equal(t, delivery.StatusRetry, first.Status)
	require.Equal(t, "webhook:http_503", first.Reason)
	require.Equal(t, journey.ChannelWebhook, first.Channel)
	row := b.ledger(t, in.IdempotencyKey)
	require.Equal(t, model.MessageRetrying, row.Status)

	second := b.post(t, in)
	require.Equal(t, model.MessageSent, second.Status)
	require.Equal(t, first.MessageID, second.MessageID, "one ledger row for every attempt")
	row = b.ledger(t, in.IdempotencyKey)
	require.Equal(t, model.MessageSent, row.Status)
	require.Equal(t, "webhook", row.Provider)
	require.Equal(t, "rcv-2", row.ProviderMessageID)
	require.Equal(t, 2, row.Attempts)

	posts := b.rc.received()
	require.Len(t, posts, 2)
	for _, p := range posts {
		require.True(t, p.signedOK, "signed with the destination's secret")
		require.Equal(t, in.IdempotencyKey, p.key, "the same key on every attempt")
		require.Equal(t, map[string]any{
			"contact": map[string]any{"id": b.ana.ID, "email": "ana@example.com"},
			"plan":    "pro", "journey": "pricing_interest", "score": 3.0,
		}, p.body)
	}

	// The same key once settled: nothing is posted again.
	again := b.post(t, in)
	require.Equal(t, model.MessageSent, again.Status)
	require.Len(t, b.rc.received(), 2)

	// The decision is recorded like a send's: allowed on the webhook channel.
	decisions, err := b.store.DecisionsFor(b.ctx, b.ana.ID, in.JourneyID, in.StepID, 10)
	require.NoError(t, err)
	require.NotEmpty(t, decisions)
	require.Equal(t, policy.OutcomeAllow, decisions[0].Outcome)
	require.Equal(t, journey.ChannelWebhook, decisions[0].Channel)
}

// A 429 is retried no sooner than its Retry-After.
func TestPostWebhook_429CarriesRetryAfter(t *testing.T) {
	t.Parallel()
	b := setupHook(t, http.StatusTooManyRequests)
	res := b.post(t, b.input("enrollment/e2/alert_sales/1"))
	require.Equal(t, delivery.StatusRetry, res.Status)
	require.Equal(t, "webhook:http_429", res.Reason)
	require.Equal(t, 7*time.Second, res.RetryAfter)
}

// Another 4xx is permanent: recorded as failed, and not posted again.
func TestPostWebhook_4xxIsPermanent(t *testing.T) {
	t.Parallel()
	b := setupHook(t, http.StatusUnprocessableEntity)
	in := b.input("enrollment/e3/alert_sales/1")
	res := b.post(t, in)
	require.Equal(t, model.MessageFailed, res.Status)
	require.Equal(t, "webhook:http_422", res.Reason)
	row := b.ledger(t, in.IdempotencyKey)
	require.Equal(t, model.MessageFailed, row.Status)
	require.Equal(t, "webhook:http_422", row.StatusReason)

	again := b.post(t, in)
	require.Equal(t, model.MessageFailed, again.Status)
	require.Len(t, b.rc.received(), 1)
}

// A suppressed contact gets no webhook: the gate skips it and the
// destination is never called. A suppression of one channel (a bounced
// email address) does not hold a webhook back.
func TestPostWebhook_SuppressedContactIsNotPosted(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	_, _, err := b.store.AddSuppression(b.ctx, storage.Suppression{ContactID: b.ana.ID, Reason: model.SuppressHardBounce,
		Channel: journey.ChannelEmail, Source: "test"})
	require.NoError(t, err)
	res := b.post(t, b.input("enrollment/e4/alert_sales/1"))
	require.Equal(t, model.MessageSent, res.Status, "an email bounce is not a reason to keep sales uninformed")

	_, _, err = b.store.AddSuppression(b.ctx, storage.Suppression{ContactID: b.ana.ID, Reason: model.SuppressDoNotContact, Source: "test"})
	require.NoError(t, err)
	in := b.input("enrollment/e4/alert_sales/2")
	res = b.post(t, in)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, policy.CodeSuppressedDoNotContact, res.Reason)
	require.Equal(t, model.MessageSkipped, b.ledger(t, in.IdempotencyKey).Status)
	require.Len(t, b.rc.received(), 1, "only the post before the suppression")
}

// A payload the contact's data cannot fill, or a destination the worker
// does not know, is skipped with a code before the gate, and nothing is posted.
func TestPostWebhook_SkippedBeforeTheGate(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	in := b.input("enrollment/e5/alert_sales/1")
	in.Webhook.Payload["company"] = "{{ .contact.company }}"
	res := b.post(t, in)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, "missing_template_data:.contact.company", res.Reason)

	in = b.input("enrollment/e5/alert_sales/2")
	in.Webhook.Destination = "crm"
	res = b.post(t, in)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, activities.ReasonWebhookDestinationUnknown, res.Reason)
	require.Empty(t, b.rc.received())
}

// A worker that died after the fence let a post fly leaves its row in
// flight. Nothing can be read back from a destination, and nothing needs
// to be: the next attempt, once the flight deadline has passed, posts again
// with the same idempotency key, which is how the receiver knows it for the
// same post. The row is never left unknown.
func TestPostWebhook_CrashInFlightPostsAgainWithTheSameKey(t *testing.T) {
	t.Parallel()
	b := setupHook(t)
	in := b.input("enrollment/e6/alert_sales/1")
	gate, err := b.store.Gate(b.ctx, storage.GateInput{Message: storage.Message{
		IdempotencyKey: in.IdempotencyKey, ContactID: in.ContactID, JourneyID: in.JourneyID, JourneyVersion: in.JourneyVersion,
		StepID: in.StepID, Channel: journey.ChannelWebhook, Class: string(journey.ClassMarketing), Provider: "webhook",
	}, Now: time.Now()}, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelWebhook}
	})
	require.NoError(t, err)
	// In flight with a deadline already past: the dead worker's request
	// can no longer be written.
	_, out, err := b.store.BeginFlight(b.ctx, gate.Message.ID, 0)
	require.NoError(t, err)
	require.Equal(t, storage.FlightGo, out)

	res := b.post(t, in)
	require.Equal(t, model.MessageSent, res.Status)
	require.Equal(t, gate.Message.ID, res.MessageID)
	posts := b.rc.received()
	require.Len(t, posts, 1)
	require.Equal(t, in.IdempotencyKey, posts[0].key)
	require.Equal(t, 2, b.ledger(t, in.IdempotencyKey).Attempts, "the dead worker's attempt and this one")
}
