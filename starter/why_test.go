package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const whyJSON = `{
  "contact_id": "c_1", "journey_id": "onboard", "step_id": "nudge", "state": "skipped",
  "summary": "not sent: skipped on sms — consent_revoked (sms:STOP at 2025-05-01T09:00:00Z)",
  "step": {"version": 2, "kind": "send", "channel": "sms"},
  "enrollment": {"id": "e_1", "contact_id": "c_1", "journey_id": "onboard", "version": 2, "workflow_id": "w", "status": "active",
                 "current_step": "nudge", "started_at": "2025-04-30T08:00:00Z"},
  "decisions": [
    {"id": 9, "idempotency_key": "k2", "contact_id": "c_1", "journey_id": "onboard", "journey_version": 2, "step_id": "nudge",
     "channel": "sms", "class": "marketing", "outcome": "skip", "decided_channel": "sms",
     "reasons": [{"code": "consent_revoked", "channel": "sms", "detail": "sms consent revoked (event 4, 2025-05-01T09:00:00Z)"}],
     "checks": [{"channel": "sms", "rule": "suppression", "passed": true, "detail": "no suppression applies"},
                {"channel": "sms", "rule": "consent", "passed": false, "detail": "sms consent revoked (event 4, 2025-05-01T09:00:00Z)"}],
     "message_id": "m_2", "decided_at": "2025-05-01T10:00:00Z"},
    {"id": 7, "idempotency_key": "k2", "contact_id": "c_1", "journey_id": "onboard", "journey_version": 2, "step_id": "nudge",
     "channel": "sms", "class": "marketing", "outcome": "defer", "decided_channel": "sms", "until": "2025-05-01T08:00:00Z",
     "reasons": [{"code": "quiet_hours", "channel": "sms", "detail": "03:00 local"}], "checks": [], "decided_at": "2025-05-01T03:00:00Z"}
  ],
  "messages": [{"id": "m_2", "idempotency_key": "k2", "contact_id": "c_1", "journey_id": "onboard", "journey_version": 2, "step_id": "nudge",
                "channel": "sms", "class": "marketing", "provider": "sandbox", "status": "skipped", "status_reason": "consent_revoked",
                "attempts": 0, "created_at": "2025-05-01T10:00:00Z", "updated_at": "2025-05-01T10:00:00Z"}]
}`

func TestWhy(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, whyJSON)
	r := runCLI(t, f.vars(), "why", "c_1", "onboard", "nudge")
	if r.code != exitOK {
		t.Fatalf("why: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "GET" || req.path != "/v1/contacts/c_1/journeys/onboard/steps/nudge/why" || req.auth != "Bearer tok" {
		t.Errorf("request: %+v", req)
	}
	for _, want := range []string{
		"contact c_1, journey onboard, step nudge (send on sms, version 2)\n" +
			"not sent: skipped on sms — consent_revoked (sms:STOP at 2025-05-01T09:00:00Z)\n",
		"latest run: e_1, version 2, active since 2025-04-30 08:00:00 UTC, at step nudge",
		"decision 9 at 2025-05-01 10:00:00 UTC: skip on sms (requested sms, marketing, version 2, message m_2)",
		"reasons:\n  consent_revoked [sms]: sms consent revoked (event 4, 2025-05-01T09:00:00Z)\n",
		"checks:\n  pass  sms/suppression: no suppression applies\n  FAIL  sms/consent: sms consent revoked",
		"earlier decisions:\n  decision 7 at 2025-05-01 03:00:00 UTC: defer on sms until 2025-05-01 08:00:00 UTC (requested sms, marketing, version 2): quiet_hours\n",
		"ledger:\n  m_2  sms via sandbox: skipped (consent_revoked), created 2025-05-01 10:00:00 UTC, 0 attempt(s)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	// --json prints the API's answer, flags after the arguments included.
	f = newFakeAPI(t, http.StatusOK, whyJSON)
	r = runCLI(t, f.vars(), "why", "c_1", "onboard", "nudge", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || r.code != exitOK || raw["state"] != "skipped" {
		t.Errorf("--json: %d %q %v", r.code, r.stdout, err)
	}

}

func TestWhyNoDecisionAndErrors(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"contact_id":"c_1","journey_id":"onboard","step_id":"nudge","state":"not_reached",
		"summary":"not sent: the journey has not reached step nudge yet","decisions":[],"messages":[]}`)
	r := runCLI(t, f.vars(), "why", "c_1", "onboard", "nudge")
	if r.code != exitOK || !strings.Contains(r.stdout, "not sent: the journey has not reached step nudge yet") ||
		strings.Contains(r.stdout, "checks:") || strings.Contains(r.stdout, "ledger:") {
		t.Errorf("not reached: %d %q", r.code, r.stdout)
	}

	f = newFakeAPI(t, http.StatusNotFound, `{"error":{"code":"not_found","message":"contact c_1 never entered journey onboard","fields":[{"path":"journey_id","message":"the contact never entered this journey"}]}}`)
	r = runCLI(t, f.vars(), "why", "c_1", "onboard", "nudge")
	if r.code != exitFail || !strings.Contains(r.stderr, "never entered journey onboard") {
		t.Errorf("404: %d %q", r.code, r.stderr)
	}

	for _, args := range [][]string{{"why"}, {"why", "c_1", "onboard"}, {"why", "c_1", "onboard", "nudge", "extra"}} {
		if r := runCLI(t, f.vars(), args...); r.code != exitUsage || !strings.Contains(r.stderr, "want CONTACT JOURNEY STEP") {
			t.Errorf("%v: %d %q", args, r.code, r.stderr)
		}
	}
	if r := runCLI(t, nil, "why", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: tutti why CONTACT JOURNEY STEP") ||
		!strings.Contains(r.stdout, "-json") {
		t.Errorf("help: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "help"); !strings.Contains(r.stdout, "tutti why CONTACT JOURNEY STEP") {
		t.Errorf("usage lacks why: %q", r.stdout)
	}
}
