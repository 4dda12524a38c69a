package workflows

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// welcomeSpec mirrors the example welcome series: email, wait, wait for an
// open, SMS nudge if not opened and the contact has SMS consent, exit.
func welcomeSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: welcome
name: Welcome series
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
exit_events: [unsubscribed]
steps:
  - id: welcome_email
    send:
      channel: email
      email: {subject: "Welcome {{ .contact.first_name | default \"there\" }}", text: "Hello"}
  - id: pause
    wait: {duration: 1h}
  - id: wait_open
    wait_for: {event: email.opened, timeout: 2d, on_event: done, on_timeout: sms_ok}
  - id: sms_ok
    branch: {condition: 'consent.sms == "granted"', then: sms_nudge, else: done}
  - id: sms_nudge
    send:
      channel: sms
      sms: {body: "Did you see our email?"}
  - id: done
    exit: {reason: completed}
`))
	require.NoError(t, err)
	return spec
}

// harness records what the mocked activities were asked to do.
type harness struct {
	env       *testsuite.TestWorkflowEnvironment
	mu        sync.Mutex
	sends     []activities.SendInput
	finished  []activities.FinishEnrollmentInput
	condition bool
	// conditionFn, when set, answers EvaluateCondition instead of condition.
	conditionFn func(activities.EvaluateConditionInput) activities.EvaluateConditionResult
	sendFn      func(activities.SendInput) (activities.SendResult, error)
	// finishErr, when set, is asked before each FinishEnrollment is recorded:
	// an error fails that attempt.
	finishErr func() error
}

func newHarness(t *testing.T) *harness {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	h := &harness{env: suite.NewTestWorkflowEnvironment(), condition: true}
	var a *activities.Activities
	h.env.RegisterActivity(a)
	h.env.OnActivity(a.BeginEnrollment, mock.Anything, mock.Anything).Return(nil)
	h.env.OnActivity(a.FinishEnrollment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishEnrollmentInput) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.finishErr != nil {
				if err := h.finishErr(); err != nil {
					return err
				}
			}
			h.finished = append(h.finished, in)
			return nil
		})
	h.env.OnActivity(a.EvaluateCondition, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EvaluateConditionInput) (activities.EvaluateConditionResult, error) {
			h.mu.Lock()
			fn := h.conditionFn
			h.mu.Unlock()
			if fn != nil {
				return fn(in), nil
			}
			return activities.EvaluateConditionResult{Value: h.condition}, nil
		})
	h.env.OnActivity(a.Send, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			h.mu.Lock()
			h.sends = append(h.sends, in)
			fn := h.sendFn
			h.mu.Unlock()
			if fn != nil {
				return fn(in)
			}
			return activities.SendResult{Status: model.MessageSent, MessageID: "m_" + in.StepID}, nil
		})
	return h
}

func (h *harness) sentSteps() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, s := range h.sends {
		out = append(out, s.StepID)
	}
	return out
}

func (h *harness) run(t *testing.T, in JourneyInput) JourneyResult {
	t.Helper()
	h.env.ExecuteWorkflow(Journey, in)
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var res JourneyResult
	require.NoError(t, h.env.GetWorkflowResult(&res))
	return res
}

func (h *harness) signalAfter(d time.Duration, name string, payload any) {
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(name, payload) }, d)
}

func input(spec journey.Spec) JourneyInput {
	return JourneyInput{EnrollmentID: "e_1", ContactID: "c_1", Version: 3, Spec: spec}
}

func TestJourney_TimeoutPathSendsSMSNudge(t *testing.T) {
	h := newHarness(t)
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, JourneyResult{Status: model.RunCompleted, ExitReason: "completed"}, res)
	require.Equal(t, []string{"welcome_email", "sms_nudge"}, h.sentSteps())
	require.Equal(t, journey.ChannelSMS, h.sends[1].Send.Channel)
	require.Equal(t, journey.ClassMarketing, h.sends[0].Class)
	require.Equal(t, []activities.FinishEnrollmentInput{{EnrollmentID: "e_1", Status: model.RunCompleted, Reason: "completed", LastStep: "done",
		Path: []string{"welcome_email", "pause", "wait_open", "sms_ok", "sms_nudge", "done"}}}, h.finished)
}

// The run hands the path it took to FinishEnrollment however it ends:
// the step it ended in counts (a wait cut short by the goal), and a run
// that ended before any step has an empty path, not none.
func TestJourney_FinishRecordsThePathTaken(t *testing.T) {
	cases := []struct {
		name   string
		signal func(h *harness)
		status model.RunStatus
		path   []string
	}{
		{"completed", func(*harness) {}, model.RunCompleted,
			[]string{"welcome_email", "pause", "wait_open", "sms_ok", "sms_nudge", "done"}},
		{"converted in the pause", func(h *harness) {
			h.signalAfter(30*time.Minute, SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: time.Now()})
		}, model.RunConverted, []string{"welcome_email", "pause"}},
		{"opened, then done", func(h *harness) {
			h.signalAfter(3*time.Hour, SignalEvent, EventSignal{EventID: "o", Name: "email.opened", OccurredAt: time.Now()})
		}, model.RunCompleted, []string{"welcome_email", "pause", "wait_open", "done"}},
		{"support exit in the wait_for", func(h *harness) {
			h.signalAfter(5*time.Hour, SignalExit, ExitSignal{Reason: ExitSupport, RequestID: "x_1"})
		}, model.RunExited, []string{"welcome_email", "pause", "wait_open"}},
		{"exit event before the first step", func(h *harness) {
			h.signalAfter(0, SignalEvent, EventSignal{EventID: "u", Name: "unsubscribed", OccurredAt: time.Now()})
		}, model.RunExited, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.signal(h)
			res := h.run(t, input(welcomeSpec(t)))
			require.Equal(t, tc.status, res.Status)
			require.Len(t, h.finished, 1)
			require.Equal(t, tc.path, h.finished[0].Path)
			require.NotNil(t, h.finished[0].Path)
			require.False(t, h.finished[0].PathTruncated)
		})
	}
}

func TestJourney_NoSMSConsentTakesElseBranch(t *testing.T) {
	h := newHarness(t)
	h.condition = false
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps())
}

func TestJourney_WaitForEventTakesOnEventPath(t *testing.T) {
	h := newHarness(t)
	// Opened 3 hours in: after the 1h pause, during the wait_for.
	h.signalAfter(3*time.Hour, SignalEvent, EventSignal{EventID: "ev1", Name: "email.opened", OccurredAt: time.Now().Add(3 * time.Hour)})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps(), "an opened email means no SMS nudge")
}

func TestJourney_EventBeforeWaitForStillCounts(t *testing.T) {
	h := newHarness(t)
	// Opened during the 1h pause, before the wait_for step begins.
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalEvent, EventSignal{EventID: "ev1", Name: "email.opened", OccurredAt: h.env.Now()})
	}, 10*time.Minute)
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps())
}

func TestJourney_GoalEndsAtOnceInTheMiddleOfAWait(t *testing.T) {
	h := newHarness(t)
	start := h.env.Now()
	var endedAt time.Time
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalEvent, EventSignal{EventID: "ev-p", Name: "purchase", OccurredAt: h.env.Now()})
	}, 30*time.Minute)
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "FinishEnrollment" {
			endedAt = h.env.Now()
		}
	})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, JourneyResult{Status: model.RunConverted, ExitReason: "goal: purchase"}, res)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps())
	require.Less(t, endedAt.Sub(start), time.Hour, "the 1h wait was cut short by the goal")
}

func TestJourney_SupportExitDuringWaitFor(t *testing.T) {
	h := newHarness(t)
	h.signalAfter(5*time.Hour, SignalExit, ExitSignal{Reason: ExitSupport, RequestID: "x_1", By: "api"})
	// A second request arriving after the run ended does not replace the first.
	h.signalAfter(5*time.Hour, SignalExit, ExitSignal{Reason: ExitErased})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, JourneyResult{Status: model.RunExited, ExitReason: ExitSupport}, res)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps())
	require.Equal(t, ExitSupport, h.finished[0].Reason)
	require.Equal(t, "x_1", h.finished[0].ExitRequestID, "the enrollment is pointed at the request with support's words")
}

func TestJourney_ErasedContactEnds(t *testing.T) {
	h := newHarness(t)
	h.signalAfter(30*time.Minute, SignalExit, ExitSignal{Reason: ExitErased, By: "erasure"})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, JourneyResult{Status: model.RunExited, ExitReason: ExitErased}, res)
	require.Empty(t, h.finished[0].ExitRequestID)
}

// A condition that cannot be evaluated takes the else path, and the step
// records the activity's code.
func TestJourney_ConditionErrorCodeInOutcome(t *testing.T) {
	h := newHarness(t)
	h.conditionFn = func(activities.EvaluateConditionInput) activities.EvaluateConditionResult {
		return activities.EvaluateConditionResult{Error: "invalid_timestamp"}
	}
	spec, err := journey.ParseAndValidate([]byte(`
id: branchy
name: Branchy
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: check
    branch: {condition: 'timestamp(contact.birthday) < journey.entered_at', then: greet, else: later}
  - id: later
    wait: {duration: 1d}
    next: done
  - id: greet
    send:
      channel: email
      email: {subject: "Hi", text: "Hello"}
  - id: done
    exit: {reason: completed}
`))
	require.NoError(t, err)
	var steps []StepRecord
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		var st JourneyState
		require.NoError(t, v.Get(&st))
		steps = st.StepsTaken
	}, time.Hour)
	h.run(t, input(spec))
	require.Len(t, steps, 1)
	require.Equal(t, "else (condition error: invalid_timestamp)", steps[0].Outcome)
	require.Empty(t, h.sentSteps(), "else: nothing sent")
}

func TestJourney_ExitEventEndsJourney(t *testing.T) {
	h := newHarness(t)
	h.signalAfter(2*time.Hour, SignalEvent, EventSignal{EventID: "ev-u", Name: "unsubscribed", OccurredAt: time.Now()})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, JourneyResult{Status: model.RunExited, ExitReason: "exit event: unsubscribed"}, res)
}

// exit_when_leaving ends the run on its own segment's segment.exited, and
// on no other segment's.
func TestJourney_LeavingTheSegmentEndsJourney(t *testing.T) {
	spec := welcomeSpec(t)
	spec.ExitWhenLeaving = "hot_leads"
	require.Empty(t, journey.Validate(spec))
	h := newHarness(t)
	h.signalAfter(2*time.Hour, SignalEvent, SignalOf("ev-other", journey.EventSegmentExited, time.Now(), map[string]any{"segment": "warm_leads"}))
	h.signalAfter(3*time.Hour, SignalEvent, SignalOf("ev-in", journey.EventSegmentEntered, time.Now(), map[string]any{"segment": "hot_leads"}))
	h.signalAfter(4*time.Hour, SignalEvent, SignalOf("ev-left", journey.EventSegmentExited, time.Now(), map[string]any{"segment": "hot_leads"}))
	var before JourneyState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&before))
	}, 3*time.Hour+30*time.Minute)
	res := h.run(t, input(spec))
	require.Equal(t, JourneyResult{Status: model.RunExited, ExitReason: "left segment: hot_leads"}, res)
	require.Equal(t, model.RunActive, before.Status, "another segment's exit and an entry leave the run alone")
}

func TestJourney_OptOutOfEveryChannelEndsJourney(t *testing.T) {
	h := newHarness(t)
	h.signalAfter(2*time.Hour, SignalConsent, ConsentSignal{Channel: journey.ChannelEmail, Status: "revoked"})
	h.signalAfter(2*time.Hour+time.Minute, SignalConsent, ConsentSignal{Channel: journey.ChannelSMS, Status: "revoked"})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunExited, res.Status)
	require.Contains(t, res.ExitReason, "opted out")
	require.Equal(t, []string{"welcome_email"}, h.sentSteps())
}

func TestJourney_OptOutOfOneChannelKeepsGoing(t *testing.T) {
	h := newHarness(t)
	h.signalAfter(2*time.Hour, SignalConsent, ConsentSignal{Channel: journey.ChannelEmail, Status: "revoked"})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email", "sms_nudge"}, h.sentSteps())
}

func TestJourney_DuplicateEventCountsOnce(t *testing.T) {
	h := newHarness(t)
	var counts []map[string]int
	h.conditionFn = func(in activities.EvaluateConditionInput) activities.EvaluateConditionResult {
		counts = append(counts, in.Journey.EventCounts)
		return activities.EvaluateConditionResult{Value: false}
	}
	ev := EventSignal{EventID: "same", Name: "page.viewed", OccurredAt: time.Now()}
	h.signalAfter(10*time.Minute, SignalEvent, ev)
	h.signalAfter(11*time.Minute, SignalEvent, ev)
	h.run(t, input(welcomeSpec(t)))
	require.Len(t, counts, 1)
	require.Equal(t, map[string]int{"page.viewed": 1}, counts[0])
}

// Events batched by the dispatcher (SignalEvents) count like single ones,
// each once by its id, whichever signal brought it.
func TestJourney_BatchedEventsCountOnceEach(t *testing.T) {
	h := newHarness(t)
	var counts []map[string]int
	h.conditionFn = func(in activities.EvaluateConditionInput) activities.EvaluateConditionResult {
		counts = append(counts, in.Journey.EventCounts)
		return activities.EvaluateConditionResult{Value: false}
	}
	at := time.Now()
	h.signalAfter(10*time.Minute, SignalEvent, EventSignal{EventID: "a", Name: "page.viewed", OccurredAt: at})
	h.signalAfter(11*time.Minute, SignalEvents, []EventSignal{
		{EventID: "a", Name: "page.viewed", OccurredAt: at},
		{EventID: "b", Name: "page.viewed", OccurredAt: at},
		{EventID: "c", Name: "email.clicked", OccurredAt: at},
		{EventID: "b", Name: "page.viewed", OccurredAt: at},
	})
	h.run(t, input(welcomeSpec(t)))
	require.Len(t, counts, 1)
	require.Equal(t, map[string]int{"page.viewed": 2, "email.clicked": 1}, counts[0])
}

func TestJourney_QueryShowsCurrentStepAndStepsTaken(t *testing.T) {
	h := newHarness(t)
	var mid JourneyState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&mid))
	}, 30*time.Minute)
	h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunActive, mid.Status)
	require.Equal(t, "pause", mid.CurrentStep)
	require.Equal(t, "c_1", mid.ContactID)
	require.Equal(t, 3, mid.Version)
	require.Len(t, mid.StepsTaken, 1)
	require.Equal(t, "welcome_email", mid.StepsTaken[0].StepID)
	require.Equal(t, "sent", mid.StepsTaken[0].Outcome)
}

// journeySteps records the values the run sets JourneyStep to.
func journeySteps(h *harness) *[]string {
	var steps []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(SearchJourneyStep); ok {
			steps = append(steps, v)
		}
	}).Return(nil)
	return &steps
}

// JourneyStep names where a run waits: the API starts the run with its first
// step, and the run sets it when it parks on a timer, not at every step
// (each upsert is a history event).
func TestJourney_SetsJourneyStepWhereItWaits(t *testing.T) {
	h := newHarness(t)
	steps := journeySteps(h)
	asked := false
	h.env.OnGetVersion(changeSendKeyByRun, workflow.DefaultVersion, workflow.Version(1)).Run(func(mock.Arguments) { asked = true }).Return(workflow.Version(1))
	require.NoError(t, h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(SearchJourneyStep.ValueSet("welcome_email"))))
	h.run(t, input(welcomeSpec(t)))
	require.Equal(t, []string{"pause", "wait_open"}, *steps)
	require.False(t, asked, "a lean run keys its sends by the run without asking GetVersion")
	require.Equal(t, "enrollment/e_1/welcome_email/1", h.sends[0].IdempotencyKey)
}

// A send held back by quiet hours parks the run too: JourneyStep says so.
func TestJourney_SetsJourneyStepOnADeferredSend(t *testing.T) {
	h := newHarness(t)
	steps := journeySteps(h)
	var calls int
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		calls++
		if calls == 1 {
			return activities.SendResult{Status: delivery.StatusDeferred, Reason: "quiet_hours", DeferUntil: h.env.Now().Add(9 * time.Hour)}, nil
		}
		return activities.SendResult{Status: model.MessageSent}, nil
	}
	h.run(t, input(welcomeSpec(t)))
	require.Equal(t, []string{"welcome_email", "pause", "wait_open"}, *steps)
}

// Runs that began before versionLeanHistory set JourneyStep at every step
// and ask GetVersion for the send key, as they did when they were recorded.
func TestJourney_RunsBeforeLeanHistorySetJourneyStepAtEveryStep(t *testing.T) {
	h := newHarness(t)
	steps := journeySteps(h)
	h.env.OnGetVersion(changeContinueAsNewInWaits, workflow.DefaultVersion, versionLocalBookkeeping).Return(versionWaitsContinue)
	asked := false
	h.env.OnGetVersion(changeSendKeyByRun, workflow.DefaultVersion, workflow.Version(1)).Run(func(mock.Arguments) { asked = true }).Return(workflow.Version(1))
	h.run(t, input(welcomeSpec(t)))
	require.Equal(t, []string{"welcome_email", "pause", "wait_open", "sms_ok", "sms_nudge", "done"}, *steps)
	require.True(t, asked)
	require.True(t, strings.HasPrefix(h.sends[0].IdempotencyKey, "enrollment/"), h.sends[0].IdempotencyKey)
}

func TestJourney_DeferredSendWaitsThenRetriesWithSameKey(t *testing.T) {
	h := newHarness(t)
	var calls int
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		calls++
		if calls == 1 {
			return activities.SendResult{Status: delivery.StatusDeferred, Reason: "quiet_hours", DeferUntil: h.env.Now().Add(9 * time.Hour)}, nil
		}
		return activities.SendResult{Status: model.MessageSent}, nil
	}
	spec := welcomeSpec(t)
	spec.Steps = spec.Steps[:1]
	start := h.env.Now()
	h.run(t, input(spec))
	require.Equal(t, 2, calls)
	require.Equal(t, h.sends[0].IdempotencyKey, h.sends[1].IdempotencyKey)
	require.GreaterOrEqual(t, h.env.Now().Sub(start), 9*time.Hour)
}

func TestJourney_SendFailureDoesNotStopTheJourney(t *testing.T) {
	h := newHarness(t)
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		if in.StepID == "welcome_email" {
			return activities.SendResult{}, temporal.NewNonRetryableApplicationError("boom", "Test", nil)
		}
		return activities.SendResult{Status: model.MessageSent}, nil
	}
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email", "sms_nudge"}, h.sentSteps())
}

// loopSpec sends a digest every day until the goal: a loop with a wait.
func loopSpec(t *testing.T) journey.Spec {
	spec, err := journey.ParseAndValidate([]byte(`
id: digest
name: Daily digest
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: digest_email
    send: {channel: email, email: {subject: "Digest", text: "News"}}
  - id: tomorrow
    wait: {duration: 1d}
    next: digest_email
`))
	require.NoError(t, err)
	return spec
}

func TestJourney_ContinuesAsNewBeforeHistoryGrowsLarge(t *testing.T) {
	h := newHarness(t)
	in := input(loopSpec(t))
	in.ContinueAsNewAfter = 40
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	h.env.SetStartTime(start)
	// The test environment does not count history events; report a long
	// history after three and a half daily loops, as the server would: in
	// the middle of the fourth day's wait, which wakes to continue as new.
	var canAt time.Time
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(41); canAt = h.env.Now() }, 84*time.Hour)
	next := continuedInput(t, h, in)

	// The carried state resumes the wait it interrupted, with its original
	// deadline, and visit counts that keep idempotency keys unique across runs.
	require.Equal(t, "tomorrow", next.Carried.Cursor)
	w := next.Carried.Waiting
	require.Equal(t, "tomorrow", w.StepID)
	requireSameTime(t, start.Add(72*time.Hour), w.StartedAt)
	requireSameTime(t, start.Add(96*time.Hour), w.Until)
	require.Equal(t, 4, next.Carried.Visits["digest_email"])
	require.Equal(t, in.Spec.ID, next.Spec.ID)
	require.Len(t, next.Carried.StepsTaken, 7, "the interrupted wait is not recorded yet")

	keys := map[string]bool{}
	for _, s := range h.sends {
		require.False(t, keys[s.IdempotencyKey], "duplicate key %s", s.IdempotencyKey)
		keys[s.IdempotencyKey] = true
	}

	// The continued run finishes the wait at its original deadline (12h
	// later, not a fresh day), sends the next digest with a new key, and
	// still honours the goal.
	h2 := newHarness(t)
	h2.env.SetStartTime(canAt)
	var sentAt []time.Time
	h2.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Send" {
			sentAt = append(sentAt, h2.env.Now())
		}
	})
	h2.signalAfter(13*time.Hour, SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: canAt.Add(13 * time.Hour)})
	var final JourneyState
	h2.env.RegisterDelayedCallback(func() {
		v, err := h2.env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&final))
	}, 12*time.Hour+time.Minute)
	res := h2.run(t, next)
	require.Equal(t, model.RunConverted, res.Status)
	require.Len(t, sentAt, 1)
	requireSameTime(t, start.Add(96*time.Hour), sentAt[0])
	require.Equal(t, 5, visitOf(h2.sends[0].IdempotencyKey))
	// The path the run finishes with goes back to its first step, before
	// the continue-as-new: the resumed wait is one step, not two.
	var path []string
	for range 5 {
		path = append(path, "digest_email", "tomorrow")
	}
	require.Equal(t, path, h2.finished[0].Path)
	require.False(t, h2.finished[0].PathTruncated)
	wait := final.StepsTaken[len(final.StepsTaken)-2]
	require.Equal(t, "tomorrow", wait.StepID)
	require.Equal(t, "waited 1d", wait.Outcome)
	requireSameTime(t, start.Add(72*time.Hour), wait.StartedAt)
	requireSameTime(t, start.Add(96*time.Hour), wait.FinishedAt)
}

func requireSameTime(t *testing.T, want, got time.Time) {
	t.Helper()
	require.True(t, want.Equal(got), "want %s, got %s", want, got)
}

// A run whose step records outgrew their bound finishes with the newest
// maxStepRecords steps, and says its path lost its front.
func TestJourney_FinishSaysThePathWasTruncated(t *testing.T) {
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	carried := &CarriedState{Cursor: "digest_email", StepsTruncated: 10, Visits: map[string]int{},
		WindowStart: start, EnteredAt: start.Add(-100 * 24 * time.Hour)}
	for i := range maxStepRecords {
		id := []string{"digest_email", "tomorrow"}[i%2]
		carried.StepsTaken = append(carried.StepsTaken, StepRecord{StepID: id, Kind: journey.KindSend, StartedAt: start, FinishedAt: start})
		carried.Visits[id]++
	}
	h := newHarness(t)
	h.env.SetStartTime(start)
	h.signalAfter(time.Hour, SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: start.Add(time.Hour)})
	in := input(loopSpec(t))
	in.Carried = carried
	res := h.run(t, in)
	require.Equal(t, model.RunConverted, res.Status)
	got := h.finished[0]
	require.True(t, got.PathTruncated)
	require.Len(t, got.Path, maxStepRecords)
	for i, id := range got.Path {
		require.Equal(t, []string{"digest_email", "tomorrow"}[i%2], id, "step %d", i)
	}
}

// A run that began before changeContinueAsNewInWaits keeps the old
// behaviour, so its history replays: the wait runs to its end and the run
// continues as new between steps.
func TestJourney_RunsBeforeTheChangeContinueBetweenSteps(t *testing.T) {
	h := newHarness(t)
	h.env.OnGetVersion(changeContinueAsNewInWaits, workflow.DefaultVersion, versionLocalBookkeeping).Return(workflow.DefaultVersion)
	in := input(loopSpec(t))
	in.ContinueAsNewAfter = 40
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(41) }, 84*time.Hour)
	next := continuedInput(t, h, in)
	require.Equal(t, "digest_email", next.Carried.Cursor)
	require.Nil(t, next.Carried.Waiting)
	require.Equal(t, 4, next.Carried.Visits["tomorrow"])
}

// A run of versionBoundedHandOver hands over at HandOverPoint, below the
// setting; a run of the version before keeps handing over at the setting.
func TestJourney_HandsOverBelowTheSetting(t *testing.T) {
	const setting = 400
	t.Run("bounded", func(t *testing.T) {
		h := newHarness(t)
		in := input(loopSpec(t))
		in.ContinueAsNewAfter = setting
		h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(HandOverPoint(setting)) }, 84*time.Hour)
		next := continuedInput(t, h, in)
		require.Equal(t, "tomorrow", next.Carried.Waiting.StepID)
		require.Equal(t, setting, next.ContinueAsNewAfter, "the setting goes on with the run")
	})
	t.Run("version 1", func(t *testing.T) {
		h := newHarness(t)
		h.env.OnGetVersion(changeContinueAsNewInWaits, workflow.DefaultVersion, versionLocalBookkeeping).Return(versionWaitsContinue)
		in := input(loopSpec(t))
		in.ContinueAsNewAfter = setting
		h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(setting - 1) }, 84*time.Hour)
		h.signalAfter(90*time.Hour, SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: time.Now()})
		res := h.run(t, in)
		require.Equal(t, model.RunConverted, res.Status, "it went on past the hand-over point, to the goal")
	})
}

// continuedInput runs the workflow until it continues as new and returns
// the next run's input.
func continuedInput(t *testing.T, h *harness, in JourneyInput) JourneyInput {
	t.Helper()
	h.env.ExecuteWorkflow(Journey, in)
	require.True(t, h.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, h.env.GetWorkflowError(), &can)
	var next JourneyInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Carried)
	return next
}

// A wait_for interrupted by continue-as-new keeps its deadline, and its
// event still takes the on_event path when it reaches the next run.
func TestJourney_WaitForResumesAfterContinueAsNew(t *testing.T) {
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	// welcome: email at 0, 1h pause, then wait_for email.opened for 2d.
	run := func(t *testing.T) (*harness, JourneyInput, time.Time) {
		h := newHarness(t)
		h.env.SetStartTime(start)
		in := input(welcomeSpec(t))
		in.ContinueAsNewAfter = 40
		var canAt time.Time
		h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(41); canAt = h.env.Now() }, 10*time.Hour)
		next := continuedInput(t, h, in)
		require.Equal(t, "wait_open", next.Carried.Cursor)
		requireSameTime(t, start.Add(49*time.Hour), next.Carried.Waiting.Until)
		return h, next, canAt
	}

	t.Run("event", func(t *testing.T) {
		_, next, canAt := run(t)
		h2 := newHarness(t)
		h2.env.SetStartTime(canAt)
		h2.signalAfter(5*time.Hour, SignalEvent, EventSignal{EventID: "open", Name: "email.opened", OccurredAt: canAt.Add(5 * time.Hour)})
		res := h2.run(t, next)
		require.Equal(t, model.RunCompleted, res.Status)
		require.Empty(t, h2.sentSteps(), "the open took the on_event path: no SMS nudge")
	})
	t.Run("timeout", func(t *testing.T) {
		_, next, canAt := run(t)
		h2 := newHarness(t)
		h2.env.SetStartTime(canAt)
		var nudgedAt time.Time
		h2.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == "Send" {
				nudgedAt = h2.env.Now()
			}
		})
		res := h2.run(t, next)
		require.Equal(t, model.RunCompleted, res.Status)
		require.Equal(t, []string{"sms_nudge"}, h2.sentSteps())
		requireSameTime(t, start.Add(49*time.Hour), nudgedAt) // the original timeout, not 2d after the continue
	})
}

// A wait_for sees its event through LatestEvent even when a burst of other
// events (handled together, or drained before continue-as-new) pushed it
// out of the events remembered for look-back.
func TestJourney_WaitForSeesItsEventAfterABurst(t *testing.T) {
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	carried := &CarriedState{
		Cursor:      "wait_open",
		Visits:      map[string]int{"welcome_email": 1, "pause": 1},
		EventCounts: map[string]int{"email.opened": 1, "page.viewed": maxRememberedEvents},
		LatestEvent: map[string]time.Time{"email.opened": start.Add(2 * time.Hour), "page.viewed": start.Add(2 * time.Hour)},
		WindowStart: start,
		EnteredAt:   start,
	}
	for i := range maxRememberedEvents {
		carried.Events = append(carried.Events, EventSignal{EventID: "v" + strconv.Itoa(i), Name: "page.viewed", OccurredAt: start.Add(2 * time.Hour)})
	}
	h := newHarness(t)
	h.env.SetStartTime(start.Add(2 * time.Hour))
	in := input(welcomeSpec(t))
	in.Carried = carried
	res := h.run(t, in)
	require.Equal(t, model.RunCompleted, res.Status)
	require.Empty(t, h.sentSteps(), "the open counted: no SMS nudge")
}

// A goal still buffered when the run continues as new ends the journey
// there, instead of reaching a run that would never learn of it.
func TestJourney_GoalDrainedAtContinueAsNewEndsTheRun(t *testing.T) {
	h := newHarness(t)
	in := input(welcomeSpec(t))
	in.ContinueAsNewAfter = 40
	in.Carried = &CarriedState{Cursor: "wait_open", Visits: map[string]int{"welcome_email": 1, "pause": 1},
		WindowStart: h.env.Now(), EnteredAt: h.env.Now()}
	// A run that starts with a long history continues as new at once, with
	// the signal that came with its first task still in the channel.
	h.env.SetCurrentHistoryLength(41)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: h.env.Now()})
	}, 0)
	res := h.run(t, in)
	require.Equal(t, JourneyResult{Status: model.RunConverted, ExitReason: "goal: purchase"}, res)
}

func visitOf(key string) int {
	n, _ := strconv.Atoi(key[strings.LastIndex(key, "/")+1:])
	return n
}

func TestJourney_ProviderTimestampInTheSendsSecondCounts(t *testing.T) {
	h := newHarness(t)
	h.env.SetStartTime(time.Date(2026, 6, 1, 12, 0, 0, 700_000_000, time.UTC))
	// SendGrid stamps the open 12:00:00 (whole seconds), 0.7 s "before" the send began.
	h.signalAfter(10*time.Minute, SignalEvent, EventSignal{EventID: "sg-open", Name: "email.opened",
		OccurredAt: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)})
	res := h.run(t, input(welcomeSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"welcome_email"}, h.sentSteps(), "the open counted: no SMS nudge")
}

// Sends are keyed by the run (enrollment), so a contact who re-enters a
// journey gets the message again while a retried activity does not.
func TestJourney_SendKeyIsTheRunsNotTheWorkflows(t *testing.T) {
	keys := map[string]bool{}
	for _, enrollment := range []string{"e_1", "e_2"} {
		h := newHarness(t)
		spec := welcomeSpec(t)
		spec.Steps = spec.Steps[:1]
		in := input(spec)
		in.EnrollmentID = enrollment
		h.run(t, in)
		require.Len(t, h.sends, 1)
		require.Equal(t, "enrollment/"+enrollment+"/welcome_email/1", h.sends[0].IdempotencyKey)
		keys[h.sends[0].IdempotencyKey] = true
	}
	require.Len(t, keys, 2, "two runs of one journey for one contact: two sends")
}

// A provider that asks to be retried later is retried by the workflow on a
// durable timer: exponential backoff with jitter, never sooner than its
// Retry-After, and with the same key every time.
func TestJourney_ProviderRetryBacksOffWithRetryAfterAsFloor(t *testing.T) {
	h := newHarness(t)
	var calls []time.Time
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		calls = append(calls, h.env.Now())
		switch len(calls) {
		case 1, 2:
			return activities.SendResult{Status: delivery.StatusRetry, Reason: "twilio:20429", MessageID: "m_1", RetryAfter: time.Second}, nil
		case 3:
			return activities.SendResult{Status: delivery.StatusRetry, Reason: "twilio:20429", MessageID: "m_1", RetryAfter: time.Hour}, nil
		}
		return activities.SendResult{Status: model.MessageSent, MessageID: "m_1"}, nil
	}
	spec := welcomeSpec(t)
	spec.Steps = spec.Steps[:1]
	h.run(t, input(spec))
	require.Len(t, calls, 4)
	for i := 1; i < 4; i++ {
		require.Equal(t, h.sends[0].IdempotencyKey, h.sends[i].IdempotencyKey)
	}
	gap1, gap2, gap3 := calls[1].Sub(calls[0]), calls[2].Sub(calls[1]), calls[3].Sub(calls[2])
	require.GreaterOrEqual(t, gap1, 2*time.Second, "backoff, not the provider's 1s")
	require.Greater(t, gap2, gap1, "exponential")
	require.GreaterOrEqual(t, gap3, time.Hour, "Retry-After is a floor")
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		n          int
		retryAfter time.Duration
		min, max   time.Duration
	}{
		{0, 0, 2 * time.Second, 2400 * time.Millisecond},
		{1, 0, 4 * time.Second, 4800 * time.Millisecond},
		{3, time.Second, 16 * time.Second, 19200 * time.Millisecond},
		{3, time.Minute, time.Minute, time.Minute},
		{12, 0, 10 * time.Minute, 12 * time.Minute},
		{500, 0, 10 * time.Minute, 12 * time.Minute},
	} {
		d := retryDelay("enrollment/e_1/s/1", tc.n, tc.retryAfter)
		require.GreaterOrEqual(t, d, tc.min, "retry %d", tc.n)
		require.LessOrEqual(t, d, tc.max, "retry %d", tc.n)
		require.Equal(t, d, retryDelay("enrollment/e_1/s/1", tc.n, tc.retryAfter), "deterministic for replay")
	}
	// Sends throttled together do not all come back at once.
	seen := map[time.Duration]bool{}
	for i := range 20 {
		seen[retryDelay("enrollment/e_"+strconv.Itoa(i)+"/s/1", 4, 0)] = true
	}
	require.Greater(t, len(seen), 10, "jitter spreads retries")
}

// A provider gives up on a message after hours of refusals: the ledger says
// failed, and the journey goes on.
func TestJourney_ProviderRetriesGiveUpAfterTheBudget(t *testing.T) {
	h := newHarness(t)
	settled := h.recordSettles()
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		return activities.SendResult{Status: delivery.StatusRetry, Reason: "sendgrid:http_503", MessageID: "m_1", Channel: journey.ChannelEmail}, nil
	}
	spec := welcomeSpec(t)
	spec.Steps = spec.Steps[:1]
	res := h.run(t, input(spec))
	require.Equal(t, model.RunCompleted, res.Status)
	require.Len(t, *settled, 1)
	require.Equal(t, model.MessageFailed, (*settled)[0].Status)
	require.Equal(t, "retries_exhausted:sendgrid:http_503", (*settled)[0].Reason)
}

// The provider accepted the message but the ledger could not record it: the
// settle activity records the provider's answer (its id) before the journey
// moves on.
func TestJourney_UnsettledSendIsSettled(t *testing.T) {
	h := newHarness(t)
	settled := h.recordSettles()
	h.sendFn = func(in activities.SendInput) (activities.SendResult, error) {
		st := delivery.Settlement{MessageID: "m_1", Status: model.MessageSent, Provider: "sendgrid", ProviderMessageID: "sg-1"}
		return activities.SendResult{Status: model.MessageSent, MessageID: "m_1", Unsettled: &st}, nil
	}
	spec := welcomeSpec(t)
	spec.Steps = spec.Steps[:1]
	h.run(t, input(spec))
	require.Len(t, *settled, 1)
	require.Equal(t, "sg-1", (*settled)[0].ProviderMessageID)
	require.Len(t, h.sends, 1, "settled, not resent")
}

// recordSettles mocks the settle local activity and returns what it records.
func (h *harness) recordSettles() *[]delivery.Settlement {
	var settled []delivery.Settlement
	var a *activities.Activities
	h.env.OnActivity(a.SettleSend, mock.Anything, mock.Anything).Return(func(_ context.Context, st delivery.Settlement) error {
		settled = append(settled, st)
		return nil
	})
	return &settled
}
