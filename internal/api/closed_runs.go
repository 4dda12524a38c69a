package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// ClosedRuns finds the journey runs that closed in Temporal without
// recording their ending (failed, terminated by ops, cancelled, timed out:
// the workflow records every other ending itself, before it closes) and
// ends their enrollments as failed with the close's reason code and time
// (endClosedRun). A run like that leaves nothing for the workflow to do,
// so without it the enrollment would stay active, shown as running to
// support and in reports, and block the contact's re-entry, until the
// dispatcher's next signal or the contact's next enrollment noticed.
//
// It asks Temporal's visibility store, once a minute, for such closes
// since the last sweep (one list call, whatever the number of runs), so
// it is safe and cheap to run in every worker process: ending an
// enrollment is idempotent.
type ClosedRuns struct {
	s     *Server
	every time.Duration
	since time.Time
}

// ClosedRunsEvery is how often ClosedRuns.Run sweeps; closedRunsLookback
// is how far back its first sweep looks, and closedRunsOverlap how far
// each sweep reaches before the previous one began (visibility records a
// close a moment after it happens).
const (
	ClosedRunsEvery    = time.Minute
	closedRunsLookback = 7 * 24 * time.Hour
	closedRunsOverlap  = 5 * time.Minute
)

// NewClosedRuns builds the sweeper over the store and Temporal client of
// deps.
func NewClosedRuns(deps Deps) *ClosedRuns {
	s := backgroundServer(deps)
	return &ClosedRuns{s: s, every: ClosedRunsEvery, since: s.now().Add(-closedRunsLookback)}
}

// Run sweeps until ctx is done; a failed sweep is logged and tried again.
func (c *ClosedRuns) Run(ctx context.Context) {
	for {
		if n, err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
			c.s.log.Warn("closed runs: sweep failed; retrying", "error", err)
		} else if n > 0 {
			c.s.log.Info("closed runs: ended enrollments whose runs closed without an ending", "ended", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.every):
		}
	}
}

// closedRunsQuery lists the journey runs closed since since without an
// ending of their own.
func closedRunsQuery(since time.Time) string {
	return fmt.Sprintf("WorkflowType = 'Journey' AND (ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated' "+
		"OR ExecutionStatus = 'Canceled' OR ExecutionStatus = 'TimedOut') AND CloseTime >= '%s'", since.UTC().Format(time.RFC3339Nano))
}

// Sweep ends the enrollments of the runs closed without an ending since
// the last sweep (see ClosedRuns) and returns how many it ended.
func (c *ClosedRuns) Sweep(ctx context.Context) (int, error) {
	ctx = withLogger(ctx, c.s.log)
	began := c.s.now()
	ended := 0
	req := &workflowservice.ListWorkflowExecutionsRequest{Query: closedRunsQuery(c.since), PageSize: 500}
	for {
		page, err := c.s.temporal.ListWorkflow(ctx, req)
		if err != nil {
			return ended, fmt.Errorf("listing runs closed without an ending: %w", err)
		}
		for _, info := range page.GetExecutions() {
			id := memoEnrollmentID(info.GetMemo())
			if id == "" {
				continue // predates the memo: its enrollment cannot be told
			}
			e, err := c.s.store.Enrollment(ctx, id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				continue // erased with its contact
			case err != nil:
				return ended, err
			case e.Status != model.RunActive:
				continue
			}
			run := client.WorkflowExecutionMetadata{Status: info.GetStatus()}
			run.WorkflowExecution.ID, run.WorkflowExecution.RunID = info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
			if info.GetCloseTime() != nil {
				t := info.GetCloseTime().AsTime()
				run.WorkflowCloseTime = &t
			}
			if c.s.endClosedRun(ctx, e, run) {
				ended++
			}
		}
		if len(page.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = page.GetNextPageToken()
	}
	c.since = began.Add(-closedRunsOverlap)
	return ended, nil
}
