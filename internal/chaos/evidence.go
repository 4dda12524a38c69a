package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

var statusNames = map[enumspb.WorkflowExecutionStatus]string{
	enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:          "Running",
	enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:        "Completed",
	enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:           "Failed",
	enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:         "Canceled",
	enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:       "Terminated",
	enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW: "ContinuedAsNew",
	enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:        "TimedOut",
}

func (h *harness) collect(ctx context.Context, enrolled []Contact, notEnrolled int) (Evidence, error) {
	ev := Evidence{Steps: h.steps, Contacts: enrolled, NotEnrolled: notEnrolled, Runs: map[string]RunState{}}

	// Temporal's word on every run (retried: the server may still be busy).
	runs := make([]string, len(enrolled))
	forEach(ctx, len(enrolled), 8, func(i int) {
		id := workflows.JourneyWorkflowID(journeyID, enrolled[i].ID)
		for attempt := 0; ; attempt++ {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := h.tc.DescribeWorkflowExecution(dctx, id, "")
			cancel()
			var nf *serviceerror.NotFound
			switch {
			case err == nil:
				runs[i] = statusNames[resp.GetWorkflowExecutionInfo().GetStatus()]
				return
			case errors.As(err, &nf):
				runs[i] = "NotFound"
				return
			case attempt >= 5 || ctx.Err() != nil:
				runs[i] = "Unreachable"
				return
			}
			time.Sleep(time.Second)
		}
	})

	conn, err := h.pgConn(ctx)
	if err != nil {
		return ev, fmt.Errorf("reading the ledger: %w", err)
	}
	defer conn.Close(context.Background())
	enrollment := map[string]model.RunStatus{}
	rows, err := conn.Query(ctx, `SELECT DISTINCT ON (contact_id) contact_id, status FROM enrollments
		WHERE journey_id = $1 ORDER BY contact_id, started_at DESC`, journeyID)
	if err != nil {
		return ev, fmt.Errorf("reading enrollments: %w", err)
	}
	for rows.Next() {
		var (
			c string
			s model.RunStatus
		)
		if err := rows.Scan(&c, &s); err != nil {
			return ev, err
		}
		enrollment[c] = s
	}
	if err := rows.Err(); err != nil {
		return ev, err
	}
	for i, c := range enrolled {
		ev.Runs[c.ID] = RunState{Workflow: runs[i], Enrollment: enrollment[c.ID]}
	}

	rows, err = conn.Query(ctx, `SELECT id, contact_id, step_id, channel, provider, COALESCE(provider_message_id, ''),
			status, COALESCE(status_reason, ''), attempts
		FROM messages WHERE journey_id = $1 ORDER BY created_at, id`, journeyID)
	if err != nil {
		return ev, fmt.Errorf("reading the ledger: %w", err)
	}
	ev.Ledger, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (LedgerRow, error) {
		var l LedgerRow
		err := r.Scan(&l.ID, &l.ContactID, &l.StepID, &l.Channel, &l.Provider, &l.ProviderMessageID, &l.Status, &l.StatusReason, &l.Attempts)
		return l, err
	})
	if err != nil {
		return ev, fmt.Errorf("reading the ledger: %w", err)
	}

	err1 := h.getJSON(ctx, h.fakeURL+"/_chaos/records", &ev.Records)
	err2 := h.getJSON(ctx, h.fakeURL+"/_chaos/records?abandoned=1", &ev.Abandoned)
	if err := errors.Join(err1, err2); err != nil {
		// The file is the durable copy.
		var ferr error
		ev.Records, ev.Abandoned, ferr = ReadRecords(filepath.Join(h.cfg.WorkDir, "fake-records.jsonl"))
		if ferr != nil {
			return ev, fmt.Errorf("reading the fake's record: %w (and its file: %v)", err, ferr)
		}
	}
	return ev, nil
}
