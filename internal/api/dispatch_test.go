package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// dispatcher is a dispatcher over the harness's store, with tc as its
// Temporal client (h.tc unless a test says otherwise).
func (h *harness) dispatcher(tc client.Client, signalTimeout time.Duration) *api.Dispatcher {
	return api.NewDispatcher(api.Deps{Store: h.store, Temporal: tc,
		Config: config.Config{SignalTimeout: signalTimeout},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// drain delivers every due delivery, as the worker's dispatcher would, and
// fails the test if one failed.
func (h *harness) drain() {
	h.t.Helper()
	if _, err := h.dispatcher(h.tc, 10*time.Second).Drain(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if failing := h.failing(); failing != "" {
		h.t.Fatalf("deliveries failed: %s", failing)
	}
}

// failing lists the pending deliveries that failed, with their errors.
func (h *harness) failing() string {
	h.t.Helper()
	var out string
	err := h.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(string_agg(COALESCE(event_id, contact_id) || ' ' || kind || ': ' || last_error, '; ' ORDER BY id), '') FROM deliveries WHERE done_at IS NULL AND attempts > 0`).Scan(&out)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// outcomes lists an event's delivered outcomes, "kind:outcome" in order.
func (h *harness) outcomes(eventID string) string {
	h.t.Helper()
	return h.finished("event_id", eventID)
}

// finished lists the finished deliveries whose column (event_id,
// contact_id) is value, "kind:outcome" in order.
func (h *harness) finished(column, value string) string {
	h.t.Helper()
	var out string
	err := h.store.Pool().QueryRow(context.Background(),
		`SELECT COALESCE(string_agg(kind || ':' || outcome, ',' ORDER BY id), '') FROM deliveries WHERE `+column+` = $1 AND done_at IS NOT NULL`, value).Scan(&out)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// eventSignals lists the event ids a workflow was signalled with, in order,
// one signal at a time or batched.
func (h *harness) eventSignals(workflowID string) []string {
	h.t.Helper()
	var out []string
	for _, p := range h.signalPayloads(workflowID, workflows.SignalEvent, workflows.SignalEvents) {
		for {
			_, rest, ok := strings.Cut(p, `"event_id":"`)
			if !ok {
				break
			}
			id, after, _ := strings.Cut(rest, `"`)
			out, p = append(out, id), after
		}
	}
	return out
}

// An event posted right after the one that triggers a journey reaches the
// run the trigger starts, as it did when the API started runs before
// answering, even though both are delivered after both were answered.
func TestEventFollowsTheRunItsTriggerStarts(t *testing.T) {
	h := newHarness(t)
	h.publish(cartSpec)
	id := h.newContact(map[string]any{"external_id": "f-1"})
	h.call("POST", "/v1/events", map[string]any{"event_id": "cart-1", "contact_id": id, "name": "cart.abandoned"}, http.StatusAccepted)
	r := h.call("POST", "/v1/events", map[string]any{"event_id": "buy-1", "contact_id": id, "name": "purchase"}, http.StatusAccepted)
	if r.body["pending_deliveries"] != float64(1) {
		t.Errorf("the purchase behind a pending trigger: %s", r.raw)
	}
	h.drain()
	wfID := workflows.JourneyWorkflowID("cart", id)
	if got := h.eventSignals(wfID); fmt.Sprint(got) != "[buy-1]" {
		t.Errorf("the run's events: %v, want [buy-1]", got)
	}
}

// With Temporal unreachable every event is still accepted; the deliveries
// wait, show up in GET /v1/deliveries/status, and once Temporal can be
// reached each one reaches its run exactly once.
func TestDeliveriesWaitForTemporal(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	h.publish(cartSpec)
	id := h.newContact(map[string]any{"external_id": "w-1"})
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)

	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Logger: temporalQuiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()

	h.call("POST", "/v1/events", map[string]any{"event_id": "open-1", "contact_id": id, "name": "email.opened"}, http.StatusAccepted)
	h.call("POST", "/v1/events", map[string]any{"event_id": "cart-1", "contact_id": id, "name": "cart.abandoned"}, http.StatusAccepted)
	n, err := h.dispatcher(dead, 300*time.Millisecond).Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d attempts; want 1 (the contact's first delivery, with the signal batched with it, holds back the start)", n)
	}
	st := h.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if st.body["pending"] != float64(3) || st.body["failing"] != float64(2) || st.body["oldest_pending_at"] == nil {
		t.Errorf("status with Temporal down: %s", st.raw)
	}
	fails := st.body["recent_failures"].([]any)
	if len(fails) != 2 || fails[0].(map[string]any)["event"].(map[string]any)["id"] != "open-1" || fails[0].(map[string]any)["last_error"] == "" ||
		fails[1].(map[string]any)["event"].(map[string]any)["id"] != "cart-1" {
		t.Errorf("failures: %s", st.raw)
	}

	// Temporal is back; the retry is due (the test does not wait for it).
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE deliveries SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if got := h.eventSignals(wfID); fmt.Sprint(got) != "[open-1 cart-1]" {
		t.Errorf("the welcome run's events: %v", got)
	}
	if got := h.outcomes("cart-1"); got != "signal:signalled 1 (a batch of 2 events),start:enrolled" {
		t.Errorf("cart-1: %s", got)
	}
	st = h.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if st.body["pending"] != float64(0) || st.body["oldest_pending_at"] != nil || st.body["done_last_hour"] != float64(3) {
		t.Errorf("status after delivery: %s", st.raw)
	}
}

// Dispatchers in several processes share the outbox: every event reaches
// its run once, in the order it was posted for its contact.
func TestConcurrentDispatchersKeepOrder(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	const contacts, events = 4, 6
	wfIDs := make([]string, contacts)
	for c := range contacts {
		id := h.newContact(map[string]any{"external_id": fmt.Sprintf("k-%d", c)})
		wfIDs[c] = h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated).body["workflow_id"].(string)
		for e := range events {
			h.call("POST", "/v1/events", map[string]any{"event_id": fmt.Sprintf("k-%d-%d", c, e), "contact_id": id, "name": "page.viewed"}, http.StatusAccepted)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := h.dispatcher(h.tc, 10*time.Second).Drain(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h.drain() // whatever a dispatcher left when it found nothing due
	for c, wfID := range wfIDs {
		var want []string
		for e := range events {
			want = append(want, fmt.Sprintf("k-%d-%d", c, e))
		}
		if got := h.eventSignals(wfID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("contact %d: events %v, want %v", c, got, want)
		}
	}
}

// A run that has reached its hand-over point and has a workflow task to run
// is not signalled: the delivery is held, which is not a failure, and goes
// out once the run has room. No worker runs here, so the new run's first
// task stays scheduled; a setting of 4 puts the hand-over point (2) at the
// length of a run that has just started.
func TestDispatcherHoldsARunAboutToHandOver(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "hold-1"})
	wfID := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated).body["workflow_id"].(string)
	h.call("POST", "/v1/events", map[string]any{"event_id": "held-1", "contact_id": id, "name": "email.opened"}, http.StatusAccepted)

	if got := workflows.HandOverPoint(4); got != 2 {
		t.Fatalf("HandOverPoint(4) = %d; the test needs 2", got)
	}
	small := api.NewDispatcher(api.Deps{Store: h.store, Temporal: h.tc,
		Config: config.Config{SignalTimeout: 10 * time.Second, ContinueAsNewAfter: 4},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	n, err := small.Dispatch(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Dispatch: %d, %v; want the one delivery attempted", n, err)
	}
	if got := h.eventSignals(wfID); len(got) != 0 {
		t.Errorf("signalled %v while the run was about to hand over", got)
	}
	var attempts int
	var lastError string
	var due time.Time
	if err := h.store.Pool().QueryRow(context.Background(),
		`SELECT attempts, last_error, next_attempt_at FROM deliveries WHERE event_id = 'held-1' AND done_at IS NULL`).Scan(&attempts, &lastError, &due); err != nil {
		t.Fatal(err)
	}
	if attempts != 0 || lastError != "" || time.Until(due) > time.Second {
		t.Errorf("held delivery: %d attempts, last error %q, due in %s; want a quick retry that is not a failure", attempts, lastError, time.Until(due))
	}
	st := h.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if st.body["pending"] != float64(1) || st.body["failing"] != float64(0) {
		t.Errorf("status with a held delivery: %s", st.raw)
	}

	// With room (the default setting), it goes out once.
	// The held delivery's retry is due (the test does not wait for it).
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE deliveries SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if got := h.eventSignals(wfID); fmt.Sprint(got) != "[held-1]" {
		t.Errorf("the run's events: %v", got)
	}
}

// A contact's pending events reach a run as one signal, or one signal each
// when TUTTI_SINGLE_EVENT_SIGNALS says workers may not read batches.
func TestDispatcherBatchesEventsUnlessTold(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprint("single=", single), func(t *testing.T) {
			h := newHarness(t)
			h.publish(welcome("welcome", "{policy: once}"))
			id := h.newContact(map[string]any{"external_id": "batch-1"})
			wfID := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated).body["workflow_id"].(string)
			for i := range 3 {
				h.call("POST", "/v1/events", map[string]any{"event_id": fmt.Sprint("b-", i), "contact_id": id, "name": "page.viewed"}, http.StatusAccepted)
			}
			d := api.NewDispatcher(api.Deps{Store: h.store, Temporal: h.tc,
				Config: config.Config{SignalTimeout: 10 * time.Second, SingleEventSignals: single},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if n, err := d.Drain(context.Background()); err != nil || n != 1 {
				t.Fatalf("Drain: %d, %v; want one attempt for the three", n, err)
			}
			if got := h.eventSignals(wfID); fmt.Sprint(got) != "[b-0 b-1 b-2]" {
				t.Errorf("the run's events: %v", got)
			}
			batches, singles := len(h.signalPayloads(wfID, workflows.SignalEvents)), len(h.signalPayloads(wfID, workflows.SignalEvent))
			want := [2]int{1, 0}
			if single {
				want = [2]int{0, 3}
			}
			if got := [2]int{batches, singles}; got != want {
				t.Errorf("%d batches and %d single signals, want %v", batches, singles, want)
			}
			if got := h.outcomes("b-0"); got != "signal:signalled 1 (a batch of 3 events)" {
				t.Errorf("outcome: %s", got)
			}
		})
	}
}

// temporalQuiet drops the SDK's logs about the unreachable server.
type temporalQuiet struct{}

func (temporalQuiet) Debug(string, ...any) {}
func (temporalQuiet) Info(string, ...any)  {}
func (temporalQuiet) Warn(string, ...any)  {}
func (temporalQuiet) Error(string, ...any) {}

// signalPayloads returns the raw payloads of a workflow's signals named
// one of names, in order.
func (h *harness) signalPayloads(workflowID string, names ...string) []string {
	h.t.Helper()
	it := h.tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			h.t.Fatal(err)
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && slices.Contains(names, a.GetSignalName()) {
			var b strings.Builder
			for _, p := range a.GetInput().GetPayloads() {
				b.Write(p.GetData())
			}
			out = append(out, b.String())
		}
	}
	return out
}

// unreachableTemporal is a Temporal client that cannot connect.
func unreachableTemporal(t *testing.T) client.Client {
	t.Helper()
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Logger: temporalQuiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	return dead
}

// With Temporal unreachable a consent revocation and a support exit are
// answered once PostgreSQL has committed; the revocation is in force for
// the send gate at once, and both deliveries wait behind the contact's
// earlier event, then reach the run in the order they were posted once
// Temporal is back.
func TestConsentAndExitWaitForTemporal(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "o-1", "email": "o@example.com"})
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)
	dead := unreachableTemporal(t)
	down := h.withTemporal(dead)

	down.call("POST", "/v1/events", map[string]any{"event_id": "open-1", "contact_id": id, "name": "email.opened"}, http.StatusAccepted)
	r := down.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "revoked", "source": "unsubscribe-link"}, http.StatusOK)
	if r.body["pending_deliveries"] != float64(1) || r.body["consent"].(map[string]any)["status"] != "revoked" {
		t.Errorf("consent with Temporal down: %s", r.raw)
	}
	r = down.call("POST", "/v1/contacts/"+id+"/journeys/welcome/exit", map[string]any{"reason": "asked to stop"}, http.StatusAccepted)
	if r.body["pending_deliveries"] != float64(1) || r.body["exit_requested"] != true {
		t.Errorf("exit with Temporal down: %s", r.raw)
	}
	consents, err := h.store.Consents(context.Background(), id)
	if err != nil || consents["email"].Status != "revoked" {
		t.Errorf("the send gate's consent: %v %v", consents, err)
	}

	n, err := h.dispatcher(dead, 300*time.Millisecond).Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d attempts; want 1 (the event's signal, which holds back the opt-out and the exit)", n)
	}
	st := down.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if byKind := fmt.Sprint(st.body["pending_by_kind"]); st.body["pending"] != float64(3) || st.body["failing"] != float64(1) ||
		byKind != "map[consent:1 enroll:0 exit:1 signal:1 start:0]" {
		t.Errorf("status with Temporal down: %s", st.raw)
	}

	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE deliveries SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if got := fmt.Sprint(h.signalNames(wfID)); got != fmt.Sprint([]string{workflows.SignalEvent, workflows.SignalConsent, workflows.SignalExit}) {
		t.Errorf("the run's signals %s: want the event, then the opt-out, then the exit", got)
	}
	if got := h.signalPayloads(wfID, workflows.SignalConsent); len(got) != 1 || got[0] != `{"channel":"email","status":"revoked"}` {
		t.Errorf("consent signal %v", got)
	}
	st = h.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if st.body["pending"] != float64(0) || st.body["done_last_hour"] != float64(3) {
		t.Errorf("status after delivery: %s", st.raw)
	}
}

// A consent or exit delivery for a run that has closed counts as delivered,
// as signalRuns treats a closed run: there is nothing left to tell.
func TestConsentAndExitForAClosedRunAreDelivered(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "z-1"})
	wfID := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": id}, http.StatusCreated).body["workflow_id"].(string)
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "sms", "status": "revoked", "source": "STOP"}, http.StatusOK)
	h.call("POST", "/v1/contacts/"+id+"/journeys/welcome/exit", map[string]any{"reason": "asked to stop"}, http.StatusAccepted)
	h.terminate(wfID) // closed in Temporal; its enrollment row still says active
	h.drain()
	var outcomes string
	if err := h.store.Pool().QueryRow(context.Background(),
		`SELECT string_agg(kind || ':' || outcome, ',' ORDER BY id) FROM deliveries WHERE contact_id = $1`, id).Scan(&outcomes); err != nil {
		t.Fatal(err)
	}
	if outcomes != "consent:signalled 0,exit:run already ended" {
		t.Errorf("outcomes %q", outcomes)
	}
}

// An event for a contact whose run ops terminated: the signal finds the
// run gone while its enrollment is active, so the dispatcher asks Temporal,
// which says the run closed without recording an ending, and the enrollment
// ends as failed (run_terminated) at once, not at the next enrollment.
func TestDispatch_SignalToTerminatedRunEndsItsEnrollment(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id, enrollmentID := h.terminatedRun("ops-ended", "ops-ended-2")

	h.call("POST", "/v1/events", map[string]any{"event_id": "after-terminate", "contact_id": id, "name": "page.viewed"}, http.StatusAccepted)
	h.drain()
	if got := h.outcomes("after-terminate"); !strings.HasPrefix(got, "signal:") {
		t.Errorf("outcomes %q", got)
	}
	e, err := h.store.Enrollment(ctx, enrollmentID)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != model.RunFailed || e.ExitReason != model.RunClosedTerminated || e.EndedAt == nil {
		t.Errorf("enrollment after the signal found its run terminated: %+v", e)
	}
}

// The worker's sweep of closed runs: a run ops terminated, with no signal
// or enrollment to notice it, has its enrollment ended as failed
// (run_terminated) by the next sweep that Temporal's visibility shows the
// close to; an enrollment whose run is still open, or that ended itself, is
// left alone.
func TestClosedRuns_SweepEndsTerminatedRunsEnrollments(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	_, terminated := h.terminatedRun("swept", "swept-1")
	h.publish(welcome("swept-open", "{policy: always}"))
	openID, _ := enrollmentOf(h.enrollWithKey("swept-open", h.newContact(map[string]any{"external_id": "swept-2"}), "", http.StatusCreated))

	sweeper := api.NewClosedRuns(api.Deps{Store: h.store, Temporal: h.tc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	deadline := time.Now().Add(30 * time.Second) // visibility records a close a moment after it
	for {
		if _, err := sweeper.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		e, err := h.store.Enrollment(ctx, terminated)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != model.RunActive {
			if e.Status != model.RunFailed || e.ExitReason != model.RunClosedTerminated || e.EndedAt == nil {
				t.Errorf("swept enrollment: %+v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the terminated run's enrollment is still active after 30s of sweeps")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if e, err := h.store.Enrollment(ctx, openID); err != nil || e.Status != model.RunActive {
		t.Errorf("the open run's enrollment: %+v, %v", e, err)
	}
}
