package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// Provider webhooks end to end: signed SendGrid and Twilio callbacks reach
// the API, change Postgres, and steer running journeys on the worker.

const (
	hookTwilioToken = "e2e-twilio-auth-token"
	hookPublicURL   = "https://hooks.e2e.test"
)

// providerHooks is an API server configured to verify webhooks with a key
// pair and auth token generated here, over the system's store and Temporal.
type providerHooks struct {
	t   *testing.T
	url string
	key *ecdsa.PrivateKey
}

func startHooks(t *testing.T, s *system) *providerHooks {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	cfg := config.Config{
		APIToken: token, APIMaxBody: 1 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 5 * time.Second,
		PublicURL:                hookPublicURL,
		SendGridWebhookPublicKey: base64.StdEncoding.EncodeToString(der),
		SendGridWebhookMaxAge:    10 * time.Minute,
		TwilioAuthToken:          hookTwilioToken,
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: s.store, Temporal: s.tc, Config: cfg, Logger: s.logger}).Handler())
	t.Cleanup(srv.Close)
	return &providerHooks{t: t, url: srv.URL, key: key}
}

func (p *providerHooks) post(path, ctype string, body []byte, headers map[string]string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest("POST", p.url+path, strings.NewReader(string(body)))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", ctype)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, string(raw)
}

// twilioInbound posts an inbound SMS signed as Twilio signs it: base64
// HMAC-SHA1 over the public URL and the sorted parameters.
func (p *providerHooks) twilioInbound(sid, from, body string) (int, string) {
	p.t.Helper()
	const path = "/webhooks/twilio/inbound"
	form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC00000000000000000000000000000e2e"}, "From": {from},
		"To": {"+15005550006"}, "Body": {body}, "NumMedia": {"0"}}
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	signed := hookPublicURL + path
	for _, k := range names {
		signed += k + form.Get(k)
	}
	mac := hmac.New(sha1.New, []byte(hookTwilioToken))
	mac.Write([]byte(signed))
	return p.post(path, "application/x-www-form-urlencoded", []byte(form.Encode()),
		map[string]string{"X-Twilio-Signature": base64.StdEncoding.EncodeToString(mac.Sum(nil))})
}

// sendGrid posts events signed as SendGrid signs them: base64 ASN.1 DER
// ECDSA P-256 signature of SHA-256(timestamp || body).
func (p *providerHooks) sendGrid(events ...map[string]any) (int, string) {
	p.t.Helper()
	body, err := json.Marshal(events)
	require.NoError(p.t, err)
	body = append(body, '\r', '\n')
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	digest := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	require.NoError(p.t, err)
	return p.post("/webhooks/sendgrid", "application/json", body, map[string]string{
		"X-Twilio-Email-Event-Webhook-Signature": base64.StdEncoding.EncodeToString(sig),
		"X-Twilio-Email-Event-Webhook-Timestamp": ts,
	})
}

const stopMidJourney = `
id: %s
name: SMS, email, SMS
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: sms_1
    send:
      channel: sms
      sms: {body: "Hi {{ .contact.first_name }}, welcome aboard. Reply STOP to opt out."}
  - id: wait_1
    wait_for: {event: advance_1, timeout: 1h, on_event: email_1, on_timeout: email_1}
  - id: email_1
    send:
      channel: email
      email: {subject: "Your first week", text: "Hello {{ .contact.first_name }}"}
  - id: wait_2
    wait_for: {event: advance_2, timeout: 1h, on_event: sms_2, on_timeout: sms_2}
  - id: sms_2
    send:
      channel: sms
      sms: {body: "Last chance for your welcome offer. Reply STOP to opt out."}
`

// An inbound STOP during a running journey ends its SMS steps while its
// email steps continue. The waits are wait_for steps the test releases with
// events, so the STOP lands between the first SMS and the rest without any
// reliance on timing.
func TestEndToEnd_InboundSTOPEndsSMSButNotEmail(t *testing.T) {
	s := start(t)
	hooks := startHooks(t, s)
	ctx := context.Background()
	journeyID := "e2e-stop-sms"
	const phone = "+14155550177"

	created := s.call("POST", "/v1/contacts", map[string]any{
		"email": "lin@example.com", "phone": "(415) 555-0177", "attributes": map[string]any{"first_name": "Lin"},
	}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup"}, http.StatusOK)
	// SMS opt-in is double opt-in: the contact confirms by replying YES.
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "sms", "status": "granted", "source": "signup"}, http.StatusOK)
	status, raw := hooks.twilioInbound("SMin-yes", phone, "YES")
	require.Equal(t, http.StatusOK, status, raw)
	consents, err := s.store.Consents(ctx, contactID)
	require.NoError(t, err)
	require.Equal(t, model.ConsentGranted, consents[journey.ChannelSMS].Status)

	s.call("POST", "/v1/journeys", fmt.Sprintf(stopMidJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)

	eventually(t, "first SMS sent", func() bool { return len(s.tw.Accepted()) == 1 })
	require.Equal(t, phone, s.tw.Accepted()[0].To)

	// The contact replies STOP, through Twilio's signed webhook.
	status, raw = hooks.twilioInbound("SMin-stop", phone, "stop")
	require.Equal(t, http.StatusOK, status, raw)
	consents, err = s.store.Consents(ctx, contactID)
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, consents[journey.ChannelSMS].Status)
	require.Equal(t, "sms:STOP", consents[journey.ChannelSMS].Source)

	// The journey goes on: the email is sent, the second SMS is not.
	s.call("POST", "/v1/events", map[string]any{"event_id": "adv-1", "contact_id": contactID, "name": "advance_1"}, http.StatusAccepted)
	eventually(t, "email sent", func() bool { return len(s.sg.Requests()) == 1 })
	require.Equal(t, "lin@example.com", s.sg.Requests()[0].Body.Personalizations[0].To[0].Email)
	s.call("POST", "/v1/events", map[string]any{"event_id": "adv-2", "contact_id": contactID, "name": "advance_2"}, http.StatusAccepted)

	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunCompleted, result.Status, "an SMS opt-out does not end a journey that also emails")
	require.Len(t, s.tw.Accepted(), 1, "no SMS after the STOP")
	require.Len(t, s.sg.Requests(), 1)

	msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
	require.NoError(t, err)
	byStep := map[string]storage.Message{}
	for _, m := range msgs {
		byStep[m.StepID] = m
	}
	require.Equal(t, model.MessageSent, byStep["sms_1"].Status)
	require.Equal(t, model.MessageSent, byStep["email_1"].Status)
	require.Equal(t, model.MessageSkipped, byStep["sms_2"].Status)
	require.Contains(t, byStep["sms_2"].StatusReason, "consent_revoked")
}

// A signed SendGrid open makes a wait_for on email.opened take its on_event
// path. The email is tied back to its ledger row through the custom args
// the send set.
func TestEndToEnd_SendGridOpenFiresWaitFor(t *testing.T) {
	s := start(t)
	hooks := startHooks(t, s)
	ctx := context.Background()
	journeyID := "e2e-open"

	created := s.call("POST", "/v1/contacts", map[string]any{"email": "ola@example.com", "attributes": map[string]any{"first_name": "Ola"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)

	eventually(t, "welcome email sent", func() bool { return len(s.sg.Requests()) == 1 })
	messageID := s.sg.Requests()[0].Body.CustomArgs["tutti_message_id"]
	require.NotEmpty(t, messageID, "the send sets the custom arg webhooks are tied back with")
	stepAt := func(step string) func() bool { return s.atStep(contactID, step) }
	eventually(t, "journey waiting for the open", stepAt("wait_open"))

	// wait_for counts events that happened after the send; SendGrid's
	// timestamps have whole seconds, so the open is stamped in a second that
	// began after the journey started waiting.
	waiting := time.Now()
	eventually(t, "the next second", func() bool { return time.Now().Unix() > waiting.Unix() })
	openedAt := time.Now().Unix()

	event := func(id, name string, extra map[string]any) map[string]any {
		e := map[string]any{"sg_event_id": id, "event": name, "email": "ola@example.com", "timestamp": openedAt,
			"sg_message_id": "sg-" + id, "tutti_message_id": messageID, "tutti_journey_id": journeyID}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	status, raw := hooks.sendGrid(
		event("e2e-delivered", "delivered", nil),
		event("e2e-open", "open", map[string]any{"sg_machine_open": false, "useragent": "Mozilla/5.0"}),
	)
	require.Equal(t, http.StatusOK, status, raw)

	eventually(t, "journey took the on_event path", stepAt("thanks"))
	m, err := s.store.Message(ctx, messageID)
	require.NoError(t, err)
	require.Equal(t, model.MessageOpened, m.Status)
	ev, err := s.store.Event(ctx, "sendgrid:e2e-open")
	require.NoError(t, err)
	require.Equal(t, "email.opened", ev.Name)

	// Done: support ends the run rather than leave it waiting an hour.
	s.call("POST", "/v1/contacts/"+contactID+"/journeys/"+journeyID+"/exit", map[string]any{"reason": "test over"}, http.StatusAccepted)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status)
}

// A SendGrid open arriving while Temporal is unreachable is answered 200
// (twice: SendGrid redelivers it) by an API and a dispatcher that cannot
// reach Temporal. Once a dispatcher can, the run waiting for email.opened
// takes its on_event path, having received the open once, and the journey
// the open triggers has exactly one run.
func TestEndToEnd_ProviderEventsAcceptedWhileTemporalIsDown(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-open-down"

	created := s.call("POST", "/v1/contacts", map[string]any{"email": "uma@example.com", "attributes": map[string]any{"first_name": "Uma"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	// A journey the open triggers: triggeredJourney, started by email.opened.
	s.call("POST", "/v1/journeys", strings.NewReplacer("e2e-triggered", "e2e-after-open", "signup.completed", "email.opened").Replace(triggeredJourney), http.StatusCreated)
	workflowID := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)["workflow_id"].(string)

	eventually(t, "welcome email sent", func() bool { return len(s.sg.Requests()) == 1 })
	messageID := s.sg.Requests()[0].Body.CustomArgs["tutti_message_id"]
	stepAt := func(step string) func() bool { return s.atStep(contactID, step) }
	eventually(t, "journey waiting for the open", stepAt("wait_open"))
	// As in TestEndToEnd_SendGridOpenFiresWaitFor: the open is stamped in a
	// second that began after the journey started waiting.
	waiting := time.Now()
	eventually(t, "the next second", func() bool { return time.Now().Unix() > waiting.Unix() })
	open := map[string]any{"sg_event_id": "e2e-open-down", "event": "open", "email": "uma@example.com", "timestamp": time.Now().Unix(),
		"sg_message_id": "sg-e2e-open-down", "tutti_message_id": messageID, "tutti_journey_id": journeyID, "sg_machine_open": false}

	// Temporal becomes unreachable for the API and the dispatcher.
	s.stopDispatch()
	dead := unreachableTemporal(t)
	down := *s
	down.tc = dead
	hooks := startHooks(t, &down)
	status, raw := hooks.sendGrid(open)
	require.Equal(t, http.StatusOK, status, raw)
	require.Contains(t, raw, `"applied":1`)
	status, raw = hooks.sendGrid(open) // SendGrid redelivers
	require.Equal(t, http.StatusOK, status, raw)
	require.Contains(t, raw, `"duplicates":1`)

	cfg := config.Config{SignalTimeout: 500 * time.Millisecond}
	_, err := api.NewDispatcher(api.Deps{Store: s.store, Temporal: dead, Config: cfg, Logger: s.logger}).Drain(ctx)
	require.NoError(t, err)
	st, err := s.store.DeliveryStats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Pending, "the open's signal and its start")
	require.EqualValues(t, 1, st.Failing, "the signal failed; the start waits behind it")

	// Temporal is back; the retry is made due now.
	s.deliverAll(cfg)

	eventually(t, "journey took the on_event path", stepAt("thanks"))
	require.Equal(t, 1, countSignals(t, s.tc, workflowID, `"event_id":"sendgrid:e2e-open-down"`), "the open reached the run once")
	triggered := s.enrollmentsIn(contactID, "e2e-after-open")
	require.Len(t, triggered, 1, "one run per trigger, although the webhook came twice")
	require.Equal(t, model.RunActive, triggered[0].Status)

	// A redelivery after the deliveries were made queues nothing again.
	status, raw = startHooks(t, s).sendGrid(open)
	require.Equal(t, http.StatusOK, status, raw)
	n, err := s.store.PendingDeliveries(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
