package main

import (
	"net/http"
	"strings"
	"testing"
)

const eraseJSON = `{"erasure":{"id":"er_1","contact_id":"c_1","erased_at":"2025-05-01T10:00:00Z","active_runs":["journey/welcome/contact/c_1"],"proofs_kept":4},
"already_erased":false,"runs_told_to_end":["journey/welcome/contact/c_1"]}`

func TestContactErase(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, eraseJSON)
	r := runCLI(t, f.vars(), "contact", "erase", "c_1")
	if r.code != exitOK {
		t.Fatalf("erase: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "DELETE" || req.path != "/v1/contacts/c_1" {
		t.Errorf("request: %+v", req)
	}
	for _, want := range []string{
		"contact c_1 erased at 2025-05-01 10:00:00 UTC (erasure er_1); 4 consent record(s) kept under hashed identifiers\n",
		"  told to end (erased): journey/welcome/contact/c_1\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCLI(t, f.vars(), "contact", "erase"); r.code != exitUsage {
		t.Errorf("no id: %d", r.code)
	}

	// Erased, but a run could not be told: the summary says which, and the
	// command fails so a script retries.
	f = newFakeAPI(t, http.StatusServiceUnavailable, `{"error":{"code":"delivery_incomplete","message":"retry"},
"erasure":{"id":"er_1","contact_id":"c_1","erased_at":"2025-05-01T10:00:00Z","active_runs":["w1"],"proofs_kept":0},
"already_erased":true,"runs_told_to_end":[],"failed":[{"workflow_id":"w1","error":"unavailable"}]}`)
	r = runCLI(t, f.vars(), "contact", "erase", "c_1")
	if r.code != exitFail || !strings.Contains(r.stdout, "was already erased") || !strings.Contains(r.stdout, "NOT told, retry: w1: unavailable") ||
		!strings.Contains(r.stderr, "delivery_incomplete") {
		t.Errorf("503: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestWhyShowsTheExitNote(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"contact_id":"c_1","journey_id":"welcome","step_id":"hello","state":"not_reached","summary":"s",
"enrollment":{"id":"e_1","version":1,"status":"exited","exit_reason":"support_exit","exit_note":"asked to stop","started_at":"2025-05-01T10:00:00Z"},
"decisions":[],"messages":[]}`)
	r := runCLI(t, f.vars(), "why", "c_1", "welcome", "hello")
	if r.code != exitOK || !strings.Contains(r.stdout, "exited since 2025-05-01 10:00:00 UTC (support_exit: asked to stop)") {
		t.Errorf("why: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
