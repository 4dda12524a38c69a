package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/journey"
)

// An audience step asks the activity for the change and records its
// outcome; the journey goes on whatever it was.
func TestJourney_AudienceStep(t *testing.T) {
	spec, err := journey.ParseAndValidate([]byte(`
id: hot
name: Hot leads
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: to_ads
    audience: {audience: hot_meta, action: add}
  - id: later
    wait: {duration: 30d}
  - id: off_ads
    audience: {audience: hot_meta, action: remove}
`))
	require.NoError(t, err)
	h := newHarness(t)
	var a *activities.Activities
	var asked []activities.ChangeAudienceInput
	h.env.OnActivity(a.ChangeAudience, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ChangeAudienceInput) (activities.ChangeAudienceResult, error) {
			asked = append(asked, in)
			if in.Action == audience.Add {
				return activities.ChangeAudienceResult{Outcome: "skipped:no_ads_consent"}, nil
			}
			return activities.ChangeAudienceResult{Outcome: "queued"}, nil
		})
	res := h.run(t, input(spec))
	require.Equal(t, "completed", string(res.Status))
	require.Equal(t, []activities.ChangeAudienceInput{
		{ContactID: "c_1", AudienceID: "hot_meta", Action: audience.Add, JourneyID: "hot", StepID: "to_ads"},
		{ContactID: "c_1", AudienceID: "hot_meta", Action: audience.Remove, JourneyID: "hot", StepID: "off_ads"},
	}, asked)
	v, err := h.env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st JourneyState
	require.NoError(t, v.Get(&st))
	require.Equal(t, "add: skipped:no_ads_consent", st.StepsTaken[0].Outcome)
	require.Equal(t, "remove: queued", st.StepsTaken[2].Outcome)
}

// The sync runs a pass, then one every interval or at once when signalled;
// a failed pass is retried by its activity's policy.
func TestAudienceSync_PassesOnTimeAndOnSignal(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	var at []time.Time
	env.OnActivity(a.SyncAudience, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SyncAudienceInput) (activities.SyncAudienceResult, error) {
			at = append(at, env.Now())
			switch len(at) {
			case 2:
				return activities.SyncAudienceResult{}, errors.New("database unreachable")
			case 4:
				env.CancelWorkflow()
			}
			return activities.SyncAudienceResult{Added: 1}, nil
		})
	start := env.Now()
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAudienceSync, nil) }, 13*time.Minute)
	env.ExecuteWorkflow(AudienceSync, AudienceSyncInput{AudienceID: "hot_meta", Interval: 10 * time.Minute})
	require.True(t, env.IsWorkflowCompleted())
	require.Len(t, at, 4)
	require.Equal(t, start, at[0], "a pass at once")
	require.Equal(t, 10*time.Minute, at[1].Sub(start), "then every interval")
	require.Equal(t, 10*time.Minute+5*time.Second, at[2].Sub(start), "a failed pass retried after 5 s")
	require.Equal(t, 13*time.Minute, at[3].Sub(start), "a signal brings the next pass forward")
}

// Every FullEvery a pass is a full sync, counted from the last one that
// succeeded, carried over continue-as-new in the input.
func TestAudienceSync_FullSyncs(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	var full []bool
	env.OnActivity(a.SyncAudience, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SyncAudienceInput) (activities.SyncAudienceResult, error) {
			full = append(full, in.Full)
			if in.Full && in.Session == 0 {
				return activities.SyncAudienceResult{}, errors.New("a full sync needs its session")
			}
			if len(full) == 7 {
				env.CancelWorkflow()
			}
			return activities.SyncAudienceResult{}, nil
		})
	env.ExecuteWorkflow(AudienceSync, AudienceSyncInput{AudienceID: "hot_meta", Interval: 10 * time.Minute, FullEvery: 30 * time.Minute})
	require.True(t, env.IsWorkflowCompleted())
	require.Equal(t, []bool{true, false, false, true, false, false, true}, full)
}
