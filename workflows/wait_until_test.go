package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// morningSpec sends an email, waits for the next weekday 09:30 in the
// contact's zone, and sends an SMS.
func morningSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: morning
name: Next weekday morning
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
exit_events: [unsubscribed]
steps:
  - id: hello
    send: {channel: email, email: {subject: Hi, text: Hello}}
  - id: morning
    wait_until: {time: "09:30", days: [mon, tue, wed, thu, fri]}
  - id: nudge
    send: {channel: sms, sms: {body: Morning}}
`))
	require.NoError(t, err)
	return spec
}

// localTimes answers NextLocalTime with the real activity over a real
// database, where the contact lives in Paris, and counts the calls.
type localTimes struct {
	contactID string
	calls     atomic.Int32
}

func withLocalTimes(t *testing.T, h *harness) *localTimes {
	t.Helper()
	store := storagetest.New(t)
	c, _, err := store.UpsertContact(context.Background(), storage.ContactInput{
		Email: "paris@example.com", TimeZone: "Europe/Paris"})
	require.NoError(t, err)
	acts := &activities.Activities{Store: store, Delivery: &delivery.Service{Store: store, Policy: policy.DefaultSettings()}}
	lt := &localTimes{contactID: c.ID}
	var a *activities.Activities
	h.env.OnActivity(a.NextLocalTime, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.NextLocalTimeInput) (activities.NextLocalTimeResult, error) {
			lt.calls.Add(1)
			return acts.NextLocalTime(ctx, in)
		})
	return lt
}

func utcTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// Friday 10:00 in Paris: the weekday-morning wait ends on Monday at 09:30
// Paris time, on a durable timer; the run parks there (JourneyStep) and the
// step's record says when it ended.
func TestJourney_WaitUntilNextWeekdayMorningInTheContactsZone(t *testing.T) {
	h := newHarness(t)
	lt := withLocalTimes(t, h)
	steps := journeySteps(h)
	h.env.SetStartTime(utcTime(t, "2026-06-05T08:00:00Z"))
	var sentAt []time.Time
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Send" {
			sentAt = append(sentAt, h.env.Now())
		}
	})
	var mid JourneyState
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&mid))
	}, 24*time.Hour)
	in := input(morningSpec(t))
	in.ContactID = lt.contactID
	res := h.run(t, in)

	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"hello", "nudge"}, h.sentSteps())
	require.Len(t, sentAt, 2)
	requireSameTime(t, utcTime(t, "2026-06-08T07:30:00Z"), sentAt[1])
	require.Equal(t, int32(1), lt.calls.Load())
	require.Equal(t, []string{"morning"}, *steps, "the run parks at the wait_until step")
	require.Equal(t, "morning", mid.CurrentStep)
	require.NotNil(t, mid.WaitingUntil)
	requireSameTime(t, utcTime(t, "2026-06-08T07:30:00Z"), *mid.WaitingUntil)

	var final JourneyState
	v, err := h.env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	require.NoError(t, v.Get(&final))
	rec := final.StepsTaken[1]
	require.Equal(t, journey.KindWaitUntil, rec.Kind)
	require.Equal(t, "waited until 2026-06-08T07:30:00Z", rec.Outcome)
}

// The goal, an exit event or support's exit ends a run waiting for a
// local time at once.
func TestJourney_GoalOrExitEndsAWaitUntil(t *testing.T) {
	start := utcTime(t, "2026-06-05T08:00:00Z")
	for _, tc := range []struct {
		signal  string
		payload any
		want    JourneyResult
	}{
		{SignalEvent, EventSignal{EventID: "p", Name: "purchase", OccurredAt: start.Add(3 * time.Hour)},
			JourneyResult{Status: model.RunConverted, ExitReason: "goal: purchase"}},
		{SignalEvent, EventSignal{EventID: "u", Name: "unsubscribed", OccurredAt: start.Add(3 * time.Hour)},
			JourneyResult{Status: model.RunExited, ExitReason: "exit event: unsubscribed"}},
		{SignalExit, ExitSignal{Reason: ExitSupport, RequestID: "x_1", By: "api"},
			JourneyResult{Status: model.RunExited, ExitReason: ExitSupport}},
	} {
		t.Run(tc.want.ExitReason, func(t *testing.T) {
			h := newHarness(t)
			lt := withLocalTimes(t, h)
			h.env.SetStartTime(start)
			h.signalAfter(3*time.Hour, tc.signal, tc.payload)
			in := input(morningSpec(t))
			in.ContactID = lt.contactID
			res := h.run(t, in)
			require.Equal(t, tc.want, res)
			require.Equal(t, []string{"hello"}, h.sentSteps())
			require.Less(t, h.env.Now().Sub(start), 4*time.Hour, "the wait until Monday was cut short")
		})
	}
}

// A wait_until interrupted by continue-as-new resumes in the next run with
// the instant the first run resolved: the zone is not asked again, and the
// wait ends at the same moment.
func TestJourney_WaitUntilResumesAfterContinueAsNew(t *testing.T) {
	h := newHarness(t)
	lt := withLocalTimes(t, h)
	start := utcTime(t, "2026-06-05T08:00:00Z")
	h.env.SetStartTime(start)
	in := input(morningSpec(t))
	in.ContactID = lt.contactID
	in.ContinueAsNewAfter = 40
	var canAt time.Time
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(41); canAt = h.env.Now() }, 30*time.Hour)
	next := continuedInput(t, h, in)
	require.Equal(t, "morning", next.Carried.Cursor)
	w := next.Carried.Waiting
	require.NotNil(t, w)
	require.Equal(t, "morning", w.StepID)
	requireSameTime(t, start, w.StartedAt)
	requireSameTime(t, utcTime(t, "2026-06-08T07:30:00Z"), w.Until)
	require.Equal(t, int32(1), lt.calls.Load())

	h2 := newHarness(t)
	lt2 := withLocalTimes(t, h2)
	h2.env.SetStartTime(canAt)
	var sentAt time.Time
	h2.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Send" {
			sentAt = h2.env.Now()
		}
	})
	res := h2.run(t, next)
	require.Equal(t, model.RunCompleted, res.Status)
	require.Equal(t, []string{"nudge"}, h2.sentSteps())
	requireSameTime(t, utcTime(t, "2026-06-08T07:30:00Z"), sentAt)
	require.Zero(t, lt2.calls.Load(), "the resumed wait keeps its instant")
}

// A daily loop through a wait_until: the timer fires exactly at 09:00, and
// the next visit waits for the next day's 09:00 instead of going round at
// once. What goes into history is the contact id, the step and instants.
func TestJourney_WaitUntilInALoopWaitsEveryTime(t *testing.T) {
	spec, err := journey.ParseAndValidate([]byte(`
id: daily
name: Daily at nine
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: nine
    wait_until: {time: "09:00"}
  - id: digest
    send: {channel: email, email: {subject: Digest, text: News}}
    next: nine
`))
	require.NoError(t, err)
	h := newHarness(t)
	lt := withLocalTimes(t, h)
	start := utcTime(t, "2026-06-01T05:00:00Z") // 07:00 in Paris
	h.env.SetStartTime(start)
	var sentAt []time.Time
	var inputs []string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		switch info.ActivityType.Name {
		case "Send":
			sentAt = append(sentAt, h.env.Now())
		case "NextLocalTime":
			var in activities.NextLocalTimeInput
			require.NoError(t, args.Get(&in))
			raw, err := json.Marshal(in)
			require.NoError(t, err)
			inputs = append(inputs, string(raw))
		}
	})
	h.signalAfter(3*24*time.Hour+time.Hour, SignalEvent, EventSignal{EventID: "p", Name: "purchase"})
	in := input(spec)
	in.ContactID = lt.contactID
	res := h.run(t, in)
	require.Equal(t, model.RunConverted, res.Status)
	require.Equal(t, []time.Time{
		utcTime(t, "2026-06-01T07:00:00Z"), utcTime(t, "2026-06-02T07:00:00Z"),
		utcTime(t, "2026-06-03T07:00:00Z"),
	}, utcAll(sentAt), "the purchase on day 4 at 06:00 UTC came before that day's 09:00 in Paris")
	for _, raw := range inputs {
		require.NotContains(t, raw, "Europe")
		require.NotContains(t, raw, "paris@")
	}
}

func utcAll(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

// devServerActs is the recording fakes, with the real NextLocalTime.
type devServerActs struct {
	*fakeActivities
	real *activities.Activities
}

func (d devServerActs) NextLocalTime(ctx context.Context, in activities.NextLocalTimeInput) (activities.NextLocalTimeResult, error) {
	return d.real.NextLocalTime(ctx, in)
}

// On a real dev server, a wait_until for the next minute in Kolkata (UTC+5:30,
// so a zone that is not UTC's) parks the run on a Temporal timer with
// JourneyStep set to the step, ends at that instant, and leaves the zone
// out of the history. It lasts until the next minute, at most 70 s.
func TestJourney_DevServer_WaitUntil(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the next minute on a dev server")
	}
	store := storagetest.New(t)
	ctx := context.Background()
	contact, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "k@example.com", TimeZone: "Asia/Kolkata"})
	require.NoError(t, err)

	c := temporaltest.StartDevServer(t).Client()
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	w.RegisterActivity(&devServerActs{fakeActivities: &fakeActivities{},
		real: &activities.Activities{Store: store, Delivery: &delivery.Service{Store: store, Policy: policy.DefaultSettings()}}})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	kolkata, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	target := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(target) < 10*time.Second {
		target = target.Add(time.Minute) // leave time to see the run parked
	}
	spec, err := journey.ParseAndValidate(fmt.Appendf(nil, `
id: at_minute
name: At the minute
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: minute
    wait_until: {time: "%s"}
  - id: done
    send: {channel: email, email: {subject: Hi, text: Hello}}
`, target.In(kolkata).Format("15:04")))
	require.NoError(t, err)
	in := JourneyInput{EnrollmentID: "e_at", ContactID: contact.ID, Version: 1, Spec: spec}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "journey/at_minute/contact/" + contact.ID, TaskQueue: TaskQueue}, Journey, in)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		st, err := queryState(ctx, c, run.GetID(), "")
		return err == nil && st.WaitingUntil != nil && st.WaitingUntil.Equal(target)
	}, 10*time.Second, 100*time.Millisecond, "the run waits until %s", target)
	desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), "")
	require.NoError(t, err)
	var step string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(
		desc.WorkflowExecutionInfo.SearchAttributes.IndexedFields[SearchJourneyStep.GetName()], &step))
	require.Equal(t, "minute", step)

	var res JourneyResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, model.RunCompleted, res.Status)
	require.False(t, time.Now().Before(target), "the run ended at or after %s", target)

	var timers int
	for _, ev := range historyOf(t, c, run.GetID(), run.GetRunID()) {
		if ev.GetTimerStartedEventAttributes() != nil {
			timers++
		}
		raw, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(ev)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "Kolkata", "the zone stays in PostgreSQL")
	}
	require.Equal(t, 1, timers, "one durable timer")
}
