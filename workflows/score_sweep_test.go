package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/score"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// A sweep run takes pages until one says there is no more, and adds them up.
func TestScoreSweep_pagesUntilDone(t *testing.T) {
	t.Parallel()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	pages := []activities.SweepScoresResult{
		{Due: 500, Changed: 3, More: true},
		{Due: 200, Backfilled: 500, Changed: 1, More: true},
		{Backfilled: 20},
	}
	calls := 0
	env.OnActivity(a.SweepScores, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SweepScoresInput) (activities.SweepScoresResult, error) {
			require.Equal(t, ScoreSweepPage, in.Limit)
			require.True(t, in.At.IsZero(), "the activity scores at its own now")
			calls++
			return pages[calls-1], nil
		})
	env.ExecuteWorkflow(ScoreSweep)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var total activities.SweepScoresResult
	require.NoError(t, env.GetWorkflowResult(&total))
	require.Equal(t, activities.SweepScoresResult{Due: 700, Backfilled: 520, Changed: 4}, total)
	require.Equal(t, 3, calls)
}

// On a real dev server and database: the worker's schedule is created
// once however many workers start, and a run it starts finds the contact
// whose band time alone moved, and stores the change once.
func TestScoreSweep_DevServer_scheduleFindsDecay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev server")
	}
	ctx := context.Background()
	store := storagetest.New(t)
	c := temporaltest.StartDevServer(t).Client()
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(&activities.Activities{Store: store})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	m, err := score.Parse([]byte(`
id: test
intent:
  - {id: pricing, event: page.viewed, points: 40, half_life: 1d}
bands:
  intent: [{name: low, below: 30}, {name: high}]
`))
	require.NoError(t, err)
	_, _, err = store.PutScoreModel(ctx, m)
	require.NoError(t, err)
	contact, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "decay@example.com"})
	require.NoError(t, err)
	// Viewed two days ago and scored then (high); 10 points are left now,
	// so time alone has made it low, and its next check has passed.
	then := time.Now().Add(-48 * time.Hour)
	_, _, _, err = store.TrackEvent(ctx, storage.Event{ContactID: contact.ID, Name: "page.viewed", OccurredAt: then})
	require.NoError(t, err)
	changes, err := store.Rescore(ctx, contact.ID, then)
	require.NoError(t, err)
	require.Equal(t, []score.BandChange{{Score: "intent", From: "low", To: "high"}}, changes)

	require.NoError(t, EnsureScoreSweepSchedule(ctx, c))
	require.NoError(t, EnsureScoreSweepSchedule(ctx, c), "a second worker finds the schedule there")
	h := c.ScheduleClient().GetHandle(ctx, ScoreSweepScheduleID)
	desc, err := h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, ScoreSweepEvery, desc.Schedule.Spec.Intervals[0].Every)
	action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.Equal(t, TaskQueue, action.TaskQueue)

	before := len(desc.Info.RecentActions)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var run client.WorkflowRun
	require.Eventually(t, func() bool {
		desc, err = h.Describe(ctx)
		require.NoError(t, err)
		if len(desc.Info.RecentActions) <= before {
			return false
		}
		a := desc.Info.RecentActions[len(desc.Info.RecentActions)-1]
		run = c.GetWorkflow(ctx, a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID)
		return true
	}, 30*time.Second, 100*time.Millisecond)
	var total activities.SweepScoresResult
	require.NoError(t, run.Get(ctx, &total))
	require.Equal(t, 1, total.Due)
	require.Equal(t, 1, total.Changed)

	evs, err := store.EventsForContact(ctx, contact.ID, 100)
	require.NoError(t, err)
	var got []map[string]any
	for _, e := range evs {
		if e.Name == score.BandChangedEvent {
			got = append(got, e.Properties)
		}
	}
	require.Equal(t, []map[string]any{{"score": "intent", "from": "high", "to": "low"}, {"score": "intent", "from": "low", "to": "high"}}, got)
}
