package workflows

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// Histories recorded by earlier code must replay on the current code, or
// runs in flight at a deploy would fail. Each file in testdata is a real
// history from a dev server (temporal workflow show --output json format).
//
// journey_support_exit_before_codes.json was recorded before exit reasons
// and condition errors became codes: a branch whose activity result
// carried the evaluator's message, then support's exit signal with its
// free text in reason. The current code issues the same commands for it
// (an exit signal's handling issues none; FinishEnrollment is scheduled at
// the same point, its input only gaining an empty exit_request_id).
func TestJourney_ReplaysRecordedHistories(t *testing.T) {
	for _, file := range []string{
		"testdata/journey_support_exit_before_codes.json",
	} {
		t.Run(file, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Journey)
			logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, file))
		})
	}
}
