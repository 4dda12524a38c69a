package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
)

// The lead-score sweep: a Temporal Schedule starts ScoreSweep every
// ScoreSweepEvery; it finds the contacts whose band time alone has moved
// (intent decays) and scores every contact once under a new model version.
// Band changes from events and attribute changes do not wait for it: the
// worker's scorer handles those as they are stored.
const (
	// ScoreSweepScheduleID names the one schedule, created at worker start.
	ScoreSweepScheduleID = "tutti-score-sweep"
	// ScoreSweepWorkflowID is the id of the schedule's runs (Temporal
	// appends the scheduled time).
	ScoreSweepWorkflowID = "tutti-score-sweep"
	// ScoreSweepEvery is how often the sweep runs, and so how late, at
	// most, a band change that time alone brings is seen (plus the run).
	ScoreSweepEvery = time.Minute
	// ScoreSweepPage is how many contacts one activity rescores.
	ScoreSweepPage = 500
	// scoreSweepPages bounds one run (and its history): a longer backlog
	// is left for the next run.
	scoreSweepPages = 100
)

// ScoreSweep is one run of the sweep: pages of SweepScores until one says
// there is no more, or scoreSweepPages. It returns the totals.
func ScoreSweep(ctx workflow.Context) (activities.SweepScoresResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute})
	var (
		a     *activities.Activities
		total activities.SweepScoresResult
	)
	for range scoreSweepPages {
		var page activities.SweepScoresResult
		if err := workflow.ExecuteActivity(ctx, a.SweepScores, activities.SweepScoresInput{Limit: ScoreSweepPage}).Get(ctx, &page); err != nil {
			return total, err
		}
		total.Due += page.Due
		total.Backfilled += page.Backfilled
		total.Changed += page.Changed
		total.More = page.More
		if !page.More {
			break
		}
	}
	return total, nil
}

// EnsureScoreSweepSchedule creates the sweep's schedule unless it exists:
// every worker calls it at start, and all but the first find it there. A
// run still going when the next is due makes the next one skip.
func EnsureScoreSweepSchedule(ctx context.Context, c client.Client) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      ScoreSweepScheduleID,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: ScoreSweepEvery}}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID:                       ScoreSweepWorkflowID,
			Workflow:                 ScoreSweep,
			TaskQueue:                TaskQueue,
			WorkflowExecutionTimeout: 30 * time.Minute,
		},
	})
	if err == nil || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return nil
	}
	return fmt.Errorf("creating the lead-score sweep's schedule: %w", err)
}
