package api_test

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
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// The webhook tests sign requests the way the providers do, with a P-256
// key pair and a Twilio auth token generated here, and check what reached
// Postgres and the running journeys' histories.

const (
	twilioToken = "test-twilio-auth-token"
	publicURL   = "https://hooks.tutti.test"
	helpReply   = "Acme: reply STOP to opt out. Msg&data rates may apply."
)

type hookHarness struct {
	*harness
	key *ecdsa.PrivateKey
	cfg config.Config
}

type hookOpts struct {
	noSendGrid, noTwilio, noPublicURL bool
}

func newHookHarness(t *testing.T, o hookOpts) *hookHarness {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)

	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	cfg := config.Config{
		APIToken:          token,
		APIMaxBody:        64 << 10,
		DefaultRegion:     "US",
		DefaultTimeZone:   "UTC",
		SignalTimeout:     10 * time.Second,
		SendGridASMGroups: map[int64]string{42: "newsletter"},
		SMSHelpReply:      helpReply,
	}
	if !o.noSendGrid {
		cfg.SendGridWebhookPublicKey = base64.StdEncoding.EncodeToString(der)
		cfg.SendGridWebhookMaxAge = 10 * time.Minute
	}
	if !o.noTwilio {
		cfg.TwilioAuthToken = twilioToken
	}
	if !o.noPublicURL {
		cfg.PublicURL = publicURL + "/"
	}
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: tc, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &hookHarness{harness: &harness{t: t, store: store, tc: tc, url: url, client: hc}, key: key, cfg: cfg}
}

// temporalDown serves the API and webhooks from now on with a Temporal
// client that cannot connect; h.tc, for draining and histories, still can.
func (h *hookHarness) temporalDown() {
	h.t.Helper()
	h.url, h.client = serveAPI(h.t, api.Deps{
		Store: h.store, Temporal: unreachableTemporal(h.t), Config: h.cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// signSendGrid signs as SendGrid does: base64 of the ASN.1 DER ECDSA
// signature of SHA-256(timestamp || body).
func signSendGrid(t *testing.T, key *ecdsa.PrivateKey, timestamp string, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

// signTwilio signs as Twilio does: base64 HMAC-SHA1 of the URL followed by
// each parameter name and value, sorted by name.
func signTwilio(authToken, fullURL string, form url.Values) string {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		b.WriteString(k)
		b.WriteString(form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (h *hookHarness) post(path string, body []byte, ctype string, headers map[string]string) response {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.url+path, strings.NewReader(string(body)))
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", ctype)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(h.t, json.Unmarshal(raw, &out.body), string(raw))
	}
	return out
}

// sendGrid posts events signed now (or at signedAt).
func (h *hookHarness) sendGrid(body []byte, signedAt time.Time) response {
	h.t.Helper()
	ts := strconv.FormatInt(signedAt.Unix(), 10)
	return h.post("/webhooks/sendgrid", body, "application/json", map[string]string{
		"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(h.t, h.key, ts, body),
		"X-Twilio-Email-Event-Webhook-Timestamp": ts,
	})
}

// twilio posts a form to a Twilio webhook path, signed for the public URL.
func (h *hookHarness) twilio(path string, form url.Values) response {
	h.t.Helper()
	return h.post(path, []byte(form.Encode()), "application/x-www-form-urlencoded",
		map[string]string{"X-Twilio-Signature": signTwilio(twilioToken, publicURL+path, form)})
}

func inbound(sid, from, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "AccountSid": {"ACtest"}, "From": {from}, "To": {"+15005550006"},
		"Body": {body}, "NumMedia": {"0"}}
}

// sentEmail writes a ledger row for an email sent to the contact, as the
// send activity does, and returns its id.
func (h *hookHarness) sentMessage(contactID, step string, ch journey.Channel, provider, providerID string) string {
	h.t.Helper()
	ctx := context.Background()
	m := storagetest.InFlight(h.t, h.store, storage.Message{
		IdempotencyKey: "key/" + contactID + "/" + step, ContactID: contactID, JourneyID: "welcome", JourneyVersion: 1,
		StepID: step, Channel: ch, Class: string(journey.ClassMarketing), Provider: provider,
	})
	m, err := h.store.CompleteSend(ctx, m.ID, provider, providerID, time.Time{})
	require.NoError(h.t, err)
	return m.ID
}

func (h *hookHarness) messageStatus(id string) model.MessageStatus {
	h.t.Helper()
	m, err := h.store.Message(context.Background(), id)
	require.NoError(h.t, err)
	return m.Status
}

func (h *hookHarness) consent(contactID string, ch journey.Channel, subscription string) storage.Consent {
	h.t.Helper()
	all, err := h.store.AllConsents(context.Background(), contactID)
	require.NoError(h.t, err)
	for _, c := range all {
		if c.Channel == ch && c.Subscription == subscription {
			return c
		}
	}
	return storage.Consent{}
}

// dbState summarises every table a webhook may write, to show that a
// request changed nothing.
func (h *hookHarness) dbState() string {
	h.t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT count(*)::text FROM provider_events`,
		`SELECT count(*)::text FROM consent_events`,
		`SELECT count(*)::text FROM suppressions`,
		`SELECT count(*)::text FROM events`,
		`SELECT COALESCE(string_agg(id || '=' || status || '/' || COALESCE(engaged_at::text, ''), ',' ORDER BY id), '') FROM messages`,
		`SELECT COALESCE(string_agg(id || '=' || COALESCE(last_engaged_at::text, ''), ',' ORDER BY id), '') FROM contacts`,
	} {
		var s string
		require.NoError(h.t, h.store.Pool().QueryRow(context.Background(), q).Scan(&s))
		out = append(out, s)
	}
	return strings.Join(out, " | ")
}

type signalRec struct {
	name string
	arg  map[string]any
}

// signals lists the signals in a workflow's history with their payloads. A
// batch of events (SignalEvents) is listed as one SignalEvent per event:
// these tests are about which events reach a run, not how the dispatcher
// groups them.
func (h *hookHarness) signals(workflowID string) []signalRec {
	h.t.Helper()
	it := h.tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []signalRec
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(h.t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			rec := signalRec{name: a.GetSignalName()}
			if ps := a.GetInput().GetPayloads(); len(ps) > 0 && rec.name == workflows.SignalEvents {
				var batch []map[string]any
				require.NoError(h.t, json.Unmarshal(ps[0].GetData(), &batch))
				for _, ev := range batch {
					out = append(out, signalRec{name: workflows.SignalEvent, arg: ev})
				}
				continue
			} else if len(ps) > 0 {
				require.NoError(h.t, json.Unmarshal(ps[0].GetData(), &rec.arg))
			}
			out = append(out, rec)
		}
	}
	return out
}

func (h *hookHarness) enroll(contactID string) string {
	h.t.Helper()
	r := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	return r.body["workflow_id"].(string)
}

type sgEvent map[string]any

func sgBatch(t *testing.T, events ...sgEvent) []byte {
	t.Helper()
	raw, err := json.Marshal(events)
	require.NoError(t, err)
	return append(raw, '\r', '\n') // SendGrid's bodies end in CRLF, and it is signed
}

// ---------------------------------------------------------------------------
// SendGrid

func TestSendGridWebhookAppliesSignedBatchOnce(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))

	ada := h.newContact(map[string]any{"email": "ada@example.com"})
	bob := h.newContact(map[string]any{"email": "bob@example.com"})
	cyd := h.newContact(map[string]any{"email": "cyd@example.com"})
	dee := h.newContact(map[string]any{"email": "dee@example.com"})
	for _, id := range []string{ada, cyd} {
		_, _, err := h.store.RecordConsent(ctx, id, journey.ChannelEmail, model.ConsentGranted, "signup", time.Now().Add(-time.Hour))
		require.NoError(t, err)
	}
	_, _, err := h.store.RecordConsentChange(ctx, storage.ConsentChange{ContactID: ada, Channel: journey.ChannelEmail,
		Subscription: "newsletter", Status: model.ConsentGranted, Source: "signup", OccurredAt: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	adaWF, cydWF := h.enroll(ada), h.enroll(cyd)

	mAda := h.sentMessage(ada, "welcome_email", journey.ChannelEmail, "sendgrid", "sg-ada")
	mBob := h.sentMessage(bob, "welcome_email", journey.ChannelEmail, "sendgrid", "sg-bob")
	mBob2 := h.sentMessage(bob, "second_email", journey.ChannelEmail, "sendgrid", "sg-bob2")
	mCyd := h.sentMessage(cyd, "welcome_email", journey.ChannelEmail, "sendgrid", "sg-cyd")
	mDee := h.sentMessage(dee, "welcome_email", journey.ChannelEmail, "sendgrid", "sg-dee")

	now := time.Now().Unix()
	ev := func(id, event, msg string, extra sgEvent) sgEvent {
		e := sgEvent{"sg_event_id": id, "event": event, "timestamp": now, "email": "x@example.com",
			"sg_message_id": "sg." + id, "tutti_message_id": msg, "tutti_journey_id": "welcome"}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	body := sgBatch(t,
		ev("ev-processed", "processed", mAda, nil),
		ev("ev-delivered", "delivered", mAda, nil),
		ev("ev-machine-open", "open", mAda, sgEvent{"sg_machine_open": true}),
		ev("ev-open", "open", mAda, sgEvent{"sg_machine_open": false}),
		ev("ev-click", "click", mAda, sgEvent{"url": "https://example.com/pricing"}),
		ev("ev-delivered-late", "delivered", mAda, nil), // arrives after the click
		ev("ev-group-unsub", "group_unsubscribe", mAda, sgEvent{"asm_group_id": 42}),
		ev("ev-bounce", "bounce", mBob, sgEvent{"type": "bounce", "reason": "550 5.1.1 no such user", "status": "5.1.1"}),
		ev("ev-blocked", "bounce", mBob2, sgEvent{"type": "blocked", "reason": "spam content"}),
		ev("ev-spam", "spamreport", mCyd, nil),
		ev("ev-dropped", "dropped", mDee, sgEvent{"reason": "Invalid"}),
		ev("ev-unknown-msg", "delivered", "m_not_ours", nil),
		ev("ev-resubscribe", "group_resubscribe", mAda, sgEvent{"asm_group_id": 42}),
	)

	r := h.sendGrid(body, time.Now())
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 13, r.body["received"])
	require.EqualValues(t, 11, r.body["applied"], r.raw)
	require.EqualValues(t, 2, r.body["ignored"], r.raw)
	require.EqualValues(t, 0, r.body["failed"], r.raw)
	require.EqualValues(t, 3, r.body["pending_deliveries"], "Ada's open and click, Cyd's opt-out: %s", r.raw)

	// Ledger: never backwards; failures recorded with their reason.
	require.Equal(t, model.MessageClicked, h.messageStatus(mAda))
	require.Equal(t, model.MessageBounced, h.messageStatus(mBob))
	require.Equal(t, model.MessageBounced, h.messageStatus(mBob2))
	require.Equal(t, model.MessageComplained, h.messageStatus(mCyd))
	require.Equal(t, model.MessageDropped, h.messageStatus(mDee))
	dropped, err := h.store.Message(ctx, mDee)
	require.NoError(t, err)
	require.Equal(t, "Invalid", dropped.StatusReason)

	// Engagement: the open and click, not the machine open.
	var engaged *time.Time
	require.NoError(t, h.store.Pool().QueryRow(ctx, `SELECT last_engaged_at FROM contacts WHERE id = $1`, ada).Scan(&engaged))
	require.NotNil(t, engaged)
	require.Equal(t, now, engaged.Unix())
	require.NoError(t, h.store.Pool().QueryRow(ctx, `SELECT last_engaged_at FROM contacts WHERE id = $1`, bob).Scan(&engaged))
	require.Nil(t, engaged, "a bounce is not engagement")

	// Behaviour events for journeys: email.opened and email.clicked only.
	events, err := h.store.EventsForContact(ctx, ada, 10)
	require.NoError(t, err)
	var names []string
	for _, e := range events {
		names = append(names, e.ID+"="+e.Name)
		require.Equal(t, mAda, e.Properties["message_id"])
	}
	require.ElementsMatch(t, []string{"sendgrid:ev-open=email.opened", "sendgrid:ev-click=email.clicked"}, names)

	// Suppressions: the hard bounce and the spam report; not the block.
	sups, err := h.store.Suppressions(ctx, bob)
	require.NoError(t, err)
	require.Len(t, sups, 1)
	require.Equal(t, model.SuppressHardBounce, sups[0].Reason)
	require.Equal(t, journey.ChannelEmail, sups[0].Channel)
	require.Equal(t, "sendgrid:bounce", sups[0].Source)
	sups, err = h.store.Suppressions(ctx, cyd)
	require.NoError(t, err)
	require.Len(t, sups, 1)
	require.Equal(t, model.SuppressSpamComplaint, sups[0].Reason)

	// Consent: the spam report revokes email; the mapped group revokes
	// only its subscription.
	require.Equal(t, model.ConsentRevoked, h.consent(cyd, journey.ChannelEmail, "").Status)
	require.Equal(t, "sendgrid:spamreport", h.consent(cyd, journey.ChannelEmail, "").Source)
	require.Equal(t, model.ConsentGranted, h.consent(ada, journey.ChannelEmail, "").Status)
	require.Equal(t, model.ConsentRevoked, h.consent(ada, journey.ChannelEmail, "newsletter").Status)
	require.Equal(t, "sendgrid:group_unsubscribe", h.consent(ada, journey.ChannelEmail, "newsletter").Source)

	// Running journeys: the open and the click (not the machine open) and
	// Cyd's email opt-out wait in the outbox, stored with their events, and
	// reach the runs once the dispatcher runs. Ada's subscription changes
	// are read by the send gate; runs do not track them.
	require.Empty(t, h.signals(adaWF), "engagement reaches journeys through the outbox")
	require.Empty(t, h.signals(cydWF), "so does an opt-out")
	require.Equal(t, "signal:pending,signal:pending", h.pendingKinds(ada))
	require.Equal(t, "consent:pending", h.pendingKinds(cyd))
	h.drain()
	adaSignals := h.signals(adaWF)
	require.Len(t, adaSignals, 2, "%v", adaSignals)
	for i, want := range []string{"sendgrid:ev-open", "sendgrid:ev-click"} {
		require.Equal(t, workflows.SignalEvent, adaSignals[i].name)
		require.Equal(t, want, adaSignals[i].arg["event_id"])
	}
	require.Equal(t, "email.opened", adaSignals[0].arg["name"])
	cydSignals := h.signals(cydWF)
	require.Len(t, cydSignals, 1)
	require.Equal(t, workflows.SignalConsent, cydSignals[0].name)
	require.Equal(t, map[string]any{"channel": "email", "status": "revoked"}, cydSignals[0].arg)

	// SendGrid redelivers the batch (re-signed): nothing changes, and no
	// delivery is queued again (the first ones were stored with the events).
	before := h.dbState()
	r = h.sendGrid(body, time.Now())
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 0, r.body["applied"], r.raw)
	require.EqualValues(t, 11, r.body["duplicates"], r.raw)
	require.Equal(t, before, h.dbState())
	require.Equal(t, model.MessageClicked, h.messageStatus(mAda))
	require.Equal(t, "", h.pendingKinds(ada))
	h.drain()
	require.Len(t, h.signals(adaWF), 2)
}

// pendingKinds lists a contact's pending deliveries, "kind:pending" in order.
func (h *hookHarness) pendingKinds(contactID string) string {
	h.t.Helper()
	var out string
	require.NoError(h.t, h.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(string_agg(kind || ':pending', ',' ORDER BY id), '') FROM deliveries WHERE contact_id = $1 AND done_at IS NULL`, contactID).Scan(&out))
	return out
}

func TestSendGridUnsubscribeWithoutTuttiMessage(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	id := h.newContact(map[string]any{"email": "eve@example.com"})
	_, _, err := h.store.RecordConsent(ctx, id, journey.ChannelEmail, model.ConsentGranted, "signup", time.Now().Add(-time.Hour))
	require.NoError(t, err)

	now := time.Now().Unix()
	r := h.sendGrid(sgBatch(t,
		// Mail sent outside Tutti: the unsubscribe still applies to the
		// address; an unmapped group revokes email as a whole.
		sgEvent{"sg_event_id": "u-1", "event": "group_unsubscribe", "asm_group_id": 7, "email": " EVE@example.com", "timestamp": now},
		sgEvent{"sg_event_id": "u-2", "event": "open", "email": "eve@example.com", "timestamp": now},
		sgEvent{"sg_event_id": "u-3", "event": "unsubscribe", "email": "nobody@example.com", "timestamp": now},
	), time.Now())
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["applied"], r.raw)
	require.EqualValues(t, 2, r.body["ignored"], r.raw)
	c := h.consent(id, journey.ChannelEmail, "")
	require.Equal(t, model.ConsentRevoked, c.Status)
	require.Equal(t, "sendgrid:group_unsubscribe", c.Source)
	require.Equal(t, 0, h.count("events"))
}

func TestSendGridWebhookRejectsUnsignedRequests(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"email": "ada@example.com"})
	_, _, err := h.store.RecordConsent(context.Background(), id, journey.ChannelEmail, model.ConsentGranted, "signup", time.Time{})
	require.NoError(t, err)
	wf := h.enroll(id)
	msg := h.sentMessage(id, "welcome_email", journey.ChannelEmail, "sendgrid", "sg-1")
	body := sgBatch(t,
		sgEvent{"sg_event_id": "a", "event": "open", "timestamp": time.Now().Unix(), "tutti_message_id": msg},
		sgEvent{"sg_event_id": "b", "event": "spamreport", "timestamp": time.Now().Unix(), "tutti_message_id": msg},
	)
	before := h.dbState()

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	good := signSendGrid(t, h.key, ts, body)
	tampered := []byte(strings.Replace(string(body), `"open"`, `"click"`, 1))
	stale := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)

	cases := []struct {
		name     string
		body     []byte
		sig, ts  string
		status   int
		code     string
		noHeader bool
	}{
		{"no headers", body, "", "", http.StatusUnauthorized, "missing_signature", true},
		{"no signature", body, "", ts, http.StatusUnauthorized, "missing_signature", false},
		{"no timestamp", body, good, "", http.StatusUnauthorized, "missing_signature", false},
		{"signed by another key", body, signSendGrid(t, other, ts, body), ts, http.StatusForbidden, "invalid_signature", false},
		{"body changed after signing", tampered, good, ts, http.StatusForbidden, "invalid_signature", false},
		{"timestamp changed after signing", body, good, strconv.FormatInt(time.Now().Unix()+1, 10), http.StatusForbidden, "invalid_signature", false},
		{"garbage signature", body, "not-base64!", ts, http.StatusForbidden, "invalid_signature", false},
		{"stale timestamp", body, signSendGrid(t, h.key, stale, body), stale, http.StatusForbidden, "stale_timestamp", false},
		{"timestamp in the future", body, signSendGrid(t, h.key, future, body), future, http.StatusForbidden, "stale_timestamp", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			if !tc.noHeader {
				if tc.sig != "" {
					headers["X-Twilio-Email-Event-Webhook-Signature"] = tc.sig
				}
				if tc.ts != "" {
					headers["X-Twilio-Email-Event-Webhook-Timestamp"] = tc.ts
				}
			}
			r := h.post("/webhooks/sendgrid", tc.body, "application/json", headers)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, tc.code, r.errorCode())
		})
	}
	require.Equal(t, before, h.dbState(), "a refused webhook changes nothing")
	require.Equal(t, model.MessageSent, h.messageStatus(msg))
	require.Empty(t, h.signals(wf))

	// Correctly signed but not an array of events: 400, nothing changed.
	r := h.sendGrid([]byte(`{"event":"open"}`), time.Now())
	require.Equal(t, http.StatusBadRequest, r.status, r.raw)
	require.Equal(t, "malformed_payload", r.errorCode())
	require.Equal(t, before, h.dbState())
}

func TestWebhooksNotConfigured(t *testing.T) {
	h := newHookHarness(t, hookOpts{noSendGrid: true, noTwilio: true})
	id := h.newContact(map[string]any{"phone": "+14155550101"})
	before := h.dbState()

	// Even a request that looks signed is refused: there is nothing to
	// check it against.
	r := h.sendGrid(sgBatch(t, sgEvent{"sg_event_id": "a", "event": "unsubscribe", "email": "a@example.com"}), time.Now())
	require.Equal(t, http.StatusServiceUnavailable, r.status, r.raw)
	require.Equal(t, "webhook_not_configured", r.errorCode())
	require.Contains(t, r.raw, "SENDGRID_WEBHOOK_PUBLIC_KEY")

	for _, path := range []string{"/webhooks/twilio/inbound", "/webhooks/twilio/status"} {
		r := h.twilio(path, inbound("SM1", "+14155550101", "STOP"))
		require.Equal(t, http.StatusServiceUnavailable, r.status, r.raw)
		require.Equal(t, "webhook_not_configured", r.errorCode())
		require.Contains(t, r.raw, "TWILIO_AUTH_TOKEN")
	}
	require.Equal(t, before, h.dbState())
	require.Empty(t, h.consent(id, journey.ChannelSMS, "").Status)
}

// ---------------------------------------------------------------------------
// Twilio

func TestTwilioInboundKeywords(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))
	const phone = "+14155550123"
	id := h.newContact(map[string]any{"phone": "(415) 555-0123"})
	// A double opt-in waiting for the contact's confirmation.
	_, _, err := h.store.RecordConsent(ctx, id, journey.ChannelSMS, model.ConsentPending, "web-form", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	wf := h.enroll(id)

	emptyTwiML := `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`
	send := func(sid, body string) response {
		t.Helper()
		r := h.twilio("/webhooks/twilio/inbound", inbound(sid, phone, body))
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/xml"), r.header.Get("Content-Type"))
		return r
	}
	smsConsent := func() storage.Consent { return h.consent(id, journey.ChannelSMS, "") }

	// YES confirms the pending opt-in.
	r := send("SM-yes", "yes")
	require.Equal(t, emptyTwiML, r.raw)
	require.Equal(t, model.ConsentGranted, smsConsent().Status)
	require.Equal(t, "sms:YES", smsConsent().Source)

	// STOP, in any case and with padding, opts out; Twilio redelivering it
	// changes nothing more.
	r = send("SM-stop", " \u00a0Stop\n")
	require.Equal(t, emptyTwiML, r.raw)
	require.Equal(t, model.ConsentRevoked, smsConsent().Status)
	require.Equal(t, "sms:STOP", smsConsent().Source)
	before := h.dbState()
	send("SM-stop", " \u00a0Stop\n")
	require.Equal(t, before, h.dbState())

	// Other opt-out keywords are recorded under their own name.
	send("SM-optout", "optout")
	require.Equal(t, "sms:OPTOUT", smsConsent().Source)

	// HELP gets the configured reply and changes no consent.
	before = h.dbState()
	r = send("SM-help", "HELP")
	require.Equal(t, `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme: reply STOP to opt out. Msg&amp;data rates may apply.</Message></Response>`, r.raw)
	require.Equal(t, model.ConsentRevoked, smsConsent().Status)
	r = send("SM-info", "info")
	require.Contains(t, r.raw, "<Message>Acme: reply STOP")
	var n int
	require.NoError(t, h.store.Pool().QueryRow(ctx, `SELECT count(*) FROM consent_events`).Scan(&n))
	require.Equal(t, 4, n, "pending, YES, STOP, OPTOUT: HELP and INFO add nothing (%s)", before)

	// START opts back in.
	send("SM-start", "START")
	require.Equal(t, model.ConsentGranted, smsConsent().Status)
	require.Equal(t, "sms:START", smsConsent().Source)

	// Anything else is a reply: an event for journeys, and engagement.
	r = send("SM-reply", "STOP.")
	require.Equal(t, emptyTwiML, r.raw)
	require.Equal(t, model.ConsentGranted, smsConsent().Status, "'STOP.' is not the keyword")
	reply, err := h.store.Event(ctx, "twilio:SM-reply")
	require.NoError(t, err)
	require.Equal(t, "sms.replied", reply.Name)
	require.Equal(t, "STOP.", reply.Properties["body"])
	var engaged *time.Time
	require.NoError(t, h.store.Pool().QueryRow(ctx, `SELECT last_engaged_at FROM contacts WHERE id = $1`, id).Scan(&engaged))
	require.NotNil(t, engaged)

	// Every consent change and the reply reach the running journey through
	// the outbox, in the order they came.
	require.Empty(t, h.signals(wf))
	h.drain()
	var got []string
	for _, s := range h.signals(wf) {
		switch s.name {
		case workflows.SignalConsent:
			got = append(got, fmt.Sprintf("consent %s %s", s.arg["channel"], s.arg["status"]))
		case workflows.SignalEvent:
			got = append(got, fmt.Sprintf("event %s %s", s.arg["name"], s.arg["event_id"]))
		}
	}
	require.Equal(t, []string{
		"consent sms granted",
		"consent sms revoked", // STOP (its redelivery stored nothing)
		"consent sms revoked", // OPTOUT
		"consent sms granted",
		"event sms.replied twilio:SM-reply",
	}, got)

	// A number that is no contact's: 200, empty TwiML, nothing changed.
	before = h.dbState()
	r = h.twilio("/webhooks/twilio/inbound", inbound("SM-stranger", "+14155559999", "STOP"))
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, emptyTwiML, r.raw)
	require.Equal(t, before, h.dbState())
}

func TestTwilioInboundRejectsBadSignatures(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	const phone = "+14155550124"
	id := h.newContact(map[string]any{"phone": phone})
	_, _, err := h.store.RecordConsent(context.Background(), id, journey.ChannelSMS, model.ConsentGranted, "web-form", time.Time{})
	require.NoError(t, err)
	before := h.dbState()
	path := "/webhooks/twilio/inbound"
	form := inbound("SM-forged", phone, "STOP")

	tampered := inbound("SM-forged", phone, "STOP")
	tampered.Set("Body", "START")
	cases := []struct {
		name   string
		form   url.Values
		sig    string
		status int
		code   string
	}{
		{"no signature", form, "", http.StatusUnauthorized, "missing_signature"},
		{"wrong auth token", form, signTwilio("not-the-token", publicURL+path, form), http.StatusForbidden, "invalid_signature"},
		{"signed for another URL", form, signTwilio(twilioToken, publicURL+"/webhooks/twilio/status", form), http.StatusForbidden, "invalid_signature"},
		{"parameter changed after signing", tampered, signTwilio(twilioToken, publicURL+path, form), http.StatusForbidden, "invalid_signature"},
		{"garbage", form, "!!!", http.StatusForbidden, "invalid_signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			if tc.sig != "" {
				headers["X-Twilio-Signature"] = tc.sig
			}
			r := h.post(path, []byte(tc.form.Encode()), "application/x-www-form-urlencoded", headers)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, tc.code, r.errorCode())
		})
	}
	require.Equal(t, before, h.dbState(), "a refused webhook changes nothing")
	require.Equal(t, model.ConsentGranted, h.consent(id, journey.ChannelSMS, "").Status)

	// The same STOP, correctly signed, does opt out.
	r := h.twilio(path, form)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, model.ConsentRevoked, h.consent(id, journey.ChannelSMS, "").Status)
}

func TestTwilioSignatureURLWithoutPublicURL(t *testing.T) {
	// Without TUTTI_PUBLIC_URL the URL is rebuilt from the request, with the
	// scheme and host a proxy says the provider used.
	h := newHookHarness(t, hookOpts{noPublicURL: true})
	const phone = "+14155550125"
	id := h.newContact(map[string]any{"phone": phone})
	path := "/webhooks/twilio/inbound?tenant=acme"
	form := inbound("SM-proxy", phone, "STOP")

	r := h.post(path, []byte(form.Encode()), "application/x-www-form-urlencoded", map[string]string{
		"X-Twilio-Signature": signTwilio(twilioToken, "https://edge.tutti.test"+path, form),
		"X-Forwarded-Proto":  "https",
		"X-Forwarded-Host":   "edge.tutti.test",
	})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, model.ConsentRevoked, h.consent(id, journey.ChannelSMS, "").Status)

	// Signed for the request's own URL, without the proxy headers.
	form = inbound("SM-direct", phone, "START")
	r = h.post(path, []byte(form.Encode()), "application/x-www-form-urlencoded", map[string]string{
		"X-Twilio-Signature": signTwilio(twilioToken, h.url+path, form),
	})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, model.ConsentGranted, h.consent(id, journey.ChannelSMS, "").Status)
}

func TestTwilioStatusCallback(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))
	const phone = "+14155550126"
	id := h.newContact(map[string]any{"phone": phone})
	_, _, err := h.store.RecordConsent(ctx, id, journey.ChannelSMS, model.ConsentGranted, "web-form", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	wf := h.enroll(id)
	m1 := h.sentMessage(id, "sms_1", journey.ChannelSMS, "twilio", "SMout1")
	m2 := h.sentMessage(id, "sms_2", journey.ChannelSMS, "twilio", "SMout2")

	status := func(sid, st, code string) {
		t.Helper()
		form := url.Values{"MessageSid": {sid}, "MessageStatus": {st}, "To": {phone}, "From": {"+15005550006"}, "AccountSid": {"ACtest"}}
		if code != "" {
			form.Set("ErrorCode", code)
		}
		r := h.twilio("/webhooks/twilio/status", form)
		require.Equal(t, http.StatusNoContent, r.status, r.raw)
	}

	status("SMout1", "delivered", "")
	require.Equal(t, model.MessageDelivered, h.messageStatus(m1))
	status("SMout1", "sent", "") // late: never backwards
	require.Equal(t, model.MessageDelivered, h.messageStatus(m1))
	before := h.dbState()
	status("SMout1", "delivered", "") // redelivered
	require.Equal(t, before, h.dbState())

	// 21610: the number had replied STOP. The send failed, and SMS consent
	// is revoked, with a delivery to the running journey.
	status("SMout2", "undelivered", "21610")
	m, err := h.store.Message(ctx, m2)
	require.NoError(t, err)
	require.Equal(t, model.MessageFailed, m.Status)
	require.Equal(t, "twilio undelivered, error 21610", m.StatusReason)
	c := h.consent(id, journey.ChannelSMS, "")
	require.Equal(t, model.ConsentRevoked, c.Status)
	require.Equal(t, "twilio:21610", c.Source)
	require.Empty(t, h.signals(wf), "the run is told by the outbox")
	require.Equal(t, "consent:pending", h.pendingKinds(id))
	h.drain()
	sigs := h.signals(wf)
	require.Len(t, sigs, 1)
	require.Equal(t, workflows.SignalConsent, sigs[0].name)
	require.Equal(t, map[string]any{"channel": "sms", "status": "revoked"}, sigs[0].arg)

	// A message Tutti does not know: acknowledged, nothing changed.
	before = h.dbState()
	status("SMunknown", "delivered", "")
	require.Equal(t, before, h.dbState())

	// A forged callback is refused and changes nothing.
	form := url.Values{"MessageSid": {"SMout1"}, "MessageStatus": {"failed"}}
	r := h.post("/webhooks/twilio/status", []byte(form.Encode()), "application/x-www-form-urlencoded",
		map[string]string{"X-Twilio-Signature": signTwilio("wrong", publicURL+"/webhooks/twilio/status", form)})
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	require.Equal(t, before, h.dbState())
	require.Equal(t, model.MessageDelivered, h.messageStatus(m1))
}

// A provider event that triggers a journey starts it through the outbox,
// once, although the webhook is redelivered and the journey admits
// re-entry: the redelivery is a duplicate and queues nothing.
func TestTwilioReplyStartsTheJourneyItTriggersOnce(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	h.publish(strings.NewReplacer("id: cart", "id: replied", "cart.abandoned", "sms.replied").Replace(cartSpec))
	const phone = "+14155550124"
	id := h.newContact(map[string]any{"phone": "(415) 555-0124"})

	for range 2 {
		r := h.twilio("/webhooks/twilio/inbound", inbound("SM-reply-1", phone, "sounds good"))
		require.Equal(t, http.StatusOK, r.status, r.raw)
	}
	require.Zero(t, h.count("enrollments"), "the start waits for the dispatcher")
	require.Equal(t, "start:pending", h.pendingKinds(id))
	h.drain()
	require.Equal(t, "start:enrolled", h.outcomes("twilio:SM-reply-1"))

	r := h.twilio("/webhooks/twilio/inbound", inbound("SM-reply-1", phone, "sounds good"))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	h.drain()
	list := h.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
	require.Len(t, list.body["journeys"], 1, list.raw)
	require.Equal(t, 1, h.count("enrollments"))
}

// With Temporal unreachable, a carrier STOP and a SendGrid unsubscribe are
// answered as usual: the opt-out is stored, in force for the send gate,
// with its delivery to the running journey in the webhook's transaction;
// the run hears of it once Temporal is back.
func TestProviderOptOutsWhileTemporalIsDown(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))
	const phone = "+14155550127"
	id := h.newContact(map[string]any{"phone": phone, "email": "ola@example.com"})
	for _, ch := range []journey.Channel{journey.ChannelSMS, journey.ChannelEmail} {
		_, _, err := h.store.RecordConsent(ctx, id, ch, model.ConsentGranted, "web-form", time.Now().Add(-time.Minute))
		require.NoError(t, err)
	}
	wf := h.enroll(id)
	h.temporalDown()

	r := h.twilio("/webhooks/twilio/inbound", inbound("SM-down-stop", phone, "STOP"))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = h.sendGrid(sgBatch(t, sgEvent{"sg_event_id": "down-unsub", "event": "unsubscribe", "email": "ola@example.com", "timestamp": time.Now().Unix()}), time.Now())
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.EqualValues(t, 1, r.body["pending_deliveries"], r.raw)
	require.Equal(t, model.ConsentRevoked, h.consent(id, journey.ChannelSMS, "").Status)
	require.Equal(t, model.ConsentRevoked, h.consent(id, journey.ChannelEmail, "").Status)
	require.Equal(t, "consent:pending,consent:pending", h.pendingKinds(id))
	require.Empty(t, h.signals(wf))

	h.drain()
	var got []string
	for _, s := range h.signals(wf) {
		got = append(got, fmt.Sprintf("%s %s %s", s.name, s.arg["channel"], s.arg["status"]))
	}
	require.Equal(t, []string{"consent sms revoked", "consent email revoked"}, got)
}
