package workflows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// Histories recorded on a real dev server, by this code and by the code
// before each workflow.GetVersion change, must replay on the current code:
// a run that is open while the worker is upgraded replays its history.
// testdata/histories/README.md says how each was recorded.
func TestJourney_ReplaysRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(Journey)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// replaySpec waits while events pour in, then waits for one more.
const replaySpec = `
id: replay
name: Replay
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: hold
    wait: {duration: 6s}
  - id: look
    wait_for: {event: opened, timeout: 6s, on_event: done, on_timeout: done}
  - id: done
    exit: {reason: completed}
`

// TestRecordHistories records the histories TestJourney_ReplaysRecordedHistories
// replays: TUTTI_RECORD_HISTORIES=dir (and a name prefix in
// TUTTI_RECORD_PREFIX) writes one JSON file per run of the scenario. It
// uses only what the code before the change had, so it runs on old code too.
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	prefix := os.Getenv("TUTTI_RECORD_PREFIX")
	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(replaySpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_replay", ContactID: "c_replay", Version: 1, Spec: spec, ContinueAsNewAfter: 30}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/replay/contact/c_replay", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID() // Get follows continue-as-new and moves GetRunID on
	// Enough events during the wait to pass the threshold; then the one
	// the wait_for looks for, once it is waiting.
	for i := range 40 {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: fmt.Sprint("ping-", i), Name: "ping", OccurredAt: time.Now()}))
	}
	time.Sleep(8 * time.Second)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: "opened", Name: "opened", OccurredAt: time.Now()}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v, finished %v", res, fakes.finishedInputs())

	writeChain(t, c, run.GetID(), firstRunID, dir, prefix)
}

// TestRecordBatchedEventHistories records replaySpec fed the way the
// outbox's dispatcher feeds runs since batching: events in batches
// (SignalEvents), and with ContinueAsNewAfter 60, so runs of
// versionBoundedHandOver hand over at HandOverPoint(60). Set
// TUTTI_RECORD_HISTORIES as for TestRecordHistories.
func TestRecordBatchedEventHistories(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(replaySpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_batched", ContactID: "c_batched", Version: 1, Spec: spec, ContinueAsNewAfter: 60}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/replay/contact/c_batched", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	// Batches of 10 during the wait, one at a time as the dispatcher
	// sends them, with a repeat of the last batch's last event; then the
	// event the wait_for looks for, in a batch of its own with another.
	for b := range 20 {
		var batch []EventSignal
		for i := range 10 {
			batch = append(batch, EventSignal{EventID: fmt.Sprint("ping-", b*10+i), Name: "ping", OccurredAt: time.Now()})
		}
		if b > 0 {
			batch = append(batch, EventSignal{EventID: fmt.Sprint("ping-", b*10-1), Name: "ping", OccurredAt: time.Now()})
		}
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvents, batch))
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(8 * time.Second)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvents, []EventSignal{
		{EventID: "pong", Name: "ping", OccurredAt: time.Now()}, {EventID: "opened", Name: "opened", OccurredAt: time.Now()}}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v, finished %v", res, fakes.finishedInputs())
	writeChain(t, c, run.GetID(), firstRunID, dir, "batched-events-")
}

// fakeActivities stands in for the activities on a dev server: the
// workflow calls them by name. It records how runs finished.
type fakeActivities struct {
	mu       sync.Mutex
	finished []activities.FinishEnrollmentInput
	calls    map[string]int // Send calls by key
}

func (f *fakeActivities) BeginEnrollment(context.Context, activities.BeginEnrollmentInput) error {
	return nil
}

func (f *fakeActivities) FinishEnrollment(_ context.Context, in activities.FinishEnrollmentInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finished = append(f.finished, in)
	return nil
}

// Send answers each step's first call as the scenario needs: "deferred"
// steps are deferred once, "throttled" steps are refused once (Retry-After)
// and then accepted without the ledger recording it (settled by
// SettleSend); every other send goes out.
func (f *fakeActivities) Send(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[in.IdempotencyKey]++
	n := f.calls[in.IdempotencyKey]
	switch {
	case in.StepID == "deferred" && n == 1:
		return activities.SendResult{Status: delivery.StatusDeferred, Reason: "quiet_hours", DeferUntil: time.Now().Add(2 * time.Second)}, nil
	case in.StepID == "throttled" && n == 1:
		return activities.SendResult{Status: delivery.StatusRetry, Reason: "twilio:20429", MessageID: "m_t", RetryAfter: time.Second}, nil
	case in.StepID == "throttled":
		st := delivery.Settlement{MessageID: "m_t", Channel: journey.ChannelSMS, Status: model.MessageSent, Provider: "twilio", ProviderMessageID: "SM1"}
		return activities.SendResult{Status: model.MessageSent, MessageID: "m_t", Unsettled: &st}, nil
	}
	return activities.SendResult{Status: model.MessageSent, MessageID: "m_" + in.StepID}, nil
}

func (f *fakeActivities) SettleSend(context.Context, delivery.Settlement) error { return nil }

// ChooseSend chooses SMS, two seconds after the step began.
func (f *fakeActivities) ChooseSend(_ context.Context, in activities.ChooseSendInput) (activities.ChooseSendResult, error) {
	return activities.ChooseSendResult{Channel: journey.ChannelSMS, SendAt: in.Now.Add(2 * time.Second)}, nil
}

func (f *fakeActivities) EvaluateCondition(context.Context, activities.EvaluateConditionInput) (activities.EvaluateConditionResult, error) {
	return activities.EvaluateConditionResult{Value: true}, nil
}

// everyKindSpec has every step kind: a send deferred once, a wait, a
// wait_for an event, a branch, an SMS send throttled once whose answer the
// ledger missed, and an exit; with a goal and an exit event.
const everyKindSpec = `
id: every-kind
name: Every kind
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
exit_events: [unsubscribed]
steps:
  - id: deferred
    send: {channel: email, email: {subject: "Hi", text: "Hello"}}
  - id: pause
    wait: {duration: 2s}
  - id: look
    wait_for: {event: opened, timeout: 20s, on_event: check, on_timeout: check}
  - id: check
    branch: {condition: 'consent.sms == "granted"', then: throttled, else: done}
  - id: throttled
    send: {channel: sms, sms: {body: "Hi"}}
  - id: done
    exit: {reason: completed}
`

// TestRecordEveryKindHistory records a run of everyKindSpec, with events
// and a consent change signalled along the way and a small continue-as-new
// threshold: TUTTI_RECORD_HISTORIES=dir TUTTI_RECORD_PREFIX=every-kind-.
func TestRecordEveryKindHistory(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	prefix := os.Getenv("TUTTI_RECORD_PREFIX")
	c := temporaltest.StartDevServer(t).Client()
	startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(everyKindSpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_every", ContactID: "c_every", Version: 1, Spec: spec, ContinueAsNewAfter: 40}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/every-kind/contact/c_every", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	for i := range 12 {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: fmt.Sprint("ping-", i), Name: "ping", OccurredAt: time.Now()}))
	}
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalConsent, ConsentSignal{Channel: journey.ChannelEmail, Status: "revoked"}))
	time.Sleep(6 * time.Second)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: "opened", Name: "opened", OccurredAt: time.Now()}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v", res)
	writeChain(t, c, run.GetID(), firstRunID, dir, prefix)
}

// NextLocalTime answers a wait_until step with 6 seconds after it began,
// whatever the time it names: the recorded commands are the same.
func (f *fakeActivities) NextLocalTime(_ context.Context, in activities.NextLocalTimeInput) (activities.NextLocalTimeResult, error) {
	return activities.NextLocalTimeResult{At: in.After.Add(6 * time.Second)}, nil
}

// PostWebhook is refused once (429, Retry-After 1s), then taken.
func (f *fakeActivities) PostWebhook(_ context.Context, in activities.WebhookInput) (activities.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[in.IdempotencyKey]++
	if f.calls[in.IdempotencyKey] == 1 {
		return activities.SendResult{Status: delivery.StatusRetry, Reason: "webhook:http_429", MessageID: "m_w",
			Channel: journey.ChannelWebhook, RetryAfter: time.Second}, nil
	}
	return activities.SendResult{Status: model.MessageSent, MessageID: "m_w", Channel: journey.ChannelWebhook, Provider: "webhook"}, nil
}

// newKindsSpec has the step kinds added after the lean histories: a
// wait_until that events push into continue-as-new, and a webhook refused
// once.
const newKindsSpec = `
id: new-kinds
name: New kinds
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: morning
    wait_until: {time: "09:30", days: [mon, tue, wed, thu, fri]}
  - id: alert
    webhook: {destination: sales, payload: {contact_id: '{{ .contact.id }}'}}
  - id: done
    exit: {reason: completed}
`

// TestRecordNewKindsHistory records a run of newKindsSpec with 40 events
// during the wait_until and ContinueAsNewAfter 30, so the wait is resumed
// by a later run: TUTTI_RECORD_HISTORIES=dir TUTTI_RECORD_PREFIX=new-kinds-.
func TestRecordNewKindsHistory(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	prefix := os.Getenv("TUTTI_RECORD_PREFIX")
	c := temporaltest.StartDevServer(t).Client()
	startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(newKindsSpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_new", ContactID: "c_new", Version: 1, Spec: spec, ContinueAsNewAfter: 30}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/new-kinds/contact/c_new", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	for i := range 40 {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: fmt.Sprint("ping-", i), Name: "ping", OccurredAt: time.Now()}))
	}
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v", res)
	require.Equal(t, model.RunCompleted, res.Status)
	writeChain(t, c, run.GetID(), firstRunID, dir, prefix)
}

// AssignHoldout holds every contact out; AssignVariant gives each the
// split's last variant.
func (f *fakeActivities) AssignHoldout(context.Context, activities.AssignHoldoutInput) (activities.AssignHoldoutResult, error) {
	return activities.AssignHoldoutResult{Group: journey.GroupHoldout}, nil
}

func (f *fakeActivities) AssignVariant(_ context.Context, in activities.AssignVariantInput) (activities.AssignVariantResult, error) {
	last := in.Split.Variants[len(in.Split.Variants)-1].Name
	return activities.AssignVariantResult{Variant: last, Path: last}, nil
}

// splitHoldoutSpec has a holdout and a split, with a marketing and a
// transactional send on the variant's path and a wait between them.
const splitHoldoutSpec = `
id: split-holdout
name: Split and holdout
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 7d}
holdout: {share: 0.1}
steps:
  - id: pick
    split:
      experiment: subject
      variants:
        - {name: plain, weight: 1, next: email_plain}
        - {name: bold, weight: 1, next: email_bold}
  - {id: email_plain, send: {channel: email, email: {subject: "Hello", text: "Hi"}}, next: pause}
  - {id: email_bold, send: {channel: email, email: {subject: "HELLO!", text: "Hi"}}}
  - {id: pause, wait: {duration: 2s}}
  - {id: receipt, send: {channel: email, class: transactional, email: {subject: "Receipt", text: "Thanks"}}}
`

// TestRecordSplitHoldoutHistory records a run of splitHoldoutSpec for a
// held-out contact, with events signalled and a small continue-as-new
// threshold: TUTTI_RECORD_HISTORIES=dir TUTTI_RECORD_PREFIX=split-holdout-.
func TestRecordSplitHoldoutHistory(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	prefix := os.Getenv("TUTTI_RECORD_PREFIX")
	c := temporaltest.StartDevServer(t).Client()
	startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(splitHoldoutSpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_split", ContactID: "c_split", Version: 1, Spec: spec, ContinueAsNewAfter: 40}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/split-holdout/contact/c_split", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	for i := range 20 {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: fmt.Sprint("ping-", i), Name: "ping", OccurredAt: time.Now()}))
	}
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v", res)
	writeChain(t, c, run.GetID(), firstRunID, dir, prefix)
}

// choiceSpec has the steps that choose: channel and send_time best, a
// waterfall that runs to its last stage and one an open stops.
const choiceSpec = `
id: choices
name: Choices
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: best
    send: {channel: best, send_time: best, within: 1h, email: {subject: "Hi", text: "Hello"}, sms: {body: "Hi"}}
  - id: fall
    send: {waterfall: [{channel: email}, {channel: sms, after: 3s}], email: {subject: "Hi", text: "Hello"}, sms: {body: "Hi"}}
  - id: fall_open
    send: {waterfall: [{channel: email}, {channel: sms, after: 1m}], email: {subject: "Hi", text: "Hello"}, sms: {body: "Hi"}}
`

// TestRecordChoiceHistory records a run of choiceSpec, with the open that
// stops the second waterfall: TUTTI_RECORD_HISTORIES=dir (prefix choices-).
func TestRecordChoiceHistory(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	c := temporaltest.StartDevServer(t).Client()
	fakes := startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(choiceSpec))
	require.NoError(t, err)
	ctx := context.Background()
	in := JourneyInput{EnrollmentID: "e_choices", ContactID: "c_choices", Version: 1, Spec: spec}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/choices/contact/c_choices", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	// best waits 2s, fall 3s; the open lands during fall_open's wait.
	time.Sleep(8 * time.Second)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, EventSignal{EventID: "open-1", Name: "email.opened", OccurredAt: time.Now()}))
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	t.Logf("result %+v, finished %v, sends %v", res, fakes.finishedInputs(), fakes.calls)
	writeChain(t, c, run.GetID(), firstRunID, dir, "choices-")
}

func (f *fakeActivities) finishedInputs() []activities.FinishEnrollmentInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]activities.FinishEnrollmentInput(nil), f.finished...)
}

// startJourneyWorker runs the journey workflow and the fake activities on
// the dev server c is connected to, until the test ends.
func startJourneyWorker(t *testing.T, c client.Client) *fakeActivities {
	t.Helper()
	fakes := &fakeActivities{}
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(fakes)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return fakes
}

// writeChain writes every run of the workflow from firstRunID on into dir,
// one JSON history per run: <prefix>run<N>.json.
func writeChain(t *testing.T, c client.Client, workflowID, firstRunID, dir, prefix string) {
	t.Helper()
	for i, runID := range chainOf(t, c, workflowID, firstRunID) {
		events := historyOf(t, c, workflowID, runID)
		raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		require.NoError(t, err)
		name := filepath.Join(dir, fmt.Sprintf("%srun%d.json", prefix, i+1))
		require.NoError(t, os.WriteFile(name, raw, 0o644))
		t.Logf("%s: %d events", name, len(events))
	}
}

// chainOf lists the runs of a workflow from runID on, following continue-as-new.
func chainOf(t *testing.T, c client.Client, workflowID, runID string) []string {
	t.Helper()
	var runs []string
	for runID != "" {
		runs = append(runs, runID)
		events := historyOf(t, c, workflowID, runID)
		runID = events[len(events)-1].GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
	}
	return runs
}

// historyOf returns every event of one run.
func historyOf(t *testing.T, c client.Client, workflowID, runID string) []*historypb.HistoryEvent {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	return events
}

// segmentSpec starts on entering a segment and ends on leaving it.
const segmentSpec = `
id: replay_segment
name: Replay segment
trigger: {type: segment, segment: hot_leads}
exit_when_leaving: hot_leads
reentry: {policy: always}
steps:
  - id: hold
    wait: {duration: 1h}
`

// TestRecordSegmentExitHistory records a run of segmentSpec that hears
// another segment's exit, its own segment's entry, and then its own
// segment's exit, which ends it (exit_when_leaving). Set
// TUTTI_RECORD_HISTORIES as for TestRecordHistories.
func TestRecordSegmentExitHistory(t *testing.T) {
	dir := os.Getenv("TUTTI_RECORD_HISTORIES")
	if dir == "" {
		t.Skip("set TUTTI_RECORD_HISTORIES=dir to record replay histories")
	}
	c := temporaltest.StartDevServer(t).Client()
	startJourneyWorker(t, c)
	spec, err := journey.ParseAndValidate([]byte(segmentSpec))
	require.NoError(t, err)
	ctx := context.Background()
	trigger := SignalOf("ev_in", journey.EventSegmentEntered, time.Now(), map[string]any{"segment": "hot_leads"})
	in := JourneyInput{EnrollmentID: "e_segment", ContactID: "c_segment", Version: 1, Spec: spec, Trigger: &trigger}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/replay_segment/contact/c_segment", TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)
	firstRunID := run.GetRunID()
	for _, ev := range []EventSignal{
		SignalOf("ev_other", journey.EventSegmentExited, time.Now(), map[string]any{"segment": "warm_leads"}),
		SignalOf("ev_in", journey.EventSegmentEntered, time.Now(), map[string]any{"segment": "hot_leads"}),
		SignalOf("ev_out", journey.EventSegmentExited, time.Now(), map[string]any{"segment": "hot_leads"}),
	} {
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", SignalEvent, ev))
	}
	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, JourneyResult{Status: model.RunExited, ExitReason: "left segment: hot_leads"}, res)
	writeChain(t, c, run.GetID(), firstRunID, dir, "segment-exit-")
}
