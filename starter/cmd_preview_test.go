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
