package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

const parkedJourney = `
id: e2e-parked
name: Parked until a purchase
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
steps:
  - id: park
    wait: {duration: 24h}
`

const triggeredJourney = `
id: e2e-triggered
name: Started by a signup event
trigger: {type: event, event: signup.completed}
reentry: {policy: once}
steps:
  - id: park
    wait: {duration: 24h}
`

// Events posted while Temporal is unreachable are all accepted (202), by an
// API and a dispatcher that cannot reach it. Once a dispatcher can, every
// goal ends its run as converted, every trigger starts exactly one run, and
// no event is applied twice, although each was posted twice.
func TestEndToEnd_EventsAcceptedWhileTemporalIsDown(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	s.call("POST", "/v1/journeys", parkedJourney, http.StatusCreated)
	s.call("POST", "/v1/journeys", triggeredJourney, http.StatusCreated)
	const contacts = 40
	ids := make([]string, contacts)
	parked := make([]string, contacts)
	for i := range contacts {
		c := s.call("POST", "/v1/contacts", map[string]any{"external_id": fmt.Sprintf("down-%d", i)}, http.StatusCreated)
		ids[i] = c["contact"].(map[string]any)["id"].(string)
		parked[i] = s.call("POST", "/v1/journeys/e2e-parked/enrollments", map[string]any{"contact_id": ids[i]}, http.StatusCreated)["workflow_id"].(string)
	}

	// Temporal becomes unreachable: the worker's dispatcher stops, and the
	// API and a dispatcher are given a client that cannot connect.
	s.stopDispatch()
	down, dead, cfg := s.withoutTemporal()
	for range 2 { // each event twice: a client retrying
		for i, id := range ids {
			down.call("POST", "/v1/events", map[string]any{"event_id": fmt.Sprintf("buy-%d", i), "contact_id": id, "name": "purchase"}, http.StatusAccepted)
			down.call("POST", "/v1/events", map[string]any{"event_id": fmt.Sprintf("signup-%d", i), "contact_id": id, "name": "signup.completed"}, http.StatusAccepted)
		}
	}
	_, err := api.NewDispatcher(api.Deps{Store: s.store, Temporal: dead, Config: cfg, Logger: s.logger}).Drain(ctx)
	require.NoError(t, err)
	st, err := s.store.DeliveryStats(ctx)
	require.NoError(t, err)
	// Per contact: the purchase's signal, the signup's signal and its start.
	require.EqualValues(t, 3*contacts, st.Pending)
	require.EqualValues(t, 2*contacts, st.Failing, "each contact's first delivery failed, the purchase's signal with the signup's batched with it; the start waits behind them")

	// Temporal is reachable again. The retries are made due now rather
	// than after their backoff, which this test has no reason to wait for.
	s.deliverAll(cfg)

	for i, id := range ids {
		var result workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, parked[i], "").Get(ctx, &result))
		require.Equal(t, model.RunConverted, result.Status, "contact %d", i)
		require.Equal(t, 1, countSignals(t, s.tc, parked[i], fmt.Sprintf(`"event_id":"buy-%d"`, i)), "contact %d: the purchase reached its run once", i)

		triggered := s.enrollmentsIn(id, "e2e-triggered")
		require.Len(t, triggered, 1, "contact %d: one run per trigger", i)
		require.Equal(t, model.RunActive, triggered[0].Status)
		// The run the signup started does not get it again as an event.
		require.Zero(t, countSignals(t, s.tc, triggered[0].WorkflowID, `"event_id"`), "contact %d", i)
	}
}

// Enrollments asked with Prefer: respond-async while Temporal is
// unreachable are all answered 202 (each posted twice with its
// Idempotency-Key, as a retrying client does, and refused with 409 when
// posted again without one), and so are the purchases posted right after
// them. Once a dispatcher reaches Temporal every contact has exactly one
// enrollment and one run, which heard its purchase once and converted;
// starts delivered a second time (their outcome lost) start nothing more.
func TestEndToEnd_AsyncEnrollmentsWhileTemporalIsDown(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	s.call("POST", "/v1/journeys", parkedJourney, http.StatusCreated)
	const contacts = 30
	ids := make([]string, contacts)
	for i := range contacts {
		c := s.call("POST", "/v1/contacts", map[string]any{"external_id": fmt.Sprintf("async-down-%d", i)}, http.StatusCreated)
		ids[i] = c["contact"].(map[string]any)["id"].(string)
	}

	s.stopDispatch()
	down, dead, cfg := s.withoutTemporal()
	workflowIDs := make([]string, contacts)
	for i, id := range ids {
		hdr := http.Header{"Prefer": {"respond-async"}, "Idempotency-Key": {fmt.Sprintf("signup-%d", i)}}
		first := down.callWith("POST", "/v1/journeys/e2e-parked/enrollments", map[string]any{"contact_id": id}, hdr, http.StatusAccepted)
		again := down.callWith("POST", "/v1/journeys/e2e-parked/enrollments", map[string]any{"contact_id": id}, hdr, http.StatusAccepted)
		require.Equal(t, first["enrollment"], again["enrollment"], "contact %d: a retry is the same enrollment", i)
		require.Equal(t, true, first["start_pending"])
		down.callWith("POST", "/v1/journeys/e2e-parked/enrollments", map[string]any{"contact_id": id},
			http.Header{"Prefer": {"respond-async"}}, http.StatusConflict)
		workflowIDs[i] = first["workflow_id"].(string)
		down.call("POST", "/v1/events", map[string]any{"event_id": fmt.Sprintf("async-buy-%d", i), "contact_id": id, "name": "purchase"}, http.StatusAccepted)
	}
	_, err := api.NewDispatcher(api.Deps{Store: s.store, Temporal: dead, Config: cfg, Logger: s.logger}).Drain(ctx)
	require.NoError(t, err)
	st, err := s.store.DeliveryStats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, contacts, st.PendingByKind[storage.DeliveryEnroll])
	require.EqualValues(t, contacts, st.PendingByKind[storage.DeliverySignal])

	s.deliverAll(cfg)
	runIDs := make([]string, contacts)
	for i, id := range ids {
		run := s.tc.GetWorkflow(ctx, workflowIDs[i], "")
		var result workflows.JourneyResult
		require.NoError(t, run.Get(ctx, &result))
		require.Equal(t, model.RunConverted, result.Status, "contact %d", i)
		require.Equal(t, 1, countSignals(t, s.tc, workflowIDs[i], fmt.Sprintf(`"event_id":"async-buy-%d"`, i)), "contact %d: the purchase reached its run once", i)
		enrolled := s.enrollmentsIn(id, "e2e-parked")
		require.Len(t, enrolled, 1, "contact %d: one enrollment", i)
		require.Equal(t, model.RunConverted, enrolled[0].Status, "contact %d", i)
		runIDs[i] = run.GetRunID()
	}

	// The starts delivered again: the runs exist (closed, converted), so
	// nothing starts and the enrollments keep their endings.
	_, err = s.store.Pool().Exec(ctx, `UPDATE deliveries SET done_at = NULL, outcome = '' WHERE kind = 'enroll'`)
	require.NoError(t, err)
	s.deliverAll(cfg)
	for i, id := range ids {
		d, err := s.tc.DescribeWorkflowExecution(ctx, workflowIDs[i], "")
		require.NoError(t, err)
		require.Equal(t, runIDs[i], d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "contact %d: no second run", i)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus(), "contact %d", i)
		require.Len(t, s.enrollmentsIn(id, "e2e-parked"), 1, "contact %d", i)
	}
}

// withoutTemporal is the system with its API served over a Temporal
// client that cannot connect (the store is the same), that client, and
// the configuration the API runs with.
func (s *system) withoutTemporal() (system, client.Client, config.Config) {
	s.t.Helper()
	dead := unreachableTemporal(s.t)
	cfg := config.Config{APIToken: token, APIMaxBody: 1 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 500 * time.Millisecond}
	down := *s
	down.api = httptest.NewServer(api.New(api.Deps{Store: s.store, Temporal: dead, Config: cfg, Logger: s.logger}).Handler())
	s.t.Cleanup(down.api.Close)
	return down, dead, cfg
}

// countSignals counts the events, signalled alone or in batches, of a
// workflow (all its runs) whose payload contains want.
func countSignals(t testing.TB, tc client.Client, workflowID, want string) int {
	t.Helper()
	n, err := signalsOf(tc, workflowID, want)
	require.NoError(t, err)
	return n
}

// deliverAll makes every pending delivery due now, rather than after its
// backoff, runs a dispatcher that reaches Temporal, and waits until the
// outbox is empty.
func (s *system) deliverAll(cfg config.Config) {
	s.t.Helper()
	ctx := context.Background()
	_, err := s.store.Pool().Exec(ctx, `UPDATE deliveries SET next_attempt_at = now()`)
	require.NoError(s.t, err)
	dispatch(s.t, api.Deps{Store: s.store, Temporal: s.tc, Config: cfg, Logger: s.logger})
	eventually(s.t, "every delivery made", func() bool {
		n, err := s.store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})
}

// unreachableTemporal is a Temporal client that cannot connect.
func unreachableTemporal(t testing.TB) client.Client {
	t.Helper()
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Logger: quietTemporal{}})
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	return dead
}

// enrollmentsIn returns the contact's enrollments in one journey.
func (s *system) enrollmentsIn(contactID, journeyID string) []storage.Enrollment {
	s.t.Helper()
	all, err := s.store.EnrollmentsForContact(context.Background(), contactID)
	require.NoError(s.t, err)
	var out []storage.Enrollment
	for _, e := range all {
		if e.JourneyID == journeyID {
			out = append(out, e)
		}
	}
	return out
}

// atStep reports whether one of the contact's journeys is at step.
func (s *system) atStep(contactID, step string) func() bool {
	return func() bool {
		list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
		for _, e := range list["journeys"].([]any) {
			if e.(map[string]any)["current_step"] == step {
				return true
			}
		}
		return false
	}
}

// quietTemporal drops the SDK's logs about the unreachable server.
type quietTemporal struct{}

func (quietTemporal) Debug(string, ...any) {}
func (quietTemporal) Info(string, ...any)  {}
func (quietTemporal) Warn(string, ...any)  {}
func (quietTemporal) Error(string, ...any) {}

const optOutJourney = `
id: e2e-optout
name: One email, then a long wait
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Hello", text: "Hello"}
  - id: park
    wait: {duration: 24h}
`

// An opt-out and a support exit posted while Temporal is unreachable are
// answered (200, 202) once stored. The opt-out is in force for the send
// gate at once; the runs hear of both once a dispatcher reaches Temporal:
// the opted-out run ends as the opt-out rule says (every channel it sends
// on revoked), after the event posted before the opt-out, and the exited
// run ends with support's code.
func TestEndToEnd_OptOutAndExitAcceptedWhileTemporalIsDown(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	s.call("POST", "/v1/journeys", optOutJourney, http.StatusCreated)
	var ids, wfIDs [2]string
	for i := range ids {
		c := s.call("POST", "/v1/contacts", map[string]any{"email": fmt.Sprintf("out-%d@example.com", i)}, http.StatusCreated)
		ids[i] = c["contact"].(map[string]any)["id"].(string)
		s.call("POST", "/v1/contacts/"+ids[i]+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup"}, http.StatusOK)
		wfIDs[i] = s.call("POST", "/v1/journeys/e2e-optout/enrollments", map[string]any{"contact_id": ids[i]}, http.StatusCreated)["workflow_id"].(string)
		eventually(t, "run parked after its email", s.atStep(ids[i], "park"))
	}
	optedOut, exited := 0, 1

	s.stopDispatch()
	down, dead, cfg := s.withoutTemporal()

	down.call("POST", "/v1/events", map[string]any{"event_id": "seen-1", "contact_id": ids[optedOut], "name": "page.viewed"}, http.StatusAccepted)
	r := down.call("POST", "/v1/contacts/"+ids[optedOut]+"/consent", map[string]any{"channel": "email", "status": "revoked", "source": "unsubscribe-link"}, http.StatusOK)
	require.EqualValues(t, 1, r["pending_deliveries"])
	r = down.call("POST", "/v1/contacts/"+ids[exited]+"/journeys/e2e-optout/exit", map[string]any{"reason": "asked support to stop"}, http.StatusAccepted)
	require.EqualValues(t, 1, r["pending_deliveries"])
	consents, err := s.store.Consents(ctx, ids[optedOut])
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, consents["email"].Status, "the send gate reads the opt-out now")

	_, err = api.NewDispatcher(api.Deps{Store: s.store, Temporal: dead, Config: cfg, Logger: s.logger}).Drain(ctx)
	require.NoError(t, err)
	st, err := s.store.DeliveryStats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Pending, "the event and the opt-out of one contact, the exit of the other")
	require.EqualValues(t, 2, st.Failing, "each contact's first delivery failed; the opt-out waits behind the event")
	require.Equal(t, map[string]int64{"signal": 1, "start": 0, "consent": 1, "exit": 1, "enroll": 0}, st.PendingByKind)
	for i := range ids {
		require.Equal(t, model.RunActive, s.enrollmentsIn(ids[i], "e2e-optout")[0].Status, "contact %d: its run has not heard yet", i)
	}

	s.deliverAll(cfg)

	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, wfIDs[optedOut], "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status)
	require.Equal(t, "opted out of every channel this journey uses", result.ExitReason)
	require.Equal(t, []string{workflows.SignalEvent, workflows.SignalConsent}, signalNames(t, s.tc, wfIDs[optedOut]), "the event, then the opt-out")
	require.NoError(t, s.tc.GetWorkflow(ctx, wfIDs[exited], "").Get(ctx, &result))
	require.Equal(t, workflows.JourneyResult{Status: model.RunExited, ExitReason: workflows.ExitSupport}, result)
	eventually(t, "both enrollments ended", func() bool {
		return s.enrollmentsIn(ids[optedOut], "e2e-optout")[0].Status == model.RunExited &&
			s.enrollmentsIn(ids[exited], "e2e-optout")[0].Status == model.RunExited
	})
	require.Equal(t, "asked support to stop", s.enrollmentsIn(ids[exited], "e2e-optout")[0].ExitNote)
}

// signalNames lists the names of a workflow's signals (all its runs), in order.
func signalNames(t *testing.T, tc client.Client, workflowID string) []string {
	t.Helper()
	it := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			out = append(out, a.GetSignalName())
		}
	}
	return out
}
