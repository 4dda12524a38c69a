package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// The delivery outbox's dispatcher (and the segment outbox's evaluator:
// EvaluateSegments). POST /v1/events stores an event with its
// pending deliveries in one transaction (storage.TrackEvent) and answers
// 202 at PostgreSQL speed; so do consent changes (the consent API and the
// provider webhooks: a 'consent' delivery) and support's exits (an 'exit'
// delivery). The dispatcher, in every worker process, hands them to
// Temporal until Temporal takes each one. It lives in this package
// because a start is the API's own start path (startJourney: re-entry
// policy, enrollment row committed with the start, keyed retries), which is
// reused as is rather than copied.
//
// Claims: a dispatcher claims a batch of due deliveries, at most one per
// contact (the contact's oldest pending one), with SELECT ... FOR UPDATE
// SKIP LOCKED in one short statement that also sets a lease on them
// (storage.ClaimDeliveries says why a lease and not a lock held while
// Temporal is called). Several dispatchers share the queue without
// coordination, and a contact's deliveries go out in the order they were
// stored. Each delivery is bounded by deliveryTimeout and a batch by the
// lease (dispatchLease), so a lease only expires when its dispatcher died;
// another one then takes the delivery over.
//
// Waking up: a short poll (DispatchPoll) rather than LISTEN/NOTIFY. A poll
// of one indexed query needs no dedicated connection (it works behind a
// transaction-mode pooler), cannot miss a notification sent while the
// listener reconnects, and adds at most one interval to the lag, small next
// to a Temporal round trip. A full batch is followed by the next at once.
//
// Twice is harmless, never is not: a delivery whose outcome could not be
// recorded is delivered again. The journey workflow ignores an event id it
// has seen, and a start is keyed by the event id (the enrollment id derives
// from it), so a repeat is a no-op in both cases; a consent signal sets the
// same consent again, and an exit ends a run that keeps its first reason.
//
// Batches: a contact's consecutive pending 'signal' deliveries are claimed
// together (up to storage.MaxSignalBatch) and each run gets one signal with
// the events meant for it (workflows.SignalEvents), so a flood of events
// costs a run one history event and one workflow task per batch, not per
// event.
//
// A ceiling on a run's history: before signalling a run, the dispatcher
// reads its history length and pending work (DescribeWorkflowExecution) and
// does not signal it (holdFor says when) while
//   - a workflow task of the run is running: a signal arriving then is
//     buffered, invisible in the history length, and it makes a task that
//     tries to continue as new fail and run again (Temporal does not close a
//     run over events it has not seen); or
//   - the run has reached its hand-over point (workflows.HandOverPoint) and
//     will reach a task that continues as new without being signalled: a
//     task is scheduled, or an activity is running.
// It waits for that in place for a moment (holdInPlace), which is usually
// enough; if not, it releases the delivery to be retried shortly
// (storage.DeliveryHeld: not a failure, no backoff). The signal then goes
// to the new run: signals name the workflow id, not the run. Holding is
// bounded: a task or an activity pending for holdMax (a stuck worker, a
// failing task, a send retrying for hours) holds nothing, and a run
// parked with nothing pending is signalled whatever its length (a run of an
// older version, which hands over only at the setting, or a run waiting in
// a send's deferral, which does not hand over), so no run is starved.
//
// With one delivery in flight per contact, a run fed only through the
// outbox therefore receives at most one signal it has not seen while it
// hands over, and its history stays within the setting: see
// workflows.HandOverHeadroom for the count, and README "Long histories".

// Dispatcher defaults.
const (
	// DispatchPoll is how long an idle dispatcher waits before looking again.
	DispatchPoll = 200 * time.Millisecond
	// dispatchBatch bounds the deliveries (so the contacts) one claim holds.
	dispatchBatch = 32
	// dispatchParallel bounds the Temporal calls in flight per dispatcher.
	dispatchParallel = 8
	// deliveryTimeout bounds one delivery attempt (a start checks with
	// Temporal when its outcome is unclear: a few short calls).
	deliveryTimeout = time.Minute
	// dispatchLease is a claim's lease: longer than the whole batch can take
	// (dispatchBatch/dispatchParallel rounds of deliveryTimeout), so only a
	// dead dispatcher's claims expire.
	dispatchLease = (dispatchBatch/dispatchParallel + 1) * deliveryTimeout
	// Retries back off from retryBase, doubling, up to retryMax: Temporal
	// down for an hour is retried every minute, and the first retries are quick.
	retryBase = time.Second
	retryMax  = time.Minute
	// holdInPlace is how long a delivery waits in place for a run to finish
	// its workflow task or to hand over (both take milliseconds) before it
	// is released; holdPoll is how often it looks meanwhile.
	holdInPlace = time.Second
	holdPoll    = 10 * time.Millisecond
	// holdRetry is when a released delivery is due again.
	holdRetry = 100 * time.Millisecond
	// holdMax bounds a hold: a workflow task or activity pending this long
	// holds no delivery (see holdFor).
	holdMax = 30 * time.Second
)

// Dispatcher delivers the outbox. Build it with NewDispatcher.
type Dispatcher struct {
	s    *Server
	poll time.Duration
	// handOver is workflows.HandOverPoint of the continue-as-new setting
	// the runs were started with (the same configuration as the API's).
	handOver int
}

// NewDispatcher builds a dispatcher over the store and Temporal client of
// deps (and Config for the signal timeout and continue-as-new setting).
func NewDispatcher(deps Deps) *Dispatcher {
	s := backgroundServer(deps)
	return &Dispatcher{s: s, poll: DispatchPoll, handOver: workflows.HandOverPoint(s.cfg.ContinueAsNewAfter)}
}

// backgroundServer is the Server the worker's background loops (the
// dispatcher, the closed-runs sweep) share the API's start and settle
// paths through: no routes, deps' logger or the default one.
func backgroundServer(deps Deps) *Server {
	s := &Server{store: deps.Store, temporal: deps.Temporal, cfg: deps.Config, log: deps.Logger, now: time.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.SignalTimeout <= 0 {
		s.cfg.SignalTimeout = defaultSignalTimeout
	}
	return s
}

// Run delivers until ctx is done; errors (the database down) are logged and
// retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) {
	d.s.log.Info("dispatcher: delivering the outbox (events, consent changes, exits)", "poll", d.poll.String(), "batch", dispatchBatch)
	for {
		m, serr := d.EvaluateSegments(ctx)
		if serr != nil && ctx.Err() == nil {
			d.s.log.Warn("dispatcher: evaluating queued segment changes failed; retrying", "error", serr)
		}
		n, err := d.Dispatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.s.log.Warn("dispatcher: a batch failed; retrying", "error", err)
		}
		if (err == nil && n == dispatchBatch) || (serr == nil && m == segmentBatch) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.poll):
		}
	}
}

// Drain dispatches until no delivery is due (failed ones wait for their
// retry time) and returns how many attempts it made. Tests use it instead of
// Run, so they need not wait for a poll.
func (d *Dispatcher) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		m, err := d.EvaluateSegments(ctx)
		if err != nil {
			return total, err
		}
		n, err := d.Dispatch(ctx)
		total += n
		if err != nil || (n == 0 && m == 0) {
			return total, err
		}
	}
}

// segmentBatch bounds the contacts one EvaluateSegments call evaluates.
const segmentBatch = 64

// EvaluateSegments records the segment entries and exits that queued
// changes (events, attributes, consent, suppressions) make, with their
// segment.entered and segment.exited events and those events' deliveries
// (storage.EvaluateQueuedSegments, which says why it is exact), before the
// dispatcher claims deliveries, so a segment-triggered journey starts in
// the same round. It returns how many contacts it evaluated. Safe to run
// in every worker process.
func (d *Dispatcher) EvaluateSegments(ctx context.Context) (int, error) {
	ch, err := d.s.store.EvaluateQueuedSegments(ctx, segmentBatch)
	metrics.RecordSegmentChanges(ch.Entered, ch.Exited)
	return ch.Evaluated, err
}

// outcome is what one delivery attempt did.
type outcome struct {
	done         string // the outcome to record; "" when the attempt failed or was held
	enrollmentID string
	err          error
	// held says why the delivery was not attempted ("hand_over", "busy";
	// see holdFor): it is released for a retry shortly, not failed.
	held string
}

// Dispatch claims one batch, delivers it and records each outcome; it
// returns the number of deliveries attempted.
func (d *Dispatcher) Dispatch(ctx context.Context) (int, error) {
	batch, token, err := d.s.store.ClaimDeliveries(ctx, dispatchBatch, dispatchLease)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	errs := make([]error, len(batch))
	sem := make(chan struct{}, dispatchParallel)
	var wg sync.WaitGroup
	for i, dl := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = d.attempt(ctx, dl, token)
		})
	}
	wg.Wait()
	return len(batch), errors.Join(errs...)
}

// attempt makes one delivery attempt and records its outcome. Outcomes are
// recorded even if ctx was cancelled meanwhile: what Temporal took should
// not be delivered again for nothing.
func (d *Dispatcher) attempt(ctx context.Context, dl storage.Delivery, token string) error {
	dctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	r := d.deliver(dctx, dl)
	cancel()
	rctx := context.WithoutCancel(ctx)
	if r.held != "" {
		metrics.RecordDeliveryHold(r.held)
		if err := d.s.store.DeliveryHeld(rctx, dl.ID, token, holdRetry); err != nil && !errors.Is(err, storage.ErrClaimLost) {
			return err
		}
		return nil
	}
	if r.err == nil {
		lags, err := d.s.store.DeliveryDone(rctx, dl.ID, token, r.done, r.enrollmentID)
		switch {
		case errors.Is(err, storage.ErrClaimLost):
			d.s.log.Info("dispatcher: delivered, but the claim had passed to another dispatcher or the contact was erased", "delivery_id", dl.ID)
			return nil
		case err != nil:
			return err
		}
		for _, lag := range lags {
			metrics.ObserveDelivery(dl.Kind, lag)
		}
		return nil
	}
	metrics.RecordDeliveryFailure(dl.Kind)
	d.s.log.Warn("dispatcher: delivery failed; will retry", "delivery_id", dl.ID, "kind", dl.Kind, "event_id", dl.Event.ID,
		"journey_id", dl.JourneyID, "attempts", dl.Attempts+1, "error", r.err)
	if err := d.s.store.DeliveryFailed(rctx, dl.ID, token, r.err.Error(), retryAfter(dl.Attempts)); err != nil && !errors.Is(err, storage.ErrClaimLost) {
		return err
	}
	return nil
}

// retryAfter is the wait after a delivery's attempts-th failure (0-based).
func retryAfter(attempts int) time.Duration {
	if attempts >= 6 {
		return retryMax
	}
	return min(retryBase<<attempts, retryMax)
}

// deliver makes one delivery attempt.
func (d *Dispatcher) deliver(ctx context.Context, dl storage.Delivery) outcome {
	ctx = withLogger(ctx, d.s.log.With("delivery_id", dl.ID, "kind", dl.Kind, "contact_id", dl.ContactID, "event_id", dl.Event.ID))
	ev := workflows.SignalOf(dl.Event.ID, dl.Event.Name, dl.Event.OccurredAt, dl.Event.Properties)
	switch dl.Kind {
	case storage.DeliverySignal:
		return d.signal(ctx, dl)
	case storage.DeliveryStart:
		jv, err := d.s.store.JourneyVersion(ctx, dl.JourneyID, dl.JourneyVersion)
		if err != nil {
			return outcome{err: err}
		}
		runKey, skip, err := d.runKey(ctx, dl, jv)
		switch {
		case err != nil:
			return outcome{err: err}
		case skip != "":
			return outcome{done: "not_enrolled " + skip}
		}
		// The event id names the start: every attempt is the same enrollment.
		started, err := d.s.startJourney(ctx, dl.Event.ContactID, jv, &ev, "event/"+dl.Event.ID, runKey, false)
		var ae *Error
		switch {
		case err == nil:
			return outcome{done: "enrolled", enrollmentID: started.Enrollment.ID}
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			// The re-entry policy said no (already_active, reentry_refused,
			// reentry_cooldown): a decision, not a failure.
			return outcome{done: "not_enrolled " + ae.Code}
		default:
			return outcome{err: err}
		}
	case storage.DeliveryEnroll:
		return d.deliverEnroll(ctx, dl)
	case storage.DeliveryConsent:
		return d.deliverConsent(ctx, dl)
	case storage.DeliveryExit:
		return d.deliverExit(ctx, dl)
	}
	return outcome{err: fmt.Errorf("unknown delivery kind %q", dl.Kind)}
}

// deliverEnroll starts the run of an enrollment the API recorded with an
// 'enroll' delivery (an enrollment asked with Prefer: respond-async). The
// decision was made when it was recorded (re-entry policy, the pair
// claimed by the active row); only the start is left, and it is retried
// until Temporal has the enrollment's run: a refusal or an unclear outcome
// is a failed attempt, never a reason to drop the row the client was
// answered with. An enrollment no longer active (exited, erased) needs no
// run.
func (d *Dispatcher) deliverEnroll(ctx context.Context, dl storage.Delivery) outcome {
	e, err := d.s.store.Enrollment(ctx, dl.EnrollmentID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return outcome{done: "not_started enrollment_gone"}
	case err != nil:
		return outcome{err: err}
	case e.Status != model.RunActive:
		return outcome{done: "not_started " + string(e.Status), enrollmentID: e.ID}
	}
	runID, err := d.s.startRecorded(ctx, e)
	if err != nil {
		return outcome{err: err}
	}
	loggerFrom(ctx).Info("dispatch: started an enrollment's run", "enrollment_id", e.ID, "workflow_id", e.WorkflowID, "run_id", runID)
	return outcome{done: "enrolled", enrollmentID: e.ID}
}

// runKey is the key digest of the run a start delivery makes in a keyed
// journey (journey.Trigger.Key), "" for a journey without a key. Only a
// keyed journey reads the event's properties, so the others pay nothing
// for keys. An event without a usable key value starts no run: skip says
// so (missing_key:<property>), an outcome and not a failure, like a
// re-entry refusal.
func (d *Dispatcher) runKey(ctx context.Context, dl storage.Delivery, jv storage.JourneyVersion) (runKey, skip string, err error) {
	key := jv.Spec.Trigger.Key
	if key == "" {
		return "", "", nil
	}
	ev, err := d.s.store.Event(ctx, dl.Event.ID)
	if err != nil {
		return "", "", err
	}
	value, ok := journey.RunKeyOf(ev.Properties, key)
	if !ok {
		return "", "missing_key:" + key, nil
	}
	runKey, err = d.s.store.RunKeyDigest(ctx, key, value)
	return runKey, "", err
}

// signal delivers a 'signal' delivery and those batched with it: each run
// gets one signal with the events whose DeliveryTargets include it, in the
// order they were stored, once it has room for it (room).
func (d *Dispatcher) signal(ctx context.Context, dl storage.Delivery) outcome {
	var runs []string // in the order they first appear
	events := map[string][]workflows.EventSignal{}
	enrollmentOf := map[string]storage.Enrollment{}
	batch := append([]storage.Delivery{dl}, dl.Batched...)
	targetsOf, err := d.s.store.BatchTargets(ctx, batch)
	if err != nil {
		return outcome{err: err}
	}
	for i, x := range batch {
		for _, e := range targetsOf[i] {
			if _, ok := events[e.WorkflowID]; !ok {
				runs = append(runs, e.WorkflowID)
				enrollmentOf[e.WorkflowID] = e
			}
			events[e.WorkflowID] = append(events[e.WorkflowID],
				workflows.SignalOf(x.Event.ID, x.Event.Name, x.Event.OccurredAt, x.Event.Properties))
		}
	}
	var fan fanResult
runs:
	for _, id := range runs {
		// One signal per run, or one per event when batches are off
		// (config.SingleEventSignals: workers that cannot read them).
		var signals []any
		if evs := events[id]; len(evs) > 1 && !d.s.cfg.SingleEventSignals {
			signals = append(signals, evs)
		} else {
			for _, ev := range evs {
				signals = append(signals, ev)
			}
		}
		for _, arg := range signals {
			// A run is looked at right before each signal. A run held
			// after others were signalled has the whole batch retried: the
			// others drop the events they have by id (and are looked at
			// again).
			held, err := d.room(ctx, id)
			if err != nil {
				fan.failed = append(fan.failed, DeliveryError{WorkflowID: id, Error: err.Error()})
				continue runs
			}
			if held != "" {
				return outcome{held: held}
			}
			name := workflows.SignalEvent
			if _, batch := arg.([]workflows.EventSignal); batch {
				name = workflows.SignalEvents
			}
			one := d.s.signalRuns(ctx, []string{id}, name, arg)
			if len(one.failed) > 0 {
				fan.failed = append(fan.failed, one.failed...)
				continue runs
			}
			if len(one.signalled) == 0 {
				// The run has ended: nothing more to tell it. Its
				// enrollment is still active here, so the run may have
				// closed without recording its ending (failed, terminated
				// by ops): settle it now rather than at the contact's next
				// enrollment in the journey.
				d.s.endIfClosed(ctx, enrollmentOf[id])
				continue runs
			}
		}
		fan.signalled = append(fan.signalled, id)
	}
	if len(fan.failed) > 0 {
		// The whole delivery is retried; runs that already have the
		// event drop it by its id.
		return outcome{err: fmt.Errorf("signalling %d of %d runs failed: %s", len(fan.failed), len(runs), fanErrors(fan))}
	}
	if len(dl.Batched) > 0 {
		return outcome{done: fmt.Sprintf("signalled %d (a batch of %d events)", len(fan.signalled), len(dl.Batched)+1)}
	}
	return outcome{done: fmt.Sprintf("signalled %d", len(fan.signalled))}
}

// deliverConsent tells the contact's running journeys (the same targets as
// an event's signal) the channel-level consent in force when the change was
// stored. A later change has a delivery of its own, after this one, so the
// runs end up with the consent in force. It only ends or updates a run
// early: the send gate reads consent from PostgreSQL before every send, so
// an opt-out was final when it was stored, however late this is.
func (d *Dispatcher) deliverConsent(ctx context.Context, dl storage.Delivery) outcome {
	targets, err := d.s.store.DeliveryTargets(ctx, dl)
	if err != nil {
		return outcome{err: err}
	}
	ids := make([]string, len(targets))
	for i, e := range targets {
		ids[i] = e.WorkflowID
		// Held like an event's signal, so the history ceiling covers it.
		if held, err := d.room(ctx, e.WorkflowID); err != nil {
			return outcome{err: err}
		} else if held != "" {
			return outcome{held: held}
		}
	}
	// A run that has closed is skipped (signalRuns): it counts as delivered.
	fan := d.s.signalRuns(ctx, ids, workflows.SignalConsent, workflows.ConsentSignal{Channel: dl.Channel, Status: dl.ConsentStatus})
	if len(fan.failed) > 0 {
		// Retried whole: a run applies the same consent twice to the same
		// state.
		return outcome{err: fmt.Errorf("signalling %d of %d runs failed: %s", len(fan.failed), len(targets), fanErrors(fan))}
	}
	return outcome{done: fmt.Sprintf("signalled %d", len(fan.signalled))}
}

// deliverExit asks the exit request's run to end, with the request's code
// (support_exit, or merged for a merge's) and its id (support's words, and
// the survivor a merge names, stay in PostgreSQL).
// A run that has ended, in PostgreSQL or in Temporal, counts as delivered:
// there is nothing left to end. The enrollment is read first because the
// signal goes to the workflow id's current run: while the enrollment is
// active no other run of that workflow id can have started (one active
// run per journey and contact), so the signal cannot reach a later run.
func (d *Dispatcher) deliverExit(ctx context.Context, dl storage.Delivery) outcome {
	x, err := d.s.store.ExitRequest(ctx, dl.ExitRequestID)
	if err != nil {
		return outcome{err: err} // gone only with its contact, which takes the delivery too
	}
	e, err := d.s.store.Enrollment(ctx, x.EnrollmentID)
	switch {
	case err != nil:
		return outcome{err: err}
	case e.Status != model.RunActive:
		return outcome{done: "run already ended " + string(e.Status)}
	}
	if held, err := d.room(ctx, dl.WorkflowID); err != nil {
		return outcome{err: err}
	} else if held != "" {
		return outcome{held: held}
	}
	fan := d.s.signalRuns(ctx, []string{dl.WorkflowID}, workflows.SignalExit,
		workflows.ExitSignal{Reason: x.Code, RequestID: x.ID, By: x.RequestedBy})
	switch {
	case len(fan.failed) > 0:
		return outcome{err: fmt.Errorf("signalling the run failed: %s", fanErrors(fan))}
	case len(fan.signalled) == 0:
		return outcome{done: "run already ended"}
	}
	return outcome{done: "signalled 1"}
}

// fanErrors lists a fan-out's failures, for a delivery's last_error.
func fanErrors(fan fanResult) string {
	msgs := make([]string, len(fan.failed))
	for i, f := range fan.failed {
		msgs[i] = f.WorkflowID + ": " + f.Error
	}
	return strings.Join(msgs, "; ")
}

// room waits, for up to holdInPlace, until the current run of workflowID
// can be signalled (holdFor), and returns why not if it still cannot.
func (d *Dispatcher) room(ctx context.Context, workflowID string) (held string, err error) {
	deadline := time.Now().Add(holdInPlace)
	for {
		dctx, cancel := context.WithTimeout(ctx, d.s.cfg.SignalTimeout)
		desc, err := d.s.temporal.DescribeWorkflowExecution(dctx, workflowID, "")
		cancel()
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return "", nil // nothing to hold for; the signal will say it ended
		case err != nil:
			return "", fmt.Errorf("reading the run's history length: %w", err)
		}
		now := time.Now()
		held = holdFor(viewOf(desc), d.handOver, now)
		if held == "" || now.After(deadline) {
			return held, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(holdPoll):
		}
	}
}

// runView is what the dispatcher reads of a run before signalling it.
type runView struct {
	historyLength int64
	// task is the state of the run's pending workflow task (UNSPECIFIED:
	// none), taskSince when it was first scheduled.
	task      enumspb.PendingWorkflowTaskState
	taskSince time.Time
	// activities are the run's pending activities, by when each was
	// scheduled; retried marks one past its first attempt.
	activities []pendingActivity
}

type pendingActivity struct {
	since   time.Time
	retried bool
}

func viewOf(desc *workflowservice.DescribeWorkflowExecutionResponse) runView {
	v := runView{historyLength: desc.GetWorkflowExecutionInfo().GetHistoryLength()}
	if t := desc.GetPendingWorkflowTask(); t != nil {
		v.task = t.GetState()
		v.taskSince = t.GetOriginalScheduledTime().AsTime()
		if t.GetOriginalScheduledTime() == nil {
			v.taskSince = t.GetScheduledTime().AsTime()
		}
	}
	for _, a := range desc.GetPendingActivities() {
		since := a.GetScheduledTime()
		if since == nil {
			since = a.GetLastStartedTime()
		}
		v.activities = append(v.activities, pendingActivity{since: since.AsTime(), retried: a.GetAttempt() > 1})
	}
	return v
}

// holdFor says whether a run can be signalled now (""), or why not: "busy"
// while one of its workflow tasks is running, "hand_over" when its history
// has reached handOver and it will reach a task that continues as new
// without a signal (a task is scheduled, or an activity is running). What
// has been pending for holdMax (a stuck worker, a failing task, a retried
// activity) holds nothing: holding would not help, and the delivery must
// not starve. A run with nothing pending is signalled at any length: it
// hands over at the task the signal causes, if its version and its step
// let it (see the package comment on the dispatcher).
func holdFor(v runView, handOver int, now time.Time) string {
	taskFresh := v.task != enumspb.PENDING_WORKFLOW_TASK_STATE_UNSPECIFIED && now.Sub(v.taskSince) < holdMax
	if taskFresh && v.task == enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED {
		return "busy"
	}
	if v.historyLength < int64(handOver) {
		return ""
	}
	if taskFresh {
		return "hand_over"
	}
	for _, a := range v.activities {
		if !a.retried && now.Sub(a.since) < holdMax {
			return "hand_over"
		}
	}
	return ""
}

// deliveriesStatus is GET /v1/deliveries/status: the outbox's depth, the
// age of its oldest pending delivery and its failures, for ops.
func (s *Server) deliveriesStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.DeliveryStats(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	age := 0.0
	if st.OldestPendingAt != nil {
		age = max(0, s.now().Sub(*st.OldestPendingAt).Seconds())
	}
	writeJSON(w, http.StatusOK, DeliveriesStatus{st, age})
}
