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
	f := newFakeAPI(t, http.StatusAccepted, `{"workflow_id":"journey/welcome/contact/c_1","enrollment":{"id":"e_1"},"exit_requested":true,
		"exit_request":{"id":"x_1"},"pending_deliveries":1}`)
	if r := runCLI(t, f.vars(), "exit", "--contact", "c_1", "--journey", "welcome"); r.code != exitUsage || !strings.Contains(r.stderr, "--reason") {
		t.Errorf("no reason: %d %q", r.code, r.stderr)
	}
	r := runCLI(t, f.vars(), "exit", "--contact", "c_1", "--journey", "welcome", "--reason", "asked to stop")
	if r.code != exitOK || !strings.Contains(r.stdout, "journey/welcome/contact/c_1 (enrollment e_1, exit request x_1)") ||
		!strings.Contains(r.stdout, "the runs are told by the delivery outbox (1 pending") {
		t.Errorf("exit: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/contacts/c_1/journeys/welcome/exit" || string(req.body) != `{"reason":"asked to stop"}` {
		t.Errorf("request: %+v %s", req, req.body)
	}
}

func TestEventsSend(t *testing.T) {
	f := newFakeAPI(t, http.StatusAccepted, `{"event":{"id":"x"},"duplicate":false,"pending_deliveries":1}`)
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
	if !strings.Contains(r.stdout, `"pending_deliveries": 1`) {
		t.Errorf("output: %q", r.stdout)
	}
	if r := runCLI(t, f.vars(), "events", "send", "--contact", "c_1", "--name", "x", "--properties", "[1]"); r.code != exitUsage {
		t.Errorf("bad properties: %d", r.code)
	}

	// The API unable to store the event: the error, and a failure.
	f = newFakeAPI(t, http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"database down; retry"}}`)
	r = runCLI(t, f.vars(), "events", "send", "--contact", "c_1", "--name", "x", "--id", "e")
	if r.code != exitFail || !strings.Contains(r.stderr, "unavailable") {
		t.Errorf("503: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestEventsSendBatch(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events.json")
	if err := os.WriteFile(file, []byte(`[{"event_id":"b-1","contact_id":"c_1","name":"purchase"}]`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, http.StatusOK, `{"results":[{"index":0,"status":202,"result":{"event":{"id":"b-1"},"duplicate":false,"pending_deliveries":0}}],"succeeded":1,"failed":0}`)
	r := runCLI(t, f.vars(), "events", "send", "--batch", file)
	if r.code != exitOK || !strings.Contains(r.stdout, `"succeeded": 1`) {
		t.Fatalf("batch: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/events/batch" || string(req.body) != `{"items":[{"event_id":"b-1","contact_id":"c_1","name":"purchase"}]}` {
		t.Errorf("request: %+v %s", req, req.body)
	}

	// Some items refused: the answer, and a failure.
	f = newFakeAPI(t, http.StatusOK, `{"results":[{"index":0,"status":404,"error":{"code":"not_found","message":"contact not found"}}],"succeeded":0,"failed":1}`)
	r = runCLI(t, f.vars(), "events", "send", "--batch", file)
	if r.code != exitFail || !strings.Contains(r.stdout, "not_found") || !strings.Contains(r.stderr, "1 of 1 events were refused") {
		t.Errorf("refused: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, f.vars(), "events", "send", "--batch", file, "--contact", "c_1"); r.code != exitUsage {
		t.Errorf("--batch with --contact: %d", r.code)
	}
}

func TestDeliveries(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"pending":5,"pending_by_kind":{"signal":0,"start":3,"consent":1,"exit":1},"failing":3,
		"oldest_pending_at":"2025-01-02T03:04:05Z","oldest_pending_age_seconds":125.2,"done_last_hour":40,"recent_failures":[
		{"id":12,"kind":"start","contact_id":"c_1","journey_id":"cart","journey_version":2,
		"event":{"id":"cart-1","contact_id":"c_1","name":"cart.abandoned"},"created_at":"2025-01-02T03:04:05Z","attempts":4,
		"next_attempt_at":"2025-01-02T03:06:05Z","last_error":"starting the workflow: unavailable"},
		{"id":14,"kind":"consent","contact_id":"c_2","channel":"sms","consent_status":"revoked","consent_event_id":31,
		"created_at":"2025-01-02T03:04:05Z","attempts":2,"next_attempt_at":"2025-01-02T03:06:05Z","last_error":"signalling 1 of 1 runs failed"},
		{"id":15,"kind":"exit","contact_id":"c_3","exit_request_id":"x_9","workflow_id":"journey/welcome/c_3",
		"created_at":"2025-01-02T03:04:05Z","attempts":1,"next_attempt_at":"2025-01-02T03:06:05Z","last_error":"signalling the run failed"}]}`)
	r := runCLI(t, f.vars(), "deliveries")
	for _, want := range []string{"pending:             5 (3 failing)", "by kind:           start 3, consent 1, exit 1",
		"2m5s ago (stored 2025-01-02 03:04:05)", "delivered last hour: 40",
		"#12 start of cart v2 for event cart-1 (cart.abandoned, contact c_1): 4 attempts", "starting the workflow: unavailable",
		"#14 consent sms revoked for contact c_2 (consent event 31): 2 attempts",
		"#15 exit of journey/welcome/c_3 for contact c_3 (exit request x_9): 1 attempts"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("deliveries output lacks %q:\n%s", want, r.stdout)
		}
	}
	if req := f.only(); req.method != "GET" || req.path != "/v1/deliveries/status" {
		t.Errorf("request: %+v", req)
	}
	f = newFakeAPI(t, http.StatusOK, `{"pending":0,"failing":0,"oldest_pending_at":null,"oldest_pending_age_seconds":0,"done_last_hour":0,"recent_failures":[]}`)
	if r := runCLI(t, f.vars(), "deliveries"); r.code != exitOK || !strings.Contains(r.stdout, "oldest pending:      none") {
		t.Errorf("empty: %d %q", r.code, r.stdout)
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

func TestConsentCommand(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"consent":{"channel":"sms","status":"pending"},"history_id":7,"requested_status":"granted","recorded_status":"pending",
		"double_opt_in":{"status":"pending","reason":"replies YES or START","prompt":{"sent":true,"message_id":"m_1"}},"pending_deliveries":0}`)
	// Flags after the contact id, as the usage shows them.
	r := runCLI(t, f.vars(), "consent", "c_1", "--channel", "sms", "--status", "granted")
	if r.code != exitOK || !strings.Contains(r.stdout, "recorded sms consent of contact c_1 as pending (history 7)") ||
		!strings.Contains(r.stdout, "SMS double opt-in: pending: replies YES or START") || !strings.Contains(r.stdout, "confirmation prompt sent (message m_1)") {
		t.Errorf("consent: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/contacts/c_1/consent" || string(req.body) != `{"channel":"sms","source":"cli","status":"granted"}` {
		t.Errorf("request: %+v %s", req, req.body)
	}

	f = newFakeAPI(t, http.StatusOK, `{"consent":{"channel":"email","subscription":"newsletter","status":"revoked"},"history_id":8,"recorded_status":"revoked","pending_deliveries":0}`)
	r = runCLI(t, f.vars(), "consent", "--channel", "email", "--status", "revoked", "--subscription", "newsletter", "--source", "support-call", "c_1")
	if r.code != exitOK || !strings.Contains(r.stdout, "recorded email/newsletter consent of contact c_1 as revoked") {
		t.Errorf("subscription: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if b := string(f.only().body); b != `{"channel":"email","source":"support-call","status":"revoked","subscription":"newsletter"}` {
		t.Errorf("body %s", b)
	}

	f = newFakeAPI(t, http.StatusOK, `{"consent":{"channel":"sms","status":"granted"},"history_id":9,"recorded_status":"granted",
		"double_opt_in":{"status":"confirmed_by_caller","reason":"confirmed"},"pending_deliveries":1}`)
	r = runCLI(t, f.vars(), "consent", "c_1", "--channel", "sms", "--status", "granted", "--confirmed")
	if r.code != exitOK || !strings.Contains(r.stdout, "confirmed_by_caller") || !strings.Contains(r.stdout, "running journeys are told by the delivery outbox (1 pending") {
		t.Errorf("confirmed: %d %q", r.code, r.stdout)
	}
	var body map[string]any
	if err := json.Unmarshal(f.only().body, &body); err != nil || body["double_opt_in_confirmed"] != true {
		t.Errorf("body %v %v", body, err)
	}

	// A prompt that could not go out is said plainly.
	f = newFakeAPI(t, http.StatusOK, `{"consent":{"channel":"sms","status":"pending"},"history_id":10,"recorded_status":"pending",
		"double_opt_in":{"status":"pending","reason":"r","prompt":{"sent":false,"error":"the contact has no phone number"}}}`)
	if r := runCLI(t, f.vars(), "consent", "c_1", "--channel", "sms", "--status", "granted"); !strings.Contains(r.stdout, "confirmation prompt NOT sent: the contact has no phone number") {
		t.Errorf("not sent: %q", r.stdout)
	}

	// Usage errors: exit 2, nothing sent.
	f = newFakeAPI(t, http.StatusOK, `{}`)
	for _, args := range [][]string{
		{"consent", "c_1", "--channel", "sms"},
		{"consent", "--channel", "sms", "--status", "granted"},
		{"consent", "c_1", "c_2", "--channel", "sms", "--status", "granted"},
		{"consent", "c_1", "--channel", "sms", "--status", "granted", "--confirmed=maybe"},
	} {
		if r := runCLI(t, f.vars(), args...); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: tutti consent") {
			t.Errorf("%v: %d %q", args, r.code, r.stderr)
		}
	}
	if len(f.reqs) != 0 {
		t.Errorf("usage errors made %d requests", len(f.reqs))
	}

	// An API refusal: exit 1, the field named.
	f = newFakeAPI(t, http.StatusBadRequest, `{"error":{"code":"invalid_request","message":"subscription: must be...","fields":[{"path":"subscription","message":"must be 1 to 64 lower-case letters"}]}}`)
	r = runCLI(t, f.vars(), "consent", "c_1", "--channel", "email", "--status", "granted", "--subscription", "News Letter")
	if r.code != exitFail || !strings.Contains(r.stderr, "subscription: must be 1 to 64 lower-case letters") {
		t.Errorf("400: %d %q", r.code, r.stderr)
	}
}

func TestSuppressCommands(t *testing.T) {
	f := newFakeAPI(t, http.StatusCreated, `{"suppression":{"id":"sup_1","contact_id":"c_1","reason":"in_opportunity","journey_id":"welcome","channel":"email",
		"source":"cli","created_at":"2025-01-02T03:04:05Z","expires_at":"2030-01-31T00:00:00Z","active":true},"created":true}`)
	r := runCLI(t, f.vars(), "suppress", "c_1", "--reason", "in_opportunity", "--journey", "welcome", "--channel", "email",
		"--note", "deal 42", "--expires", "2030-01-31T00:00:00Z")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "suppressed contact c_1: in_opportunity, journey welcome, email only (sup_1, until 2030-01-31 00:00:00)" {
		t.Errorf("suppress: %d %q %q", r.code, r.stdout, r.stderr)
	}
	req := f.only()
	if req.method != "POST" || req.path != "/v1/contacts/c_1/suppressions" ||
		string(req.body) != `{"channel":"email","expires_at":"2030-01-31T00:00:00Z","journey_id":"welcome","note":"deal 42","reason":"in_opportunity","source":"cli"}` {
		t.Errorf("request: %+v %s", req, req.body)
	}

	f = newFakeAPI(t, http.StatusOK, `{"suppression":{"id":"sup_1","reason":"do_not_contact","source":"api","created_at":"2025-01-02T03:04:05Z","active":true},"created":false}`)
	r = runCLI(t, f.vars(), "suppress", "--reason", "do_not_contact", "c_1")
	if r.code != exitOK || !strings.Contains(r.stdout, "already suppressed (unchanged) contact c_1: do_not_contact, every journey, every channel (sup_1)") {
		t.Errorf("existing: %d %q", r.code, r.stdout)
	}

	f = newFakeAPI(t, http.StatusOK, `{}`)
	for _, args := range [][]string{
		{"suppress", "c_1"},
		{"suppress", "--reason", "converted"},
		{"suppress", "c_1", "--reason", "converted", "--expires", "tomorrow"},
		{"suppressions"},
		{"unsuppress", "c_1"},
	} {
		if r := runCLI(t, f.vars(), args...); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: tutti "+args[0]) {
			t.Errorf("%v: %d %q", args, r.code, r.stderr)
		}
	}
	if len(f.reqs) != 0 {
		t.Errorf("usage errors made %d requests", len(f.reqs))
	}

	f = newFakeAPI(t, http.StatusBadRequest, `{"error":{"code":"invalid_request","message":"expires_at: must be in the future","fields":[{"path":"expires_at","message":"must be in the future"}]}}`)
	r = runCLI(t, f.vars(), "suppress", "c_1", "--reason", "converted", "--expires", "2001-01-01T00:00:00Z")
	if r.code != exitFail || !strings.Contains(r.stderr, "expires_at: must be in the future") {
		t.Errorf("400: %d %q", r.code, r.stderr)
	}

	f = newFakeAPI(t, http.StatusOK, `{"suppressions":[
		{"id":"sup_2","reason":"hard_bounce","channel":"email","source":"sendgrid:bounce","created_at":"2025-01-03T00:00:00Z","active":true},
		{"id":"sup_1","reason":"converted","journey_id":"welcome","source":"api","note":"bought","created_at":"2025-01-02T00:00:00Z",
		 "lifted_at":"2025-01-04T00:00:00Z","lifted_by":"support","active":false}]}`)
	r = runCLI(t, f.vars(), "suppressions", "c_1")
	for _, want := range []string{
		"sup_2  active  hard_bounce, every journey, email only  (source sendgrid:bounce, since 2025-01-03 00:00:00)",
		"sup_1  lifted  converted, journey welcome, every channel",
		"    lifted 2025-01-04 00:00:00 by support",
		"    note: bought",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("suppressions output lacks %q:\n%s", want, r.stdout)
		}
	}
	if req := f.only(); req.method != "GET" || req.path != "/v1/contacts/c_1/suppressions" {
		t.Errorf("request: %+v", req)
	}
	if r := runCLI(t, f.vars(), "suppressions", "c_1", "--json"); r.code != exitOK || !strings.Contains(r.stdout, `"id": "sup_2"`) {
		t.Errorf("--json: %d %q", r.code, r.stdout)
	}
	f = newFakeAPI(t, http.StatusOK, `{"suppressions":[]}`)
	if r := runCLI(t, f.vars(), "suppressions", "c_1"); r.code != exitOK || strings.TrimSpace(r.stdout) != "contact c_1 has no suppressions" {
		t.Errorf("empty: %d %q", r.code, r.stdout)
	}

	f = newFakeAPI(t, http.StatusOK, `{"suppression":{"id":"sup_1","reason":"converted","created_at":"2025-01-02T00:00:00Z","lifted_at":"2025-01-04T00:00:00Z","lifted_by":"cli"},"lifted":true}`)
	r = runCLI(t, f.vars(), "unsuppress", "c_1", "sup_1")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "lifted suppression sup_1 of contact c_1 (converted, every journey, every channel)" {
		t.Errorf("unsuppress: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "DELETE" || req.path != "/v1/contacts/c_1/suppressions/sup_1" || req.query != "lifted_by=cli" {
		t.Errorf("request: %+v", req)
	}
	f = newFakeAPI(t, http.StatusOK, `{"suppression":{"id":"sup_1","reason":"converted","created_at":"2025-01-02T00:00:00Z","lifted_at":"2025-01-04T00:00:00Z","lifted_by":"ann"},"lifted":false}`)
	if r := runCLI(t, f.vars(), "unsuppress", "c_1", "sup_1", "--by", "bob"); !strings.Contains(r.stdout, "was already lifted on 2025-01-04 00:00:00 by ann") || f.only().query != "lifted_by=bob" {
		t.Errorf("already lifted: %q", r.stdout)
	}
	f = newFakeAPI(t, http.StatusNotFound, `{"error":{"code":"not_found","message":"suppression \"sup_x\" not found"}}`)
	if r := runCLI(t, f.vars(), "unsuppress", "c_1", "sup_x"); r.code != exitFail || !strings.Contains(r.stderr, `suppression "sup_x" not found`) {
		t.Errorf("404: %d %q", r.code, r.stderr)
	}
}

func TestUsageListsSendGateCommands(t *testing.T) {
	r := runCLI(t, nil, "help")
	for _, want := range []string{"tutti consent ID --channel C --status S", "tutti suppress ID --reason R", "tutti suppressions ID", "tutti unsuppress ID SUPPRESSION_ID"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	r = runCLI(t, nil, "suppress", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "-expires") || !strings.Contains(r.stdout, "in_opportunity") {
		t.Errorf("suppress --help: %d %q", r.code, r.stdout)
	}
}

func TestUnknownCommand(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"messages":[
		{"id":"m1","idempotency_key":"enrollment/e_1/hello/1","contact_id":"c_1","journey_id":"welcome","journey_version":1,
		 "step_id":"hello","channel":"email","class":"marketing","provider":"sendgrid","status":"unknown",
		 "status_reason":"ambiguous_provider_call","attempts":1,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:06Z"}]}`)
	r := runCLI(t, f.vars(), "unknown", "--limit", "10", "--before", "m9")
	for _, want := range []string{"email via sendgrid", "contact c_1", "journey welcome, step hello", "message m1 (ambiguous_provider_call)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("unknown output lacks %q:\n%s", want, r.stdout)
		}
	}
	if req := f.only(); req.path != "/v1/messages/unknown" || req.query != "before=m9&limit=10" {
		t.Errorf("request %+v", req)
	}
}
