package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/workflows"
)

// keyedCartSpec runs once per cart: one run per cart_id, each cart at most
// once.
const keyedCartSpec = `
id: cart
name: Cart
trigger: {type: event, event: cart.abandoned, key: cart_id}
reentry: {policy: once}
goal: {event: cart.recovered}
steps:
  - id: pause
    wait: {duration: 1h}
  - id: nudge
    send:
      channel: email
      email: {subject: "Your cart", text: "Come back"}
`

// A keyed journey runs once per key value: two carts make two runs, each
// with its own workflow id (a digest, never the cart id); the same cart
// again makes none; an event for one cart reaches only that cart's run, an
// event without a cart_id reaches both; an exit ends both.
func TestDispatcherStartsOneRunPerKeyValue(t *testing.T) {
	h := newHarness(t)
	h.publish(keyedCartSpec)
	id := h.newContact(map[string]any{"external_id": "k-1"})
	const cartA, cartB = "cart-ada-lovelace-1815", "cart-ada-lovelace-1816"
	post := func(eventID, name string, props map[string]any) {
		h.call("POST", "/v1/events", map[string]any{"event_id": eventID, "contact_id": id, "name": name, "properties": props}, http.StatusAccepted)
	}
	post("ab-A", "cart.abandoned", map[string]any{"cart_id": cartA})
	post("ab-B", "cart.abandoned", map[string]any{"cart_id": cartB})
	post("ab-A-again", "cart.abandoned", map[string]any{"cart_id": cartA})
	post("ab-none", "cart.abandoned", map[string]any{"value": 30})
	h.drain()

	for eventID, want := range map[string]string{
		"ab-A":       "start:enrolled",
		"ab-B":       "signal:signalled 0,start:enrolled", // cart A's run is not told of cart B
		"ab-A-again": "signal:signalled 1,start:not_enrolled already_active",
		"ab-none":    "signal:signalled 2,start:not_enrolled missing_key:cart_id",
	} {
		if got := h.outcomes(eventID); got != want {
			t.Errorf("%s: outcomes %q, want %q", eventID, got, want)
		}
	}
	runs, err := h.store.ActiveRuns(context.Background(), id, "cart")
	if err != nil || len(runs) != 2 {
		t.Fatalf("active runs %v %v, want two", runs, err)
	}
	wf := map[string]string{}
	digest := regexp.MustCompile(`^journey/cart/contact/` + regexp.QuoteMeta(id) + `/key/[0-9a-f]{32}$`)
	for _, r := range runs {
		if !digest.MatchString(r.WorkflowID) || strings.Contains(r.WorkflowID, "ada") || !strings.HasSuffix(r.WorkflowID, "/key/"+r.RunKey) {
			t.Errorf("workflow id %q (run key %q): want journey/cart/contact/<id>/key/<digest>", r.WorkflowID, r.RunKey)
		}
		if _, err := h.tc.DescribeWorkflowExecution(context.Background(), r.WorkflowID, ""); err != nil {
			t.Errorf("run %s: %v", r.WorkflowID, err)
		}
		wf[r.ID] = r.WorkflowID
	}
	var wfA, wfB string
	for _, pair := range []struct {
		eventID string
		into    *string
	}{{"ab-A", &wfA}, {"ab-B", &wfB}} {
		var enrollment string
		if err := h.store.Pool().QueryRow(context.Background(),
			`SELECT enrollment_id FROM deliveries WHERE event_id = $1 AND kind = 'start'`, pair.eventID).Scan(&enrollment); err != nil {
			t.Fatal(err)
		}
		*pair.into = wf[enrollment]
	}
	if wfA == "" || wfB == "" || wfA == wfB {
		t.Fatalf("runs of cart A %q and B %q", wfA, wfB)
	}
	if secret, err := h.store.RunKeySecret(context.Background()); err != nil ||
		wfA != workflows.JourneyRunWorkflowID("cart", id, journey.RunKeyDigest(secret, "cart_id", cartA)) {
		t.Errorf("cart A's workflow id %q is not its keyed digest (%v)", wfA, err)
	}

	// Later events: by cart, or to every run without one.
	post("rec-B", "cart.recovered", map[string]any{"cart_id": cartB})
	post("open", "email.opened", nil)
	h.drain()
	if got := fmt.Sprint(h.eventSignals(wfA)); got != "[ab-A-again ab-none open]" {
		t.Errorf("cart A's run was told %s", got)
	}
	if got := fmt.Sprint(h.eventSignals(wfB)); got != "[ab-none rec-B open]" {
		t.Errorf("cart B's run was told %s", got)
	}

	// An API enrollment has no cart: refused.
	r := h.call("POST", "/v1/journeys/cart/enrollments", map[string]any{"contact_id": id}, http.StatusConflict)
	if r.errorCode() != "keyed_journey" {
		t.Errorf("enrolling a keyed journey through the API: %s", r.raw)
	}

	// Support's exit may name one run by its run_key...
	r = h.call("POST", "/v1/contacts/"+id+"/journeys/cart/exit", map[string]any{"reason": "x", "run_key": cartA}, http.StatusBadRequest)
	if fmt.Sprint(r.fieldPaths()) != "[run_key]" {
		t.Errorf("a cart id as run_key: %s", r.raw)
	}
	var runA string
	for _, e := range runs {
		if e.WorkflowID == wfA {
			runA = e.RunKey
		}
	}
	r = h.call("POST", "/v1/contacts/"+id+"/journeys/cart/exit", map[string]any{"reason": "cart A only", "run_key": runA}, http.StatusAccepted)
	if runs, _ := r.body["runs"].([]any); len(runs) != 1 || r.body["workflow_id"] != wfA {
		t.Errorf("exit of cart A's run: %s", r.raw)
	}
	// ... or, without one, end every run of the journey.
	r = h.call("POST", "/v1/contacts/"+id+"/journeys/cart/exit", map[string]any{"reason": "asked to stop"}, http.StatusAccepted)
	if runs, _ := r.body["runs"].([]any); len(runs) != 2 || r.body["pending_deliveries"] != float64(2) {
		t.Errorf("exit: %s", r.raw)
	}
	h.drain()
	exits := func(wf string) int {
		n := 0
		for _, name := range h.signalNames(wf) {
			if name == workflows.SignalExit {
				n++
			}
		}
		return n
	}
	if a, b := exits(wfA), exits(wfB); a != 2 || b != 1 {
		t.Errorf("exit signals: cart A's run %d, B's %d; want 2 (its own, then every run's) and 1", a, b)
	}
	for _, w := range []string{wfA, wfB} {
		if names := h.signalNames(w); len(names) == 0 || names[len(names)-1] != workflows.SignalExit {
			t.Errorf("run %s: signals %v, want the exit last", w, names)
		}
	}
	// Support's view lists both runs.
	list := h.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
	if js, _ := list.body["journeys"].([]any); len(js) != 2 {
		t.Errorf("contact journeys: %s", list.raw)
	}
}
