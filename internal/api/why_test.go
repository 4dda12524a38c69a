package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
)

// whySpec: an email, a wait, an SMS.
const whySpec = `
id: onboard
name: Onboard
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Hi", text: "Hello"}
  - id: pause
    wait: {duration: 1d}
  - id: nudge
    send:
      channel: sms
      sms: {body: "Still there?"}
`

// enrollIn writes an enrollment row directly (no workflow is needed to
// explain decisions).
func (h *harness) enrollIn(contactID, journeyID string, version int, step string) storage.Enrollment {
	h.t.Helper()
	e := storage.Enrollment{ID: "e_" + contactID + "_" + journeyID, ContactID: contactID, JourneyID: journeyID, Version: version,
		WorkflowID: "journey/" + journeyID + "/contact/" + contactID, CurrentStep: step}
	if err := h.store.CreateEnrollment(context.Background(), e, nil); err != nil {
		h.t.Fatal(err)
	}
	return e
}

// gate puts one send through the real gate with the given decision.
func (h *harness) gate(contactID, stepID string, ch journey.Channel, now time.Time, decide func(storage.GateState) policy.Decision) storage.GateResult {
	h.t.Helper()
	res, err := h.store.Gate(context.Background(), storage.GateInput{
		Message: storage.Message{IdempotencyKey: fmt.Sprintf("journey/onboard/contact/%s/%s/%d", contactID, stepID, now.UnixNano()),
			ContactID: contactID, JourneyID: "onboard", JourneyVersion: 1, StepID: stepID,
			Channel: ch, Class: string(journey.ClassMarketing), Provider: "sandbox"},
		Now: now, Lookback: 7 * 24 * time.Hour,
	}, decide)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func whyPath(contactID, journeyID, stepID string) string {
	return "/v1/contacts/" + contactID + "/journeys/" + journeyID + "/steps/" + stepID + "/why"
}

func decisionsOf(r response) []map[string]any {
	ds, _ := r.body["decisions"].([]any)
	out := make([]map[string]any, len(ds))
	for i, d := range ds {
		out[i] = d.(map[string]any)
	}
	return out
}

func TestWhyWithoutDecision(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	c := h.newContact(map[string]any{"email": "why@example.com"})

	// Unknown contact, unknown journey, never entered.
	r := h.call("GET", whyPath("c_nobody", "onboard", "hello"), nil, http.StatusNotFound)
	if !strings.Contains(r.raw, `contact \"c_nobody\" not found`) {
		t.Errorf("unknown contact: %s", r.raw)
	}
	r = h.call("GET", whyPath(c, "nosuch", "hello"), nil, http.StatusNotFound)
	if !strings.Contains(r.raw, `journey \"nosuch\" not found`) {
		t.Errorf("unknown journey: %s", r.raw)
	}
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusNotFound)
	if !strings.Contains(r.raw, "never entered journey onboard") || r.fieldPaths()[0] != "journey_id" {
		t.Errorf("never entered: %s", r.raw)
	}

	e := h.enrollIn(c, "onboard", 1, "hello")

	// A step the contact's version does not have.
	r = h.call("GET", whyPath(c, "onboard", "goodbye"), nil, http.StatusNotFound)
	if !strings.Contains(r.raw, `step \"goodbye\" is not in journey onboard version 1`) || r.fieldPaths()[0] != "step_id" {
		t.Errorf("unknown step: %s", r.raw)
	}

	// At the step, not decided yet.
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "pending" || !strings.Contains(r.body["summary"].(string), "is at step hello now") {
		t.Errorf("pending: %s", r.raw)
	}
	if r.body["enrollment"].(map[string]any)["id"] != e.ID || len(decisionsOf(r)) != 0 {
		t.Errorf("pending: %s", r.raw)
	}
	step := r.body["step"].(map[string]any)
	if step["kind"] != "send" || step["channel"] != "email" || step["version"] != float64(1) {
		t.Errorf("step: %v", step)
	}

	// A later step: not reached yet.
	r = h.call("GET", whyPath(c, "onboard", "nudge"), nil, http.StatusOK)
	if r.body["state"] != "not_reached" || !strings.Contains(r.body["summary"].(string), "has not reached step nudge yet") ||
		!strings.Contains(r.body["summary"].(string), "is at step hello") {
		t.Errorf("not reached: %s", r.raw)
	}

	// A wait step sends nothing.
	r = h.call("GET", whyPath(c, "onboard", "pause"), nil, http.StatusOK)
	if r.body["state"] != "not_a_send_step" || !strings.Contains(r.body["summary"].(string), "is a wait step") {
		t.Errorf("wait step: %s", r.raw)
	}

	// The run ended before the step.
	if err := h.store.FinishEnrollment(context.Background(), e.ID, model.RunExited, "asked support", time.Time{}); err != nil {
		t.Fatal(err)
	}
	r = h.call("GET", whyPath(c, "onboard", "nudge"), nil, http.StatusOK)
	if r.body["state"] != "not_reached" || !strings.Contains(r.body["summary"].(string), "ended exited at") ||
		!strings.Contains(r.body["summary"].(string), "(asked support), at step hello without reaching step nudge") {
		t.Errorf("ended: %s", r.raw)
	}

	if r := h.call("GET", whyPath(c, "onboard", "hello")+"?limit=0", nil, http.StatusBadRequest); r.fieldPaths()[0] != "limit" {
		t.Errorf("limit: %s", r.raw)
	}
	if r := h.do("GET", whyPath(c, "onboard", "hello"), nil, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}
}

func TestWhyExplainsDecisions(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	c := h.newContact(map[string]any{"email": "why@example.com", "phone": "+14155550123"})
	h.enrollIn(c, "onboard", 1, "nudge")
	ctx := context.Background()
	if _, _, err := h.store.RecordConsent(ctx, c, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{}); err != nil {
		t.Fatal(err)
	}
	stop, _, err := h.store.RecordConsent(ctx, c, journey.ChannelSMS, model.ConsentRevoked, "sms:STOP", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	settings := policy.DefaultSettings()
	settings.QuietHours, settings.Cooldowns = nil, nil
	decide := func(ch journey.Channel, now time.Time) func(storage.GateState) policy.Decision {
		return func(st storage.GateState) policy.Decision {
			return policy.Decide(settings, policy.Request{Contact: st.Contact, Channel: ch, Class: journey.ClassMarketing, Now: now})
		}
	}
	t0 := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)

	// hello: deferred, then allowed and sent.
	h.gate(c, "hello", journey.ChannelEmail, t0, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeDefer, Channel: journey.ChannelEmail, Until: t0.Add(2 * time.Hour),
			Reasons: []policy.Reason{{Code: policy.CodeQuietHours, Channel: journey.ChannelEmail, Detail: "05:00 local, window 08:00-21:00"}},
			Checks:  []policy.Check{{Channel: journey.ChannelEmail, Rule: policy.RuleQuietHours, Detail: "05:00 local, window 08:00-21:00"}}}
	})
	r := h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "deferred" || r.body["summary"] != "deferred on email until 2025-05-01T11:00:00Z — quiet_hours (05:00 local, window 08:00-21:00)" {
		t.Errorf("deferred: %s", r.raw)
	}

	allowed := h.gate(c, "hello", journey.ChannelEmail, t0.Add(2*time.Hour), decide(journey.ChannelEmail, t0.Add(2*time.Hour)))
	if !allowed.Send() {
		t.Fatalf("not allowed: %+v", allowed.Decision)
	}
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "sending" || !strings.Contains(r.body["summary"].(string), "no request has reached the provider yet") {
		t.Errorf("reserved: %s", r.raw)
	}
	if _, _, err := h.store.BeginFlight(ctx, allowed.Message.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "sending" || !strings.Contains(r.body["summary"].(string), "was being written") {
		t.Errorf("in flight: %s", r.raw)
	}
	sentAt := t0.Add(2*time.Hour + time.Second)
	if _, err := h.store.CompleteSend(ctx, allowed.Message.ID, "sandbox", "sb-1", sentAt); err != nil {
		t.Fatal(err)
	}
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "sent" || r.body["summary"] != "sent on email at 2025-05-01T11:00:01Z" {
		t.Errorf("sent: %s", r.raw)
	}
	ds := decisionsOf(r)
	if len(ds) != 2 || ds[0]["outcome"] != "allow" || ds[1]["outcome"] != "defer" || ds[1]["until"] != "2025-05-01T11:00:00Z" {
		t.Fatalf("decisions: %s", r.raw)
	}
	if ds[0]["message_id"] != allowed.Message.ID || ds[0]["decided_channel"] != "email" || ds[0]["consent_event_id"] == nil {
		t.Errorf("allow decision: %v", ds[0])
	}
	if checks := ds[0]["checks"].([]any); len(checks) == 0 {
		t.Errorf("the allow decision carries its trace: %v", ds[0])
	}
	if msgs := r.body["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["status"] != "sent" {
		t.Errorf("messages: %v", r.body["messages"])
	}

	// nudge: the SMS consent was revoked by STOP.
	h.gate(c, "nudge", journey.ChannelSMS, t0.Add(26*time.Hour), decide(journey.ChannelSMS, t0.Add(26*time.Hour)))
	r = h.call("GET", whyPath(c, "onboard", "nudge"), nil, http.StatusOK)
	summary, _ := r.body["summary"].(string)
	// The summary names where the revocation came from; the reason keeps
	// the policy's full detail.
	want := fmt.Sprintf("not sent: skipped on sms — consent_revoked (sms:STOP at %s)", stop.OccurredAt.UTC().Format(time.RFC3339))
	if r.body["state"] != "skipped" || summary != want {
		t.Errorf("skipped: got %q, want %q", summary, want)
	}
	ds = decisionsOf(r)
	if len(ds) != 1 || ds[0]["outcome"] != "skip" {
		t.Fatalf("decisions: %s", r.raw)
	}
	if detail := ds[0]["reasons"].([]any)[0].(map[string]any)["detail"].(string); !strings.Contains(detail, fmt.Sprintf("(event %d, ", stop.ID)) {
		t.Errorf("reason detail: %q", detail)
	}
	failed := false
	for _, ch := range ds[0]["checks"].([]any) {
		if c := ch.(map[string]any); c["rule"] == "consent" && c["passed"] == false {
			failed = true
		}
	}
	if !failed {
		t.Errorf("the trace shows the failed consent check: %v", ds[0]["checks"])
	}
	if msgs := r.body["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["status"] != "skipped" {
		t.Errorf("the skip is in the ledger: %v", r.body["messages"])
	}

	// The contact's decisions, all and by journey.
	r = h.call("GET", "/v1/contacts/"+c+"/decisions", nil, http.StatusOK)
	if ds := decisionsOf(r); len(ds) != 3 || ds[0]["step_id"] != "nudge" {
		t.Errorf("decisions: %s", r.raw)
	}
	r = h.call("GET", "/v1/contacts/"+c+"/decisions?journey_id=onboard&limit=1", nil, http.StatusOK)
	if ds := decisionsOf(r); len(ds) != 1 || ds[0]["step_id"] != "nudge" {
		t.Errorf("limited: %s", r.raw)
	}
	r = h.call("GET", "/v1/contacts/"+c+"/decisions?journey_id=other", nil, http.StatusOK)
	if ds := decisionsOf(r); len(ds) != 0 || r.raw == "" || !strings.Contains(r.raw, `"decisions":[]`) {
		t.Errorf("other journey: %s", r.raw)
	}
	h.call("GET", "/v1/contacts/c_nobody/decisions", nil, http.StatusNotFound)
	h.call("GET", "/v1/contacts/"+c+"/decisions?limit=501", nil, http.StatusBadRequest)
}

func TestWhyFallback(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	c := h.newContact(map[string]any{"email": "fb@example.com", "phone": "+14155550124"})
	h.enrollIn(c, "onboard", 1, "nudge")
	now := time.Date(2025, 5, 2, 12, 0, 0, 0, time.UTC)
	res := h.gate(c, "nudge", journey.ChannelSMS, now, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeFallback, Channel: journey.ChannelEmail,
			Reasons: []policy.Reason{{Code: policy.CodeNoConsent, Channel: journey.ChannelSMS, Detail: "no sms consent"}},
			Checks: []policy.Check{{Channel: journey.ChannelSMS, Rule: policy.RuleConsent, Detail: "no sms consent"},
				{Channel: journey.ChannelEmail, Rule: policy.RuleConsent, Passed: true, Detail: "granted"}}}
	})
	if _, err := h.store.CompleteSend(context.Background(), res.Message.ID, "sandbox", "sb-2", now); err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "onboard", "nudge"), nil, http.StatusOK)
	if r.body["state"] != "sent" || r.body["summary"] != "sent on email (fallback from sms — no_consent (no sms consent)) at 2025-05-02T12:00:00Z" {
		t.Errorf("fallback: %s", r.raw)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/metrics", nil, "", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, want := range []string{"# TYPE tutti_gate_decision_seconds histogram", "go_goroutines"} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A ledger row written without a gate decision (before decisions were
// recorded) is still explained, from its status.
func TestWhyLedgerRowWithoutDecision(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	c := h.newContact(map[string]any{"email": "old@example.com"})
	h.enrollIn(c, "onboard", 1, "pause")
	if _, err := h.store.RecordSkip(context.Background(), storage.Message{IdempotencyKey: "old/hello", ContactID: c, JourneyID: "onboard",
		JourneyVersion: 1, StepID: "hello", Channel: journey.ChannelEmail, Class: "marketing", Provider: "sandbox", StatusReason: "no_consent"}); err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "skipped" || r.body["summary"] != "not sent: skipped on email: no_consent" || len(decisionsOf(r)) != 0 {
		t.Errorf("ledger only: %s", r.raw)
	}
}

// An allowed send waiting for its slot under a provider rate limit is
// explained as deferred until the slot, with the slot in the answer.
func TestWhyRateLimitSlot(t *testing.T) {
	h := newHarness(t)
	h.publish(whySpec)
	c := h.newContact(map[string]any{"email": "slot@example.com"})
	h.enrollIn(c, "onboard", 1, "hello")
	ctx := context.Background()
	if _, _, err := h.store.RecordConsent(ctx, c, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{}); err != nil {
		t.Fatal(err)
	}
	allow := func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail,
			Checks: []policy.Check{{Channel: journey.ChannelEmail, Rule: policy.RuleConsent, Passed: true}}}
	}
	now := time.Now()
	res := h.gate(c, "hello", journey.ChannelEmail, now, allow)
	// The hour's one slot is taken by another message first.
	other := h.newContact(map[string]any{"email": "other@example.com"})
	if _, _, err := h.store.RecordConsent(ctx, other, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{}); err != nil {
		t.Fatal(err)
	}
	first := h.gate(other, "hello", journey.ChannelEmail, now, allow)
	l := ratelimit.Limit{Key: "sandbox", N: 1, Per: time.Hour}
	if _, err := h.store.ReserveRateSlot(ctx, first.Message.ID, l, now); err != nil {
		t.Fatal(err)
	}
	slot, err := h.store.ReserveRateSlot(ctx, res.Message.ID, l, now)
	if err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	want := "allowed on email; waiting for its slot under the provider rate limit sandbox, at " + slot.SlotAt.UTC().Format(time.RFC3339)
	if r.body["state"] != "deferred" || r.body["summary"] != want {
		t.Errorf("waiting for the slot: %s", r.raw)
	}
	rs, _ := r.body["rate_slot"].(map[string]any)
	if rs["limit_key"] != "sandbox" || rs["message_id"] != res.Message.ID {
		t.Errorf("rate_slot: %s", r.raw)
	}
}

// A step that chose its time and channel: while the run waits for the
// chosen time why says so, and shows the choice and its evidence; once
// the gate decided, the choice is still shown beside the decision.
func TestWhyShowsTheChoice(t *testing.T) {
	h := newHarness(t)
	h.publish(`
id: onboard
name: Onboard
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: hello
    send:
      channel: best
      send_time: best
      within: 2d
      email: {subject: "Hi", text: "Hello"}
      sms: {body: "Hi"}
`)
	c := h.newContact(map[string]any{"email": "choice@example.com"})
	h.enrollIn(c, "onboard", 1, "hello")
	ctx := context.Background()
	at := time.Now().Add(5 * time.Hour).UTC().Truncate(time.Second)
	_, err := h.store.RecordSendChoice(ctx, storage.SendChoice{IdempotencyKey: "enrollment/e1/hello/1", ContactID: c, JourneyID: "onboard", StepID: "hello",
		Channel: journey.ChannelEmail, SendAt: &at, Evidence: engagement.Evidence{
			ChannelPriorWeight: engagement.ChannelPriorWeight,
			Channels:           []engagement.ChannelEvidence{{Channel: journey.ChannelEmail, Sent: 4, Engaged: 2, PriorRate: 0.3, Cost: 0.001, Rate: 0.357}},
			Blocked:            []engagement.BlockedChannel{{Channel: journey.ChannelSMS, Reasons: []string{policy.CodeNoConsent}}},
			Time: &engagement.TimeEvidence{Zone: "Europe/Paris", Within: "2d", Engagements: 5, WorkspaceEngagements: 100,
				Model: engagement.DefaultHourModel, Cell: 34, CellName: "Tue 10:00", CellEngagements: 3, HourEngagements: 4,
				Score: 0.05, NowScore: 0.004, QuietHours: "no quiet hours for email"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	want := "not sent yet: the run waits until " + at.Format(time.RFC3339) + ", the time chosen for the contact, to send on email"
	if r.body["state"] != "pending" || r.body["summary"] != want {
		t.Errorf("waiting for the chosen time: %s", r.raw)
	}
	choice, _ := r.body["choice"].(string)
	for _, part := range []string{"channel email chosen by engagement rate", "sms not allowed (no_consent)",
		"3 of the contact's 5 engagements fell in Tue 10:00", "the workspace's 100 engagements are the prior, weighing 8"} {
		if !strings.Contains(choice, part) {
			t.Errorf("choice lacks %q: %s", part, choice)
		}
	}
	cs, _ := r.body["choices"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["evidence"].(map[string]any)["time"].(map[string]any)["cell_name"] != "Tue 10:00" {
		t.Errorf("choices: %s", r.raw)
	}

	// Once the gate decided, the summary is the decision's; the choice stays.
	if _, _, err := h.store.RecordConsent(ctx, c, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.gate(c, "hello", journey.ChannelEmail, time.Now(), func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail}
	})
	r = h.call("GET", whyPath(c, "onboard", "hello"), nil, http.StatusOK)
	if r.body["state"] != "sending" || !strings.Contains(r.body["choice"].(string), "Tue 10:00") {
		t.Errorf("after the decision: %s", r.raw)
	}
}

// An audience step is explained by the contact's ledger in that audience.
func TestWhyAudienceStep(t *testing.T) {
	h := newHarness(t)
	h.publish(`
id: ads
name: Ads
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: to_ads
    audience: {audience: hot_meta, action: add}
`)
	c := h.newContact(map[string]any{"email": "ads@example.com"})
	h.enrollIn(c, "ads", 1, "to_ads")
	ctx := context.Background()
	if _, _, err := h.store.DefineAudience(ctx, storage.Audience{ID: "hot_meta", Name: "Hot", Destination: audience.Meta, ExternalID: "1"}); err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "ads", "to_ads"), nil, http.StatusOK)
	if r.body["summary"] != "audience hot_meta: nothing asked for this contact yet" {
		t.Errorf("nothing yet: %s", r.raw)
	}
	if _, _, err := h.store.RecordConsent(ctx, c, journey.ChannelAds, model.ConsentGranted, "form", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.RequestAudienceChange(ctx, "hot_meta", c, audience.Add, "journey:ads/to_ads"); err != nil {
		t.Fatal(err)
	}
	r = h.call("GET", whyPath(c, "ads", "to_ads"), nil, http.StatusOK)
	if !strings.Contains(r.body["summary"].(string), "add asked by journey:ads/to_ads") {
		t.Errorf("pending: %s", r.raw)
	}
	if err := h.store.RecordAudienceBatch(ctx, "hot_meta", "req-1", audience.Add, []storage.AudienceOutcome{{ContactID: c, Result: "applied"}}); err != nil {
		t.Fatal(err)
	}
	r = h.call("GET", whyPath(c, "ads", "to_ads"), nil, http.StatusOK)
	if !strings.HasPrefix(r.body["summary"].(string), "audience hot_meta: add applied at ") || !strings.HasSuffix(r.body["summary"].(string), "(batch req-1)") {
		t.Errorf("applied: %s", r.raw)
	}
	if l, _ := r.body["audience_ledger"].([]any); len(l) != 1 {
		t.Errorf("ledger: %s", r.raw)
	}
	d := h.call("GET", "/v1/contacts/"+c, nil, http.StatusOK)
	if l, _ := d.body["audience_ledger"].([]any); len(l) != 1 {
		t.Errorf("contact show: %s", d.raw)
	}
}
