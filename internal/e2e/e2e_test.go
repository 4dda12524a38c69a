// Package e2e runs Tutti end to end: a real Temporal dev server, a real
// PostgreSQL, the worker and the HTTP API in-process, and the real SendGrid and
// Twilio SDK clients pointed at fake provider servers.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/audience/adfake"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

var temporalAddr string

func TestMain(m *testing.M) {
	addr, stop := temporaltest.Shared(m)
	temporalAddr = addr
	code := m.Run()
	stop()
	os.Exit(code)
}

const token = "e2e-token"

type system struct {
	t      testing.TB
	store  *storage.Store
	tc     client.Client
	api    *httptest.Server
	sg     *providertest.FakeSendGrid
	tw     *providertest.FakeTwilio
	logger *slog.Logger
	// delivery is the worker's send path (tests set its fault points).
	delivery *delivery.Service
	// stopDispatch stops the outbox dispatcher that runs with the worker.
	stopDispatch func()
	// ads is the fake of the ad platforms the worker's audience syncs call.
	ads *adfake.Server
}

// start brings up a worker and the API over a fresh database. Tests share one
// dev server and task queue, so they use distinct journey ids.
func start(t testing.TB, configure ...func(*config.Config)) *system {
	t.Helper()
	return startOn(t, temporaltest.Client(t, temporalAddr), configure...)
}

// startOn is start with the worker, the API and the dispatcher on the
// Temporal client tc (a test's own server).
func startOn(t testing.TB, tc client.Client, configure ...func(*config.Config)) *system {
	t.Helper()
	store, dsn := storagetest.NewWithDSN(t)
	s := &system{
		t:      t,
		store:  store,
		tc:     tc,
		sg:     providertest.NewFakeSendGrid(t, "SG.e2e"),
		tw:     providertest.NewFakeTwilio(t, "AC00000000000000000000000000000e2e", "tw-token"),
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg := config.Config{DatabaseURL: dsn, APIToken: token, APIMaxBody: 1 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 5 * time.Second}
	for _, c := range configure {
		c(&cfg)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	// The workspace defaults, minus quiet hours and cooldowns: these tests
	// run at any hour and send on a compressed schedule. The gate's timing
	// rules have their own tests (internal/policy, activities).
	settings := policy.DefaultSettings()
	settings.QuietHours, settings.Cooldowns = nil, nil
	s.delivery = &delivery.Service{
		Policy: settings,
		Store:  store,
		Email:  provider.NewSendGrid("SG.e2e", s.sg.URL(), hc),
		SMS:    provider.NewTwilio("AC00000000000000000000000000000e2e", "tw-token", s.tw.URL(), hc),
		Sender: delivery.Identity{EmailFrom: "hello@tutti.test", SMSFrom: "+15005550006"},
		Logger: s.logger,
		// The worker and the API read the same destinations, as in production.
		WebhookDestinations: cfg.WebhookDestinations,
	}
	s.ads = adfake.New(t)
	google, err := audience.NewGoogleClient(context.Background(), adfake.GoogleAccount, option.WithEndpoint(s.ads.URL+"/"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: adfake.GoogleToken})))
	require.NoError(t, err)
	acts := &activities.Activities{Store: store, Delivery: s.delivery, Logger: s.logger, Audiences: map[audience.Destination]audience.Platform{
		audience.Meta:     &audience.MetaClient{BaseURL: s.ads.URL, Version: "v23.0", AccessToken: adfake.MetaToken, HTTP: hc},
		audience.Google:   google,
		audience.LinkedIn: &audience.LinkedInClient{BaseURL: s.ads.URL, Version: "202510", AccessToken: adfake.LinkedInToken, HTTP: hc},
	}}
	w := worker.New(s.tc, workflows.TaskQueue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	srv := api.New(api.Deps{Store: store, Temporal: s.tc, Config: cfg, Logger: s.logger})
	s.api = httptest.NewServer(srv.Handler())
	t.Cleanup(s.api.Close)
	s.stopDispatch = dispatch(t, api.Deps{Store: store, Temporal: s.tc, Config: cfg, Logger: s.logger})
	return s
}

// dispatch runs the delivery outbox's dispatcher, as tutti-worker does,
// until the returned stop is called (or the test ends).
func dispatch(t testing.TB, deps api.Deps) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	d := api.NewDispatcher(deps)
	wg.Go(func() { d.Run(ctx) })
	stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
	})
	t.Cleanup(stop)
	return stop
}

// call makes an authenticated API call and decodes the JSON answer.
func (s *system) call(method, path string, body any, wantStatus int) map[string]any {
	s.t.Helper()
	return s.callWith(method, path, body, nil, wantStatus)
}

// callWith is call with extra request headers.
func (s *system) callWith(method, path string, body any, hdr http.Header, wantStatus int) map[string]any {
	s.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/yaml"
	default:
		raw, err := json.Marshal(b)
		require.NoError(s.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.api.URL+path, rd)
	require.NoError(s.t, err)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	require.Equal(s.t, wantStatus, resp.StatusCode, "%s %s: %s", method, path, raw)
	out := map[string]any{}
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), string(raw))
	}
	return out
}

// eventually polls cond until it holds or a generous deadline passes. The
// deadline only bounds a hung test; nothing here asserts on speed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const e2eJourney = `
id: %s
name: End-to-end welcome
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
steps:
  - id: welcome_email
    send:
      channel: email
      email: {subject: "Welcome {{ .contact.first_name }}", text: "Hello {{ .contact.first_name }}"}
  - id: wait_open
    wait_for: {event: email.opened, timeout: 1h, on_event: thanks, on_timeout: done}
  - id: thanks
    wait: {duration: 1h}
  - id: done
    exit: {reason: completed}
`

func TestEndToEnd_SignupEmailPurchaseExit(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-welcome"

	// The backend registers the contact and their consent.
	created := s.call("POST", "/v1/contacts", map[string]any{
		"external_id": "user-42", "email": " Ada@Example.COM ", "phone": "(415) 555-0142",
		"attributes": map[string]any{"first_name": "Ada"},
	}, http.StatusCreated)
	contact := created["contact"].(map[string]any)
	contactID := contact["id"].(string)
	require.Equal(t, "ada@example.com", contact["email"])
	require.Equal(t, "+14155550142", contact["phone"])
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup-form"}, http.StatusOK)

	// A marketer publishes the journey; the backend starts it at signup.
	pub := s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	require.EqualValues(t, 1, pub["version"])
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)
	require.Equal(t, workflows.JourneyWorkflowID(journeyID, contactID), workflowID)
	require.NotContains(t, workflowID, "example.com", "no PII in workflow ids")

	// Starting again while it runs obeys the re-entry policy: no second run.
	s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusConflict)

	// The welcome email goes out through SendGrid and is recorded in the ledger.
	eventually(t, "welcome email sent", func() bool { return len(s.sg.Requests()) == 1 })
	sent := s.sg.Requests()[0]
	require.Equal(t, "ada@example.com", sent.Body.Personalizations[0].To[0].Email)
	require.Equal(t, "Welcome Ada", sent.Body.Subject)
	eventually(t, "ledger row sent", func() bool {
		msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
		return err == nil && len(msgs) == 1 && msgs[0].Status == model.MessageSent
	})

	// Support sees where the contact is.
	eventually(t, "journey waiting for the open", func() bool {
		list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
		for _, e := range list["journeys"].([]any) {
			if e.(map[string]any)["current_step"] == "wait_open" {
				return true
			}
		}
		return false
	})

	// Ops find the run in Temporal by ContactId.
	eventually(t, "run visible by ContactId", func() bool {
		resp, err := s.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf(`ContactId = %q AND JourneyId = %q`, contactID, journeyID),
		})
		return err == nil && len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == workflowID
	})

	// The purchase ends the journey in the middle of its wait: stored with
	// its delivery to the run, which the dispatcher hands to Temporal.
	ev := s.call("POST", "/v1/events", map[string]any{"event_id": "order-1001", "external_id": "user-42", "name": "purchase", "properties": map[string]any{"total": 42.5}}, http.StatusAccepted)
	require.Equal(t, float64(1), ev["pending_deliveries"])

	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunConverted, result.Status)

	desc, err := s.tc.DescribeWorkflowExecution(ctx, workflowID, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)

	enr, err := s.store.LastEnrollment(ctx, contactID, journeyID)
	require.NoError(t, err)
	require.Equal(t, model.RunConverted, enr.Status)
	list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
	first := list["journeys"].([]any)[0].(map[string]any)
	require.Equal(t, "converted", first["status"])
	require.Equal(t, "wait_open", first["current_step"], "a finished run shows the step it ended at")

	// The run's path is on its enrollment, and the report counts it.
	var (
		path      []string
		truncated bool
	)
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT path, path_truncated FROM enrollments WHERE id = $1`, enr.ID).Scan(&path, &truncated))
	require.Equal(t, []string{"welcome_email", "wait_open"}, path, "the wait the purchase cut short is on the path")
	require.False(t, truncated)
	report := s.call("GET", "/v1/reports/journeys/"+journeyID, nil, http.StatusOK)
	byPath := report["versions"].([]any)[0].(map[string]any)["by_path"].([]any)
	require.Len(t, byPath, 1)
	row := byPath[0].(map[string]any)
	require.Equal(t, "welcome_email > wait_open", row["path"])
	require.EqualValues(t, 1, row["entered"])
	require.EqualValues(t, 1, row["converted"])

	// Re-entry policy "once": the finished contact cannot enter again.
	s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusConflict)
	require.Len(t, s.sg.Requests(), 1, "exactly one email in the whole run")
}

func TestEndToEnd_SupportExitWithReason(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-exit"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "grace@example.com", "attributes": map[string]any{"first_name": "Grace"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)
	eventually(t, "welcome email sent", func() bool { return len(s.sg.Requests()) == 1 })

	s.call("POST", "/v1/contacts/"+contactID+"/journeys/"+journeyID+"/exit", map[string]any{"reason": "asked support to stop"}, http.StatusAccepted)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	// The run only ever saw the code; support's words are on the enrollment.
	require.Equal(t, workflows.JourneyResult{Status: model.RunExited, ExitReason: workflows.ExitSupport}, result)
	enr, err := s.store.LastEnrollment(ctx, contactID, journeyID)
	require.NoError(t, err)
	require.Equal(t, model.RunExited, enr.Status)
	require.Equal(t, workflows.ExitSupport, enr.ExitReason)
	require.Equal(t, "asked support to stop", enr.ExitNote)

	// Exiting again: nothing active to exit.
	s.call("POST", "/v1/contacts/"+contactID+"/journeys/"+journeyID+"/exit", map[string]any{"reason": "again"}, http.StatusNotFound)
}

const loopJourney = `
id: %s
name: Daily digest, compressed
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: digest
    send:
      channel: email
      email: {subject: "Digest for {{ .contact.first_name }}", text: "News"}
  - id: pause
    wait: {duration: 1s}
    next: digest
`

// A looping journey continues as new on the real server once its history
// passes a small threshold, keeps going on the new run without sending
// anything twice, and still ends on the goal.
func TestEndToEnd_ContinueAsNewKeepsTheJourneyGoing(t *testing.T) {
	s := start(t, func(c *config.Config) { c.ContinueAsNewAfter = 30 })
	ctx := context.Background()
	journeyID := "e2e-loop"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "kay@example.com", "attributes": map[string]any{"first_name": "Kay"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(loopJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID, firstRun := started["workflow_id"].(string), started["run_id"].(string)

	eventually(t, "a continued run", func() bool {
		desc, err := s.tc.DescribeWorkflowExecution(ctx, workflowID, "")
		return err == nil && desc.WorkflowExecutionInfo.Execution.RunId != firstRun &&
			desc.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	before := len(s.sg.Requests())
	eventually(t, "a digest sent by the continued run", func() bool { return len(s.sg.Requests()) > before })

	// The continued run answers queries with the carried steps.
	list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
	run := list["journeys"].([]any)[0].(map[string]any)
	require.NotEmpty(t, run["steps_taken"], "steps carried across continue-as-new")

	s.call("POST", "/v1/events", map[string]any{"event_id": "loop-purchase", "contact_id": contactID, "name": "purchase"}, http.StatusAccepted)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunConverted, result.Status)

	// Every digest has its own ledger row and went out once.
	msgs, err := s.store.MessagesForContact(ctx, contactID, 100)
	require.NoError(t, err)
	keys := map[string]bool{}
	sent := 0
	for _, m := range msgs {
		require.False(t, keys[m.IdempotencyKey], "key %s used twice", m.IdempotencyKey)
		keys[m.IdempotencyKey] = true
		if m.Status == model.MessageSent {
			sent++
		}
	}
	require.Equal(t, len(s.sg.Requests()), sent, "one provider call per sent ledger row")
	require.Greater(t, sent, 1)
}
