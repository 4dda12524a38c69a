package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc/codes"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// A start call can fail without saying whether the run started: the answer
// was lost, or the deadline passed while Temporal was busy or restarting.
// The API then asks Temporal what happened before it keeps or drops the
// enrollment's row. These bound how long that takes: a few short describe
// calls, not a wait for Temporal to recover.
const (
	startCheckAttempts = 3
	startCheckTimeout  = 2 * time.Second
	startCheckBackoff  = 250 * time.Millisecond
)

// idempotencyKeyHeader names one enroll call. Every attempt of the call with
// the same key is the same enrollment (its id is derived from the key), so a
// retry after an unknown outcome answers with the run the first attempt
// started instead of a 409.
const idempotencyKeyHeader = "Idempotency-Key"

// enrollmentIDSpace is the UUID namespace enrollment ids are derived in.
var enrollmentIDSpace = uuid.MustParse("6f1f4f0e-7c2a-5d8e-9b43-2a1c0e5d7b61")

// enrollmentID is the id of the enrollment a call with this key makes. It
// includes the journey and the contact, so a key reused for another pair is
// another enrollment.
func enrollmentID(journeyID, contactID, key string) string {
	return "e_" + uuid.NewSHA1(enrollmentIDSpace, []byte(journeyID+"\x00"+contactID+"\x00"+key)).String()
}

// idempotencyKey reads the Idempotency-Key header; "" when there is none.
func idempotencyKey(r *http.Request) (string, error) {
	key := strings.TrimSpace(r.Header.Get(idempotencyKeyHeader))
	if len(key) > maxIDLen {
		return "", invalid(FieldError{Path: idempotencyKeyHeader, Message: fmt.Sprintf("at most %d characters", maxIDLen)})
	}
	return key, nil
}

// startUnknownError is a start whose outcome Temporal could not tell us: the
// enrollment's row stays, and the run may exist.
type startUnknownError struct{ start, check error }

func (e *startUnknownError) Error() string {
	return fmt.Sprintf("starting the workflow: %v; checking whether it started: %v", e.start, e.check)
}
func (e *startUnknownError) Unwrap() error { return e.start }

// startOutcomeUnknown is the 503 for a start nobody can confirm or deny.
func startOutcomeUnknown(e storage.Enrollment, key string, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "start_outcome_unknown",
		Message: fmt.Sprintf("could not tell whether journey %s started for contact %s (enrollment %s): %v; "+
			"retrying with the header %s: %s is safe: it answers with this enrollment if its run started, and starts it if not",
			e.JourneyID, e.ContactID, e.ID, cause, idempotencyKeyHeader, key),
		IdempotencyKey: key}
}

// ownership is what Temporal says about an enrollment's run.
type ownership int

const (
	notStarted       ownership = iota // no run, or only another enrollment's
	ownRun                            // the enrollment's run exists
	ownershipUnknown                  // Temporal did not answer
)

// startRun starts the enrollment's workflow (its row is committed) and
// returns the run id only if the run exists. When the start call fails in a
// way that does not say whether the run started, it asks Temporal: a run
// that started is the enrollment's.
// ownerCheck is false for an enrollment whose id was just made up: an open
// run that Temporal reports cannot be its own then.
//
// "Not started" is what Temporal says once the call has given up; a start
// still in flight inside the server could in principle land later. That run
// writes its enrollment row again if it was dropped (its first activity), so
// the row and the run still agree, and a retry with the same key answers
// with it.
func (s *Server) startRun(ctx context.Context, e storage.Enrollment, opts client.StartWorkflowOptions, in workflows.JourneyInput, ownerCheck bool) (string, error) {
	// Bounded: the caller (an API client, a dispatcher) waits on it.
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SignalTimeout)
	run, err := s.temporal.ExecuteWorkflow(sctx, opts, workflows.Journey, in)
	cancel()
	if err == nil {
		return run.GetRunID(), nil
	}
	// The client may have gone away; the row must still end up matching
	// Temporal, so the checks do not inherit its cancellation.
	ctx = context.WithoutCancel(ctx)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &already):
		if !ownerCheck {
			return "", err
		}
		// An earlier attempt of this call (same key) may have started it.
		runID, own, checkErr := s.checkOwnRun(ctx, e, already.RunId, startCheckAttempts)
		switch own {
		case ownRun:
			loggerFrom(ctx).Info("api: an earlier attempt started this enrollment's run", "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", runID)
			return runID, nil
		case ownershipUnknown:
			return "", &startUnknownError{start: err, check: checkErr}
		}
		return "", err
	case !mayHaveStarted(err):
		return "", &startError{err}
	}
	runID, own, checkErr := s.checkOwnRun(ctx, e, "", startCheckAttempts)
	switch own {
	case ownRun:
		loggerFrom(ctx).Warn("api: the start call failed but the run started", "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", runID, "error", err)
		return runID, nil
	case notStarted:
		return "", &startError{err}
	default:
		loggerFrom(ctx).Warn("api: could not tell whether a run started", "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "error", err, "check_error", checkErr)
		return "", &startUnknownError{start: err, check: checkErr}
	}
}

// mayHaveStarted reports whether a failed start call may still have started
// the run: it timed out, was cancelled, or lost its connection, rather than
// being refused before Temporal acted on it.
func mayHaveStarted(err error) bool {
	switch serviceerror.ToStatus(err).Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange, codes.Unimplemented:
		return false
	default:
		return true
	}
}

// checkOwnRun describes the enrollment's workflow (runID, or its current run
// when "") and tells whether that run is the enrollment's own, by the
// enrollment id in its memo. Each attempt has its own short timeout.
func (s *Server) checkOwnRun(ctx context.Context, e storage.Enrollment, runID string, attempts int) (string, ownership, error) {
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return "", ownershipUnknown, ctx.Err()
			case <-time.After(startCheckBackoff << (i - 1)):
			}
		}
		dctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
		d, err := s.temporal.DescribeWorkflow(dctx, e.WorkflowID, runID)
		cancel()
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			if memoEnrollmentID(d.Memo) == e.ID {
				return d.WorkflowExecution.RunID, ownRun, nil
			}
			return "", notStarted, nil
		case errors.As(err, &nf):
			return "", notStarted, nil
		}
		last = err
	}
	return "", ownershipUnknown, last
}

// memoEnrollmentID is the enrollment id a run was started with; "" for runs
// started before the memo existed.
func memoEnrollmentID(m *commonpb.Memo) string {
	p := m.GetFields()[workflows.MemoEnrollmentID]
	if p == nil {
		return ""
	}
	var id string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &id); err != nil {
		return ""
	}
	return id
}

// replayed answers a call whose enrollment already exists: an earlier
// attempt with the same Idempotency-Key made it. cause is the refusal the
// call would otherwise get (already_active, reentry_refused...).
func (s *Server) replayed(ctx context.Context, id string, cause error) (startedRun, error) {
	stored, err := s.store.Enrollment(ctx, id)
	if err != nil {
		return startedRun{}, cause
	}
	// The run id is a courtesy: the run may have ended long ago.
	runID, own, _ := s.checkOwnRun(ctx, stored, "", 1)
	if own != ownRun {
		runID = ""
	}
	return startedRun{Enrollment: stored, RunID: runID, Replayed: true}, nil
}
