package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

type enrollRequest struct {
	ContactID string `json:"contact_id"`
}

// enroll starts a journey for a contact: the backend's per-signup call.
//
// With `Prefer: respond-async` (RFC 7240) the run is started through the
// delivery outbox: the enrollment is decided (contact, journey, re-entry
// policy) and recorded with an 'enroll' delivery in one transaction, and
// the answer is 202 with Preference-Applied at PostgreSQL speed, without a
// run id, whether Temporal is reachable or not; the dispatcher starts the
// run, retrying until Temporal takes it. Without it the run is started
// before the answer (201 with its run id).
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	c, err := s.contactByID(ctx, strings.TrimSpace(req.ContactID), "contact_id")
	if err != nil {
		writeError(w, r, err)
		return
	}
	journeyID := r.PathValue("journey_id")
	jv, err := s.store.LatestJourneyVersion(ctx, journeyID)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("journey", journeyID, ""))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if k := jv.Spec.Trigger.Key; k != "" {
		// Its runs are one per value of a property of the triggering
		// event: only that event starts one.
		writeError(w, r, conflict("keyed_journey", fmt.Sprintf("journey %s runs once per %s of its trigger event %s: post the event (POST /v1/events) to start a run",
			jv.JourneyID, k, jv.Spec.Trigger.Event)))
		return
	}
	async := prefersAsync(r.Header)
	started, err := s.startJourney(ctx, c.ID, jv, nil, key, "", async)
	if err != nil {
		writeError(w, r, err)
		return
	}
	// A run just started always has a run id; a replayed one's is empty
	// once it is no longer the workflow's current run.
	body := EnrollmentAnswer{Enrollment: started.Enrollment, RunID: started.RunID, WorkflowID: started.Enrollment.WorkflowID,
		StartPending: started.StartPending}
	if async {
		w.Header().Set("Preference-Applied", "respond-async")
	}
	if started.StartPending {
		writeJSON(w, http.StatusAccepted, body)
		return
	}
	if started.Replayed {
		writeJSON(w, http.StatusOK, body)
		return
	}
	writeJSON(w, http.StatusCreated, body)
}

type startedRun struct {
	Enrollment storage.Enrollment
	RunID      string
	// Replayed: an earlier attempt with the same idempotency key made the
	// enrollment; this call changed nothing.
	Replayed bool
	// StartPending: the run is to be started by the dispatcher (an 'enroll'
	// delivery); RunID is empty.
	StartPending bool
}

// prefersAsync reports whether the request's Prefer header (RFC 7240)
// asks for respond-async.
func prefersAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for pref := range strings.SplitSeq(v, ",") {
			token, _, _ := strings.Cut(pref, ";")
			if name, _, _ := strings.Cut(strings.TrimSpace(token), "="); strings.EqualFold(strings.TrimSpace(name), "respond-async") {
				return true
			}
		}
	}
	return false
}

// startError marks an error from Temporal's start call, as opposed to one
// from Postgres around it.
type startError struct{ err error }

func (e *startError) Error() string { return "starting the workflow: " + e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// startJourney is the one start path, for the enrollments route and for
// event triggers. Postgres enforces the re-entry policy durably (enrollment
// rows outlive Temporal's retention) and Temporal enforces that no two runs
// of one (journey, contact) workflow id are open at once.
// trigger is the event that enrolled the contact, nil for an API start.
//
// The enrollment row is committed first and the workflow started after,
// outside any transaction, so a connection never waits on Temporal (issue
// 10: at 32 concurrent clients the API's pool queued behind starts). Rows
// and runs still agree:
//   - no duplicate runs: the row's commit claims the (contact, journey)
//     pair (the unique index on active rows) before anything starts, and
//     Temporal refuses a second open run of the workflow id;
//   - no orphan rows: a start Temporal refused drops the row again; a start
//     it may have made keeps the row (its run's first activity would find it
//     anyway) and answers 503 start_outcome_unknown; a row whose run never
//     started after all (that case, or the API dying between commit and
//     start) is dropped by the next enrollment of the contact in the
//     journey, which asks Temporal about it (settleStale), or picked up by a
//     retry with the same key, which starts its run.
//
// With async the run is not started here: the row is committed with an
// 'enroll' delivery (storage.RecordEnrollmentToStart) and the dispatcher
// starts it (startRecorded). The same guarantees hold: the row claims the
// pair before any start, the delivery is retried until Temporal has the
// enrollment's run (the memo names the enrollment, so a repeat finds it),
// and a row whose start is still pending is never settled as orphaned.
//
// key names the call (the Idempotency-Key; "" for none): the enrollment id
// is derived from it, so every attempt of one call is one enrollment.
// runKey is the run's key digest in a keyed journey ("" otherwise): the
// run, its workflow id and its re-entry rule are that key value's.
func (s *Server) startJourney(ctx context.Context, contactID string, jv storage.JourneyVersion, trigger *workflows.EventSignal, key, runKey string, async bool) (startedRun, error) {
	keyed := key != ""
	if !keyed {
		key = uuid.NewString()
	}
	e := storage.Enrollment{
		ID:         enrollmentID(jv.JourneyID, contactID, key),
		ContactID:  contactID,
		JourneyID:  jv.JourneyID,
		Version:    jv.Version,
		WorkflowID: workflows.JourneyRunWorkflowID(jv.JourneyID, contactID, runKey),
		Status:     model.RunActive,
		RunKey:     runKey,
	}
	firstStep := firstStepOf(jv)
	e.CurrentStep = firstStep
	if keyed {
		// An earlier attempt of this call recorded the enrollment: answer
		// with it, and start its run if that attempt could not.
		if stored, err := s.store.Enrollment(ctx, e.ID); err == nil {
			if pending, err := s.store.EnrollmentStartPending(ctx, stored.ID); err != nil || pending {
				// Its start is in the outbox: the dispatcher starts it.
				return startedRun{Enrollment: stored, Replayed: true, StartPending: pending}, err
			}
			return s.resumeStart(ctx, stored, jv, trigger, key)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return startedRun{}, err
		}
	}
	if err := s.checkReentry(ctx, contactID, jv, runKey); err != nil {
		return startedRun{}, err
	}
	opts, in := s.startOptions(e, firstStep), s.journeyInput(e, jv, trigger)

	var (
		stored storage.Enrollment
		err    error
	)
	if async {
		stored, err = s.store.RecordEnrollmentToStart(ctx, e)
	} else {
		err = s.store.RecordEnrollment(ctx, e)
	}
	switch {
	case errors.Is(err, storage.ErrAlreadyActive):
		return startedRun{}, alreadyActive(jv.JourneyID, contactID)
	case errors.Is(err, storage.ErrEnrollmentExists) && keyed:
		// The same key's first attempt recorded it a moment ago.
		return s.replayed(ctx, e.ID, alreadyActive(jv.JourneyID, contactID))
	case err != nil:
		return startedRun{}, err
	case async:
		loggerFrom(ctx).Info("api: enrollment recorded, its start queued", "journey_id", jv.JourneyID, "version", jv.Version,
			"contact_id", contactID, "enrollment_id", e.ID, "workflow_id", e.WorkflowID)
		return startedRun{Enrollment: stored, StartPending: true}, nil
	}
	runID, err := s.startRun(ctx, e, opts, in, keyed)
	if err != nil {
		return startedRun{}, s.startFailed(ctx, e, key, err)
	}

	stored, err = s.store.Enrollment(ctx, e.ID)
	if err != nil {
		// Started and committed; only the read-back failed. Answer with what
		// was written rather than fail a start that happened.
		loggerFrom(ctx).Warn("api: reading back a new enrollment", "enrollment_id", e.ID, "error", err)
		e.StartedAt = s.now().UTC()
		stored = e
	}
	loggerFrom(ctx).Info("api: journey started", "journey_id", jv.JourneyID, "version", jv.Version,
		"contact_id", contactID, "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", runID)
	return startedRun{Enrollment: stored, RunID: runID}, nil
}

// firstStepOf is the id of the step a run of jv starts at ("" for none):
// the JourneyStep it is started with.
func firstStepOf(jv storage.JourneyVersion) string {
	if len(jv.Spec.Steps) == 0 {
		return ""
	}
	return jv.Spec.Steps[0].ID
}

// startOptions are the workflow start options of an enrollment's run. Ids
// only: no email, phone or attributes reach Temporal. The workflow loads the
// contact through activities when it needs them.
func (s *Server) startOptions(e storage.Enrollment, firstStep string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       e.WorkflowID,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{workflows.MemoEnrollmentID: e.ID},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchContactID.ValueSet(e.ContactID),
			workflows.SearchJourneyID.ValueSet(e.JourneyID),
			workflows.SearchJourneyVersion.ValueSet(int64(e.Version)),
			workflows.SearchJourneyStep.ValueSet(firstStep),
		),
	}
}

func (s *Server) journeyInput(e storage.Enrollment, jv storage.JourneyVersion, trigger *workflows.EventSignal) workflows.JourneyInput {
	return workflows.JourneyInput{
		EnrollmentID:       e.ID,
		ContactID:          e.ContactID,
		Version:            jv.Version,
		Spec:               jv.Spec,
		ContinueAsNewAfter: s.cfg.ContinueAsNewAfter,
		Trigger:            trigger,
	}
}

// startFailed answers a start that did not succeed, and drops the
// enrollment's row unless its run may exist.
func (s *Server) startFailed(ctx context.Context, e storage.Enrollment, key string, err error) error {
	var (
		already *serviceerror.WorkflowExecutionAlreadyStarted
		se      *startError
		unknown *startUnknownError
	)
	if errors.As(err, &unknown) { // before already: it may wrap one
		// The row stays: the run may exist. A retry with the key resolves
		// it, and so does the contact's next enrollment in the journey.
		return startOutcomeUnknown(e, key, unknown.start)
	}
	// Temporal says this enrollment's run does not exist. The client may
	// have gone away; the row must still go.
	if _, derr := s.store.DropUnstartedEnrollment(context.WithoutCancel(ctx), e.ID); derr != nil {
		loggerFrom(ctx).Warn("api: dropping the row of a start that did not happen; the next enrollment drops it", "enrollment_id", e.ID, "error", derr)
	}
	switch {
	case errors.As(err, &already):
		// Another enrollment's run is still open (it is finishing).
		return alreadyActive(e.JourneyID, e.ContactID)
	case errors.As(err, &se):
		return unavailable(fmt.Sprintf("could not start journey %s for contact %s: %v; no run started and nothing was recorded, retry", e.JourneyID, e.ContactID, se.err))
	default:
		return err
	}
}

// resumeStart answers a keyed call whose enrollment an earlier attempt
// recorded: with its run if it has one, and otherwise, while the row is
// active, by starting the run now (the earlier attempt could not say
// whether it had, or died before it tried).
func (s *Server) resumeStart(ctx context.Context, e storage.Enrollment, jv storage.JourneyVersion, trigger *workflows.EventSignal, key string) (startedRun, error) {
	runID, own, err := s.checkOwnRun(ctx, e, "", startCheckAttempts)
	switch {
	case own == ownRun || e.Status != model.RunActive:
		if own != ownRun {
			runID = "" // the run may have ended long ago
		}
		return startedRun{Enrollment: e, RunID: runID, Replayed: true}, nil
	case own == ownershipUnknown:
		return startedRun{}, startOutcomeUnknown(e, key, err)
	}
	if jv.Version != e.Version {
		// A version was published since the enrollment was recorded: its
		// run runs the version it was enrolled in.
		if jv, err = s.store.JourneyVersion(ctx, e.JourneyID, e.Version); err != nil {
			return startedRun{}, err
		}
	}
	firstStep := firstStepOf(jv)
	runID, err = s.startRun(ctx, e, s.startOptions(e, firstStep), s.journeyInput(e, jv, trigger), true)
	if err != nil {
		return startedRun{}, s.startFailed(ctx, e, key, err)
	}
	loggerFrom(ctx).Info("api: started the run of an enrollment an earlier attempt recorded", "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", runID)
	return startedRun{Enrollment: e, RunID: runID}, nil
}

// startRecorded starts the run of e, an active enrollment recorded before
// (with its 'enroll' delivery), unless Temporal already has it (a repeated
// delivery), and returns its run id. Unlike resumeStart it never drops e:
// the client was answered with it, so every failure (Temporal down, the
// previous run of the workflow id still closing, an unclear outcome) is
// returned to be retried.
func (s *Server) startRecorded(ctx context.Context, e storage.Enrollment) (string, error) {
	runID, own, err := s.checkOwnRun(ctx, e, "", 1)
	switch own {
	case ownRun:
		return runID, nil
	case ownershipUnknown:
		return "", fmt.Errorf("asking Temporal whether enrollment %s's run exists: %w", e.ID, err)
	}
	jv, err := s.store.JourneyVersion(ctx, e.JourneyID, e.Version)
	if err != nil {
		return "", err
	}
	firstStep := firstStepOf(jv)
	return s.startRun(ctx, e, s.startOptions(e, firstStep), s.journeyInput(e, jv, nil), true)
}

func alreadyActive(journeyID, contactID string) *Error {
	return conflict("already_active", fmt.Sprintf("contact %s already has an active run of journey %s", contactID, journeyID))
}

// checkReentry refuses a contact with an active run of the journey, and
// asks the journey's re-entry policy about one who went through it before:
// in a keyed journey, both for the run's key value (runKey) only.
func (s *Server) checkReentry(ctx context.Context, contactID string, jv storage.JourneyVersion, runKey string) error {
	active, err := s.store.ActiveRun(ctx, contactID, jv.JourneyID, runKey)
	switch {
	case err == nil && !s.settleStale(ctx, active):
		return alreadyActive(jv.JourneyID, contactID)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	last, err := s.store.LastRun(ctx, contactID, jv.JourneyID, runKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	d := jv.Spec.Reentry.Admits(journey.LastRun{StartedAt: last.StartedAt, EndedAt: last.EndedAt}, s.now())
	switch {
	case d.Allowed:
		return nil
	case d.EligibleAt.IsZero():
		return conflict("reentry_refused", fmt.Sprintf("journey %s runs once per contact, and contact %s already went through it (enrollment %s, %s)",
			jv.JourneyID, contactID, last.ID, last.Status))
	default:
		e := conflict("reentry_cooldown", fmt.Sprintf("contact %s may re-enter journey %s after a cooldown of %s, at %s",
			contactID, jv.JourneyID, jv.Spec.Reentry.Cooldown, d.EligibleAt.Format(time.RFC3339)))
		e.EligibleAt = &d.EligibleAt
		return e
	}
}

// orphanAge is how old an active enrollment must be before an enrollment
// that finds it asks Temporal whether it has a run: older than any start
// attempt still in flight (the start call and its checks).
func (s *Server) orphanAge() time.Duration { return 2*time.Minute + 2*s.cfg.SignalTimeout }

// settleStale settles an active enrollment that is not running any more,
// and reports whether it did: one whose run never started (startJourney
// says how one can be left behind) is dropped, one whose run Temporal has
// removed after its retention is ended as failed (run_missing,
// SettleVanishedEnrollment); one whose run closed in
// Temporal without recording its ending (failed, terminated by ops,
// cancelled, timed out: the workflow records every other ending itself,
// before it closes) is ended as failed with the close's reason code and
// time, so the contact can enter the journey again. Only an enrollment
// older than orphanAge is asked about, with one describe call: this runs
// on the refusal path, not on every start.
func (s *Server) settleStale(ctx context.Context, e storage.Enrollment) bool {
	if s.now().Sub(e.StartedAt) < s.orphanAge() {
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	d, err := s.temporal.DescribeWorkflow(dctx, e.WorkflowID, "")
	cancel()
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return false
	default:
		// A run without the memo predates it and may be this enrollment's.
		switch id := memoEnrollmentID(d.Memo); id {
		case "":
			return false
		case e.ID:
			return s.endClosedRun(ctx, e, d.WorkflowExecutionMetadata)
		}
	}
	// No run of this enrollment: it never started, or it ran and Temporal
	// removed it after the namespace's retention (the store tells which
	// from what the run left in PostgreSQL).
	settled, err := s.store.SettleVanishedEnrollment(ctx, e.ID)
	if err != nil {
		loggerFrom(ctx).Warn("api: settling an enrollment whose run Temporal does not know", "enrollment_id", e.ID, "error", err)
		return false
	}
	if settled {
		loggerFrom(ctx).Warn("api: settled an enrollment whose run Temporal does not know (dropped if it never started, else ended as failed)",
			"enrollment_id", e.ID, "workflow_id", e.WorkflowID, "started_at", e.StartedAt)
	}
	return settled
}

// endIfClosed ends e as failed if its run closed without recording its
// ending (endClosedRun): the dispatcher's check when a signal finds e's run
// gone while e is active. Unlike settleStale it never drops e: a run
// Temporal no longer knows may have run and been removed after the
// namespace's retention.
func (s *Server) endIfClosed(ctx context.Context, e storage.Enrollment) {
	dctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	d, err := s.temporal.DescribeWorkflow(dctx, e.WorkflowID, "")
	cancel()
	if err == nil && memoEnrollmentID(d.Memo) == e.ID {
		s.endClosedRun(ctx, e, d.WorkflowExecutionMetadata)
	}
}

// closedRunReasons are the reason codes of the closes a run does not record
// itself.
var closedRunReasons = map[enumspb.WorkflowExecutionStatus]string{
	enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     model.RunClosedFailed,
	enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: model.RunClosedTerminated,
	enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   model.RunClosedCanceled,
	enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  model.RunClosedTimedOut,
}

// endClosedRun ends e, whose run Temporal describes as run, as failed if
// that run closed without recording its ending, and reports whether e is no
// longer active. A run still open, or one that completed (it recorded its
// ending before it closed), leaves e alone.
func (s *Server) endClosedRun(ctx context.Context, e storage.Enrollment, run client.WorkflowExecutionMetadata) bool {
	reason, ok := closedRunReasons[run.Status]
	if !ok {
		return false
	}
	end := storage.EnrollmentEnd{Status: model.RunFailed, Reason: reason}
	if run.WorkflowCloseTime != nil {
		end.EndedAt = *run.WorkflowCloseTime
	}
	// Idempotent: an ending recorded meanwhile is kept.
	if err := s.store.EndEnrollment(ctx, e.ID, end); err != nil {
		loggerFrom(ctx).Warn("api: ending an enrollment whose run closed", "enrollment_id", e.ID, "error", err)
		return false
	}
	loggerFrom(ctx).Warn("api: ended an enrollment whose run closed without recording its ending",
		"enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", run.WorkflowExecution.RunID, "reason", reason)
	return true
}

type exitRequest struct {
	Reason string `json:"reason"`
	// RunKey names one run of a keyed journey (its run_key, as the
	// contact's journeys show it); empty: every active run of the journey.
	RunKey string `json:"run_key"`
}

// exitJourney asks a contact's active runs of a journey (one, or one per
// key value in a keyed journey, or the one run_key names) to end now. The
// exit request is stored with its delivery to the run in one transaction
// (storage.RecordExitRequest), and the answer is 202 once it has
// committed: the dispatcher (dispatch.go) signals the run after every
// delivery stored before it for the contact, whether Temporal is reachable
// now or later, and the workflow does the ending (and records it).
//
// Support's reason is free text and often names the person ("Jane called
// from +1 415..."), so it is stored in PostgreSQL as an exit request and the
// run is told only the code support_exit and the request's id: what a
// workflow is told stays in its Temporal history. The enrollment shows the
// reason (exit_note) once the run has ended.
func (s *Server) exitJourney(w http.ResponseWriter, r *http.Request) {
	var req exitRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		writeError(w, r, invalid(FieldError{Path: "reason", Message: "required: why the contact is leaving, e.g. asked support to stop"}))
		return
	case len(reason) > maxReasonLen:
		writeError(w, r, invalid(FieldError{Path: "reason", Message: fmt.Sprintf("at most %d characters", maxReasonLen)}))
		return
	}
	runKey := strings.TrimSpace(req.RunKey)
	if runKey != "" && !journey.IsRunKeyDigest(runKey) {
		writeError(w, r, invalid(FieldError{Path: "run_key", Message: fmt.Sprintf("a run's run_key: %d hex digits, as GET /v1/contacts/{id}/journeys shows it", journey.RunKeyDigestLen)}))
		return
	}
	ctx := r.Context()
	contactID, journeyID := r.PathValue("id"), r.PathValue("journey_id")
	if _, err := s.contactByID(ctx, contactID, ""); err != nil {
		writeError(w, r, err)
		return
	}
	noRun := &Error{Status: http.StatusNotFound, Code: "not_found",
		Message: fmt.Sprintf("contact %s has no active run of journey %s", contactID, journeyID)}
	// A keyed journey (one run per cart, say) may have several runs: the
	// exit is support's "stop this journey for this person", so it ends
	// them all, each with an exit request of its own, unless it names one.
	active, err := s.store.ActiveRuns(ctx, contactID, journeyID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if runKey != "" {
		active = slices.DeleteFunc(active, func(e storage.Enrollment) bool { return e.RunKey != runKey })
		noRun.Message = fmt.Sprintf("contact %s has no active run of journey %s with run_key %s", contactID, journeyID, runKey)
	}
	var answer ExitAnswer
	for _, e := range active {
		x, pending, err := s.store.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: e.ID, ContactID: contactID, Reason: reason, RequestedBy: "api"})
		switch {
		case errors.Is(err, storage.ErrNotFound), err == nil && pending == 0:
			continue // it ended a moment ago
		case err != nil:
			// The runs before this one keep their exit requests; a retry
			// stores another for them, which a run already ending ignores.
			writeError(w, r, err)
			return
		}
		loggerFrom(ctx).Info("api: exit requested", "workflow_id", e.WorkflowID, "enrollment_id", e.ID, "exit_request_id", x.ID)
		answer.Runs = append(answer.Runs, ExitedRun{Enrollment: e, ExitRequest: x, WorkflowID: e.WorkflowID})
		answer.PendingDeliveries += pending
	}
	if len(answer.Runs) == 0 {
		writeError(w, r, noRun)
		return
	}
	first := answer.Runs[0]
	answer.Enrollment, answer.ExitRequest, answer.WorkflowID, answer.ExitRequested = first.Enrollment, first.ExitRequest, first.WorkflowID, true
	writeJSON(w, http.StatusAccepted, answer)
}

// contactJourneys lists the contact's journey runs, newest first, asking
// each active run where it is. Queries run in parallel, each with a short
// timeout, so one stuck run does not hold up support's view.
func (s *Server) contactJourneys(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.contactByID(ctx, id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	enrollments, err := s.store.EnrollmentsForContact(ctx, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sort.SliceStable(enrollments, func(i, j int) bool { return enrollments[i].StartedAt.After(enrollments[j].StartedAt) })
	runs := make([]JourneyRun, len(enrollments))
	var wg sync.WaitGroup
	for i, e := range enrollments {
		runs[i].Enrollment = e
		if e.Status != model.RunActive {
			continue
		}
		wg.Go(func() { s.queryState(ctx, &runs[i]) })
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, JourneyRunList{Journeys: runs})
}

func (s *Server) queryState(ctx context.Context, run *JourneyRun) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := s.temporal.QueryWorkflow(ctx, run.WorkflowID, "", workflows.QueryState)
	if err != nil {
		run.StateError = queryFailure(err)
		if pending, perr := s.store.EnrollmentStartPending(ctx, run.ID); perr == nil && pending {
			run.StateError = "the run has not started yet: its start is queued in the delivery outbox (enrolled with Prefer: respond-async)"
		}
		return
	}
	var st workflows.JourneyState
	if err := v.Get(&st); err != nil {
		run.StateError = "decoding state: " + err.Error()
		return
	}
	run.CurrentStep = st.CurrentStep
	run.StepsTaken = st.StepsTaken
	run.StepsTruncated = st.StepsTruncated
}

func queryFailure(err error) string {
	var (
		nf *serviceerror.NotFound
		de *serviceerror.DeadlineExceeded
	)
	switch {
	case errors.As(err, &nf):
		return "the workflow run was not found (it may have just ended)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &de):
		return "the workflow did not answer within " + queryTimeout.String() + " (is a worker running?)"
	default:
		return err.Error()
	}
}
