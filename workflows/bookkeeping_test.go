package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// bookkeepingSpec sends, parks on a long wait, and converts on purchase.
const bookkeepingSpec = `
id: bookkeeping
name: Bookkeeping
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: hello
    send: {channel: email, email: {subject: "Hi", text: "Hello"}}
  - id: park
    wait: {duration: 720h}
  - id: done
    exit: {reason: completed}
`

// A run of versionLocalBookkeeping records its enrollment as local
// activities: no activity task for BeginEnrollment or FinishEnrollment,
// one marker each, and a goal signal closes the run in the workflow task
// that hears it (no round trip through an activity task).
func TestJourney_DevServer_BookkeepingIsLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("dev server")
	}
	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(bookkeepingSpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_book", ContactID: "c_book", Version: 1, Spec: spec}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/bookkeeping/contact/c_book", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	// Parked once JourneyStep says so (set where the run parks on a timer).
	require.Eventually(t, func() bool {
		st, err := queryState(ctx, c, run.GetID(), run.GetRunID())
		return err == nil && st.CurrentStep == "park"
	}, 30*time.Second, 100*time.Millisecond)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), SignalEvent,
		EventSignal{EventID: "ev_purchase", Name: "purchase", OccurredAt: time.Now()}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, model.RunConverted, res.Status)

	finished := fakes.finishedInputs()
	require.Len(t, finished, 1)
	require.Equal(t, model.RunConverted, finished[0].Status)
	require.Equal(t, "e_book", finished[0].EnrollmentID)

	events := historyOf(t, c, run.GetID(), run.GetRunID())
	var scheduled []string
	var markers int
	signalAt := -1
	for i, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled = append(scheduled, ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
				markers++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			signalAt = i
		}
	}
	require.Equal(t, []string{"Send"}, scheduled, "only the send is an activity task")
	require.Equal(t, 2, markers, "BeginEnrollment and FinishEnrollment, one marker each")
	require.GreaterOrEqual(t, signalAt, 0)
	var tasksAfterSignal int
	for _, ev := range events[signalAt:] {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			tasksAfterSignal++
		}
	}
	require.Equal(t, 1, tasksAfterSignal, "the task that hears the goal records the end and closes the run")
	require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, events[len(events)-1].GetEventType())
}

// A FinishEnrollment that fails (the database away) is retried until it
// writes: the run does not close without its enrollment row saying how it
// ended.
func TestJourney_LocalFinishIsRetried(t *testing.T) {
	h := newHarness(t)
	calls := 0
	h.finishErr = func() error {
		calls++
		if calls < 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	h.env.OnGetVersion(changeContinueAsNewInWaits, workflow.DefaultVersion, versionLocalBookkeeping).Return(versionLocalBookkeeping)
	res := h.run(t, input(sendOnlySpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, 3, calls)
	require.Len(t, h.finished, 1)
}

func sendOnlySpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: send-only
name: Send only
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: hello
    send: {channel: email, email: {subject: "Hi", text: "Hello"}}
`))
	require.NoError(t, err)
	return spec
}
