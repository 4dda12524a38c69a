package workflows

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// holdSpec is one long wait and nothing else: a run parked in it.
const holdSpec = `
id: hold
name: Hold
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: hold
    wait: {duration: %s}
`

// A run parked in a long wait that receives a flood of events continues as
// new inside the wait, on a real dev server: each run continues as new at
// the first workflow task past its hand-over point (HandOverPoint of the
// threshold), every event is counted, and the wait ends at the deadline it
// had when it began, not one restarted by a continue.
//
// The senders here signal the run directly, as fast as they can, bypassing
// the outbox and its dispatcher, which is what makes the setting a ceiling
// (internal/e2e TestEndToEnd_HistoryCeilingUnderAFlood). So a run's history
// still outgrows the threshold by the events that arrive during the
// hand-over: Temporal refuses to close a run while unhandled signals are
// buffered (the task fails with UnhandledCommand and is retried with them).
// The test checks that the run does nothing else after its hand-over point
// and logs how long each run got: the workflow's side of the ceiling, alone.
//
// It sends 2,000 events by default (about 4 continues at a threshold of
// 500); TUTTI_TEST_WAIT_EVENTS=10000 runs the full-size version.
func TestJourney_DevServer_LongWaitUnderManyEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("sends thousands of signals to a dev server")
	}
	events := 2000
	if v := os.Getenv("TUTTI_TEST_WAIT_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "TUTTI_TEST_WAIT_EVENTS")
		events = n
	}
	const (
		threshold = 500
		senders   = 32
		wait      = 60 * time.Second
	)
	handOver := HandOverPoint(threshold)

	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate(fmt.Appendf(nil, holdSpec, wait))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_hold", ContactID: "c_hold", Version: 1, Spec: spec, ContinueAsNewAfter: threshold}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/hold/contact/c_hold", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	workflowID, firstRunID := run.GetID(), run.GetRunID() // Get follows continue-as-new and moves GetRunID on

	// The wait's deadline, as the run reports it once it is waiting.
	var until time.Time
	require.Eventually(t, func() bool {
		st, err := queryState(ctx, c, workflowID, "")
		if err != nil || st.WaitingUntil == nil {
			return false
		}
		until = *st.WaitingUntil
		return true
	}, time.Minute, 100*time.Millisecond)

	// A signal per event, from many senders at once.
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(events) {
					return
				}
				err := c.SignalWorkflow(ctx, workflowID, "", SignalEvent,
					EventSignal{EventID: fmt.Sprint("ev-", i), Name: "ping", OccurredAt: time.Now()})
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load(), "signals failed, the first with: %v (did sending outlast the %s wait?)", firstErr.Load(), wait)

	// Still the same deadline, however many runs it took.
	st, err := queryState(ctx, c, workflowID, "")
	require.NoError(t, err)
	require.NotNil(t, st.WaitingUntil, "the run is still waiting")
	require.True(t, until.Equal(*st.WaitingUntil), "deadline moved from %s to %s", until, st.WaitingUntil)

	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res)) // follows the continued runs to the last
	require.Equal(t, model.RunCompleted, res.Status)

	runs := chainOf(t, c, workflowID, firstRunID)
	require.Greater(t, len(runs), 1, "the flood forced continues")
	signalled := 0
	var lengths, noticed []int
	var firstStart, lastClose time.Time
	for i, runID := range runs {
		history := historyOf(t, c, workflowID, runID)
		lengths = append(lengths, len(history))
		h := handoffOf(history, handOver)
		noticed = append(noticed, int(h.noticedAt))
		if i < len(runs)-1 {
			// It continued as new at its first chance: every task that
			// completed past the hand-over point continued as new (the
			// ones before it were retries Temporal makes when events
			// arrived while a task tried to close the run: a run cannot
			// close over unhandled events). When that first task came is
			// the server's affair under a direct flood: a continued run's
			// first task has been seen scheduled only after 700 signals,
			// so the event id of the first task past the point is logged,
			// not bounded.
			require.NotZero(t, h.noticedAt, "run %d continued before its hand-over point", i+1)
			require.Zero(t, h.completedWithoutContinuing, "run %d went on after its hand-over point", i+1)
		}
		runStart := history[0].GetEventTime().AsTime()
		if i == 0 {
			firstStart = runStart
		}
		for _, ev := range history {
			if ev.GetWorkflowExecutionSignaledEventAttributes() != nil {
				signalled++
			}
			// A continued run waits out what is left of the wait, not a fresh one.
			if a := ev.GetTimerStartedEventAttributes(); a != nil && i > 0 {
				require.Less(t, a.GetStartToFireTimeout().AsDuration(), wait, "run %d restarted the wait", i+1)
			}
		}
		if i == len(runs)-1 {
			last := history[len(history)-1]
			require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, last.GetEventType())
			lastClose = last.GetEventTime().AsTime()
		}
	}
	t.Logf("%d events, %d runs of %v history events, the hand-over point noticed at event %v (threshold %d, hand-over point %d); wait began %s after the start, deadline %s, closed %s after the deadline",
		events, len(runs), lengths, noticed, threshold, handOver, until.Add(-wait).Sub(firstStart), until.Format(time.RFC3339Nano), lastClose.Sub(until))
	require.Equal(t, events, signalled, "signals recorded across the runs")

	// No event lost: the last run counted every one.
	final, err := queryState(ctx, c, workflowID, runs[len(runs)-1])
	require.NoError(t, err)
	require.Equal(t, map[string]int{"ping": events}, final.EventCounts)
	require.Len(t, final.StepsTaken, 1)
	hold := final.StepsTaken[0]
	require.Equal(t, "waited 1m0s", hold.Outcome)
	require.True(t, hold.StartedAt.Add(wait).Equal(until), "the step began at %s, the deadline was %s", hold.StartedAt, until)

	// It ended at its deadline: not before, and not a whole wait later as
	// a wait restarted by a continue would (a bound on correctness, not
	// on the machine's speed).
	require.False(t, lastClose.Before(until), "closed at %s, before the deadline %s", lastClose, until)
	require.Less(t, lastClose.Sub(firstStart), 2*wait, "closed at %s: the wait was restarted", lastClose)
	require.Equal(t, model.RunCompleted, fakes.finishedInputs()[0].Status)
}

func queryState(ctx context.Context, c client.Client, workflowID, runID string) (JourneyState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st JourneyState
	v, err := c.QueryWorkflow(ctx, workflowID, runID, QueryState)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// handoff is how a run ended with respect to its history threshold.
type handoff struct {
	// noticedAt is the first workflow task started at or past the
	// threshold (its event id), 0 if none did.
	noticedAt int64
	// completedWithoutContinuing counts workflow tasks from noticedAt on
	// that completed without the run continuing as new right after.
	completedWithoutContinuing int
}

func handoffOf(history []*historypb.HistoryEvent, threshold int) handoff {
	var h handoff
	for i, ev := range history {
		switch {
		case ev.GetWorkflowTaskStartedEventAttributes() != nil && h.noticedAt == 0 && ev.GetEventId() >= int64(threshold):
			h.noticedAt = ev.GetEventId()
		case ev.GetWorkflowTaskCompletedEventAttributes() != nil && h.noticedAt != 0:
			rest := history[i+1:]
			continued := false
			for _, next := range rest {
				if next.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil {
					continued = true
				}
				if next.GetWorkflowTaskScheduledEventAttributes() != nil {
					break
				}
			}
			if !continued {
				h.completedWithoutContinuing++
			}
		}
	}
	return h
}
