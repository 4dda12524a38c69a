package benchjourney

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// side is one of the two things compared.
type side string

const (
	tutti side = "tutti"
	hand  side = "hand-written"
	// stepsOnly is the hand-written workflow without the bookkeeping
	// activities (HandInput.StepsOnly), measured for P2 only.
	stepsOnly side = "hand-written, steps only"
	// tuttiAsync is enrollment through the API with Prefer: respond-async
	// (the dispatcher starts the run), measured for enrollment only.
	tuttiAsync side = "tutti, respond-async"
)

// run is one started workflow.
type run struct {
	id, runID string
}

// startRun starts one run of jv for the contact on queue: the journey
// workflow with the options the API starts it with, or the hand-written
// workflow with its steps.
func (h *harness) startRun(ctx context.Context, s side, jv storage.JourneyVersion, contactID, queue string) (run, error) {
	eid := fmt.Sprintf("e_bench_%d", h.runSeq.Add(1))
	var (
		wr  client.WorkflowRun
		err error
	)
	switch s {
	case tutti:
		opts := client.StartWorkflowOptions{
			ID:        workflows.JourneyWorkflowID(jv.JourneyID, contactID),
			TaskQueue: queue,
			Memo:      map[string]any{workflows.MemoEnrollmentID: eid},
			TypedSearchAttributes: temporal.NewSearchAttributes(
				workflows.SearchContactID.ValueSet(contactID),
				workflows.SearchJourneyID.ValueSet(jv.JourneyID),
				workflows.SearchJourneyVersion.ValueSet(int64(jv.Version)),
				workflows.SearchJourneyStep.ValueSet(jv.Spec.Steps[0].ID),
			),
		}
		wr, err = h.tc.ExecuteWorkflow(ctx, opts, workflows.Journey, workflows.JourneyInput{
			EnrollmentID: eid, ContactID: contactID, Version: jv.Version, Spec: jv.Spec})
	case hand, stepsOnly:
		in := HandInput{EnrollmentID: eid, ContactID: contactID, JourneyID: jv.JourneyID, Version: jv.Version, Steps: jv.Spec.Steps,
			StepsOnly: s == stepsOnly}
		if jv.Spec.Goal != nil {
			in.Goal = jv.Spec.Goal.Event
		}
		wr, err = h.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hand/" + jv.JourneyID + "/" + contactID, TaskQueue: queue}, Handwritten, in)
	default:
		return run{}, fmt.Errorf("no side %q", s)
	}
	if err != nil {
		return run{}, fmt.Errorf("starting a %s run of %s: %w", s, jv.JourneyID, err)
	}
	return run{id: wr.GetID(), runID: wr.GetRunID()}, nil
}

// startRuns starts one run per contact, starters at a time.
func (h *harness) startRuns(ctx context.Context, s side, jv storage.JourneyVersion, contacts []string, queue string) ([]run, error) {
	runs := make([]run, len(contacts))
	err := parallel(ctx, len(contacts), h.cfg.Starters, func(ctx context.Context, i int) error {
		var err error
		runs[i], err = h.startRun(ctx, s, jv, contacts[i], queue)
		return err
	})
	return runs, err
}

// awaitAll waits until every run has closed and fails if one did not
// complete.
func (h *harness) awaitAll(ctx context.Context, runs []run) error {
	return parallel(ctx, len(runs), 16, func(ctx context.Context, i int) error {
		if err := h.tc.GetWorkflow(ctx, runs[i].id, runs[i].runID).Get(ctx, nil); err != nil {
			return fmt.Errorf("run %s: %w", runs[i].id, err)
		}
		return nil
	})
}

// closeTimes are the server's close times of closed runs.
func (h *harness) closeTimes(ctx context.Context, runs []run) ([]time.Time, error) {
	out := make([]time.Time, len(runs))
	err := parallel(ctx, len(runs), 8, func(ctx context.Context, i int) error {
		d, err := h.tc.DescribeWorkflowExecution(ctx, runs[i].id, runs[i].runID)
		if err != nil {
			return err
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return fmt.Errorf("run %s is %s, not completed", runs[i].id, info.GetStatus())
		}
		out[i] = info.GetCloseTime().AsTime()
		return nil
	})
	return out, err
}

// waitParked waits until every run waits on its timer with nothing else to
// do: no workflow task and no activity pending. A run enrolled with
// respond-async (no run id) may not exist yet: it is waited for.
func (h *harness) waitParked(ctx context.Context, runs []run) error {
	left := runs
	deadline := time.Now().Add(time.Hour)
	for len(left) > 0 {
		busy := make([]bool, len(left))
		err := parallel(ctx, len(left), 8, func(ctx context.Context, i int) error {
			d, err := h.tc.DescribeWorkflowExecution(ctx, left[i].id, left[i].runID)
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &nf) && left[i].runID == "":
				busy[i] = true // enrolled with respond-async: the dispatcher has yet to start it
				return nil
			case err != nil:
				return err
			}
			if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return fmt.Errorf("run %s is %s while it should wait", left[i].id, st)
			}
			busy[i] = d.GetPendingWorkflowTask() != nil || len(d.GetPendingActivities()) > 0
			return nil
		})
		if err != nil {
			return err
		}
		var next []run
		for i, b := range busy {
			if b {
				next = append(next, left[i])
			}
		}
		left = next
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs still busy after an hour", len(left))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// history counts a closed run's history events, in all and by type.
func (h *harness) history(ctx context.Context, r run) (int, map[string]int, error) {
	it := h.tc.GetWorkflowHistory(ctx, r.id, r.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	total, byType := 0, map[string]int{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return 0, nil, err
		}
		total++
		byType[ev.GetEventType().String()]++
	}
	return total, byType, nil
}

// cpu is the CPU time the Temporal server and the main worker used so far.
func (h *harness) cpu() (time.Duration, error) {
	a, err := cpuTime(h.temporal.pid())
	if err != nil {
		return 0, err
	}
	b, err := cpuTime(h.worker.pid())
	return a + b, err
}
