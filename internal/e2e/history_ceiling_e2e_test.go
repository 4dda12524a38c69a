package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// floodWaitJourney is one long wait; floodWaitForJourney a wait_for whose
// event never comes. A run parked in either receives the flood.
const (
	floodWaitJourney = `
id: %s
name: Parked in a wait
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: hold
    wait: {duration: %s}
`
	floodWaitForJourney = `
id: %s
name: Parked in a wait_for
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: look
    wait_for: {event: never.sent, timeout: %s, on_event: done, on_timeout: done}
  - id: done
    exit: {reason: completed}
`
)

// TUTTI_CONTINUE_AS_NEW_AFTER is a ceiling for runs fed through the outbox:
// thousands of events posted to the API by several clients at once, for one
// contact with a run parked in a wait and another in a wait_for, delivered
// by two dispatchers at once, on a real dev server. Every run of each
// continue-as-new chain stays within the setting, the last run counted
// every event exactly once, and each wait ended at the deadline it had when
// it began.
//
// The setting is small because batching works: the dispatcher signals a
// run once per batch of the contact's pending events (up to 100), so 2,000
// events cost a run about 40 signals. At 60 (hand-over point 45) each
// run still continues as new several times. It posts 2,000 events by
// default; TUTTI_TEST_FLOOD_EVENTS=10000 runs the full size.
func TestEndToEnd_HistoryCeilingUnderAFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("posts thousands of events")
	}
	events := 2000
	if v := os.Getenv("TUTTI_TEST_FLOOD_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "TUTTI_TEST_FLOOD_EVENTS")
		events = n
	}
	const (
		setting = 60
		clients = 4
		perPost = 100
	)
	// The waits must outlast posting and delivering the flood: events that
	// arrive after a wait ended reach no run, and the count below says so.
	wait := 30*time.Second + time.Duration(events)*5*time.Millisecond

	s := start(t, func(c *config.Config) { c.ContinueAsNewAfter = setting })
	// A second dispatcher, as a second worker process would run.
	dispatch(t, api.Deps{Store: s.store, Temporal: s.tc, Logger: s.logger,
		Config: config.Config{ContinueAsNewAfter: setting, SignalTimeout: 5 * time.Second}})
	ctx := context.Background()

	created := s.call("POST", "/v1/contacts", map[string]any{"email": "flood@example.com"}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	type parked struct {
		journey, workflowID, firstRun string
		until                         time.Time
	}
	runs := []*parked{{journey: "flood-wait"}, {journey: "flood-wait-for"}}
	for i, spec := range []string{floodWaitJourney, floodWaitForJourney} {
		p := runs[i]
		s.call("POST", "/v1/journeys", fmt.Sprintf(spec, p.journey, wait), http.StatusCreated)
		started := s.call("POST", "/v1/journeys/"+p.journey+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
		p.workflowID, p.firstRun = started["workflow_id"].(string), started["run_id"].(string)
		eventually(t, p.journey+" waiting", func() bool {
			st, err := journeyState(ctx, s.tc, p.workflowID, "")
			if err != nil || st.WaitingUntil == nil {
				return false
			}
			p.until = *st.WaitingUntil
			return true
		})
	}

	// The flood, from several clients at once, a batch at a time.
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for first := c * perPost; first < events; first += clients * perPost {
				var items []map[string]any
				for i := first; i < min(first+perPost, events); i++ {
					items = append(items, map[string]any{"event_id": fmt.Sprint("flood-", i), "contact_id": contactID, "name": "ping"})
				}
				ans := s.call("POST", "/v1/events/batch", map[string]any{"items": items}, http.StatusOK)
				if ans["failed"] != float64(0) {
					t.Errorf("a batch had failed items: %v", ans)
					return
				}
			}
		})
	}
	wg.Wait()

	for _, p := range runs {
		var res workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, p.workflowID, "").Get(ctx, &res)) // follows the chain to its last run
		require.Equal(t, model.RunCompleted, res.Status, p.journey)

		chain := historyChain(t, s.tc, p.workflowID, p.firstRun)
		lengths := make([]int, len(chain))
		for i, r := range chain {
			lengths[i] = r.length
		}
		t.Logf("%s: %d events, %d runs of %v history events (setting %d, hand-over point %d)",
			p.journey, events, len(chain), lengths, setting, workflows.HandOverPoint(setting))
		require.Greater(t, len(chain), 2, "%s: the flood made the run continue as new", p.journey)
		for i, r := range chain {
			require.LessOrEqual(t, r.length, setting, "%s: run %d of %d outgrew the setting", p.journey, i+1, len(chain))
		}

		// No event lost or counted twice: the last run counted each id once.
		last := chain[len(chain)-1].runID
		st, err := journeyState(ctx, s.tc, p.workflowID, last)
		require.NoError(t, err)
		require.Equal(t, map[string]int{"ping": events}, st.EventCounts,
			"%s: events counted by the last run (fewer: lost, or delivered after the %s wait ended)", p.journey, wait)

		// The wait ended at its original deadline, by the run's own step
		// record: not before it, and not a whole wait later, as a wait
		// restarted by a continue would.
		require.NotEmpty(t, st.StepsTaken)
		rec := st.StepsTaken[0]
		require.True(t, rec.StartedAt.Add(wait).Equal(p.until), "%s: began %s, deadline %s", p.journey, rec.StartedAt, p.until)
		require.False(t, rec.FinishedAt.Before(p.until), "%s: ended %s, before its deadline %s", p.journey, rec.FinishedAt, p.until)
		require.Less(t, rec.FinishedAt.Sub(p.until), wait, "%s: ended %s, a wait after its deadline %s", p.journey, rec.FinishedAt, p.until)
		require.True(t, strings.HasPrefix(rec.Outcome, "waited") || strings.HasPrefix(rec.Outcome, "timed out"), "%s: %s", p.journey, rec.Outcome)
	}
	pending, err := s.store.PendingDeliveries(ctx)
	require.NoError(t, err)
	require.Zero(t, pending)
}

func journeyState(ctx context.Context, c client.Client, workflowID, runID string) (workflows.JourneyState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st workflows.JourneyState
	v, err := c.QueryWorkflow(ctx, workflowID, runID, workflows.QueryState)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// chainRun is one run of a continue-as-new chain and its history length.
type chainRun struct {
	runID  string
	length int
}

// historyChain follows a workflow's runs from firstRun through each
// continue-as-new to the last.
func historyChain(t *testing.T, c client.Client, workflowID, firstRun string) []chainRun {
	t.Helper()
	var out []chainRun
	for runID := firstRun; runID != ""; {
		it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		r := chainRun{runID: runID}
		next := ""
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			r.length++
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		out = append(out, r)
		runID = next
	}
	return out
}
