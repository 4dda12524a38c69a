package benchjourney

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// HandInput is the hand-written workflow's input: what a developer writing a
// workflow for one journey would pass it.
type HandInput struct {
	EnrollmentID string         `json:"enrollment_id"`
	ContactID    string         `json:"contact_id"`
	JourneyID    string         `json:"journey_id"`
	Version      int            `json:"version"`
	Steps        []journey.Step `json:"steps"`
	// Goal is the event that ends the run at once during a wait ("": none).
	Goal string `json:"goal,omitempty"`
	// StepsOnly leaves out the bookkeeping activities (BeginEnrollment and
	// FinishEnrollment): the workflow a developer would write for the
	// journey's steps alone, the smallest history the steps can have.
	StepsOnly bool `json:"steps_only,omitempty"`
}

// Handwritten is the baseline: the journey's steps written straight as
// Temporal code, with the same activities and activity options as
// workflows.Journey, and nothing else (no search attribute updates, no query
// handler, no signal bookkeeping). Its history is what a developer writing
// the journey by hand would get. Steps run in order; a branch only
// evaluates its condition.
func Handwritten(ctx workflow.Context, in HandInput) (model.RunStatus, error) {
	var a *activities.Activities
	dbCtx := workflow.WithActivityOptions(ctx, dbActivityOptions)
	sendCtx := workflow.WithActivityOptions(ctx, sendActivityOptions)
	var err error
	if !in.StepsOnly {
		err = workflow.ExecuteActivity(dbCtx, a.BeginEnrollment, activities.BeginEnrollmentInput{
			EnrollmentID: in.EnrollmentID, ContactID: in.ContactID, JourneyID: in.JourneyID, Version: in.Version,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		}).Get(ctx, nil)
		if err != nil {
			return "", err
		}
	}
	events := workflow.GetSignalChannel(ctx, workflows.SignalEvent)
	status, reason := model.RunCompleted, "reached the end"
	for _, step := range in.Steps {
		switch step.Kind() {
		case journey.KindSend:
			var res activities.SendResult
			err = workflow.ExecuteActivity(sendCtx, a.Send, activities.SendInput{
				IdempotencyKey: fmt.Sprintf("hand/%s/%s", in.EnrollmentID, step.ID),
				ContactID:      in.ContactID, JourneyID: in.JourneyID, JourneyVersion: in.Version, StepID: step.ID,
				Class: journey.ClassMarketing, Send: *step.Send,
			}).Get(ctx, &res)
		case journey.KindWait:
			if waitForEvent(ctx, events, step.Wait.Duration.Std(), in.Goal) {
				status, reason = model.RunConverted, "goal: "+in.Goal
			}
		case journey.KindWaitFor:
			waitForEvent(ctx, events, step.WaitFor.Timeout.Std(), step.WaitFor.Event)
		case journey.KindBranch:
			var res activities.EvaluateConditionResult
			err = workflow.ExecuteActivity(dbCtx, a.EvaluateCondition, activities.EvaluateConditionInput{
				ContactID: in.ContactID, Condition: step.Branch.Condition,
				Journey: activities.JourneyContext{ID: in.JourneyID, Version: in.Version, Step: step.ID},
			}).Get(ctx, &res)
		default:
			return "", temporal.NewNonRetryableApplicationError("the hand-written workflow has no "+string(step.Kind())+" step", "InvalidStep", nil)
		}
		if err != nil {
			return "", err
		}
		if status != model.RunCompleted {
			break
		}
	}
	if in.StepsOnly {
		return status, nil
	}
	err = workflow.ExecuteActivity(dbCtx, a.FinishEnrollment, activities.FinishEnrollmentInput{
		EnrollmentID: in.EnrollmentID, Status: status, Reason: reason,
	}).Get(ctx, nil)
	return status, err
}

// waitForEvent waits for d or for an event named name ("": none), whichever
// comes first, with a timer and a selector as one writes it by hand; it
// reports whether the event came.
func waitForEvent(ctx workflow.Context, events workflow.ReceiveChannel, d time.Duration, name string) bool {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, d)
	fired, happened := false, false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) { fired = true })
	sel.AddReceive(events, func(ch workflow.ReceiveChannel, _ bool) {
		var ev workflows.EventSignal
		ch.Receive(ctx, &ev)
		happened = name != "" && ev.Name == name
	})
	for !fired && !happened {
		sel.Select(ctx)
	}
	return happened
}

// The activity options of workflows.Journey (its dbActivityCtx and
// sendActivityCtx), so both sides schedule activities alike.
var (
	dbActivityOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}
	sendActivityOptions = workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		HeartbeatTimeout:       10 * time.Second,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute},
	}
)
