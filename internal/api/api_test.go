package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// These tests run the API against a real PostgreSQL (a fresh database per
// test) and one real Temporal dev server per package. No worker runs: starting
// and signalling workflows needs none, and the tests look at what reached
// Temporal (executions, search attributes, signals in history) directly.

var temporalAddr string

func TestMain(m *testing.M) {
	addr, stop := temporaltest.Shared(m)
	temporalAddr = addr
	code := m.Run()
	stop()
	os.Exit(code)
}

const token = "test-token"

type harness struct {
	t     *testing.T
	store *storage.Store
	tc    client.Client
	url   string
	// client checks every answer against openapi.yaml (serveAPI).
	client *http.Client
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: tc, Config: harnessConfig(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &harness{t: t, store: store, tc: tc, url: url, client: hc}
}

func harnessConfig() config.Config {
	return config.Config{
		APIToken:        token,
		APIMaxBody:      16 << 10,
		DefaultRegion:   "US",
		DefaultTimeZone: "UTC",
		SignalTimeout:   10 * time.Second,
	}
}

// withTemporal is the harness with its API served over another Temporal
// client (one that cannot connect, for Temporal being down); the store,
// and h.tc for reading histories and draining, are the same.
func (h *harness) withTemporal(tc client.Client) *harness {
	h.t.Helper()
	url, hc := serveAPI(h.t, api.Deps{
		Store: h.store, Temporal: tc, Config: harnessConfig(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	o := *h
	o.url, o.client = url, hc
	return &o
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) errorCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// fieldPaths lists error.fields[].path.
func (r response) fieldPaths() []string {
	e, _ := r.body["error"].(map[string]any)
	fs, _ := e["fields"].([]any)
	var out []string
	for _, f := range fs {
		out = append(out, f.(map[string]any)["path"].(string))
	}
	return out
}

// do sends a request; body is JSON-encoded unless it is a string (sent as is
// with ctype). Pass auth "" for no Authorization header.
func (h *harness) do(method, path string, body any, ctype, auth string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			h.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// call is an authenticated JSON call that must answer want.
func (h *harness) call(method, path string, body any, want int) response {
	h.t.Helper()
	r := h.do(method, path, body, "", "Bearer "+token)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.raw)
	}
	return r
}

// publish publishes a YAML spec and returns its version.
func (h *harness) publish(spec string) int {
	h.t.Helper()
	r := h.do("POST", "/v1/journeys", spec, "application/yaml", "Bearer "+token)
	if r.status != http.StatusCreated {
		h.t.Fatalf("publish: status %d: %s", r.status, r.raw)
	}
	return int(r.body["version"].(float64))
}

func (h *harness) newContact(body map[string]any) string {
	h.t.Helper()
	r := h.call("POST", "/v1/contacts", body, http.StatusCreated)
	return r.body["contact"].(map[string]any)["id"].(string)
}

func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.store.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// signalNames lists the signals in a workflow's history, in order.
func (h *harness) signalNames(workflowID string) []string {
	h.t.Helper()
	it := h.tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			h.t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			out = append(out, a.GetSignalName())
		}
	}
	return out
}

// startedInput returns the raw input payload of the workflow's first run.
func (h *harness) startedInput(workflowID string) string {
	h.t.Helper()
	it := h.tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			h.t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			var b strings.Builder
			for _, p := range a.GetInput().GetPayloads() {
				b.Write(p.GetData())
			}
			return b.String()
		}
	}
	h.t.Fatalf("no start event for %s", workflowID)
	return ""
}

func (h *harness) terminate(workflowID string) {
	h.t.Helper()
	if err := h.tc.TerminateWorkflow(context.Background(), workflowID, "", "test"); err != nil {
		h.t.Fatal(err)
	}
}

// welcomeSpec is a valid api-triggered journey; %s are its id and re-entry block.
const welcomeSpec = `
id: %s
name: Welcome
trigger: {type: api}
reentry: %s
goal: {event: purchase}
steps:
  - id: welcome_email
    send:
      channel: email
      email: {subject: "Welcome {{ .contact.first_name | default \"there\" }}", text: "Hello"}
  - id: wait_open
    wait_for: {event: email.opened, timeout: 1h, on_event: thanks, on_timeout: done}
  - id: thanks
    wait: {duration: 1h}
  - id: done
    exit: {reason: completed}
`

func welcome(id, reentry string) string { return fmt.Sprintf(welcomeSpec, id, reentry) }

const cartSpec = `
id: cart
name: Cart
trigger: {type: event, event: cart.abandoned}
reentry: {policy: always}
steps:
  - id: pause
    wait: {duration: 1h}
  - id: nudge
    send:
      channel: email
      email: {subject: "Your cart", text: "Come back"}
`

// ---------------------------------------------------------------------------
// Cross-cutting: auth, limits, decoding, routing

func TestAuth(t *testing.T) {
	h := newHarness(t)
	for _, auth := range []string{"", "Bearer wrong-token", "Basic " + token, "Bearer"} {
		r := h.do("GET", "/v1/journeys", nil, "", auth)
		if r.status != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
			t.Errorf("Authorization %q: %d %s, want 401 unauthorized", auth, r.status, r.raw)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: WWW-Authenticate %q", auth, r.header.Get("WWW-Authenticate"))
		}
	}
	// A refused write changes nothing.
	if r := h.do("POST", "/v1/contacts", map[string]any{"email": "a@example.com"}, "", "Bearer nope"); r.status != http.StatusUnauthorized {
		t.Fatalf("got %d", r.status)
	}
	if n := h.count("contacts"); n != 0 {
		t.Errorf("%d contacts after a refused request", n)
	}
	h.call("GET", "/v1/journeys", nil, http.StatusOK)
	if r := h.do("GET", "/v1/journeys", nil, "", "bearer "+token); r.status != http.StatusOK {
		t.Errorf("the scheme is case-insensitive: got %d", r.status)
	}

	// Health and the OpenAPI document need no token.
	if r := h.do("GET", "/healthz", nil, "", ""); r.status != http.StatusOK || r.body["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.status, r.raw)
	}
	r := h.do("GET", "/openapi.yaml", nil, "", "")
	if r.status != http.StatusOK || !strings.Contains(r.raw, "openapi: 3.1") || !strings.Contains(r.header.Get("Content-Type"), "yaml") {
		t.Errorf("openapi.yaml: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestBodyTooLarge(t *testing.T) {
	h := newHarness(t)
	big := map[string]any{"email": "a@example.com", "attributes": map[string]any{"blob": strings.Repeat("x", 32<<10)}}
	r := h.call("POST", "/v1/contacts", big, http.StatusRequestEntityTooLarge)
	if r.errorCode() != "body_too_large" {
		t.Errorf("code %q", r.errorCode())
	}
	spec := welcome("big", "{policy: once}") + "\n# " + strings.Repeat("x", 32<<10) + "\n"
	if r := h.do("POST", "/v1/journeys", spec, "application/yaml", "Bearer "+token); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("spec: %d %s", r.status, r.raw)
	}
	if h.count("contacts") != 0 || h.count("journey_versions") != 0 {
		t.Error("a rejected request wrote rows")
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		body any
		path string
	}{
		{map[string]any{"email": "a@example.com", "nickname": "al"}, "nickname"},
		{map[string]any{"email": 42}, "email"},
		{map[string]any{"email": "a@example.com", "attributes": []int{1}}, "attributes"},
		{`{"email": "a@example.com"`, ""},
		{`{"email": "a@example.com"} {"email": "b@example.com"}`, ""},
		{``, ""},
	}
	for _, c := range cases {
		r := h.do("POST", "/v1/contacts", c.body, "application/json", "Bearer "+token)
		if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" {
			t.Errorf("%v: %d %s, want 400 invalid_request", c.body, r.status, r.raw)
			continue
		}
		if paths := r.fieldPaths(); len(paths) != 1 || paths[0] != c.path {
			t.Errorf("%v: fields %v, want [%q]", c.body, paths, c.path)
		}
	}
	if n := h.count("contacts"); n != 0 {
		t.Errorf("%d contacts after rejected requests", n)
	}
}

func TestUnknownRoutes(t *testing.T) {
	h := newHarness(t)
	r := h.call("GET", "/v1/nothing", nil, http.StatusNotFound)
	if r.errorCode() != "not_found" {
		t.Errorf("code %q", r.errorCode())
	}
	r = h.call("DELETE", "/v1/journeys", nil, http.StatusMethodNotAllowed)
	if r.errorCode() != "method_not_allowed" || !strings.Contains(r.header.Get("Allow"), "POST") {
		t.Errorf("405: %s, Allow %q", r.raw, r.header.Get("Allow"))
	}
}

// ---------------------------------------------------------------------------
// Contacts and consent

func TestIdentifyContact(t *testing.T) {
	h := newHarness(t)
	r := h.call("POST", "/v1/contacts", map[string]any{
		"external_id": "user-1", "email": "  Ada@Example.COM ", "phone": "(415) 555-0142",
		"time_zone": "Europe/London", "attributes": map[string]any{"first_name": "Ada", "plan": "trial"},
	}, http.StatusCreated)
	c := r.body["contact"].(map[string]any)
	id := c["id"].(string)
	if c["email"] != "ada@example.com" || c["phone"] != "+14155550142" || c["time_zone"] != "Europe/London" {
		t.Errorf("not normalised: %v", c)
	}

	// Found again by email in another spelling; attributes merge, null removes.
	r = h.call("POST", "/v1/contacts", map[string]any{
		"email": "ADA@example.com", "attributes": map[string]any{"plan": "pro", "first_name": nil, "score": 7},
	}, http.StatusOK)
	c = r.body["contact"].(map[string]any)
	attrs := c["attributes"].(map[string]any)
	if c["id"] != id || attrs["plan"] != "pro" || attrs["score"] != float64(7) || attrs["first_name"] != nil {
		t.Errorf("update: %v", c)
	}

	// Lookups.
	for _, q := range []string{"email=ada%40example.com", "phone=%2B14155550142", "external_id=user-1", "email=%20ADA%40EXAMPLE.com"} {
		r := h.call("GET", "/v1/contacts?"+q, nil, http.StatusOK)
		if r.body["contact"].(map[string]any)["id"] != id {
			t.Errorf("lookup %s: %s", q, r.raw)
		}
	}
	h.call("GET", "/v1/contacts?email=nobody%40example.com", nil, http.StatusNotFound)
	h.call("GET", "/v1/contacts?email=a%40b.com&phone=%2B14155550142", nil, http.StatusBadRequest)
	h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
	if r := h.call("GET", "/v1/contacts/c_missing", nil, http.StatusNotFound); !strings.Contains(r.raw, "c_missing") {
		t.Errorf("404 should name the contact: %s", r.raw)
	}
}

func TestIdentifyValidation(t *testing.T) {
	h := newHarness(t)
	r := h.call("POST", "/v1/contacts", map[string]any{"email": "not-an-email", "phone": "12", "time_zone": "Mars/Olympus"}, http.StatusBadRequest)
	got := strings.Join(r.fieldPaths(), ",")
	if got != "email,phone,time_zone" {
		t.Errorf("fields %q, want every invalid field: %s", got, r.raw)
	}
	r = h.call("POST", "/v1/contacts", map[string]any{"attributes": map[string]any{"a": 1}}, http.StatusBadRequest)
	if len(r.fieldPaths()) != 1 {
		t.Errorf("no identifier: %s", r.raw)
	}
	if n := h.count("contacts"); n != 0 {
		t.Errorf("%d contacts after rejected requests", n)
	}
	h.call("POST", "/v1/contacts", map[string]any{"id": "c_unknown", "email": "x@example.com"}, http.StatusNotFound)
}

func TestIdentifyConflict(t *testing.T) {
	h := newHarness(t)
	h.newContact(map[string]any{"external_id": "a", "email": "a@example.com"})
	h.newContact(map[string]any{"external_id": "b", "email": "b@example.com"})
	r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "a", "email": "b@example.com"}, http.StatusConflict)
	if r.errorCode() != "identity_conflict" {
		t.Errorf("code %q", r.errorCode())
	}
	if n := h.count("contacts"); n != 2 {
		t.Errorf("%d contacts", n)
	}
}

func TestConsent(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"email": "c@example.com"})
	path := "/v1/contacts/" + id + "/consent"

	r := h.call("POST", path, map[string]any{"channel": "email", "status": "granted", "source": "signup-form"}, http.StatusOK)
	if r.body["consent"].(map[string]any)["status"] != "granted" || r.body["history_id"] == nil || r.body["pending_deliveries"] != float64(0) {
		t.Errorf("record (no run to tell): %s", r.raw)
	}
	h.call("POST", path, map[string]any{"channel": "email", "status": "revoked", "source": "unsubscribe-link"}, http.StatusOK)

	// Invalid: every field named, nothing written.
	r = h.call("POST", path, map[string]any{"channel": "fax", "status": "maybe", "occurred_at": "yesterday"}, http.StatusBadRequest)
	if got := strings.Join(r.fieldPaths(), ","); got != "channel,status,source,occurred_at" {
		t.Errorf("fields %q: %s", got, r.raw)
	}
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	r = h.call("POST", path, map[string]any{"channel": "sms", "status": "granted", "source": "x", "occurred_at": future}, http.StatusBadRequest)
	if got := r.fieldPaths(); len(got) != 1 || got[0] != "occurred_at" {
		t.Errorf("future: %s", r.raw)
	}
	h.call("POST", "/v1/contacts/c_missing/consent", map[string]any{"channel": "sms", "status": "granted", "source": "x"}, http.StatusNotFound)

	history, err := h.store.ConsentHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Errorf("history has %d rows, want 2", len(history))
	}
	detail := h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
	email := detail.body["consents"].(map[string]any)["email"].(map[string]any)
	if email["status"] != "revoked" || email["source"] != "unsubscribe-link" {
		t.Errorf("current consent: %v", email)
	}
}

// ---------------------------------------------------------------------------
// Journeys

func TestValidateAndPublishRejectBadSpecs(t *testing.T) {
	h := newHarness(t)
	bad := `
id: Bad Id
name: ""
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: a
    wiat: {duration: 1h}
`
	for _, path := range []string{"/v1/journeys/validate", "/v1/journeys"} {
		r := h.do("POST", path, bad, "application/yaml", "Bearer "+token)
		if r.status != http.StatusUnprocessableEntity || r.body["valid"] != false {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		problems := r.body["problems"].([]any)
		if len(problems) == 0 {
			t.Fatalf("%s: no problems: %s", path, r.raw)
		}
		var paths []string
		for _, p := range problems {
			paths = append(paths, p.(map[string]any)["path"].(string))
		}
		if !strings.Contains(strings.Join(paths, " "), "steps[0].wiat") {
			t.Errorf("%s: problems %v should name steps[0].wiat", path, paths)
		}
	}
	// Semantic problems, in JSON this time.
	semantic := `{"id": "ok", "name": "x", "trigger": {"type": "api"}, "reentry": {"policy": "once"},
		"steps": [{"id": "a", "wait_for": {"event": "e", "timeout": "1h", "on_event": "nowhere"}}]}`
	r := h.do("POST", "/v1/journeys", semantic, "application/json", "Bearer "+token)
	if r.status != http.StatusUnprocessableEntity || r.errorCode() != "invalid_journey" || len(r.fieldPaths()) == 0 {
		t.Errorf("semantic: %d %s", r.status, r.raw)
	}
	// YAML declared as JSON is reported, not guessed at.
	r = h.do("POST", "/v1/journeys/validate", welcome("w", "{policy: once}"), "application/json", "Bearer "+token)
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("YAML as JSON: %d %s", r.status, r.raw)
	}
	if n := h.count("journey_versions"); n != 0 {
		t.Errorf("%d versions stored from invalid specs", n)
	}
	h.call("POST", "/v1/journeys/validate", "", http.StatusBadRequest)
	r = h.do("POST", "/v1/journeys", welcome("w", "{policy: once}"), "multipart/form-data; boundary=x", "Bearer "+token)
	if r.status != http.StatusUnsupportedMediaType {
		t.Errorf("form upload: %d %s", r.status, r.raw)
	}
}

func TestPublishAndRead(t *testing.T) {
	h := newHarness(t)
	spec := welcome("welcome", "{policy: once}")
	// Sniffed: curl's default form content type.
	r := h.do("POST", "/v1/journeys/validate", spec, "application/x-www-form-urlencoded", "Bearer "+token)
	if r.status != http.StatusOK || r.body["valid"] != true {
		t.Fatalf("validate: %d %s", r.status, r.raw)
	}
	// JSON with no Content-Type at all is read too.
	asJSON := `{"id": "j", "name": "J", "trigger": {"type": "api"}, "reentry": {"policy": "always"},
		"steps": [{"id": "a", "wait": {"duration": "1h"}}]}`
	if r := h.do("POST", "/v1/journeys/validate", asJSON, "", "Bearer "+token); r.status != http.StatusOK {
		t.Fatalf("untyped JSON: %d %s", r.status, r.raw)
	}
	if v := h.publish(spec); v != 1 {
		t.Errorf("first version %d", v)
	}
	if v := h.publish(spec); v != 2 {
		t.Errorf("second version %d", v)
	}
	r = h.call("GET", "/v1/journeys/welcome", nil, http.StatusOK)
	if r.body["version"] != float64(2) || len(r.body["versions"].([]any)) != 2 || r.body["spec"].(map[string]any)["id"] != "welcome" {
		t.Errorf("get: %s", r.raw)
	}
	r = h.call("GET", "/v1/journeys/welcome/versions/1", nil, http.StatusOK)
	if r.body["version"] != float64(1) {
		t.Errorf("version 1: %s", r.raw)
	}
	h.call("GET", "/v1/journeys/welcome/versions/9", nil, http.StatusNotFound)
	if r := h.call("GET", "/v1/journeys/welcome/versions/x", nil, http.StatusBadRequest); r.fieldPaths()[0] != "version" {
		t.Errorf("bad version: %s", r.raw)
	}
	h.call("GET", "/v1/journeys/nope", nil, http.StatusNotFound)
	r = h.call("GET", "/v1/journeys", nil, http.StatusOK)
	if list := r.body["journeys"].([]any); len(list) != 1 || list[0].(map[string]any)["version"] != float64(2) {
		t.Errorf("list: %s", r.raw)
	}
}

// ---------------------------------------------------------------------------
// Enrollments

func TestStartJourney(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"email": "grace@example.com", "phone": "+14155550100"})

	r := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := r.body["workflow_id"].(string)
	if wfID != workflows.JourneyWorkflowID("welcome", id) || r.body["run_id"] == "" {
		t.Fatalf("start: %s", r.raw)
	}
	enr := r.body["enrollment"].(map[string]any)
	if enr["status"] != "active" || !strings.HasPrefix(enr["id"].(string), "e_") {
		t.Errorf("enrollment: %v", enr)
	}

	desc, err := h.tc.DescribeWorkflow(ctx, wfID, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || desc.TaskQueueName != workflows.TaskQueue {
		t.Errorf("status %v, task queue %s", desc.Status, desc.TaskQueueName)
	}
	sa := desc.TypedSearchAttributes
	if v, _ := sa.GetKeyword(workflows.SearchContactID); v != id {
		t.Errorf("ContactId %q", v)
	}
	if v, _ := sa.GetKeyword(workflows.SearchJourneyID); v != "welcome" {
		t.Errorf("JourneyId %q", v)
	}
	if v, _ := sa.GetInt64(workflows.SearchJourneyVersion); v != 1 {
		t.Errorf("JourneyVersion %d", v)
	}
	if v, _ := sa.GetKeyword(workflows.SearchJourneyStep); v != "welcome_email" {
		t.Errorf("JourneyStep %q", v)
	}
	if in := h.startedInput(wfID); strings.Contains(in, "grace@") || strings.Contains(in, "4155550100") {
		t.Errorf("PII in the workflow input: %s", in)
	}
	if _, err := h.store.ActiveEnrollment(ctx, id, "welcome"); err != nil {
		t.Errorf("active enrollment: %v", err)
	}

	// A second start while it runs: refused, still one active row.
	r = h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusConflict)
	if r.errorCode() != "already_active" {
		t.Errorf("code %q", r.errorCode())
	}
	if active, _ := h.store.ActiveEnrollments(ctx, id); len(active) != 1 {
		t.Errorf("%d active enrollments", len(active))
	}

	// Support's view: no worker runs here, so the live state is missing and says why.
	r = h.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
	runs := r.body["journeys"].([]any)
	if len(runs) != 1 {
		t.Fatalf("journeys: %s", r.raw)
	}
	run := runs[0].(map[string]any)
	if run["workflow_id"] != wfID || run["status"] != "active" || run["state_error"] == nil {
		t.Errorf("run: %v", run)
	}

	// Unknown contact and journey: 404s that say which.
	r = h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": "c_nobody"}, http.StatusNotFound)
	if p := r.fieldPaths(); len(p) != 1 || p[0] != "contact_id" {
		t.Errorf("unknown contact: %s", r.raw)
	}
	r = h.call("POST", "/v1/journeys/nope/enrollments", map[string]any{"contact_id": id}, http.StatusNotFound)
	if !strings.Contains(r.raw, "nope") {
		t.Errorf("unknown journey: %s", r.raw)
	}
	h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{}, http.StatusBadRequest)
}

// finish ends the contact's active run as the workflow would: the row is
// finished and the execution closed.
func (h *harness) finish(contactID, journeyID string) {
	h.t.Helper()
	ctx := context.Background()
	e, err := h.store.ActiveEnrollment(ctx, contactID, journeyID)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.FinishEnrollment(ctx, e.ID, model.RunCompleted, "", time.Time{}); err != nil {
		h.t.Fatal(err)
	}
	h.terminate(e.WorkflowID)
}

func TestReentryPolicies(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.publish(welcome("once", "{policy: once}"))
	h.publish(welcome("always", "{policy: always}"))
	h.publish(welcome("cool", "{policy: cooldown, cooldown: 7d}"))
	id := h.newContact(map[string]any{"external_id": "r-1"})
	enroll := func(journeyID string, want int) response {
		return h.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": id}, want)
	}

	enroll("once", http.StatusCreated)
	h.finish(id, "once")
	if r := enroll("once", http.StatusConflict); r.errorCode() != "reentry_refused" {
		t.Errorf("once: %s", r.raw)
	}

	enroll("always", http.StatusCreated)
	h.finish(id, "always")
	second := enroll("always", http.StatusCreated)
	if second.body["workflow_id"] != workflows.JourneyWorkflowID("always", id) {
		t.Errorf("always: %s", second.raw)
	}

	enroll("cool", http.StatusCreated)
	h.finish(id, "cool")
	r := enroll("cool", http.StatusConflict)
	eligible, _ := r.body["error"].(map[string]any)["eligible_at"].(string)
	at, err := time.Parse(time.RFC3339Nano, eligible)
	if r.errorCode() != "reentry_cooldown" || err != nil || at.Before(time.Now().Add(6*24*time.Hour)) {
		t.Errorf("cooldown: %s", r.raw)
	}

	// Temporal refuses a second concurrent run even when Postgres would not:
	// the row is finished but the execution still runs.
	last, err := h.store.ActiveEnrollment(ctx, id, "always")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.FinishEnrollment(ctx, last.ID, model.RunCompleted, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r := enroll("always", http.StatusConflict); r.errorCode() != "already_active" {
		t.Errorf("running execution: %s", r.raw)
	}
	if _, err := h.store.ActiveEnrollment(ctx, id, "always"); err == nil {
		t.Error("the refused start left an active row")
	}
}

func TestExit(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "x-1"})
	exitPath := "/v1/contacts/" + id + "/journeys/welcome/exit"

	r := h.call("POST", exitPath, map[string]any{"reason": "asked to stop"}, http.StatusNotFound)
	if !strings.Contains(r.raw, "no active run") {
		t.Errorf("exit without a run: %s", r.raw)
	}
	h.call("POST", "/v1/contacts/c_nobody/journeys/welcome/exit", map[string]any{"reason": "x"}, http.StatusNotFound)

	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	if r := h.call("POST", exitPath, map[string]any{"reason": " "}, http.StatusBadRequest); r.fieldPaths()[0] != "reason" {
		t.Errorf("blank reason: %s", r.raw)
	}
	r = h.call("POST", exitPath, map[string]any{"reason": "asked to stop"}, http.StatusAccepted)
	if r.body["pending_deliveries"] != float64(1) {
		t.Errorf("exit: %s", r.raw)
	}
	// Answered once stored: the run is told by the dispatcher.
	wfID := started.body["workflow_id"].(string)
	if got := h.signalNames(wfID); len(got) != 0 {
		t.Errorf("signals before delivery %v, want none", got)
	}
	h.drain()
	if got := h.signalNames(wfID); len(got) != 1 || got[0] != workflows.SignalExit {
		t.Errorf("signals %v, want [exit]", got)
	}
	exit := h.signalPayloads(wfID, workflows.SignalExit)
	if want := `"request_id":"` + r.body["exit_request"].(map[string]any)["id"].(string) + `"`; len(exit) != 1 || !strings.Contains(exit[0], want) ||
		!strings.Contains(exit[0], `"reason":"support_exit"`) || strings.Contains(exit[0], "asked to stop") {
		t.Errorf("exit signal %v: the code and the request id, never support's words", exit)
	}
}

// ---------------------------------------------------------------------------
// Events

func TestEventIdempotency(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "e-1", "email": "e@example.com"})
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)

	ev := map[string]any{"event_id": "order-1", "external_id": "e-1", "name": "email.opened", "properties": map[string]any{"n": 1}}
	first := h.call("POST", "/v1/events", ev, http.StatusAccepted)
	if first.body["duplicate"] != false || first.body["pending_deliveries"] != float64(1) {
		t.Errorf("first: %s", first.raw)
	}
	// A retry before delivery stores nothing more; the pending delivery
	// stays the only one.
	second := h.call("POST", "/v1/events", ev, http.StatusAccepted)
	if second.body["duplicate"] != true || second.body["pending_deliveries"] != float64(1) {
		t.Errorf("second: %s", second.raw)
	}
	h.drain()
	third := h.call("POST", "/v1/events", ev, http.StatusAccepted)
	if third.body["duplicate"] != true || third.body["pending_deliveries"] != float64(0) {
		t.Errorf("after delivery: %s", third.raw)
	}
	h.drain()
	if n := h.count("events"); n != 1 {
		t.Errorf("%d event rows, want 1", n)
	}
	// Delivered once, however often the event was posted.
	if got := h.signalNames(wfID); len(got) != 1 || got[0] != workflows.SignalEvent {
		t.Errorf("signals %v", got)
	}

	// The same id for another event is a conflict.
	r := h.call("POST", "/v1/events", map[string]any{"event_id": "order-1", "email": "E@example.com", "name": "purchase"}, http.StatusConflict)
	if r.errorCode() != "event_conflict" || r.fieldPaths()[0] != "event_id" {
		t.Errorf("conflict: %s", r.raw)
	}
}

func TestEventValidation(t *testing.T) {
	h := newHarness(t)
	h.newContact(map[string]any{"external_id": "v-1", "email": "v@example.com"})

	r := h.call("POST", "/v1/events", map[string]any{"event_id": "x", "external_id": "nobody", "name": "purchase"}, http.StatusNotFound)
	if p := r.fieldPaths(); len(p) != 1 || p[0] != "external_id" {
		t.Errorf("unknown contact: %s", r.raw)
	}
	h.call("POST", "/v1/events", map[string]any{"event_id": "x", "contact_id": "c_nobody", "name": "purchase"}, http.StatusNotFound)
	h.call("POST", "/v1/events", map[string]any{"event_id": "x", "email": "nobody@example.com", "name": "purchase"}, http.StatusNotFound)

	r = h.call("POST", "/v1/events", map[string]any{"name": ""}, http.StatusBadRequest)
	if got := strings.Join(r.fieldPaths(), ","); got != "event_id,name,contact_id" {
		t.Errorf("missing fields: %q", got)
	}
	r = h.call("POST", "/v1/events", map[string]any{"event_id": "x", "external_id": "v-1", "email": "v@example.com", "name": "n"}, http.StatusBadRequest)
	if got := r.fieldPaths(); len(got) != 1 || got[0] != "email" {
		t.Errorf("two identifiers: %s", r.raw)
	}
	if n := h.count("events"); n != 0 {
		t.Errorf("%d events written by rejected requests", n)
	}
}

func TestEventTriggersJourney(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.publish(cartSpec)
	id := h.newContact(map[string]any{"external_id": "t-1"})
	wfID := workflows.JourneyWorkflowID("cart", id)

	ev := map[string]any{"event_id": "cart-1", "contact_id": id, "name": "cart.abandoned"}
	r := h.call("POST", "/v1/events", ev, http.StatusAccepted)
	if r.body["pending_deliveries"] != float64(1) {
		t.Fatalf("a trigger with no run: %s", r.raw)
	}
	h.drain()
	all, _ := h.store.EnrollmentsForContact(ctx, id)
	if len(all) != 1 || all[0].WorkflowID != wfID {
		t.Fatalf("enrollments after the trigger: %+v", all)
	}
	if in := h.startedInput(wfID); !strings.Contains(in, `"event_id":"cart-1"`) {
		t.Errorf("the run does not carry its trigger: %s", in)
	}
	// The run the event started does not also get it as an in-journey event.
	if got := h.signalNames(wfID); len(got) != 0 {
		t.Errorf("signalled %v", got)
	}

	// A retry of the same event starts no other run.
	r = h.call("POST", "/v1/events", ev, http.StatusAccepted)
	if r.body["duplicate"] != true || r.body["pending_deliveries"] != float64(0) {
		t.Errorf("retry: %s", r.raw)
	}
	h.drain()
	if all, _ := h.store.EnrollmentsForContact(ctx, id); len(all) != 1 {
		t.Errorf("%d enrollments after a retried trigger", len(all))
	}

	// A new abandoned cart while the run is active: delivered to it, and the
	// re-entry refusal is the start's outcome, not an error.
	r = h.call("POST", "/v1/events", map[string]any{"event_id": "cart-2", "contact_id": id, "name": "cart.abandoned"}, http.StatusAccepted)
	if r.body["pending_deliveries"] != float64(2) {
		t.Errorf("cart-2: %s", r.raw)
	}
	h.drain()
	if got := h.outcomes("cart-2"); got != "signal:signalled 1,start:not_enrolled already_active" {
		t.Errorf("cart-2 outcomes: %s", got)
	}
	if got := h.signalNames(wfID); len(got) != 1 || got[0] != workflows.SignalEvent {
		t.Errorf("signals %v", got)
	}

	// A finished run is skipped quietly (its row may lag the workflow).
	h.terminate(wfID)
	h.call("POST", "/v1/events", map[string]any{"event_id": "other-1", "contact_id": id, "name": "page.viewed"}, http.StatusAccepted)
	h.drain()
	if got := h.outcomes("other-1"); got != "signal:signalled 0" {
		t.Errorf("signalled a finished run: %s", got)
	}
}

func TestConsentSignalsActiveRuns(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "s-1"})
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)

	r := h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "sms", "status": "revoked", "source": "STOP"}, http.StatusOK)
	if r.body["pending_deliveries"] != float64(1) {
		t.Errorf("consent: %s", r.raw)
	}
	// A subscription-type change is read by the send gate; runs do not
	// track it, so nothing is delivered for it.
	r = h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "subscription": "newsletter", "status": "revoked", "source": "prefs"}, http.StatusOK)
	if r.body["pending_deliveries"] != float64(0) {
		t.Errorf("subscription consent: %s", r.raw)
	}
	if got := h.signalNames(wfID); len(got) != 0 {
		t.Errorf("signals before delivery %v, want none", got)
	}
	h.drain()
	if got := h.signalPayloads(wfID, workflows.SignalConsent); len(got) != 1 || got[0] != `{"channel":"sms","status":"revoked"}` {
		t.Errorf("consent signals %v", got)
	}
}

// ---------------------------------------------------------------------------
// Messages

func TestMessageLists(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"external_id": "m-1"})
	r := h.call("GET", "/v1/contacts/"+id+"/messages", nil, http.StatusOK)
	if m, ok := r.body["messages"].([]any); !ok || len(m) != 0 {
		t.Errorf("messages: %s", r.raw)
	}
	h.call("GET", "/v1/contacts/c_nobody/messages", nil, http.StatusNotFound)
	h.call("GET", "/v1/contacts/"+id+"/messages?limit=0", nil, http.StatusBadRequest)
	r = h.call("GET", "/v1/sandbox/messages?contact_id="+id+"&limit=5", nil, http.StatusOK)
	if m, ok := r.body["messages"].([]any); !ok || len(m) != 0 {
		t.Errorf("sandbox: %s", r.raw)
	}
	h.call("GET", "/v1/sandbox/messages", nil, http.StatusOK)
	h.call("GET", "/v1/sandbox/messages?contact_id=c_nobody", nil, http.StatusNotFound)
}
