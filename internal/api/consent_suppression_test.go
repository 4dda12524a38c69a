package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/internal/wiring"
	"github.com/tutti-dev/tutti/workflows"
)

// newSMSHarness is newHarness with an SMS sender for the double opt-in
// prompt (the sandbox provider recording into the test database unless sms
// is given) and, if set, a custom prompt.
func newSMSHarness(t *testing.T, sms provider.SMSSender, prompt string) *harness {
	t.Helper()
	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	if sms == nil {
		sms = provider.NewSandbox(store)
	}
	cfg := config.Config{
		APIToken:         token,
		APIMaxBody:       16 << 10,
		DefaultRegion:    "US",
		DefaultTimeZone:  "UTC",
		SignalTimeout:    10 * time.Second,
		TwilioFrom:       "+15005550006",
		SMSConfirmPrompt: prompt,
	}
	settings := policy.DefaultSettings()
	settings.DefaultTimeZone, settings.DefaultRegion = cfg.DefaultTimeZone, cfg.DefaultRegion
	send := &delivery.Service{Store: store, SMS: sms, Policy: settings, Sender: wiring.IdentityFromConfig(cfg)}
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: tc, Config: cfg, Delivery: send,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &harness{t: t, store: store, tc: tc, url: url, client: hc}
}

// refusingSMS is a provider that refuses every message, as Twilio does for a
// number that texted STOP.
type refusingSMS struct{}

func (refusingSMS) Name() string { return "twilio" }
func (refusingSMS) SendSMS(context.Context, string, provider.SMS) (provider.Result, error) {
	return provider.Result{}, &provider.Error{Provider: "twilio", StatusCode: 400, Code: provider.TwilioCodeUnsubscribed,
		Message: "Attempt to send to unsubscribed recipient"}
}

func obj(v any, path ...string) map[string]any {
	m, _ := v.(map[string]any)
	for _, k := range path {
		m, _ = m[k].(map[string]any)
	}
	return m
}

func (h *harness) consents(id string) map[journey.Channel]storage.Consent {
	h.t.Helper()
	cs, err := h.store.Consents(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

// ---------------------------------------------------------------------------
// Consent per subscription type

func TestConsentSubscription(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"email": "sub@example.com"})
	path := "/v1/contacts/" + id + "/consent"

	h.call("POST", path, map[string]any{"channel": "email", "status": "granted", "source": "signup-form"}, http.StatusOK)
	r := h.call("POST", path, map[string]any{"channel": "email", "subscription": " Newsletter ", "status": "revoked", "source": "preference-center"}, http.StatusOK)
	c := obj(r.body, "consent")
	if c["subscription"] != "newsletter" || c["status"] != "revoked" || r.body["recorded_status"] != "revoked" {
		t.Errorf("subscription consent: %s", r.raw)
	}
	if r.body["double_opt_in"] != nil {
		t.Errorf("double opt-in is about channel-level sms only: %s", r.raw)
	}
	h.call("POST", path, map[string]any{"channel": "email", "subscription": "product", "status": "granted", "source": "signup-form"}, http.StatusOK)

	// The channel-level consent is untouched by the subscription changes.
	if cs := h.consents(id); cs[journey.ChannelEmail].Status != model.ConsentGranted {
		t.Errorf("channel-level email consent: %+v", cs)
	}

	detail := h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
	if email := obj(detail.body, "consents", "email"); email["status"] != "granted" || email["subscription"] != nil {
		t.Errorf("channel-level consents: %s", detail.raw)
	}
	subs, _ := detail.body["subscription_consents"].([]any)
	if len(subs) != 2 || obj(subs[0])["subscription"] != "newsletter" || obj(subs[0])["status"] != "revoked" ||
		obj(subs[1])["subscription"] != "product" || obj(subs[1])["status"] != "granted" {
		t.Errorf("subscription_consents: %s", detail.raw)
	}

	hist := h.call("GET", path, nil, http.StatusOK)
	events, _ := hist.body["history"].([]any)
	current, _ := hist.body["consents"].([]any)
	if len(events) != 3 || len(current) != 3 {
		t.Fatalf("history: %s", hist.raw)
	}
	var subsInHistory []string
	for _, e := range events {
		if s, ok := obj(e)["subscription"].(string); ok {
			subsInHistory = append(subsInHistory, s)
		}
	}
	if strings.Join(subsInHistory, ",") != "product,newsletter" {
		t.Errorf("history shows subscriptions %v: %s", subsInHistory, hist.raw)
	}
	h.call("GET", "/v1/contacts/c_missing/consent", nil, http.StatusNotFound)

	// Invalid subscription: named, nothing written.
	before := h.count("consent_events")
	for _, bad := range []string{"News Letter", "-promo", strings.Repeat("a", 65), "promos!"} {
		r := h.call("POST", path, map[string]any{"channel": "email", "subscription": bad, "status": "granted", "source": "x"}, http.StatusBadRequest)
		if got := r.fieldPaths(); len(got) != 1 || got[0] != "subscription" {
			t.Errorf("subscription %q: %s", bad, r.raw)
		}
	}
	if n := h.count("consent_events"); n != before {
		t.Errorf("rejected requests wrote %d history rows", n-before)
	}
}

func TestSubscriptionConsentIsNotSignalled(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "sig-1"})
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)

	r := h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "subscription": "newsletter", "status": "revoked", "source": "x"}, http.StatusOK)
	if r.body["pending_deliveries"] != float64(0) {
		t.Errorf("a subscription-level change is to be signalled: %s", r.raw)
	}
	h.drain()
	if got := h.signalNames(wfID); len(got) != 0 {
		t.Errorf("signals %v", got)
	}

	// A late change (dated before the one in force) is signalled as the
	// consent in force, not as what the late change said.
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r = h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "revoked", "source": "late-import", "occurred_at": old}, http.StatusOK)
	if obj(r.body, "consent")["status"] != "granted" || r.body["recorded_status"] != "revoked" {
		t.Errorf("late change: %s", r.raw)
	}
	h.drain()
	if got := h.signalNames(wfID); len(got) != 2 || got[1] != workflows.SignalConsent {
		t.Errorf("signals %v", got)
	}
	if got := h.consentSignals(wfID); len(got) != 2 || got[1] != (workflows.ConsentSignal{Channel: journey.ChannelEmail, Status: "granted"}) {
		t.Errorf("consent signals %+v, want the second to carry the consent in force (granted)", got)
	}
}

// consentSignals decodes the consent signals in a workflow's history.
func (h *harness) consentSignals(workflowID string) []workflows.ConsentSignal {
	h.t.Helper()
	it := h.tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []workflows.ConsentSignal
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			h.t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalConsent {
			var cs workflows.ConsentSignal
			if err := converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &cs); err != nil {
				h.t.Fatal(err)
			}
			out = append(out, cs)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// SMS double opt-in

func TestSMSDoubleOptIn(t *testing.T) {
	h := newSMSHarness(t, nil, "")
	ctx := context.Background()
	id := h.newContact(map[string]any{"email": "dbl@example.com", "phone": "+14155550142"})
	path := "/v1/contacts/" + id + "/consent"

	r := h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "checkout-checkbox"}, http.StatusOK)
	dbl := obj(r.body, "double_opt_in")
	prompt := obj(dbl, "prompt")
	if r.body["requested_status"] != "granted" || r.body["recorded_status"] != "pending" || obj(r.body, "consent")["status"] != "pending" {
		t.Errorf("statuses: %s", r.raw)
	}
	if dbl["status"] != "pending" || !strings.Contains(dbl["reason"].(string), "YES or START") {
		t.Errorf("double_opt_in: %s", r.raw)
	}
	if prompt["sent"] != true || prompt["provider"] != "sandbox" || prompt["body"] != config.DefaultSMSConfirmPrompt {
		t.Fatalf("prompt: %s", r.raw)
	}
	if cs := h.consents(id); cs[journey.ChannelSMS].Status != model.ConsentPending || cs[journey.ChannelSMS].Source != "checkout-checkbox" {
		t.Errorf("stored: %+v", cs)
	}

	// The prompt is in the ledger (transactional, citing the pending consent
	// event) and in the sandbox outbox.
	m, err := h.store.Message(ctx, prompt["message_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	historyID := int64(r.body["history_id"].(float64))
	if m.Class != "transactional" || m.Channel != journey.ChannelSMS || m.Status != model.MessageSent || m.JourneyID != "_consent" ||
		m.ConsentEventID == nil || *m.ConsentEventID != historyID || m.ContactID != id {
		t.Errorf("ledger row: %+v", m)
	}
	out, err := h.store.SandboxMessages(ctx, id, 10)
	if err != nil || len(out) != 1 {
		t.Fatalf("outbox: %v %v", out, err)
	}
	if out[0].Recipient != "+14155550142" || out[0].Payload["body"] != config.DefaultSMSConfirmPrompt || out[0].Payload["from"] != "+15005550006" {
		t.Errorf("outbox: %+v", out[0])
	}

	// The contact replies START (what the Twilio inbound webhook records).
	if _, _, err := h.store.RecordConsent(ctx, id, journey.ChannelSMS, model.ConsentGranted, "sms:START", time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A later grant from the backend (a re-sync) keeps it granted and asks
	// nothing again.
	r = h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "crm-sync"}, http.StatusOK)
	if obj(r.body, "double_opt_in")["status"] != "already_granted" || r.body["recorded_status"] != "granted" || obj(r.body, "double_opt_in", "prompt") != nil {
		t.Errorf("already granted: %s", r.raw)
	}
	if n := h.count("sandbox_messages"); n != 1 {
		t.Errorf("%d prompts sent, want 1", n)
	}

	// Revoked, then granted again: a new confirmation is needed.
	h.call("POST", path, map[string]any{"channel": "sms", "status": "revoked", "source": "sms:STOP"}, http.StatusOK)
	r = h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "web"}, http.StatusOK)
	if r.body["recorded_status"] != "pending" || obj(r.body, "double_opt_in", "prompt")["sent"] != true {
		t.Errorf("re-grant after STOP: %s", r.raw)
	}

	// Subscription-level SMS grants and other statuses are stored as asked.
	r = h.call("POST", path, map[string]any{"channel": "sms", "subscription": "promotions", "status": "granted", "source": "web"}, http.StatusOK)
	if r.body["recorded_status"] != "granted" || r.body["double_opt_in"] != nil {
		t.Errorf("subscription-level sms: %s", r.raw)
	}
	if n := h.count("sandbox_messages"); n != 2 {
		t.Errorf("%d prompts sent, want 2", n)
	}
}

func TestSMSDoubleOptInConfirmedByCaller(t *testing.T) {
	h := newSMSHarness(t, nil, "")
	id := h.newContact(map[string]any{"phone": "+14155550143"})
	path := "/v1/contacts/" + id + "/consent"

	r := h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "own-double-opt-in", "double_opt_in_confirmed": true}, http.StatusOK)
	if r.body["recorded_status"] != "granted" || obj(r.body, "double_opt_in")["status"] != "confirmed_by_caller" || obj(r.body, "double_opt_in", "prompt") != nil {
		t.Errorf("confirmed: %s", r.raw)
	}
	if cs := h.consents(id); cs[journey.ChannelSMS].Status != model.ConsentGranted {
		t.Errorf("stored: %+v", cs)
	}

	// The flag only makes sense for a channel-level SMS grant: named, nothing written.
	before := h.count("consent_events")
	for _, body := range []map[string]any{
		{"channel": "email", "status": "granted", "source": "x", "double_opt_in_confirmed": true},
		{"channel": "sms", "status": "revoked", "source": "x", "double_opt_in_confirmed": true},
		{"channel": "sms", "subscription": "promotions", "status": "granted", "source": "x", "double_opt_in_confirmed": true},
	} {
		r := h.call("POST", path, body, http.StatusBadRequest)
		if got := r.fieldPaths(); len(got) != 1 || got[0] != "double_opt_in_confirmed" {
			t.Errorf("%v: %s", body, r.raw)
		}
	}
	r = h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "x", "double_opt_in_confirmed": "yes"}, http.StatusBadRequest)
	if got := r.fieldPaths(); len(got) != 1 || got[0] != "double_opt_in_confirmed" {
		t.Errorf("non-boolean flag: %s", r.raw)
	}
	if n := h.count("consent_events"); n != before {
		t.Errorf("rejected requests wrote %d history rows", n-before)
	}
	if n := h.count("messages"); n != 0 {
		t.Errorf("%d messages", n)
	}
}

func TestSMSDoubleOptInPromptNotSent(t *testing.T) {
	grant := map[string]any{"channel": "sms", "status": "granted", "source": "web"}

	// No sender configured: still pending, and the answer says no prompt went.
	h := newHarness(t)
	id := h.newContact(map[string]any{"phone": "+14155550144"})
	r := h.call("POST", "/v1/contacts/"+id+"/consent", grant, http.StatusOK)
	if p := obj(r.body, "double_opt_in", "prompt"); r.body["recorded_status"] != "pending" || p["sent"] != false || !strings.Contains(p["error"].(string), "no SMS sender") {
		t.Errorf("no sender: %s", r.raw)
	}

	// No phone number: no ledger row.
	h = newSMSHarness(t, nil, "")
	id = h.newContact(map[string]any{"email": "nophone@example.com"})
	r = h.call("POST", "/v1/contacts/"+id+"/consent", grant, http.StatusOK)
	if p := obj(r.body, "double_opt_in", "prompt"); r.body["recorded_status"] != "pending" || p["sent"] != false || !strings.Contains(p["error"].(string), "phone") {
		t.Errorf("no phone: %s", r.raw)
	}
	if n := h.count("messages"); n != 0 {
		t.Errorf("%d ledger rows without a phone", n)
	}

	// A later STOP is in force: the late grant is history, and nobody is texted.
	id = h.newContact(map[string]any{"phone": "+14155550145"})
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "sms", "status": "revoked", "source": "sms:STOP"}, http.StatusOK)
	late := map[string]any{"channel": "sms", "status": "granted", "source": "import", "occurred_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
	r = h.call("POST", "/v1/contacts/"+id+"/consent", late, http.StatusOK)
	if p := obj(r.body, "double_opt_in", "prompt"); obj(r.body, "consent")["status"] != "revoked" || p["sent"] != false || !strings.Contains(p["error"].(string), "later consent change") {
		t.Errorf("late grant: %s", r.raw)
	}
	if n := h.count("messages"); n != 0 {
		t.Errorf("%d ledger rows for a late grant", n)
	}

	// Do-not-contact: the send gate stops the prompt, and says why.
	h = newSMSHarness(t, nil, "")
	id = h.newContact(map[string]any{"phone": "+14155550147"})
	h.call("POST", "/v1/contacts/"+id+"/suppressions", map[string]any{"reason": "do_not_contact"}, http.StatusCreated)
	r = h.call("POST", "/v1/contacts/"+id+"/consent", grant, http.StatusOK)
	if p := obj(r.body, "double_opt_in", "prompt"); p["sent"] != false || !strings.Contains(p["error"].(string), "suppressed:do_not_contact") {
		t.Errorf("do not contact: %s", r.raw)
	}
	if n := h.count("messages WHERE status = 'skipped'"); n != 1 {
		t.Errorf("%d skipped ledger rows for a do-not-contact prompt, want 1", n)
	}

	// The provider refuses: the ledger row says failed, with why.
	h = newSMSHarness(t, refusingSMS{}, "Tutti: reply YES to get our texts")
	id = h.newContact(map[string]any{"phone": "+14155550146"})
	r = h.call("POST", "/v1/contacts/"+id+"/consent", grant, http.StatusOK)
	p := obj(r.body, "double_opt_in", "prompt")
	if p["sent"] != false || p["body"] != "Tutti: reply YES to get our texts" || !strings.Contains(p["error"].(string), "twilio:21610") {
		t.Fatalf("refused: %s", r.raw)
	}
	m, err := h.store.Message(context.Background(), p["message_id"].(string))
	if err != nil || m.Status != model.MessageFailed || m.StatusReason != "twilio:21610" || !strings.Contains(m.StatusDetail, "unsubscribed") {
		t.Errorf("ledger: %+v %v", m, err)
	}
}

func TestSMSConfirmPromptFromConfig(t *testing.T) {
	h := newSMSHarness(t, nil, "Acme: reply YES to confirm texts, STOP to stop.")
	id := h.newContact(map[string]any{"phone": "+14155550147"})
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "sms", "status": "granted", "source": "web"}, http.StatusOK)
	out, err := h.store.SandboxMessages(context.Background(), id, 10)
	if err != nil || len(out) != 1 || out[0].Payload["body"] != "Acme: reply YES to confirm texts, STOP to stop." {
		t.Errorf("outbox: %+v %v", out, err)
	}
}

// ---------------------------------------------------------------------------
// Country

func TestIdentifyCountry(t *testing.T) {
	h := newHarness(t)
	r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "geo-1", "country": " fr "}, http.StatusCreated)
	c := obj(r.body, "contact")
	if c["country"] != "FR" {
		t.Errorf("country: %s", r.raw)
	}
	id := c["id"].(string)
	// Left out: kept. Given: replaced.
	r = h.call("POST", "/v1/contacts", map[string]any{"id": id, "time_zone": "Europe/Paris"}, http.StatusOK)
	if obj(r.body, "contact")["country"] != "FR" {
		t.Errorf("kept: %s", r.raw)
	}
	r = h.call("POST", "/v1/contacts", map[string]any{"id": id, "country": "BE"}, http.StatusOK)
	if obj(r.body, "contact")["country"] != "BE" {
		t.Errorf("replaced: %s", r.raw)
	}
	if got := obj(h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK).body, "contact")["country"]; got != "BE" {
		t.Errorf("show: %v", got)
	}

	for _, bad := range []string{"ZZ", "FRA", "UK", "1"} {
		r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "geo-2", "country": bad}, http.StatusBadRequest)
		if got := r.fieldPaths(); len(got) != 1 || got[0] != "country" {
			t.Errorf("country %q: %s", bad, r.raw)
		}
	}
	r = h.call("POST", "/v1/contacts", map[string]any{"id": id, "country": "XX"}, http.StatusBadRequest)
	if !strings.Contains(r.raw, "ISO 3166-1") {
		t.Errorf("message: %s", r.raw)
	}
	if n := h.count("contacts"); n != 1 {
		t.Errorf("%d contacts after rejected requests", n)
	}
	if got := obj(h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK).body, "contact")["country"]; got != "BE" {
		t.Errorf("a rejected update changed the country: %v", got)
	}
}

// ---------------------------------------------------------------------------
// Suppressions

func TestSuppressions(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "sup-1"})
	other := h.newContact(map[string]any{"external_id": "sup-2"})
	path := "/v1/contacts/" + id + "/suppressions"

	r := h.call("POST", path, map[string]any{"reason": "in_opportunity", "channel": "email", "note": "deal 1234"}, http.StatusCreated)
	sp := obj(r.body, "suppression")
	supID, _ := sp["id"].(string)
	if !strings.HasPrefix(supID, "sup_") || r.body["created"] != true || sp["source"] != "api" || sp["channel"] != "email" ||
		sp["note"] != "deal 1234" || sp["active"] != true || sp["contact_id"] != id || sp["journey_id"] != nil {
		t.Errorf("created: %s", r.raw)
	}
	// The same again: 200, the existing row unchanged.
	r = h.call("POST", path, map[string]any{"reason": "in_opportunity", "channel": "email", "note": "other note"}, http.StatusOK)
	if obj(r.body, "suppression")["id"] != supID || r.body["created"] != false || obj(r.body, "suppression")["note"] != "deal 1234" {
		t.Errorf("identical: %s", r.raw)
	}
	// Per journey, with an expiry and the caller's source.
	exp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	r = h.call("POST", path, map[string]any{"reason": "converted", "journey_id": "welcome", "expires_at": exp.Format(time.RFC3339), "source": "crm"}, http.StatusCreated)
	sp2 := obj(r.body, "suppression")
	if sp2["journey_id"] != "welcome" || sp2["source"] != "crm" || sp2["expires_at"] != exp.Format(time.RFC3339) || sp2["channel"] != nil {
		t.Errorf("per journey: %s", r.raw)
	}

	// The gate sees them.
	active, err := h.store.Suppressions(context.Background(), id)
	if err != nil || len(active) != 2 {
		t.Fatalf("stored: %v %v", active, err)
	}

	list := h.call("GET", path, nil, http.StatusOK)
	if items, _ := list.body["suppressions"].([]any); len(items) != 2 || obj(items[0])["id"] != sp2["id"] {
		t.Errorf("list: %s", list.raw)
	}
	if items := h.call("GET", "/v1/contacts/"+other+"/suppressions", nil, http.StatusOK).body["suppressions"].([]any); len(items) != 0 {
		t.Errorf("another contact's list: %v", items)
	}

	// Lifting: another contact's URL does not reach it; then lift, twice.
	r = h.call("DELETE", "/v1/contacts/"+other+"/suppressions/"+supID, nil, http.StatusNotFound)
	if !strings.Contains(r.raw, supID) {
		t.Errorf("404 names the suppression: %s", r.raw)
	}
	h.call("DELETE", path+"/sup_nope", nil, http.StatusNotFound)
	h.call("DELETE", "/v1/contacts/c_missing/suppressions/"+supID, nil, http.StatusNotFound)
	r = h.call("DELETE", path+"/"+supID+"?lifted_by=support%3Aann", nil, http.StatusOK)
	lifted := obj(r.body, "suppression")
	if r.body["lifted"] != true || lifted["active"] != false || lifted["lifted_at"] == nil || lifted["lifted_by"] != "support:ann" {
		t.Errorf("lift: %s", r.raw)
	}
	r = h.call("DELETE", path+"/"+supID, nil, http.StatusOK)
	if r.body["lifted"] != false || obj(r.body, "suppression")["lifted_by"] != "support:ann" {
		t.Errorf("lift again: %s", r.raw)
	}
	r = h.call("DELETE", path+"/"+supID+"?lifted_by="+strings.Repeat("x", 201), nil, http.StatusBadRequest)
	if got := r.fieldPaths(); len(got) != 1 || got[0] != "lifted_by" {
		t.Errorf("long lifted_by: %s", r.raw)
	}

	// History keeps the lifted row; suppressing again makes a new one.
	list = h.call("GET", path, nil, http.StatusOK)
	if items := list.body["suppressions"].([]any); len(items) != 2 {
		t.Errorf("history: %s", list.raw)
	}
	r = h.call("POST", path, map[string]any{"reason": "in_opportunity", "channel": "email"}, http.StatusCreated)
	if obj(r.body, "suppression")["id"] == supID {
		t.Errorf("a lifted row came back: %s", r.raw)
	}
	h.call("GET", "/v1/contacts/c_missing/suppressions", nil, http.StatusNotFound)
}

func TestSuppressionValidation(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"external_id": "sv-1"})
	path := "/v1/contacts/" + id + "/suppressions"
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{}, "reason"},
		{map[string]any{"reason": "annoyed"}, "reason"},
		{map[string]any{"reason": "hard_bounce", "channel": "fax"}, "channel"},
		{map[string]any{"reason": "hard_bounce", "expires_at": past}, "expires_at"},
		{map[string]any{"reason": "hard_bounce", "expires_at": "next week"}, "expires_at"},
		{map[string]any{"reason": "hard_bounce", "note": strings.Repeat("n", 501)}, "note"},
		{map[string]any{"reason": "hard_bounce", "source": strings.Repeat("s", 201)}, "source"},
		{map[string]any{"reason": "hard_bounce", "jouney_id": "welcome"}, "jouney_id"},
		{map[string]any{"reason": 3}, "reason"},
	} {
		r := h.call("POST", path, tc.body, http.StatusBadRequest)
		if got := r.fieldPaths(); len(got) != 1 || got[0] != tc.field {
			t.Errorf("%v: fields %v, want [%s]: %s", tc.body, got, tc.field, r.raw)
		}
	}
	// Every problem at once.
	r := h.call("POST", path, map[string]any{"reason": "x", "channel": "fax", "expires_at": past}, http.StatusBadRequest)
	if got := strings.Join(r.fieldPaths(), ","); got != "reason,channel,expires_at" {
		t.Errorf("fields %q: %s", got, r.raw)
	}
	// Unknown contact and unknown journey: 404, the journey named.
	h.call("POST", "/v1/contacts/c_missing/suppressions", map[string]any{"reason": "do_not_contact"}, http.StatusNotFound)
	r = h.call("POST", path, map[string]any{"reason": "converted", "journey_id": "no-such-journey"}, http.StatusNotFound)
	if got := r.fieldPaths(); len(got) != 1 || got[0] != "journey_id" {
		t.Errorf("unknown journey: %s", r.raw)
	}
	if n := h.count("suppressions"); n != 0 {
		t.Errorf("%d suppressions after rejected requests", n)
	}
}

// A suppression that expired without being lifted must not stand in for a
// new one of the same kind.
func TestSuppressionAfterExpiry(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"external_id": "exp-1"})
	path := "/v1/contacts/" + id + "/suppressions"
	soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := h.call("POST", path, map[string]any{"reason": "do_not_contact", "channel": "sms", "expires_at": soon}, http.StatusCreated)
	oldID := obj(r.body, "suppression")["id"].(string)
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE suppressions SET expires_at = now() - interval '1 minute' WHERE id = $1`, oldID); err != nil {
		t.Fatal(err)
	}
	if items := h.call("GET", path, nil, http.StatusOK).body["suppressions"].([]any); obj(items[0])["active"] != false {
		t.Errorf("an expired suppression is not active: %v", items)
	}

	r = h.call("POST", path, map[string]any{"reason": "do_not_contact", "channel": "sms"}, http.StatusCreated)
	if sp := obj(r.body, "suppression"); sp["id"] == oldID || sp["active"] != true {
		t.Errorf("new: %s", r.raw)
	}
	items := h.call("GET", path, nil, http.StatusOK).body["suppressions"].([]any)
	if len(items) != 2 || obj(items[1])["id"] != oldID || obj(items[1])["lifted_by"] != "expired" {
		t.Errorf("history: %v", items)
	}
}
