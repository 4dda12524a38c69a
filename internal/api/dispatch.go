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

	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// The delivery outbox's dispatcher. POST /v1/events stores an event with its
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
)

// Dispatcher delivers the outbox. Build it with NewDispatcher.
type Dispatcher struct {
	s    *Server
	poll time.Duration
}

// NewDispatcher builds a dispatcher over the store and Temporal client of
// deps (and Config for the signal timeout and continue-as-new setting).
func NewDispatcher(deps Deps) *Dispatcher {
	s := &Server{store: deps.Store, temporal: deps.Temporal, cfg: deps.Config, log: deps.Logger, now: time.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.SignalTimeout <= 0 {
		s.cfg.SignalTimeout = defaultSignalTimeout
	}
	return &Dispatcher{s: s, poll: DispatchPoll}
}

// Run delivers until ctx is done; errors (the database down) are logged and
// retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) {
	d.s.log.Info("dispatcher: delivering the outbox (events, consent changes, exits)", "poll", d.poll.String(), "batch", dispatchBatch)
	for {
		n, err := d.Dispatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.s.log.Warn("dispatcher: a batch failed; retrying", "error", err)
		}
		if err == nil && n == dispatchBatch {
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
		n, err := d.Dispatch(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// outcome is what one delivery attempt did.
type outcome struct {
	done         string // the outcome to record; "" when the attempt failed
	enrollmentID string
	err          error
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
	if r.err == nil {
		lag, err := d.s.store.DeliveryDone(rctx, dl.ID, token, r.done, r.enrollmentID)
		switch {
		case errors.Is(err, storage.ErrClaimLost):
			d.s.log.Info("dispatcher: delivered, but the claim had passed to another dispatcher or the contact was erased", "delivery_id", dl.ID)
			return nil
		case err != nil:
			return err
		}
		metrics.ObserveDelivery(dl.Kind, lag)
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
	ev := workflows.EventSignal{EventID: dl.Event.ID, Name: dl.Event.Name, OccurredAt: dl.Event.OccurredAt}
	switch dl.Kind {
	case storage.DeliverySignal:
		targets, err := d.s.store.DeliveryTargets(ctx, dl)
		if err != nil {
			return outcome{err: err}
		}
		ids := make([]string, len(targets))
		for i, e := range targets {
			ids[i] = e.WorkflowID
		}
		fan := d.s.signalRuns(ctx, ids, workflows.SignalEvent, ev)
		if len(fan.failed) > 0 {
			var msgs []string
			for _, f := range fan.failed {
				msgs = append(msgs, f.WorkflowID+": "+f.Error)
			}
			// The whole delivery is retried; runs that already have the
			// event drop it by its id.
			return outcome{err: fmt.Errorf("signalling %d of %d runs failed: %s", len(fan.failed), len(targets), strings.Join(msgs, "; "))}
		}
		return outcome{done: fmt.Sprintf("signalled %d", len(fan.signalled))}
	case storage.DeliveryStart:
		jv, err := d.s.store.JourneyVersion(ctx, dl.JourneyID, dl.JourneyVersion)
		if err != nil {
			return outcome{err: err}
		}
		// The event id names the start: every attempt is the same enrollment.
		started, err := d.s.startJourney(ctx, dl.Event.ContactID, jv, &ev, "event/"+dl.Event.ID)
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
	case storage.DeliveryConsent:
		return d.deliverConsent(ctx, dl)
	case storage.DeliveryExit:
		return d.deliverExit(ctx, dl)
	}
	return outcome{err: fmt.Errorf("unknown delivery kind %q", dl.Kind)}
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

// deliverExit asks the exit request's run to end, with the code
// support_exit and the request's id (support's words stay in PostgreSQL).
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
	fan := d.s.signalRuns(ctx, []string{dl.WorkflowID}, workflows.SignalExit,
		workflows.ExitSignal{Reason: workflows.ExitSupport, RequestID: x.ID, By: x.RequestedBy})
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
