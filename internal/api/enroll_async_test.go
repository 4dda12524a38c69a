package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/model"
)

// asyncEnroll is an enrollment asked with Prefer: respond-async (and an
// Idempotency-Key unless key is "").
func (h *harness) asyncEnroll(journeyID, contactID, key string, want int) response {
	h.t.Helper()
	hdr := http.Header{"Prefer": {"wait=5, respond-async"}}
	if key != "" {
		hdr.Set("Idempotency-Key", key)
	}
	return h.enrollWith(journeyID, contactID, hdr, want)
}

// deliveryOutcomes lists a contact's finished deliveries, "kind:outcome" in order.
func (h *harness) deliveryOutcomes(contactID string) string {
	h.t.Helper()
	return h.finished("contact_id", contactID)
}

// With Prefer: respond-async an enrollment is decided and recorded while
// Temporal is unreachable, answered 202 without a run; the dispatcher
// starts the run once Temporal is back, before the events posted after the
// answer, which reach it; a repeated delivery starts no second run, and a
// retry with the same Idempotency-Key is the same enrollment.
func TestEnrollAsync_RunStartsThroughTheOutbox(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	down := h.withTemporal(unreachableTemporal(t))
	a := h.newContact(map[string]any{"external_id": "async-a"})
	b := h.newContact(map[string]any{"external_id": "async-b"})

	r := down.asyncEnroll("welcome", a, "", http.StatusAccepted)
	if r.header.Get("Preference-Applied") != "respond-async" || r.body["start_pending"] != true || r.body["run_id"] != nil {
		t.Fatalf("async enrollment: %v %s", r.header, r.raw)
	}
	enr := r.body["enrollment"].(map[string]any)
	wfA := r.body["workflow_id"].(string)
	if enr["status"] != string(model.RunActive) || enr["contact_id"] != a {
		t.Errorf("enrollment: %s", r.raw)
	}
	// The pair is claimed: a second enrollment is refused at once, either way.
	if r := down.asyncEnroll("welcome", a, "", http.StatusConflict); r.errorCode() != "already_active" {
		t.Errorf("second enrollment: %s", r.raw)
	}
	// An event posted now reaches the run, after its start.
	ev := down.call("POST", "/v1/events", map[string]any{"event_id": "async-open-1", "contact_id": a, "name": "email.opened"}, http.StatusAccepted)
	if ev.body["pending_deliveries"] != float64(1) {
		t.Errorf("event behind a pending start: %s", ev.raw)
	}
	// Keyed: every attempt is one enrollment with one start.
	k1 := down.asyncEnroll("welcome", b, "signup-b", http.StatusAccepted)
	k2 := down.asyncEnroll("welcome", b, "signup-b", http.StatusAccepted)
	idB := k1.body["enrollment"].(map[string]any)["id"]
	if k2.body["enrollment"].(map[string]any)["id"] != idB || k2.body["start_pending"] != true {
		t.Errorf("retry with the key: %s, first %s", k2.raw, k1.raw)
	}

	// Support sees why the run has no state yet.
	js := h.call("GET", "/v1/contacts/"+a+"/journeys", nil, http.StatusOK)
	if runs := js.body["journeys"].([]any); len(runs) != 1 || !strings.Contains(fmt.Sprint(runs[0].(map[string]any)["state_error"]), "start is queued") {
		t.Errorf("journeys before the start: %s", js.raw)
	}

	n, err := h.dispatcher(unreachableTemporal(t), 300*time.Millisecond).Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d attempts with Temporal down, want 2 (each contact's start; a's event waits behind it)", n)
	}
	st := h.call("GET", "/v1/deliveries/status", nil, http.StatusOK)
	if kinds := st.body["pending_by_kind"].(map[string]any); kinds["enroll"] != float64(2) || kinds["signal"] != float64(1) || st.body["failing"] != float64(2) {
		t.Errorf("status with Temporal down: %s", st.raw)
	}
	for _, e := range []string{enr["id"].(string), idB.(string)} {
		if got, err := h.store.Enrollment(context.Background(), e); err != nil || got.Status != model.RunActive {
			t.Errorf("enrollment %s after failed starts: %+v, %v: want it kept, active", e, got, err)
		}
	}

	// Temporal is back; the retries are due (the test does not wait for them).
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE deliveries SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	h.drain()
	runA, _, memoA, ok := h.runOf(wfA)
	if !ok || memoA != enr["id"] {
		t.Fatalf("a's run: %q, memo %q, exists %v", runA, memoA, ok)
	}
	if got := h.eventSignals(wfA); fmt.Sprint(got) != "[async-open-1]" {
		t.Errorf("a's run heard %v, want [async-open-1]", got)
	}
	if got := h.deliveryOutcomes(a); got != "enroll:enrolled,signal:signalled 1" {
		t.Errorf("a's deliveries: %s", got)
	}
	wfB := k1.body["workflow_id"].(string)
	runB, _, memoB, ok := h.runOf(wfB)
	if !ok || memoB != idB {
		t.Fatalf("b's run: %q, memo %q, exists %v", runB, memoB, ok)
	}

	// The start delivered again (its outcome lost, say): the same run.
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE deliveries SET done_at = NULL, outcome = '' WHERE kind = 'enroll'`); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if again, _, _, _ := h.runOf(wfA); again != runA {
		t.Errorf("a's run after a repeated start: %s, was %s", again, runA)
	}
	if again, _, _, _ := h.runOf(wfB); again != runB {
		t.Errorf("b's run after a repeated start: %s, was %s", again, runB)
	}
	// The key again, now its run exists: answered with the run.
	k3 := h.asyncEnroll("welcome", b, "signup-b", http.StatusOK)
	if k3.body["run_id"] != runB || k3.body["start_pending"] != nil {
		t.Errorf("retry after the start: %s, want run %s", k3.raw, runB)
	}
}

// A support exit posted while the start waits is delivered after it, to
// the run it started. An enrollment no longer active when its start goes
// out (ended by hand, say) gets no run: the start is done without one.
func TestEnrollAsync_ExitBeforeTheStart(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: always}"))
	down := h.withTemporal(unreachableTemporal(t))
	c := h.newContact(map[string]any{"external_id": "async-x"})
	r := down.asyncEnroll("welcome", c, "", http.StatusAccepted)
	wf := r.body["workflow_id"].(string)
	down.call("POST", "/v1/contacts/"+c+"/journeys/welcome/exit", map[string]any{"reason": "asked support to stop"}, http.StatusAccepted)
	h.drain()
	if _, _, _, ok := h.runOf(wf); !ok {
		t.Fatal("no run started")
	}
	if got := h.deliveryOutcomes(c); got != "enroll:enrolled,exit:signalled 1" {
		t.Errorf("deliveries: %s", got)
	}

	// An enrollment that ended before its start was delivered.
	d := h.newContact(map[string]any{"external_id": "async-y"})
	r = down.asyncEnroll("welcome", d, "", http.StatusAccepted)
	id := r.body["enrollment"].(map[string]any)["id"].(string)
	if _, err := h.store.Pool().Exec(context.Background(), `UPDATE enrollments SET status = 'exited', ended_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	h.drain()
	if _, _, _, ok := h.runOf(r.body["workflow_id"].(string)); ok {
		t.Error("a run started for an enrollment that had ended")
	}
	if got := h.deliveryOutcomes(d); got != "enroll:not_started exited" {
		t.Errorf("deliveries: %s", got)
	}
}
