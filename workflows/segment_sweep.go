package workflows

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
)

// SegmentSweepScheduleID names the Temporal Schedule that runs
// SegmentSweep; the worker creates it at start if it is missing.
const SegmentSweepScheduleID = "tutti-segment-sweep"

// SegmentSweep re-evaluates the segments whose membership changes with
// time alone (a window that expires, now): events and changes to a contact
// are evaluated as they happen (storage.EvaluateQueuedSegments), time is
// not. One activity does the work, page by page, heartbeating its place.
func SegmentSweep(ctx workflow.Context) (activities.SweepSegmentsResult, error) {
	var a *activities.Activities
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	var res activities.SweepSegmentsResult
	err := workflow.ExecuteActivity(ctx, a.SweepSegments, activities.SweepSegmentsInput{}).Get(ctx, &res)
	return res, err
}

// EnsureSegmentSweepSchedule creates the sweep's schedule, every every, if
// it does not exist; an existing one is left as it is (another worker
// created it, or an operator changed it). Overlapping runs are skipped: a
// sweep still running when the next is due is enough.
func EnsureSegmentSweepSchedule(ctx context.Context, c client.Client, every time.Duration) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   SegmentSweepScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action: &client.ScheduleWorkflowAction{
			ID:                       "tutti-segment-sweep-run",
			Workflow:                 SegmentSweep,
			TaskQueue:                TaskQueue,
			WorkflowExecutionTimeout: 2 * time.Hour,
		},
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return nil
	}
	return err
}
