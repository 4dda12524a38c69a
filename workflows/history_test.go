package workflows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// Histories recorded on a real dev server, by this code and by the code
// before each workflow.GetVersion change, must replay on the current code:
// a run that is open while the worker is upgraded replays its history.
// testdata/histories/README.md says how each was recorded.
func TestJourney_ReplaysRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Journey)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// replaySpec waits while events pour in, then waits for one more.
const replaySpec = `
id: replay
name: Replay
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: hold
    wait: {duration: 6s}
  - id: look
    wait_for: {event: opened, timeout: 6s, on_event: done, on_timeout: done}
  - id: done
    exit: {reason: completed}
`

// TestRecordHistories records the histories TestJourney_ReplaysRecordedHistories
// replays: TUTTI_RECORD_HISTORIES=dir (and a name prefix in
// TUTTI_RECORD_PREFIX) writes one JSON file per run of the scenario. It
// uses only what the code before the change had, so it runs on old code too.
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	prefix := os.Getenv("TUTTI_RECORD_PREFIX")
	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(replaySpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_replay", ContactID: "c_replay", Version: 1, Spec: spec, ContinueAsNewAfter: 30}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/replay/contact/c_replay", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID() // Get follows continue-as-new and moves GetRunID on
	// Enough events during the wait to pass the threshold; then the one
	// the wait_for looks for, once it is waiting.
	for i := range 40 {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: fmt.Sprint("ping-", i), Name: "ping", OccurredAt: time.Now()}))
	}
	time.Sleep(8 * time.Second)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: "opened", Name: "opened", OccurredAt: time.Now()}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v, finished %v", res, fakes.finishedInputs())

	for i, runID := range chainOf(t, c, run.GetID(), firstRunID) {
		events := historyOf(t, c, run.GetID(), runID)
		raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		require.NoError(t, err)
		name := filepath.Join(dir, fmt.Sprintf("%srun%d.json", prefix, i+1))
		require.NoError(t, os.WriteFile(name, raw, 0o644))
		t.Logf("%s: %d events", name, len(events))
	}
}

// fakeActivities stands in for the activities on a dev server: the
// workflow calls them by name. It records how runs finished.
type fakeActivities struct {
	mu       sync.Mutex
	finished []activities.FinishEnrollmentInput
}

func (f *fakeActivities) BeginEnrollment(context.Context, activities.BeginEnrollmentInput) error {
	return nil
}

func (f *fakeActivities) FinishEnrollment(_ context.Context, in activities.FinishEnrollmentInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = append(f.finished, in)
	return nil
}

func (f *fakeActivities) Send(context.Context, activities.SendInput) (activities.SendResult, error) {
	return activities.SendResult{Status: activities.SendSent}, nil
}

func (f *fakeActivities) EvaluateCondition(context.Context, activities.EvaluateConditionInput) (activities.EvaluateConditionResult, error) {
	return activities.EvaluateConditionResult{}, nil
}

func (f *fakeActivities) finishedInputs() []activities.FinishEnrollmentInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]activities.FinishEnrollmentInput(nil), f.finished...)
}

// startJourneyWorker runs the journey workflow and the fake activities on
// the dev server c is connected to, until the test ends.
func startJourneyWorker(t *testing.T, c client.Client) *fakeActivities {
	t.Helper()
	fakes := &fakeActivities{}
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(fakes)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return fakes
}

// chainOf lists the runs of a workflow from runID on, following continue-as-new.
func chainOf(t *testing.T, c client.Client, workflowID, runID string) []string {
	t.Helper()
	var runs []string
	for runID != "" {
		runs = append(runs, runID)
		events := historyOf(t, c, workflowID, runID)
		runID = events[len(events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	return runs
}

// historyOf returns every event of one run.
func historyOf(t *testing.T, c client.Client, workflowID, runID string) []*historypb.HistoryEvent {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	return events
}
