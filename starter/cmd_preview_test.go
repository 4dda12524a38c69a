package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestJourneyPreview(t *testing.T) {
	answer := `{"status":"converted","exit_reason":"goal: purchase","started_at":"2026-03-02T15:00:00Z","ended_at":"2026-03-03T15:00:00Z",
	  "steps":[{"step_id":"hello","kind":"send","started_at":"2026-03-02T15:00:00Z","outcome":"sent"},
	           {"step_id":"pause","kind":"wait","started_at":"2026-03-02T15:00:00Z"}],
	  "messages":[{"at":"2026-03-02T15:00:00Z","step_id":"hello","status":"would_send","channel":"email",
	    "decision":{"outcome":"allow","channel":"email","checks":[]},"email":{"to":"ada@example.com","subject":"Hi Ada","text":"Hello"}}],
	  "events":[{"at":"2026-03-03T15:00:00Z","name":"purchase"}],
	  "notes":["Nothing was sent or recorded."]}`
	f := newFakeAPI(t, http.StatusOK, answer)
	spec := writeFile(t, "w.yaml", validSpec)
	events := writeFile(t, "events.yaml", "- {after: 1d, name: purchase, properties: {total: 42}}\n")
	r := runCLI(t, f.vars(), "journey", "preview", spec, "--contact", "c_1", "--events", events, "--start", "2026-03-02T15:00:00Z")
	if r.code != exitOK {
		t.Fatalf("preview: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"2026-03-02T15:00:00Z  step hello (send): sent",
		`email would send`, `to ada@example.com: "Hi Ada"`,
		"2026-03-03T15:00:00Z  event purchase posted",
		"ended: converted (goal: purchase)",
		"note: Nothing was sent or recorded.",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/journeys/preview" || req.ctype != "application/json" {
		t.Errorf("request: %+v", req)
	}
	var body struct {
		Spec      map[string]any   `json:"spec"`
		ContactID string           `json:"contact_id"`
		StartAt   string           `json:"start_at"`
		Events    []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Spec["id"] != "welcome" || body.ContactID != "c_1" || body.StartAt != "2026-03-02T15:00:00Z" ||
		len(body.Events) != 1 || body.Events[0]["after"] != "1d" || body.Events[0]["name"] != "purchase" {
		t.Errorf("body: %s", req.body)
	}

	if r := runCLI(t, f.vars(), "journey", "preview", spec); r.code != exitUsage {
		t.Errorf("without --contact: %d %q", r.code, r.stderr)
	}
}

func TestAudienceCommands(t *testing.T) {
	f := newFakeAPI(t, http.StatusCreated, `{"id":"hot_meta","name":"Hot","destination":"meta","external_id":"238","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","counts":{"members":0,"pending_add":0,"pending_remove":0}}`)
	r := runCLI(t, f.vars(), "audience", "define", "hot_meta", "--destination", "meta", "--external-id", "238", "--name", "Hot")
	if r.code != exitOK || !strings.Contains(r.stdout, "audience hot_meta: meta list 238 (Hot)") {
		t.Fatalf("define: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	var body map[string]string
	if err := json.Unmarshal(req.body, &body); err != nil || req.method != "PUT" || req.path != "/v1/audiences/hot_meta" ||
		body["destination"] != "meta" || body["external_id"] != "238" || body["name"] != "Hot" {
		t.Errorf("request: %+v %s", req, req.body)
	}
	f = newFakeAPI(t, http.StatusOK, `{"audiences":[{"id":"hot_meta","name":"Hot","destination":"meta","external_id":"238","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","counts":{"members":3,"pending_add":1,"pending_remove":2}}]}`)
	r = runCLI(t, f.vars(), "audience", "list")
	if r.code != exitOK || !strings.Contains(r.stdout, "3 members, 1 to add, 2 to remove") {
		t.Errorf("list: %d %q", r.code, r.stdout)
	}
	f = newFakeAPI(t, http.StatusOK, `{"audiences":[],"ledger":[]}`)
	if r := runCLI(t, f.vars(), "contact", "audiences", "c_1"); r.code != exitOK || f.only().path != "/v1/contacts/c_1/audiences" {
		t.Errorf("contact audiences: %d %q", r.code, r.stderr)
	}
}
