package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/segment"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// The worker's schedule, created twice (two workers starting), runs the
// sweep on a real dev server, and the sweep records the exit that time
// alone made: a view that left its 7-day window.
func TestSegmentSweep_DevServer_ScheduleRecordsTimeExits(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	seg, err := segment.Compile(segment.Definition{ID: "recent_viewers", Name: "Recent viewers", When: `events.count("page.viewed", days(7)) >= 1`})
	require.NoError(t, err)
	_, _, err = s.DefineSegment(ctx, seg)
	require.NoError(t, err)
	c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: "sweep@example.com"})
	require.NoError(t, err)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "page.viewed"})
	require.NoError(t, err)
	ch, err := s.EvaluateQueuedSegments(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, ch.Entered)
	// Eight days pass for the view; nothing about the contact changes.
	_, err = s.Pool().Exec(ctx, `UPDATE events SET occurred_at = occurred_at - interval '8 days' WHERE contact_id = $1`, c.ID)
	require.NoError(t, err)

	tc := temporaltest.StartDevServer(t).Client()
	w := worker.New(tc, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(&activities.Activities{Store: s})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	require.NoError(t, EnsureSegmentSweepSchedule(ctx, tc, time.Hour))
	require.NoError(t, EnsureSegmentSweepSchedule(ctx, tc, time.Hour), "a second worker finds the schedule there")
	h := tc.ScheduleClient().GetHandle(ctx, SegmentSweepScheduleID)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))

	var run client.WorkflowRun
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		started := d.Info.RecentActions[0].StartWorkflowResult
		run = tc.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID)
		return true
	}, time.Minute, 100*time.Millisecond)
	var res activities.SweepSegmentsResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, activities.SweepSegmentsResult{Evaluated: 1, Exited: 1}, res)

	history, err := s.ContactSegments(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, history, 1)
	require.NotNil(t, history[0].ExitedAt)
}
