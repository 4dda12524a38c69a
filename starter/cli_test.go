package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	code := run(context.Background(), args, env{lookup: lookup}, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// fakeAPI answers every request with the canned status and body, and keeps
// what it received.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	status int
	body   string
}

type recorded struct {
	method, path, query, ctype, auth string
	body                             []byte
}

func newFakeAPI(t *testing.T, status int, body string) *fakeAPI {
	f := &fakeAPI{t: t, status: status, body: body}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), b})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) vars() map[string]string {
	return map[string]string{"TUTTI_API_URL": f.srv.URL + "/", "TUTTI_API_TOKEN": "tok"}
}

func (f *fakeAPI) only() recorded {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		f.t.Fatalf("%d requests, want 1", len(f.reqs))
	}
	return f.reqs[0]
}

const validSpec = `
id: welcome
name: Welcome
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Hi", text: "Hello"}
  - id: pause
    wait: {duration: 1d}
`

const invalidSpec = `
id: welcome
name: Welcome
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: hello
    wiat: {duration: 1d}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	if r := runCLI(t, nil); r.code != exitUsage || !strings.Contains(r.stderr, "journey validate") {
		t.Errorf("no args: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "--help"); r.code != exitOK || !strings.Contains(r.stdout, "TUTTI_API_URL") {
		t.Errorf("--help: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "frobnicate"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "journey"); r.code != exitUsage || !strings.Contains(r.stderr, "tutti journey publish FILE") {
		t.Errorf("group: %d %q", r.code, r.stderr)
	}
	r := runCLI(t, nil, "contact", "find", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "Usage: tutti contact find") || !strings.Contains(r.stdout, "-external-id") {
		t.Errorf("command help: %d %q", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "outbox", "--bogus"); r.code != exitUsage || !strings.Contains(r.stderr, "bogus") {
		t.Errorf("bad flag: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "serve", "extra"); r.code != exitUsage {
		t.Errorf("serve with an argument: %d", r.code)
	}
}

func TestJourneyValidateOffline(t *testing.T) {
	r := runCLI(t, nil, "journey", "validate", writeFile(t, "ok.yaml", validSpec))
	if r.code != exitOK || !strings.Contains(r.stdout, "valid (journey welcome, 2 steps)") {
		t.Errorf("valid: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "journey", "validate", writeFile(t, "bad.yaml", invalidSpec))
	if r.code != exitFail || !strings.Contains(r.stderr, "steps[0].wiat: unknown field") {
		t.Errorf("invalid: %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "journey", "validate", filepath.Join(t.TempDir(), "missing.yaml")); r.code != exitFail {
		t.Errorf("missing file: %d", r.code)
	}
	if r := runCLI(t, nil, "journey", "validate"); r.code != exitUsage || !strings.Contains(r.stderr, "want FILE") {
		t.Errorf("no file: %d %q", r.code, r.stderr)
	}
}

func TestJourneyPublish(t *testing.T) {
	f := newFakeAPI(t, http.StatusCreated, `{"journey_id":"welcome","version":3,"published_at":"2025-01-01T00:00:00Z"}`)
	r := runCLI(t, f.vars(), "journey", "publish", writeFile(t, "w.yaml", validSpec))
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "published journey welcome version 3" {
		t.Errorf("publish: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/journeys" || req.ctype != "application/yaml" || req.auth != "Bearer tok" || string(req.body) != validSpec {
		t.Errorf("request: %+v", req)
	}

	f = newFakeAPI(t, http.StatusUnprocessableEntity,
		`{"error":{"code":"invalid_journey","message":"the journey spec has 1 problem(s)","fields":[{"path":"steps[0].wiat","message":"unknown field"}]},
		  "valid":false,"problems":[{"path":"steps[0].wiat","message":"unknown field"}]}`)
	r = runCLI(t, f.vars(), "journey", "publish", writeFile(t, "w.json", `{"id":"x"}`))
	if r.code != exitFail || !strings.Contains(r.stderr, "steps[0].wiat: unknown field") {
		t.Errorf("422: %d %q", r.code, r.stderr)
	}
	if f.only().ctype != "application/json" {
		t.Errorf("a .json file is sent as JSON")
	}
}

func TestContactCommands(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"contact":{"id":"c_1"},"consents":{},"enrollments":[],"journeys":[]}`)
	r := runCLI(t, f.vars(), "contact", "find", "--email", "Ada@Example.com")
	if r.code != exitOK || !strings.Contains(r.stdout, `"id": "c_1"`) {
		t.Errorf("find: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.path != "/v1/contacts" || req.query != "email=Ada%40Example.com" {
		t.Errorf("find request: %+v", req)
	}
	if r := runCLI(t, f.vars(), "contact", "find", "--email", "a@b.c", "--phone", "1"); r.code != exitUsage {
		t.Errorf("two identifiers: %d", r.code)
	}

	f = newFakeAPI(t, http.StatusOK, `{"contact":{"id":"c_1"},"consents":{"email":{"status":"granted"}},"enrollments":[],"journeys":[{"id":"e_1"}]}`)
	r = runCLI(t, f.vars(), "contact", "show", "c_1")
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || r.code != exitOK {
		t.Fatalf("show: %d %q %v", r.code, r.stdout, err)
	}
	if shown["contact"] == nil || shown["consents"] == nil || shown["journeys"] == nil {
		t.Errorf("show: %v", shown)
	}

	f = newFakeAPI(t, http.StatusNotFound, `{"error":{"code":"not_found","message":"contact \"c_x\" not found"}}`)
	r = runCLI(t, f.vars(), "contact", "show", "c_x")
	if r.code != exitFail || !strings.Contains(r.stderr, `not_found (HTTP 404): contact "c_x" not found`) {
		t.Errorf("404: %d %q", r.code, r.stderr)
	}
}

func TestExitCommand(t *testing.T) {
	f := newFakeAPI(t, http.StatusAccepted, `{"workflow_id":"journey/welcome/contact/c_1","enrollment":{"id":"e_1"},"exit_requested":true}`)
	if r := runCLI(t, f.vars(), "exit", "--contact", "c_1", "--journey", "welcome"); r.code != exitUsage || !strings.Contains(r.stderr, "--reason") {
		t.Errorf("no reason: %d %q", r.code, r.stderr)
	}
	r := runCLI(t, f.vars(), "exit", "--contact", "c_1", "--journey", "welcome", "--reason", "asked to stop")
	if r.code != exitOK || !strings.Contains(r.stdout, "journey/welcome/contact/c_1") {
		t.Errorf("exit: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/contacts/c_1/journeys/welcome/exit" || string(req.body) != `{"reason":"asked to stop"}` {
		t.Errorf("request: %+v %s", req, req.body)
	}
}

func TestEventsSend(t *testing.T) {
	f := newFakeAPI(t, http.StatusAccepted, `{"event":{"id":"x"},"duplicate":false,"signalled":[],"enrolled":[],"not_enrolled":[]}`)
	r := runCLI(t, f.vars(), "events", "send", "--contact", "c_1", "--name", "purchase", "--properties", `{"amount": 42}`)
	if r.code != exitOK {
		t.Fatalf("send: %d %q", r.code, r.stderr)
	}
	var body map[string]any
	if err := json.Unmarshal(f.only().body, &body); err != nil {
		t.Fatal(err)
	}
	if body["contact_id"] != "c_1" || body["name"] != "purchase" || !strings.HasPrefix(body["event_id"].(string), "cli-") ||
		body["properties"].(map[string]any)["amount"] != float64(42) {
		t.Errorf("body: %v", body)
	}
	if r := runCLI(t, f.vars(), "events", "send", "--contact", "c_1", "--name", "x", "--properties", "[1]"); r.code != exitUsage {
		t.Errorf("bad properties: %d", r.code)
	}

	// A partial delivery prints what happened and fails.
	f = newFakeAPI(t, http.StatusServiceUnavailable, `{"error":{"code":"delivery_incomplete","message":"retry"},"event":{"id":"e"},"failed":[{"workflow_id":"w","error":"boom"}]}`)
	r = runCLI(t, f.vars(), "events", "send", "--contact", "c_1", "--name", "x", "--id", "e")
	if r.code != exitFail || !strings.Contains(r.stdout, `"failed"`) || !strings.Contains(r.stderr, "delivery_incomplete") {
		t.Errorf("503: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestOutbox(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"messages":[
		{"id":"s1","message_id":"m1","contact_id":"c_1","journey_id":"welcome","step_id":"hello","channel":"email","recipient":"ada@example.com",
		 "payload":{"subject":"Welcome Ada","text":"Hello Ada\nSee you"},"created_at":"2025-01-02T03:04:05Z"},
		{"id":"s2","message_id":"m2","contact_id":"c_1","journey_id":"welcome","step_id":"sms","channel":"sms","recipient":"+14155550100",
		 "payload":{"body":"Hi Ada"},"created_at":"2025-01-02T03:04:06Z"}]}`)
	r := runCLI(t, f.vars(), "outbox", "--contact", "c_1", "--limit", "5")
	for _, want := range []string{"to ada@example.com", "Subject: Welcome Ada", "    Hello Ada\n    See you", "to +14155550100", "    Hi Ada"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("outbox output lacks %q:\n%s", want, r.stdout)
		}
	}
	if q := f.only().query; q != "contact_id=c_1&limit=5" {
		t.Errorf("query %q", q)
	}
	if r := runCLI(t, f.vars(), "outbox", "--limit", "0"); r.code != exitUsage {
		t.Errorf("limit 0: %d", r.code)
	}
}

func TestUnreachableAPI(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	r := runCLI(t, map[string]string{"TUTTI_API_URL": url}, "contact", "show", "c_1")
	if r.code != exitFail || !strings.Contains(r.stderr, "TUTTI_API_URL") {
		t.Errorf("unreachable: %d %q", r.code, r.stderr)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.5:8080": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}
