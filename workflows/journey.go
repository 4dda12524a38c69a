package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

const (
	// maxStepRecords and maxRememberedEvents bound the state carried across
	// continue-as-new, so a journey that loops for months stays small.
	maxStepRecords      = 200
	maxRememberedEvents = 200

	// changeContinueAsNewInWaits: a wait or wait_for also wakes when the
	// history has grown long, continues as new, and the next run resumes it
	// until its original deadline; a wait_for also sees its event through
	// LatestEvent; signals wait in their channels until handled, so a drain
	// before continuing sees every one; and a run that a drained signal
	// ends finishes there instead of continuing. Version 2
	// (versionBoundedHandOver) hands over at HandOverPoint, below the
	// setting; version 3 (versionLeanHistory) writes fewer events, see
	// journeyRun.leanHistory; version 4 (versionLocalBookkeeping) also
	// records the enrollment's start and end as local activities. See
	// continueAsNewVersion.
	changeContinueAsNewInWaits = "continue-as-new-in-waits"
)

// Versions of changeContinueAsNewInWaits.
const (
	// versionWaitsContinue: a wait or wait_for continues as new (above).
	versionWaitsContinue workflow.Version = 1
	// versionBoundedHandOver: the run hands over at HandOverPoint (the
	// setting minus HandOverHeadroom) instead of at the setting itself, so
	// that with the dispatcher holding deliveries from that point on, the
	// setting is a ceiling on the run's history.
	versionBoundedHandOver workflow.Version = 2
	// versionLeanHistory: the run writes fewer history events
	// (journeyRun.leanHistory), and hands over as versionBoundedHandOver.
	versionLeanHistory workflow.Version = 3
	// versionLocalBookkeeping: BeginEnrollment and FinishEnrollment run as
	// local activities (journeyRun.bookkeepingCtx), as versionLeanHistory
	// otherwise.
	versionLocalBookkeeping workflow.Version = 4
)

// continueAsNewVersion is the run's version of changeContinueAsNewInWaits,
// decided once per run: a run that began before a change keeps the old
// behaviour for its whole life, so its history replays. One GetVersion (one
// marker) serves every version of the change.
func continueAsNewVersion(ctx workflow.Context) workflow.Version {
	return workflow.GetVersion(ctx, changeContinueAsNewInWaits, workflow.DefaultVersion, versionLocalBookkeeping)
}

// CarriedState is the interpreter's state, handed over on continue-as-new.
type CarriedState struct {
	// Cursor is the id of the next step to run; "" means the journey is done.
	Cursor         string       `json:"cursor"`
	StepsTaken     []StepRecord `json:"steps_taken"`
	StepsTruncated int          `json:"steps_truncated,omitempty"`
	// Visits counts how often each step ran, so a step revisited in a loop gets a
	// fresh idempotency key while a retried activity keeps the same one.
	Visits map[string]int `json:"visits,omitempty"`
	// Events remembers recent events (deduplicated by id) for wait_for look-back.
	Events []EventSignal `json:"events,omitempty"`
	// EventCounts counts events by name over the whole run, for conditions.
	EventCounts map[string]int `json:"event_counts,omitempty"`
	// Consent holds consent changes signalled during the run, by channel.
	Consent map[journey.Channel]model.ConsentStatus `json:"consent,omitempty"`
	// LatestEvent is when the latest event of each name occurred. A wait_for
	// looks here too, so a burst of other events that pushes its event out
	// of Events (a drain before continue-as-new, say) cannot hide it.
	LatestEvent map[string]time.Time `json:"latest_event,omitempty"`
	// WindowStart is when the latest send step began: a wait_for counts
	// events from then on, so an open that beat the wait is not missed.
	WindowStart time.Time `json:"window_start"`
	EnteredAt   time.Time `json:"entered_at"`
	// Withhold is why the run's marketing messages are not sent (a reason
	// code: journey.GroupHoldout), or "" when they are.
	Withhold string `json:"withhold,omitempty"`
	// Waiting is the wait or wait_for in progress. Continue-as-new can
	// interrupt it; the next run then resumes it until the same deadline
	// instead of starting the step over.
	Waiting *Waiting `json:"waiting,omitempty"`
}

// Waiting is a wait or wait_for step in progress.
type Waiting struct {
	StepID string `json:"step_id"`
	// StartedAt is when the step began, for its StepRecord.
	StartedAt time.Time `json:"started_at"`
	// Until is the step's original deadline: its duration or timeout after StartedAt.
	Until time.Time `json:"until"`
}

// Journey interprets one published journey spec for one contact. It walks the
// step graph deterministically; waits are durable timers, and the goal event,
// an exit event, an opt-out from every channel the journey uses, or support's
// exit signal end it at once, even in the middle of a wait.
func Journey(ctx workflow.Context, in JourneyInput) (JourneyResult, error) {
	r := newJourneyRun(ctx, in)
	if err := workflow.SetQueryHandler(ctx, QueryState, r.state); err != nil {
		return JourneyResult{}, err
	}
	r.version = continueAsNewVersion(ctx)
	r.waitsCAN = r.version >= versionWaitsContinue
	r.boundedHandOver = r.version >= versionBoundedHandOver
	r.stepAttr, _ = workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchJourneyStep)
	r.listen(ctx)

	if in.Carried == nil {
		if err := r.begin(ctx); err != nil {
			return JourneyResult{}, err
		}
	}
	for r.endStatus == "" && r.c.Cursor != "" {
		if r.paused || r.shouldContinueAsNew(ctx) {
			if err := r.continueAsNew(ctx); err != nil {
				return JourneyResult{}, err
			}
			break // a signal drained on the way out ended the journey
		}
		if err := r.runStep(ctx); err != nil {
			if temporal.IsCanceledError(err) {
				r.end(model.RunExited, "cancelled")
				break
			}
			return JourneyResult{}, err
		}
	}
	if r.endStatus == "" {
		r.end(model.RunCompleted, "reached the end")
	}
	return r.finish(ctx)
}

// journeyRun is the interpreter's working state for one workflow run.
type journeyRun struct {
	in            JourneyInput
	spec          journey.Spec
	c             CarriedState
	seen          map[string]bool // event ids already handled
	exitEvents    map[string]bool
	sendChannels  []journey.Channel
	current       string
	endStatus     model.RunStatus
	endReason     string
	signalsEvent  workflow.ReceiveChannel
	signalsEvents workflow.ReceiveChannel // batches ([]EventSignal); every version reads them
	signalsConsnt workflow.ReceiveChannel
	signalsExit   workflow.ReceiveChannel

	// exitRequest is the exit request (support's, in PostgreSQL) that
	// ended the run, if one did.
	exitRequest string
	// version is this run's version of changeContinueAsNewInWaits.
	version workflow.Version
	// waitsCAN: this run has changeContinueAsNewInWaits.
	waitsCAN bool
	// boundedHandOver: this run hands over at HandOverPoint
	// (versionBoundedHandOver), not at the setting.
	boundedHandOver bool
	// stepAttr is the run's JourneyStep search attribute as last set.
	stepAttr string
	// paused: a wait woke to continue as new (r.c.Waiting says where).
	paused bool
}

func newJourneyRun(ctx workflow.Context, in JourneyInput) *journeyRun {
	r := &journeyRun{
		in:            in,
		spec:          in.Spec,
		seen:          map[string]bool{},
		exitEvents:    map[string]bool{},
		sendChannels:  in.Spec.Channels(),
		signalsEvent:  workflow.GetSignalChannel(ctx, SignalEvent),
		signalsEvents: workflow.GetSignalChannel(ctx, SignalEvents),
		signalsConsnt: workflow.GetSignalChannel(ctx, SignalConsent),
		signalsExit:   workflow.GetSignalChannel(ctx, SignalExit),
	}
	for _, e := range in.Spec.ExitEvents {
		r.exitEvents[e] = true
	}
	if in.Carried != nil {
		r.c = *in.Carried
	} else {
		now := workflow.Now(ctx)
		r.c = CarriedState{EnteredAt: now, WindowStart: now}
		if len(in.Spec.Steps) > 0 {
			r.c.Cursor = in.Spec.Steps[0].ID
		}
	}
	if r.c.Visits == nil {
		r.c.Visits = map[string]int{}
	}
	if r.c.EventCounts == nil {
		r.c.EventCounts = map[string]int{}
	}
	if r.c.Consent == nil {
		r.c.Consent = map[journey.Channel]model.ConsentStatus{}
	}
	if r.c.LatestEvent == nil {
		r.c.LatestEvent = map[string]time.Time{}
	}
	for _, e := range r.c.Events {
		r.seen[e.EventID] = true
	}
	return r
}

// listen handles signals as they arrive, in a coroutine of its own, so an
// exit or a goal is noticed while the main loop waits on a timer.
//
// From changeContinueAsNewInWaits on it waits for the channels to fill
// rather than selecting on them: a selector blocked on a channel takes the
// next value out of it before its coroutine runs, where drainSignals cannot
// see it, and a continue-as-new decided in between lost that event.
//
// Every version reads the batched events channel (SignalEvents): reading a
// channel issues no command, so a recorded history, which has no such
// signal, replays the same, and a run of any version that the dispatcher
// sends a batch to counts its events.
func (r *journeyRun) listen(ctx workflow.Context) {
	if r.waitsCAN {
		workflow.Go(ctx, func(ctx workflow.Context) {
			pending := func() bool {
				return r.signalsEvent.Len() > 0 || r.signalsEvents.Len() > 0 || r.signalsConsnt.Len() > 0 || r.signalsExit.Len() > 0
			}
			for workflow.Await(ctx, pending) == nil {
				r.drainSignals(ctx)
			}
		})
		return
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(r.signalsEvent, func(ch workflow.ReceiveChannel, _ bool) {
			var ev EventSignal
			ch.Receive(ctx, &ev)
			r.onEvent(ctx, ev)
		})
		sel.AddReceive(r.signalsEvents, func(ch workflow.ReceiveChannel, _ bool) {
			var evs []EventSignal
			ch.Receive(ctx, &evs)
			r.onEvents(ctx, evs)
		})
		sel.AddReceive(r.signalsConsnt, func(ch workflow.ReceiveChannel, _ bool) {
			var cs ConsentSignal
			ch.Receive(ctx, &cs)
			r.onConsent(cs)
		})
		sel.AddReceive(r.signalsExit, func(ch workflow.ReceiveChannel, _ bool) {
			var ex ExitSignal
			ch.Receive(ctx, &ex)
			r.onExit(ex)
		})
		for ctx.Err() == nil {
			sel.Select(ctx)
		}
	})
}

// drainSignals handles signals still buffered, so none is lost on continue-as-new.
func (r *journeyRun) drainSignals(ctx workflow.Context) {
	for {
		var ev EventSignal
		var evs []EventSignal
		var cs ConsentSignal
		var ex ExitSignal
		switch {
		case r.signalsEvent.ReceiveAsync(&ev):
			r.onEvent(ctx, ev)
		case r.signalsEvents.ReceiveAsync(&evs):
			r.onEvents(ctx, evs)
		case r.signalsConsnt.ReceiveAsync(&cs):
			r.onConsent(cs)
		case r.signalsExit.ReceiveAsync(&ex):
			r.onExit(ex)
		default:
			return
		}
	}
}

// onEvents handles a batch of events (SignalEvents) in the order they were stored.
func (r *journeyRun) onEvents(ctx workflow.Context, evs []EventSignal) {
	for _, ev := range evs {
		r.onEvent(ctx, ev)
	}
}

func (r *journeyRun) onEvent(ctx workflow.Context, ev EventSignal) {
	if ev.EventID == "" || r.seen[ev.EventID] {
		return // a re-delivered event (the API re-signals duplicates) counts once
	}
	r.seen[ev.EventID] = true
	r.c.Events = append(r.c.Events, ev)
	if n := len(r.c.Events) - maxRememberedEvents; n > 0 {
		r.c.Events = append([]EventSignal(nil), r.c.Events[n:]...)
	}
	r.c.EventCounts[ev.Name]++
	if ev.OccurredAt.After(r.c.LatestEvent[ev.Name]) {
		r.c.LatestEvent[ev.Name] = ev.OccurredAt
	}
	switch {
	case r.spec.Goal != nil && ev.Name == r.spec.Goal.Event:
		r.end(model.RunConverted, "goal: "+ev.Name)
	case r.exitEvents[ev.Name]:
		r.end(model.RunExited, "exit event: "+ev.Name)
	case r.spec.ExitWhenLeaving != "" && ev.Name == journey.EventSegmentExited && ev.Segment == r.spec.ExitWhenLeaving:
		// Only specs with exit_when_leaving reach this: no older run's
		// behaviour changes.
		r.end(model.RunExited, "left segment: "+ev.Segment)
	}
	workflow.GetLogger(ctx).Debug("event received", "event", ev.Name, "event_id", ev.EventID)
}

func (r *journeyRun) onConsent(cs ConsentSignal) {
	r.c.Consent[cs.Channel] = cs.Status
	if len(r.sendChannels) == 0 {
		return
	}
	for _, ch := range r.sendChannels {
		if r.c.Consent[ch] != model.ConsentRevoked {
			return // another channel can still reach the contact
		}
	}
	r.end(model.RunExited, "opted out of every channel this journey uses")
}

// onExit ends the run on an exit signal: with its reason code, and
// remembering the exit request that holds support's own words.
func (r *journeyRun) onExit(ex ExitSignal) {
	reason := ex.Reason
	if reason == "" {
		reason = "exited"
	}
	if !r.ended() {
		r.exitRequest = ex.RequestID
	}
	r.end(model.RunExited, reason)
}

// end records the first reason the journey ended; later ones do not override it.
func (r *journeyRun) end(status model.RunStatus, reason string) {
	if r.endStatus != "" {
		return
	}
	r.endStatus, r.endReason = status, reason
}

func (r *journeyRun) ended() bool { return r.endStatus != "" }

func (r *journeyRun) state() (JourneyState, error) {
	status := model.RunActive
	if r.ended() {
		status = r.endStatus
	}
	var until *time.Time
	if r.c.Waiting != nil {
		until = &r.c.Waiting.Until
	}
	return JourneyState{
		JourneyID:      r.spec.ID,
		Version:        r.in.Version,
		ContactID:      r.in.ContactID,
		Status:         status,
		CurrentStep:    r.current,
		ExitReason:     r.endReason,
		StepsTaken:     r.c.StepsTaken,
		StepsTruncated: r.c.StepsTruncated,
		EventCounts:    r.c.EventCounts,
		WaitingUntil:   until,
	}, nil
}

// begin makes sure the enrollment row exists: the API commits it before it
// starts the workflow, and this covers a row dropped while a start Temporal
// had not reported was still in flight (and runs started by older APIs,
// whose commit could fail after the start).
func (r *journeyRun) begin(ctx workflow.Context) error {
	var a *activities.Activities
	err := r.bookkeeping(ctx, a.BeginEnrollment, activities.BeginEnrollmentInput{
		EnrollmentID: r.in.EnrollmentID,
		ContactID:    r.in.ContactID,
		JourneyID:    r.spec.ID,
		Version:      r.in.Version,
		WorkflowID:   workflow.GetInfo(ctx).WorkflowExecution.ID,
	}).Get(ctx, nil)
	if err != nil || r.spec.Holdout == nil {
		return err
	}
	return r.assignHoldout(ctx)
}

// assignHoldout finds out whether the contact is in the journey's
// holdout. A held-out contact walks the journey like any other, so that it
// is tracked for the goal over the same time; its marketing messages are
// recorded as skipped with the reason holdout instead of being sent.
// (Only specs with a holdout get here: no existing history changes.)
func (r *journeyRun) assignHoldout(ctx workflow.Context) error {
	var a *activities.Activities
	var res activities.AssignHoldoutResult
	err := workflow.ExecuteActivity(dbActivityCtx(ctx), a.AssignHoldout, activities.AssignHoldoutInput{
		EnrollmentID: r.in.EnrollmentID,
		ContactID:    r.in.ContactID,
		JourneyID:    r.spec.ID,
		Version:      r.in.Version,
		Share:        r.spec.Holdout.Share,
	}).Get(ctx, &res)
	if err != nil {
		return err
	}
	if res.Group == journey.GroupHoldout {
		r.c.Withhold = journey.GroupHoldout
	}
	return nil
}

// split takes the contact down its variant's path. The variant comes from
// an activity that records it in PostgreSQL the first time (a recorded one
// wins), so only its name enters the history.
func (r *journeyRun) split(ctx workflow.Context, step journey.Step) (next, outcome string, err error) {
	var a *activities.Activities
	var res activities.AssignVariantResult
	err = workflow.ExecuteActivity(dbActivityCtx(ctx), a.AssignVariant, activities.AssignVariantInput{
		EnrollmentID: r.in.EnrollmentID,
		ContactID:    r.in.ContactID,
		JourneyID:    r.spec.ID,
		Version:      r.in.Version,
		Split:        *step.Split,
	}).Get(ctx, &res)
	if err != nil {
		return "", "", err
	}
	v, ok := step.Split.Variant(res.Path)
	if !ok {
		return "", "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("split %s has no variant %q", step.ID, res.Path), "UnknownVariant", nil)
	}
	outcome = "variant: " + res.Variant
	if res.Path != res.Variant {
		outcome += " (not in this version; control's path: " + res.Path + ")"
	}
	return v.Next, outcome, nil
}

// finish records how the journey ended on the enrollment row. It runs on a
// disconnected context so a cancelled run is still recorded.
func (r *journeyRun) finish(ctx workflow.Context) (JourneyResult, error) {
	last := r.current
	r.current = ""
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var a *activities.Activities
	err := r.bookkeeping(dctx, a.FinishEnrollment, activities.FinishEnrollmentInput{
		EnrollmentID:  r.in.EnrollmentID,
		Status:        r.endStatus,
		Reason:        r.endReason,
		ExitRequestID: r.exitRequest,
		LastStep:      last,
		Path:          r.path(),
		PathTruncated: r.c.StepsTruncated > 0,
	}).Get(dctx, nil)
	if err != nil {
		return JourneyResult{}, err
	}
	return JourneyResult{Status: r.endStatus, ExitReason: r.endReason}, nil
}

// shouldContinueAsNew: the history has reached the point where the run
// hands over. GetCurrentHistoryLength is the id of the workflow task
// started event, so the run notices at the first task that starts there.
func (r *journeyRun) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	limit := r.in.ContinueAsNewAfter
	if limit <= 0 {
		limit = DefaultContinueAsNewAfter
	}
	if r.boundedHandOver {
		limit = HandOverPoint(r.in.ContinueAsNewAfter)
	}
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= limit
}

// continueAsNew hands the run's state to a fresh run, after handling the
// signals still buffered so none is lost. It returns nil, and the run
// finishes instead, when one of those signals ended the journey: the next run
// would not know it had ended.
func (r *journeyRun) continueAsNew(ctx workflow.Context) error {
	r.drainSignals(ctx)
	if r.ended() && r.waitsCAN {
		if w := r.c.Waiting; r.paused && w != nil {
			r.record(StepRecord{StepID: w.StepID, Kind: r.spec.Steps[r.spec.StepIndex(w.StepID)].Kind(),
				StartedAt: w.StartedAt, FinishedAt: workflow.Now(ctx), Outcome: "interrupted: " + r.endReason})
			r.c.Waiting = nil
		}
		return nil
	}
	next := r.in
	carried := r.c
	next.Carried = &carried
	return workflow.NewContinueAsNewError(ctx, Journey, next)
}

// runStep executes the step under the cursor and moves the cursor on.
func (r *journeyRun) runStep(ctx workflow.Context) error {
	idx := r.spec.StepIndex(r.c.Cursor)
	if idx < 0 {
		// Validation rules this out; fail loudly rather than guess a path.
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("journey %s v%d has no step %q", r.spec.ID, r.in.Version, r.c.Cursor), "UnknownStep", nil)
	}
	step := r.spec.Steps[idx]
	r.current = step.ID
	// A wait that the previous run paused to continue as new goes on: it is
	// the same visit, and its record keeps its real start.
	resumed := r.c.Waiting != nil && r.c.Waiting.StepID == step.ID
	if !resumed {
		r.c.Waiting = nil
		r.c.Visits[step.ID]++
	}
	if !r.leanHistory() {
		if err := r.setStepAttr(ctx, step.ID); err != nil {
			return err
		}
	}
	rec := StepRecord{StepID: step.ID, Kind: step.Kind(), StartedAt: workflow.Now(ctx)}
	if resumed {
		rec.StartedAt = r.c.Waiting.StartedAt
	}

	var next, outcome string
	var err error
	switch step.Kind() {
	case journey.KindSend:
		outcome, err = r.send(ctx, step)
		next = r.spec.Successor(idx)
	case journey.KindWait:
		outcome = r.wait(ctx, step.ID, step.Wait.Duration.Std())
		next = r.spec.Successor(idx)
	case journey.KindWaitUntil:
		outcome, err = r.waitUntil(ctx, step.ID, step.WaitUntil)
		next = r.spec.Successor(idx)
	case journey.KindWaitFor:
		var happened bool
		happened, outcome = r.waitFor(ctx, step.ID, step.WaitFor)
		if happened {
			next = r.spec.Resolve(idx, step.WaitFor.OnEvent)
		} else {
			next = r.spec.Resolve(idx, step.WaitFor.OnTimeout)
		}
	case journey.KindBranch:
		var taken bool
		taken, outcome, err = r.branch(ctx, step)
		if taken {
			next = r.spec.Resolve(idx, step.Branch.Then)
		} else {
			next = r.spec.Resolve(idx, step.Branch.Else)
		}
	case journey.KindAudience:
		outcome, err = r.audience(ctx, step)
		next = r.spec.Successor(idx)
	case journey.KindWebhook:
		outcome, err = r.webhook(ctx, step)
		next = r.spec.Successor(idx)
	case journey.KindSplit:
		next, outcome, err = r.split(ctx, step)
	case journey.KindExit:
		reason := step.Exit.Reason
		if reason == "" {
			reason = "exit step " + step.ID
		}
		r.end(model.RunCompleted, reason)
		outcome = "exit: " + reason
	default:
		return temporal.NewNonRetryableApplicationError("step "+step.ID+" has no action", "InvalidStep", nil)
	}
	if err != nil {
		return err
	}
	if r.paused {
		return nil // the cursor stays on the wait; the next run resumes it
	}
	rec.FinishedAt = workflow.Now(ctx)
	rec.Outcome = outcome
	r.record(rec)
	r.c.Cursor = next
	return nil
}

// leanHistory: this run has version 2 of changeContinueAsNewInWaits, which
// writes fewer history events (each one costs the Temporal server CPU, so
// throughput):
//   - JourneyStep is set when the run parks on a durable timer (a wait, a
//     wait_for, a send deferred or waiting to retry the provider), not at
//     every step: it names the step the run waits at, or last waited at,
//     which is what ops filter on. Earlier runs set it at every step.
//   - sends are keyed by the run (changeSendKeyByRun) without asking
//     GetVersion for that change, whose marker and TemporalChangeVersion
//     upsert cost two events: every run with this version is newer than it.
func (r *journeyRun) leanHistory() bool { return r.version >= versionLeanHistory }

// bookkeeping runs BeginEnrollment or FinishEnrollment. From
// versionLocalBookkeeping on they are local activities: each is a short,
// idempotent write to PostgreSQL that the worker holding the workflow task
// can do at once, so it costs one marker instead of three events and an
// activity task's round trip through the server. A run that ends on a
// signal (a goal, an exit) then closes within the workflow task that hears
// it. A local activity that outlasts the workflow task is kept alive by
// the SDK's task heartbeats and retried on the same schedule as the
// activity was; the enrollment row is what both write, so a retry after a
// worker crash writes the same.
func (r *journeyRun) bookkeeping(ctx workflow.Context, activity, input any) workflow.Future {
	if r.version < versionLocalBookkeeping {
		return workflow.ExecuteActivity(dbActivityCtx(ctx), activity, input)
	}
	return workflow.ExecuteLocalActivity(dbLocalActivityCtx(ctx, 30*time.Second), activity, input)
}

// setStepAttr sets the JourneyStep search attribute, unless it already
// says step (a resumed wait, a loop over one wait).
func (r *journeyRun) setStepAttr(ctx workflow.Context, step string) error {
	if r.leanHistory() && r.stepAttr == step {
		return nil
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchJourneyStep.ValueSet(step)); err != nil {
		return err
	}
	r.stepAttr = step
	return nil
}

// parkAt marks, from leanHistory on, that the run now waits at step on a
// durable timer: ops find it there through JourneyStep.
func (r *journeyRun) parkAt(ctx workflow.Context, step string) error {
	if !r.leanHistory() {
		return nil // set when the step began
	}
	return r.setStepAttr(ctx, step)
}

// path is the ids of the steps taken, in order: never nil, so that
// FinishEnrollment records it even when the run took no step.
func (r *journeyRun) path() []string {
	out := make([]string, 0, len(r.c.StepsTaken))
	for _, rec := range r.c.StepsTaken {
		out = append(out, rec.StepID)
	}
	return out
}

func (r *journeyRun) record(rec StepRecord) {
	r.c.StepsTaken = append(r.c.StepsTaken, rec)
	if n := len(r.c.StepsTaken) - maxStepRecords; n > 0 {
		r.c.StepsTaken = append([]StepRecord(nil), r.c.StepsTaken[n:]...)
		r.c.StepsTruncated += n
	}
}

// wait sleeps on a durable timer, waking early only when the journey ends,
// or to continue as new: the next run resumes it until the same deadline.
func (r *journeyRun) wait(ctx workflow.Context, stepID string, d time.Duration) string {
	var err error
	if r.waitsCAN {
		err = r.awaitUntil(ctx, r.beginWait(ctx, stepID, d), r.ended)
	} else {
		_, err = workflow.AwaitWithTimeout(ctx, d, r.ended)
	}
	if err != nil || r.paused {
		return "interrupted"
	}
	if r.ended() {
		return "interrupted: " + r.endReason
	}
	return "waited " + journey.Duration(d).String()
}

// waitUntil sleeps on a durable timer until the next local time the step
// names in the contact's time zone, waking early only when the journey
// ends, or to continue as new, like wait. The zone is the contact's data:
// an activity resolves it from PostgreSQL and returns only the instant,
// which is all history keeps. A resumed wait keeps that instant and does
// not ask again.
func (r *journeyRun) waitUntil(ctx workflow.Context, stepID string, wu *journey.WaitUntil) (string, error) {
	if r.c.Waiting == nil || r.c.Waiting.StepID != stepID {
		now := workflow.Now(ctx)
		var a *activities.Activities
		var res activities.NextLocalTimeResult
		err := workflow.ExecuteActivity(dbActivityCtx(ctx), a.NextLocalTime, activities.NextLocalTimeInput{
			ContactID: r.in.ContactID,
			WaitUntil: *wu,
			After:     now,
		}).Get(ctx, &res)
		if err != nil {
			return "", err
		}
		r.c.Waiting = &Waiting{StepID: stepID, StartedAt: now, Until: res.At}
	}
	until := r.c.Waiting.Until
	if err := r.awaitUntil(ctx, until, r.ended); err != nil || r.paused {
		return "interrupted", err
	}
	if r.ended() {
		return "interrupted: " + r.endReason, nil
	}
	return "waited until " + until.UTC().Format(time.RFC3339), nil
}

// waitFor waits for an event since the latest send, or the timeout.
func (r *journeyRun) waitFor(ctx workflow.Context, stepID string, wf *journey.WaitFor) (happened bool, outcome string) {
	// Providers stamp events in whole seconds (SendGrid's timestamp), so an
	// open in the send's own second must not look older than the send.
	since := r.c.WindowStart.Truncate(time.Second)
	latest := r.waitsCAN
	seen := func() bool {
		if at, ok := r.c.LatestEvent[wf.Event]; latest && ok && !at.Before(since) {
			return true
		}
		for _, ev := range r.c.Events {
			if ev.Name == wf.Event && !ev.OccurredAt.Before(since) {
				return true
			}
		}
		return false
	}
	done := func() bool { return r.ended() || seen() }
	var ok bool
	var err error
	if latest {
		err = r.awaitUntil(ctx, r.beginWait(ctx, stepID, wf.Timeout.Std()), done)
		if r.paused {
			return false, "interrupted"
		}
		ok = done()
	} else {
		ok, err = workflow.AwaitWithTimeout(ctx, wf.Timeout.Std(), done)
	}
	switch {
	case err != nil:
		return false, "interrupted"
	case r.ended() && !seen():
		return false, "interrupted: " + r.endReason
	case ok:
		return true, "event: " + wf.Event
	default:
		return false, "timed out after " + wf.Timeout.String()
	}
}

// beginWait returns the deadline of the wait starting now, or of the wait
// the previous run paused, which keeps its original deadline.
func (r *journeyRun) beginWait(ctx workflow.Context, stepID string, d time.Duration) time.Time {
	if r.c.Waiting == nil || r.c.Waiting.StepID != stepID {
		now := workflow.Now(ctx)
		r.c.Waiting = &Waiting{StepID: stepID, StartedAt: now, Until: now.Add(d)}
	}
	return r.c.Waiting.Until
}

// awaitUntil waits until done holds or the deadline passes. It also wakes
// when the history has grown long enough to continue as new, and then sets
// r.paused and keeps r.c.Waiting for the next run; otherwise the wait is
// over and r.c.Waiting is cleared.
func (r *journeyRun) awaitUntil(ctx workflow.Context, until time.Time, done func() bool) error {
	if left := until.Sub(workflow.Now(ctx)); left > 0 && !done() {
		if err := r.parkAt(ctx, r.c.Waiting.StepID); err != nil {
			r.c.Waiting = nil
			return err
		}
		woke, err := workflow.AwaitWithTimeout(ctx, left, func() bool { return done() || r.shouldContinueAsNew(ctx) })
		if err != nil {
			r.c.Waiting = nil
			return err
		}
		if woke && !done() {
			r.paused = true
			return nil
		}
	}
	r.c.Waiting = nil
	return nil
}

// audience asks for the contact to be added to or removed from an ad
// audience; the audience's sync workflow applies it. The outcome is a code
// ("queued", "skipped:no_ads_consent"...).
func (r *journeyRun) audience(ctx workflow.Context, step journey.Step) (string, error) {
	var a *activities.Activities
	var res activities.ChangeAudienceResult
	err := workflow.ExecuteActivity(dbActivityCtx(ctx), a.ChangeAudience, activities.ChangeAudienceInput{
		ContactID: r.in.ContactID, AudienceID: step.Audience.Audience, Action: audience.Action(step.Audience.Action),
		JourneyID: r.spec.ID, StepID: step.ID,
	}).Get(ctx, &res)
	if err != nil {
		return "", err
	}
	return step.Audience.Action + ": " + res.Outcome, nil
}

// branch evaluates the condition in an activity, which reads the contact's
// current attributes and consent from Postgres: that keeps PII out of history.
func (r *journeyRun) branch(ctx workflow.Context, step journey.Step) (bool, string, error) {
	var a *activities.Activities
	var res activities.EvaluateConditionResult
	err := workflow.ExecuteActivity(dbActivityCtx(ctx), a.EvaluateCondition, activities.EvaluateConditionInput{
		ContactID: r.in.ContactID,
		Condition: step.Branch.Condition,
		Journey: activities.JourneyContext{
			ID:          r.spec.ID,
			Version:     r.in.Version,
			Step:        step.ID,
			EventCounts: r.c.EventCounts,
			EnteredAt:   r.c.EnteredAt,
		},
	}).Get(ctx, &res)
	if err != nil {
		return false, "", err
	}
	switch {
	case res.Error != "":
		// A condition that cannot be evaluated for this contact (a missing
		// attribute, say) takes the else path: never act on a guess.
		return false, "else (condition error: " + res.Error + ")", nil
	case res.Value:
		return true, "then", nil
	default:
		return false, "else", nil
	}
}

// send asks the send activity to deliver the step's message. The activity
// decides (consent and policy), records the ledger row and calls the provider.
// A deferral is honoured (deliver) with a durable timer, and so is a provider that
// asked to be retried later (backoff: see retryDelay); a provider answer the
// ledger could not record is recorded by the settle activity before the
// journey moves on.
//
// A step that chooses (channel: best, send_time: best) asks ChooseSend
// first and waits for the chosen time; a waterfall sends stage by stage
// (see waterfall). Either way each message goes through deliverSend.
func (r *journeyRun) send(ctx workflow.Context, step journey.Step) (string, error) {
	snd := *step.Send
	if len(snd.Waterfall) > 0 {
		return r.waterfall(ctx, step)
	}
	if !snd.Chooses() {
		out, _, err := r.deliverSend(ctx, step, snd, "")
		return out, err
	}
	key := r.sendKey(ctx, step.ID)
	var a *activities.Activities
	in := activities.ChooseSendInput{IdempotencyKey: key, ContactID: r.in.ContactID, JourneyID: r.spec.ID, StepID: step.ID,
		Class: r.class(snd), Send: snd, Policy: r.spec.Policy, Abandonment: r.abandonment(), Now: workflow.Now(ctx)}
	var choice activities.ChooseSendResult
	if err := workflow.ExecuteActivity(dbActivityCtx(ctx), a.ChooseSend, in).Get(ctx, &choice); err != nil {
		return "", err
	}
	snd.Channel, snd.SendTime, snd.Within = choice.Channel, "", 0
	chosen := "chose " + string(choice.Channel)
	if !choice.SendAt.IsZero() {
		chosen += " at " + choice.SendAt.UTC().Format(time.RFC3339)
		if wait := choice.SendAt.Sub(workflow.Now(ctx)); wait > 0 {
			if err := r.parkAt(ctx, step.ID); err != nil {
				return "", err
			}
			if _, err := workflow.AwaitWithTimeout(ctx, wait, r.ended); err != nil {
				return "", err
			}
		}
	}
	out, _, err := r.deliverSend(ctx, step, snd, key)
	return chosen + ": " + out, err
}

// class is the message class of a send: the step's, else the journey's,
// else marketing.
func (r *journeyRun) class(snd journey.Send) journey.MessageClass {
	class := snd.Class
	if class == "" {
		class = r.spec.Class
	}
	if class == "" {
		class = journey.ClassMarketing
	}
	return class
}

// abandonment is the event an abandonment journey runs for, if it is one.
func (r *journeyRun) abandonment() *activities.AbandonmentRef {
	if r.spec.Policy != nil && r.spec.Policy.Abandonment && r.in.Trigger != nil {
		return &activities.AbandonmentRef{EventID: r.in.Trigger.EventID, OccurredAt: r.in.Trigger.OccurredAt}
	}
	return nil
}

// deliverSend sends one message of step on snd.Channel through the send
// activity, keyed key ("" for the step's own sendKey), and reports its
// outcome and whether it reached the provider (sent, or on its way).
func (r *journeyRun) deliverSend(ctx workflow.Context, step journey.Step, snd journey.Send, key string) (string, bool, error) {
	r.c.WindowStart = workflow.Now(ctx)
	if key == "" {
		key = r.sendKey(ctx, step.ID)
	}
	class := r.class(snd)
	in := activities.SendInput{
		IdempotencyKey: key,
		ContactID:      r.in.ContactID,
		JourneyID:      r.spec.ID,
		JourneyVersion: r.in.Version,
		StepID:         step.ID,
		Class:          class,
		Send:           snd,
		Policy:         r.spec.Policy,
		EnrollmentID:   r.in.EnrollmentID,
		Abandonment:    r.abandonment(),
	}
	if class == journey.ClassMarketing {
		in.Withhold = r.c.Withhold
	}
	var a *activities.Activities
	return r.deliver(ctx, step.ID, in.IdempotencyKey, "send", func(ctx workflow.Context) workflow.Future {
		return workflow.ExecuteActivity(sendActivityCtx(ctx), a.Send, in)
	})
}

// webhook asks the webhook activity to post the step's payload. It takes
// the send's path (decide, deliver, settle: see send), keyed like a send,
// and is retried like one when the destination answers 5xx or 429. A post
// is not a message to the contact: it does not move the window a wait_for
// counts events from.
func (r *journeyRun) webhook(ctx workflow.Context, step journey.Step) (string, error) {
	in := activities.WebhookInput{
		IdempotencyKey: r.sendKey(ctx, step.ID),
		ContactID:      r.in.ContactID,
		JourneyID:      r.spec.ID,
		JourneyVersion: r.in.Version,
		StepID:         step.ID,
		Webhook:        *step.Webhook,
		Policy:         r.spec.Policy,
	}
	var a *activities.Activities
	out, _, err := r.deliver(ctx, step.ID, in.IdempotencyKey, "webhook", func(ctx workflow.Context) workflow.Future {
		return workflow.ExecuteActivity(sendActivityCtx(ctx), a.PostWebhook, in)
	})
	return out, err
}

// deliver runs attempt (a send or a webhook post, keyed key) until it
// settles: a deferral is waited out on a durable timer, and so is a
// provider's "retry later" (backoff: see retryDelay), for at most
// sendRetryBudget; an answer the ledger could not record is recorded by
// the settle activity before the journey moves on. what names the step's
// kind in its outcome and logs. It reports the outcome and whether the
// message reached the provider (sent, or on its way).
func (r *journeyRun) deliver(ctx workflow.Context, stepID, key, what string, attempt func(workflow.Context) workflow.Future) (string, bool, error) {
	firstRetry := time.Time{}
	for retries := 0; ; {
		if r.ended() {
			return "not sent: " + r.endReason, false, nil
		}
		var res activities.SendResult
		err := attempt(ctx).Get(ctx, &res)
		if err != nil {
			var appErr *temporal.ApplicationError
			if temporal.IsCanceledError(err) {
				return "", false, err
			}
			// Retries are exhausted or the failure is permanent: the journey
			// goes on without this message rather than stalling forever.
			if errors.As(err, &appErr) || temporal.IsTimeoutError(err) {
				workflow.GetLogger(ctx).Error(what+" failed", "step", stepID, "error", err)
				return "error: " + what + " activity failed", false, nil
			}
			return "", false, err
		}
		if res.Unsettled != nil {
			if err := settle(ctx, *res.Unsettled); err != nil {
				return "", false, err
			}
		}
		var wait time.Duration
		switch res.Status {
		case delivery.StatusDeferred:
			wait = res.DeferUntil.Sub(workflow.Now(ctx))
		case delivery.StatusRetry:
			if firstRetry.IsZero() {
				firstRetry = workflow.Now(ctx)
			}
			if workflow.Now(ctx).Sub(firstRetry) >= sendRetryBudget {
				// The provider kept refusing for hours: give the message up
				// and say so in the ledger rather than leave it retrying.
				giveUp := delivery.Settlement{MessageID: res.MessageID, Channel: res.Channel,
					Status: model.MessageFailed, Reason: "retries_exhausted:" + res.Reason}
				if err := settle(ctx, giveUp); err != nil {
					return "", false, err
				}
				return "failed: retries_exhausted:" + res.Reason, false, nil
			}
			wait = retryDelay(key, retries, res.RetryAfter)
			retries++
		default:
			return res.Outcome(), reached(res.Status), nil
		}
		if wait > 0 {
			if err := r.parkAt(ctx, stepID); err != nil {
				return "", false, err
			}
			if _, err := workflow.AwaitWithTimeout(ctx, wait, r.ended); err != nil {
				return "", false, err
			}
		}
	}
}

// reached: a send with this status went to the provider, or may have.
func reached(st model.MessageStatus) bool {
	switch st {
	case model.MessageSkipped, model.MessageFailed, model.MessageDropped, model.MessageBounced, "":
		return false
	}
	return true
}

// waterfall sends the step's stages in turn: the first at once, each next
// one only if no engagement event (engagement.EventNames: an open, a
// click, a reply) arrived within its after of the previous send. A stage
// that was not sent (no consent, suppressed, no address...) hands over to
// the next at once: there was nothing to engage with. Each stage is its own
// message through the one send path, keyed by the step's visit and stage.
func (r *journeyRun) waterfall(ctx workflow.Context, step journey.Step) (string, error) {
	base := r.sendKey(ctx, step.ID)
	var outs []string
	sent := false
	for i, stage := range step.Send.Waterfall {
		if i > 0 && sent {
			engaged, err := r.awaitEngagement(ctx, step.ID, stage.After.Std())
			if err != nil {
				return "", err
			}
			if engaged != "" {
				outs = append(outs, "engaged ("+engaged+"): "+string(stage.Channel)+" not sent")
				break
			}
		}
		if r.ended() {
			outs = append(outs, "not sent: "+r.endReason)
			break
		}
		key := base
		if i > 0 {
			key = fmt.Sprintf("%s/waterfall/%d", base, i)
		}
		snd := *step.Send
		snd.Channel, snd.Waterfall = stage.Channel, nil
		out, ok, err := r.deliverSend(ctx, step, snd, key)
		if err != nil {
			return "", err
		}
		outs = append(outs, string(stage.Channel)+": "+out)
		sent = ok
	}
	return strings.Join(outs, "; "), nil
}

// awaitEngagement waits up to d for an engagement event since the latest
// send (r.c.WindowStart), and returns its name, or "" when none came or
// the run ended. Like wait_for it looks at the events the run has seen,
// so an open that arrived before the wait began counts.
func (r *journeyRun) awaitEngagement(ctx workflow.Context, stepID string, d time.Duration) (string, error) {
	since := r.c.WindowStart.Truncate(time.Second)
	seen := func() string {
		for _, name := range engagement.EventNames() {
			if at, ok := r.c.LatestEvent[name]; ok && !at.Before(since) {
				return name
			}
		}
		return ""
	}
	if err := r.parkAt(ctx, stepID); err != nil {
		return "", err
	}
	if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return r.ended() || seen() != "" }); err != nil {
		return "", err
	}
	return seen(), nil
}

// sendKey is the ledger's idempotency key for this visit of a send step:
// the same for every retry of the activity, different for another visit of
// the step (a loop) and for another run of the journey (re-entry), since the
// enrollment id is the run's. Runs started before that change keep the
// workflow-id key they were sending with.
func (r *journeyRun) sendKey(ctx workflow.Context, stepID string) string {
	visit := r.c.Visits[stepID]
	// A leanHistory run is newer than changeSendKeyByRun: it does not ask.
	byRun := r.leanHistory() || workflow.GetVersion(ctx, changeSendKeyByRun, workflow.DefaultVersion, 1) >= 1
	if !byRun || r.in.EnrollmentID == "" {
		return fmt.Sprintf("%s/%s/%d", workflow.GetInfo(ctx).WorkflowExecution.ID, stepID, visit)
	}
	return fmt.Sprintf("enrollment/%s/%s/%d", r.in.EnrollmentID, stepID, visit)
}

// changeSendKeyByRun keys sends by the run (enrollment) instead of the
// workflow id, which every run of a journey for a contact shares.
const changeSendKeyByRun = "send-key-by-run"

// Provider retry schedule: exponential from sendRetryBase up to sendRetryMax,
// with up to 20% jitter, never sooner than the provider's Retry-After, and
// for at most sendRetryBudget before the message is given up.
const (
	sendRetryBase   = 2 * time.Second
	sendRetryMax    = 10 * time.Minute
	sendRetryBudget = 6 * time.Hour
)

// retryDelay is the wait before retry number n (from 0) of the send keyed
// key. The jitter is a hash of key and n, so replays compute the same delay
// while sends throttled together spread out.
func retryDelay(key string, n int, retryAfter time.Duration) time.Duration {
	d := sendRetryMax
	if n < 20 {
		d = min(sendRetryBase<<n, sendRetryMax)
	}
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%s/%d", key, n)
	d += time.Duration(float64(d) * 0.2 * float64(h.Sum32()%1000) / 1000)
	return max(d, retryAfter)
}

// settle records a provider answer the send activity could not write, as a
// local activity (one marker in history), retried until the database is back.
func settle(ctx workflow.Context, st delivery.Settlement) error {
	var a *activities.Activities
	return workflow.ExecuteLocalActivity(dbLocalActivityCtx(ctx, 10*time.Second), a.SettleSend, st).Get(ctx, nil)
}

// dbLocalActivityCtx runs a local activity that writes to PostgreSQL: each
// attempt may take startToClose, and attempts go on (1 s doubling to a
// minute) for up to a week, so a database outage delays the write rather
// than losing it.
func dbLocalActivityCtx(ctx workflow.Context, startToClose time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    startToClose,
		ScheduleToCloseTimeout: 7 * 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

func dbActivityCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// sendActivityCtx retries failures of the send activity itself (the
// database, a dead worker) with backoff for hours; provider refusals come
// back as results, which send retries on its own schedule. The heartbeat
// timeout notices a dead worker within seconds.
func sendActivityCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		HeartbeatTimeout:       10 * time.Second,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Minute,
		},
	})
}
