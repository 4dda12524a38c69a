package temporaltest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// A file server killed and started again listens on the same address and
// still has what it had: a workflow started before the kill is running
// after it, and the search attributes are registered.
func TestFileServerComesBackWithItsState(t *testing.T) {
	srv := temporaltest.StartFileServer(t)
	c, err := client.NewLazyClient(client.Options{HostPort: srv.Addr(), Namespace: temporaltest.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survives-a-kill", TaskQueue: "nobody-polls"}, "NoSuchWorkflow")
	if err != nil {
		t.Fatalf("starting a workflow: %v", err)
	}

	srv.Kill()
	if conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		_ = conn.Close()
		t.Fatalf("%s still accepts connections after Kill", srv.Addr())
	}

	srv.Start()
	desc, err := c.DescribeWorkflowExecution(ctx, "survives-a-kill", "")
	if err != nil {
		t.Fatalf("describing the workflow after the restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(); got != run.GetRunID() {
		t.Errorf("run %s after the restart, want %s", got, run.GetRunID())
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("status %v after the restart, want running", got)
	}
	assertSearchAttributes(t, c)
}
