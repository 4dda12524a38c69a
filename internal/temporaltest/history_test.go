package temporaltest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// chainInput is the test workflow's input: runs left to continue as new.
type chainInput struct {
	Secret string
	More   int
}

// chainWorkflow puts a value in each place a history keeps one: the first
// run's input (the value is not carried to the next run), an activity
// failure's message, a signal, and the result.
func chainWorkflow(ctx workflow.Context, in chainInput) (string, error) {
	if in.More > 0 {
		return "", workflow.NewContinueAsNewError(ctx, chainWorkflow, chainInput{Secret: "carried-on", More: in.More - 1})
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	err := workflow.ExecuteActivity(actx, failingActivity).Get(ctx, nil)
	if err == nil {
		return "", errors.New("the activity should have failed")
	}
	var note string
	workflow.GetSignalChannel(ctx, "note").Receive(ctx, &note)
	return "result-VALUE-7", nil
}

func failingActivity(context.Context) error {
	return temporal.NewNonRetryableApplicationError("failed for failure-value-3", "Test", nil)
}

func TestFindInHistory(t *testing.T) {
	srv := temporaltest.StartDevServer(t)
	c := srv.Client()
	w := worker.New(c, "history-test", worker.Options{})
	w.RegisterWorkflow(chainWorkflow)
	w.RegisterActivity(failingActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "chain", TaskQueue: "history-test"}, chainWorkflow,
		chainInput{Secret: "input-value-1", More: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Signal the last run once it waits (signals go to the current run).
	deadline := time.Now().Add(90 * time.Second)
	for {
		runs, err := temporaltest.WorkflowHistory(ctx, c, "chain", "")
		if err == nil && len(runs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chain did not reach its third run: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.SignalWorkflow(ctx, "chain", "", "note", "signal-value-2"); err != nil {
		t.Fatal(err)
	}
	var result string
	if err := c.GetWorkflow(ctx, "chain", "").Get(ctx, &result); err != nil {
		t.Fatal(err)
	}

	runs, err := temporaltest.WorkflowHistory(ctx, c, "chain", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].RunID != run.GetRunID() {
		t.Fatalf("got %d runs starting with %s, want 3 starting with the first run %s", len(runs), runs[0].RunID, run.GetRunID())
	}
	hits, err := temporaltest.FindInHistory(ctx, c, "chain", "input-value-1", "signal-value-2", "failure-value-3", "result-value-7", "never-there")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, h := range hits {
		found[h.Needle] = h.RunID
	}
	for needle, runID := range map[string]string{
		"input-value-1":   runs[0].RunID, // only in the first run, two continue-as-news back
		"signal-value-2":  runs[2].RunID,
		"failure-value-3": runs[2].RunID,
		"result-value-7":  runs[2].RunID, // matched whatever the case
	} {
		if found[needle] != runID {
			t.Errorf("%q: found in run %q, want %q (hits: %v)", needle, found[needle], runID, hits)
		}
	}
	if _, ok := found["never-there"]; ok {
		t.Errorf("found a value that was never there: %v", hits)
	}
}
