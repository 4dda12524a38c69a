package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

const stoppedParked = `
id: stopped-parked
name: Parked until a purchase
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
steps:
  - id: park
    wait: {duration: 24h}
`

// The triggered journey lets a contact in again (always): a trigger
// delivered twice would be refused only by the run already being active,
// which this test counts as a failure (an outcome other than "enrolled").
const stoppedTriggered = `
id: stopped-triggered
name: Started by a signup event
trigger: {type: event, event: signup.completed}
reentry: {policy: always}
steps:
  - id: park
    wait: {duration: 24h}
`

// stoppedPosts is how many events TestEndToEnd_EventsPostedWhileTemporalIsStopped
// posts: TUTTI_E2E_STOPPED_POSTS, else 1,000.
func stoppedPosts(t *testing.T) int {
	v := os.Getenv("TUTTI_E2E_STOPPED_POSTS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "TUTTI_E2E_STOPPED_POSTS")
	require.GreaterOrEqual(t, n, 10, "TUTTI_E2E_STOPPED_POSTS")
	return n
}

// The proof, on a real dev server rather than an unreachable
// address: with the Temporal server process killed, 1,000 events (goals
// for parked runs, triggers of an event journey, a fifth of them retries of
// an event already posted) from 8 concurrent clients are all answered 202.
// Once the server is started again on the same port and database, the
// dispatcher that kept trying meanwhile empties the outbox by itself, and
// Temporal and PostgreSQL agree: every parked run converted, every trigger
// started exactly one run, every goal took effect once (a run counts the
// events it took; a history may hold a signal twice), no delivery was left
// behind.
func TestEndToEnd_EventsPostedWhileTemporalIsStopped(t *testing.T) {
	posts := stoppedPosts(t)
	began := time.Now()
	contacts := posts * 2 / 5 // a goal and a trigger each; the rest are retries
	const clients = 8
	ctx := context.Background()

	srv := temporaltest.StartFileServer(t)
	// A lazy client with quiet logs: it outlives the server's death and
	// reconnects when it is back, as the worker's and the API's do.
	tc, err := client.NewLazyClient(client.Options{HostPort: srv.Addr(), Namespace: temporaltest.Namespace, Logger: quietTemporal{}})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	s := startOn(t, tc)
	s.call("POST", "/v1/journeys", stoppedParked, http.StatusCreated)
	s.call("POST", "/v1/journeys", stoppedTriggered, http.StatusCreated)

	// Contacts, each with a run parked on its wait.
	ids := make([]string, contacts)
	parked := make([]string, contacts)
	parallel(t, clients, contacts, func(i int) error {
		status, body, err := s.post("/v1/contacts", map[string]any{"external_id": fmt.Sprintf("stopped-%d", i)})
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("contact %d: %d %v %s", i, status, err, body)
		}
		ids[i] = body["contact"].(map[string]any)["id"].(string)
		status, body, err = s.post("/v1/journeys/stopped-parked/enrollments", map[string]any{"contact_id": ids[i]})
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("enrolling contact %d: %d %v %s", i, status, err, body)
		}
		parked[i] = body["workflow_id"].(string)
		return nil
	})
	eventuallyWithin(t, 3*time.Minute, "every run parked on its wait", func() bool {
		var n int
		err := s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE journey_id = 'stopped-parked' AND current_step = 'park'`).Scan(&n)
		return err == nil && n == contacts
	})
	t.Logf("%s: %d runs parked", time.Since(began).Round(time.Second), contacts)

	// Temporal goes away: the process is killed, its port closed.
	srv.Kill()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = tc.WorkflowService().DescribeNamespace(dctx, &workflowservice.DescribeNamespaceRequest{Namespace: temporaltest.Namespace})
	cancel()
	require.Error(t, err, "the dev server is down")

	// The events: each contact's purchase (the parked run's goal) and
	// signup (the event journey's trigger), a fifth posted a second time
	// (a client retrying), in a random order over concurrent clients, so
	// a retry may race its original.
	type post struct{ eventID, contactID, name string }
	var all []post
	for i, id := range ids {
		all = append(all, post{fmt.Sprintf("buy-%d", i), id, "purchase"}, post{fmt.Sprintf("signup-%d", i), id, "signup.completed"})
	}
	distinct := len(all)
	rng := rand.New(rand.NewPCG(14, 4))
	for _, i := range rng.Perm(distinct)[:posts-distinct] {
		all = append(all, all[i])
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	require.Len(t, all, posts)
	var (
		mu     sync.Mutex
		stored = map[string]int{} // answers that stored the event, by event id
	)
	parallel(t, clients, len(all), func(i int) error {
		p := all[i]
		status, body, err := s.post("/v1/events", map[string]any{"event_id": p.eventID, "contact_id": p.contactID, "name": p.name})
		if err != nil || status != http.StatusAccepted {
			return fmt.Errorf("event %s: want 202, got %d %v %s", p.eventID, status, err, body)
		}
		if body["duplicate"] == false {
			mu.Lock()
			stored[p.eventID]++
			mu.Unlock()
		}
		return nil
	})
	require.Len(t, stored, distinct, "each event stored by one of its posts")
	for id, n := range stored {
		require.Equal(t, 1, n, "event %s stored once", id)
	}
	// Per contact: the purchase's signal, the signup's signal (to the
	// parked run) and the signup's start.
	var events, pending int
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events))
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE done_at IS NULL`).Scan(&pending))
	require.Equal(t, distinct, events)
	require.Equal(t, 3*contacts, pending)
	// The dispatcher is trying, and failing, meanwhile.
	eventuallyWithin(t, time.Minute, "a failed delivery attempt", func() bool {
		st, err := s.store.DeliveryStats(ctx)
		return err == nil && st.Failing > 0
	})

	t.Logf("%s: %d events posted, all 202", time.Since(began).Round(time.Second), posts)

	// Temporal is back, same port, same database. Nothing is nudged: the
	// dispatcher's own retries must finish the work.
	srv.Start()
	eventuallyWithin(t, 5*time.Minute, "the outbox empty", func() bool {
		n, err := s.store.PendingDeliveries(ctx)
		return err == nil && n == 0
	})

	t.Logf("%s: outbox empty", time.Since(began).Round(time.Second))

	// PostgreSQL: every delivery made once, with the outcome it should
	// have; some only after failing while Temporal was down. A delivery
	// batched with others (a contact's purchase and signup, say) has their
	// outcome, which names the batch; the count per run is what matters.
	outcomes := map[string]int{}
	rows, err := s.store.Pool().Query(ctx, `
		SELECT e.name || ' ' || d.kind || ' ' || regexp_replace(d.outcome, ' \(a batch of [0-9]+ events\)$', ''), count(*)
		FROM deliveries d JOIN events e ON e.id = d.event_id GROUP BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		var n int
		require.NoError(t, rows.Scan(&k, &n))
		outcomes[k] = n
	}
	require.NoError(t, rows.Err())
	// Every start enrolled: none was refused as already active, which a
	// trigger delivered twice would have been. Each purchase reached the
	// parked run, and the run its contact's signup started if that was
	// stored first (signalled 2). Each signup reached the parked run,
	// unless its purchase came first and had ended it (signalled 0).
	require.Equal(t, contacts, outcomes["signup.completed start enrolled"], "outcomes: %v", outcomes)
	require.Equal(t, contacts, outcomes["purchase signal signalled 1"]+outcomes["purchase signal signalled 2"], "outcomes: %v", outcomes)
	require.Equal(t, contacts, outcomes["signup.completed signal signalled 0"]+outcomes["signup.completed signal signalled 1"], "outcomes: %v", outcomes)
	require.Len(t, outcomes, 5-zeros(outcomes), "no other outcome: %v", outcomes)
	var retried int
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE attempts > 1`).Scan(&retried))
	require.Positive(t, retried, "some deliveries failed while Temporal was down")

	// Temporal: each parked run completed as converted, having seen its
	// purchase once; each signup started one run, the only execution of
	// that journey for the contact, which was not signalled the signup.
	parallel(t, clients, contacts, func(i int) error {
		var result workflows.JourneyResult
		if err := tc.GetWorkflow(ctx, parked[i], "").Get(ctx, &result); err != nil {
			return fmt.Errorf("run %s: %w", parked[i], err)
		}
		if result.Status != model.RunConverted {
			return fmt.Errorf("run %s ended %s, want converted", parked[i], result.Status)
		}
		return nil
	})
	// The enrollments (a run records its end after completing, so this
	// may lag Temporal a little): every parked run converted; one
	// triggered run per contact, still running.
	type key struct {
		journey string
		status  model.RunStatus
	}
	want := map[key]int{{"stopped-parked", model.RunConverted}: contacts, {"stopped-triggered", model.RunActive}: contacts}
	runs := map[key]int{}
	eventuallyWithin(t, 2*time.Minute, "every enrollment row at its final status", func() bool {
		clear(runs)
		rows, err := s.store.Pool().Query(ctx, `SELECT journey_id, status, count(*) FROM enrollments GROUP BY 1, 2`)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			var n int
			if rows.Scan(&k.journey, &k.status, &n) != nil {
				return false
			}
			runs[k] = n
		}
		return rows.Err() == nil && maps.Equal(want, runs)
	})
	var contactsTriggered int
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT count(DISTINCT contact_id) FROM enrollments WHERE journey_id = 'stopped-triggered'`).Scan(&contactsTriggered))
	require.Equal(t, contacts, contactsTriggered)

	// Applied once: the runs count the events they took (the query
	// replays a closed run's history). A signal may be in a history twice,
	// when its delivery's outcome was lost (a call that timed out while
	// the server, just back, was slow) and it was delivered again; the run
	// drops the repeat by its event id. At least once in Temporal, once in
	// effect.
	redelivered := 0
	parallel(t, clients, contacts, func(i int) error {
		buy, signup := fmt.Sprintf("buy-%d", i), fmt.Sprintf("signup-%d", i)
		n, err := signalsOf(tc, parked[i], `"event_id":"`+buy+`"`)
		if err != nil || n < 1 {
			return fmt.Errorf("contact %d: the purchase reached its run %d times (%v)", i, n, err)
		}
		mu.Lock()
		redelivered += n - 1
		mu.Unlock()
		st, err := runState(tc, parked[i])
		if err != nil {
			return fmt.Errorf("contact %d: parked run: %w", i, err)
		}
		if st.Status != model.RunConverted || st.EventCounts["purchase"] != 1 || st.EventCounts["signup.completed"] > 1 {
			return fmt.Errorf("contact %d: parked run %s counted %v", i, st.Status, st.EventCounts)
		}
		triggered := workflows.JourneyWorkflowID("stopped-triggered", ids[i])
		if n, err := signalsOf(tc, triggered, `"event_id":"`+signup+`"`); err != nil || n != 0 {
			return fmt.Errorf("contact %d: the run the signup started got it as an event %d times (%v)", i, n, err)
		}
		st, err = runState(tc, triggered)
		if err != nil {
			return fmt.Errorf("contact %d: triggered run: %w", i, err)
		}
		if st.Status != model.RunActive || st.EventCounts["signup.completed"] != 0 || st.EventCounts["purchase"] > 1 {
			return fmt.Errorf("contact %d: triggered run %s counted %v", i, st.Status, st.EventCounts)
		}
		return nil
	})
	t.Logf("%s: checked", time.Since(began).Round(time.Second))
	t.Logf("purchases signalled again after a lost outcome (dropped by their runs): %d", redelivered)
	eventuallyWithin(t, 2*time.Minute, "one execution of the triggered journey per contact in Temporal's visibility", func() bool {
		execs, err := listExecutions(ctx, tc, `JourneyId = "stopped-triggered"`)
		if err != nil || len(execs) != contacts {
			return false
		}
		for _, id := range ids {
			e, ok := execs[workflows.JourneyWorkflowID("stopped-triggered", id)]
			if !ok || e.runs != 1 || e.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return false
			}
		}
		return true
	})
}

// signalsOf counts the events, signalled alone or in batches, in a
// workflow's history (all runs) whose payload contains want: countSignals
// for callers that cannot fail the test (other goroutines).
func signalsOf(tc client.Client, workflowID, want string) (int, error) {
	it := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, err
		}
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if a == nil || (a.GetSignalName() != workflows.SignalEvent && a.GetSignalName() != workflows.SignalEvents) {
			continue
		}
		for _, p := range a.GetInput().GetPayloads() {
			n += strings.Count(string(p.GetData()), want)
		}
	}
	return n, nil
}

// runState asks a run (open or closed) for its state.
// A query of an open run waits for the run's pending workflow task, and
// just after the restart 400 newly started runs queue theirs at one
// worker: on a loaded machine (CI runs two packages at once) a query has
// waited out a minute. It is asked again, within a generous deadline: a
// run's state is what is checked, not how fast it answers.
func runState(tc client.Client, workflowID string) (workflows.JourneyState, error) {
	var st workflows.JourneyState
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var v converter.EncodedValue
		v, err = tc.QueryWorkflow(ctx, workflowID, "", workflows.QueryState)
		if err == nil {
			err = v.Get(&st)
		}
		// A query the worker did not answer in time fails with a deadline
		// of the server's (10 s) as well as of ours: on a loaded machine
		// the worker can be that slow to replay a run it no longer holds.
		// Both are asked again; any other error is the answer.
		var deadline *serviceerror.DeadlineExceeded
		timedOut := ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &deadline)
		cancel()
		if err == nil || !timedOut {
			return st, err
		}
	}
	return st, err
}

// zeros counts the five expected outcomes that did not occur (the order
// of a contact's two events decides which signal outcomes occur).
func zeros(outcomes map[string]int) int {
	n := 0
	for _, k := range []string{"signup.completed start enrolled", "purchase signal signalled 1", "purchase signal signalled 2",
		"signup.completed signal signalled 0", "signup.completed signal signalled 1"} {
		if outcomes[k] == 0 {
			n++
		}
	}
	return n
}

// execution is what visibility lists for one workflow id.
type execution struct {
	runs   int
	status enumspb.WorkflowExecutionStatus // of the last run listed
}

// listExecutions lists every execution (all runs, open and closed)
// matching query, by workflow id.
func listExecutions(ctx context.Context, tc client.Client, query string) (map[string]execution, error) {
	out := map[string]execution{}
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Executions {
			x := out[e.Execution.WorkflowId]
			x.runs++
			x.status = e.Status
			out[e.Execution.WorkflowId] = x
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return out, nil
		}
	}
}

// parallel runs f(0..n-1) on workers goroutines and fails the test with
// the first error.
func parallel(t *testing.T, workers, n int, f func(i int) error) {
	t.Helper()
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// stoppedClient keeps a connection per concurrent client.
var stoppedClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// post is call for concurrent callers: it returns what happened rather
// than failing the test from another goroutine.
func (s *system) post(path string, body any) (int, map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest("POST", s.api.URL+path, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := stoppedClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%w: %s", err, data)
	}
	return resp.StatusCode, out, nil
}

// eventuallyWithin is eventually with its own deadline, for waits that
// depend on the size of the run; it only bounds a hung test.
func eventuallyWithin(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting (%s) for: %s", deadline, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
