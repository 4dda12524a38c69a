package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const mergeJSON = `{"survivor":{"id":"c_s","attributes":{},"created_at":"2025-05-01T10:00:00Z","updated_at":"2025-05-01T10:00:00Z"},
"absorbed_id":"c_a","merged_at":"2025-05-02T09:30:00Z","already_merged":false,
"identifiers_taken":["phone"],"aliases":["email","external_id"],"attributes_added":["city"],
"moved":{"events":3,"messages":2,"decisions":2,"provider_events":0,"suppressions":1,"enrollments":1,"deliveries":0},
"consent_changes":[{"id":9,"contact_id":"c_s","channel":"email","subscription":"newsletter","status":"revoked","source":"merge:c_a","occurred_at":"2025-05-02T09:30:00Z","recorded_at":"2025-05-02T09:30:00Z"}],
"runs_exiting":["journey/welcome/contact/c_a"],"exit_requests":["x_1"],"pending_deliveries":1}`

func TestContactMerge(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, mergeJSON)
	r := runCLI(t, f.vars(), "contact", "merge", "c_s", "c_a")
	if r.code != exitOK {
		t.Fatalf("merge: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/contacts/c_s/merge" {
		t.Errorf("request: %+v", req)
	}
	var body map[string]any
	if err := json.Unmarshal(req.body, &body); err != nil || len(body) != 1 || body["absorb"] != "c_a" {
		t.Errorf("body %s: want only absorb", req.body)
	}
	for _, want := range []string{
		"merged contact c_a into c_s at 2025-05-02 09:30:00 UTC\n",
		"  identifiers taken: phone; kept as aliases: email, external_id\n",
		"  attributes added: city\n",
		"  moved: 3 event(s), 2 message(s), 2 decision(s), 1 suppression(s), 1 ended run(s)\n",
		"  consent email/newsletter: now revoked (the more restrictive)\n",
		"  told to end (merged): journey/welcome/contact/c_a\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	f = newFakeAPI(t, http.StatusOK, strings.Replace(mergeJSON, `"already_merged":false`, `"already_merged":true`, 1))
	r = runCLI(t, f.vars(), "contact", "merge", "c_s", "pos-1", "--external-id")
	if r.code != exitOK || !strings.Contains(r.stdout, "contact c_a was already merged into c_s") {
		t.Errorf("already: %d %q %q", r.code, r.stdout, r.stderr)
	}
	body = nil
	if err := json.Unmarshal(f.only().body, &body); err != nil || body["absorb_external_id"] != "pos-1" || body["absorb"] != nil {
		t.Errorf("--external-id body: %v", body)
	}

	f = newFakeAPI(t, http.StatusConflict, `{"error":{"code":"contact_merged","message":"the contact to absorb, contact c_a, was merged into contact c_x already","fields":[{"path":"absorb","message":"merged into contact c_x"}]}}`)
	if r := runCLI(t, f.vars(), "contact", "merge", "c_s", "c_a"); r.code != exitFail || !strings.Contains(r.stderr, "contact_merged") {
		t.Errorf("refused: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, f.vars(), "contact", "merge", "c_s"); r.code != exitUsage {
		t.Errorf("one argument: %d", r.code)
	}
}
