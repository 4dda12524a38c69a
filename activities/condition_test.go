package activities_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// A condition that fails on the contact's data comes back as a code: the
// result goes into workflow history, the evaluator's message (which quotes
// the data) goes nowhere.
func TestEvaluateCondition_ErrorsAreCodesWithoutValues(t *testing.T) {
	t.Parallel()
	const email, phone = "jane.doe@example.com", "+14155550123"
	store := storagetest.New(t)
	ctx := context.Background()
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: email, Phone: phone,
		Attributes: map[string]any{"birthday": email, "pattern": "(" + phone}})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store}
	env.RegisterActivity(acts)

	eval := func(contactID, expr string) (activities.EvaluateConditionResult, []byte) {
		v, err := env.ExecuteActivity(acts.EvaluateCondition, activities.EvaluateConditionInput{
			ContactID: contactID, Condition: expr, Journey: activities.JourneyContext{ID: "j", Version: 1, Step: "b"}})
		require.NoError(t, err)
		var res activities.EvaluateConditionResult
		require.NoError(t, v.Get(&res))
		raw, err := json.Marshal(res)
		require.NoError(t, err)
		return res, raw
	}
	for expr, code := range map[string]string{
		`timestamp(contact.birthday) < timestamp("2030-01-01T00:00:00Z")`: journey.CondInvalidTimestamp,
		`timestamp(contact.phone) < timestamp("2030-01-01T00:00:00Z")`:    journey.CondInvalidTimestamp,
		`contact.email.matches(contact.pattern)`:                          journey.CondInvalidRegex,
		`contact.email`:                                                   journey.CondNotBoolean,
		`contact.plan == "pro"`:                                           journey.CondNoSuchAttribute,
		`int(contact.email) > 1`:                                          journey.CondTypeMismatch,
	} {
		res, raw := eval(c.ID, expr)
		require.Equal(t, activities.EvaluateConditionResult{Error: code}, res, expr)
		require.NotContains(t, string(raw), email, expr)
		require.NotContains(t, string(raw), phone, expr)
	}
	res, _ := eval("c_gone", `contact.plan == "pro"`)
	require.Equal(t, activities.EvaluateConditionResult{Error: activities.ConditionContactNotFound}, res)
}

// A run of a contact erased under it starts and ends without an error
// (BeginEnrollment, FinishEnrollment), so it can end with the reason the
// erasure gave it instead of retrying forever.
func TestEnrollmentActivities_ContactErased(t *testing.T) {
	t.Parallel()
	store := storagetest.New(t)
	ctx := context.Background()
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "erased@example.com"})
	require.NoError(t, err)
	jv, err := store.PublishJourney(ctx, journey.Spec{ID: "j", Name: "J", Trigger: journey.Trigger{Type: journey.TriggerAPI},
		Reentry: journey.Reentry{Policy: journey.ReentryAlways},
		Steps:   []journey.Step{{ID: "w", Wait: &journey.Wait{Duration: journey.Duration(1e9)}}}})
	require.NoError(t, err)
	begin := activities.BeginEnrollmentInput{EnrollmentID: "e_1", ContactID: c.ID, JourneyID: jv.JourneyID, Version: jv.Version, WorkflowID: "wf"}
	require.NoError(t, store.CreateEnrollment(ctx, storage.Enrollment{ID: begin.EnrollmentID, ContactID: c.ID, JourneyID: jv.JourneyID,
		Version: jv.Version, WorkflowID: begin.WorkflowID}, nil))
	_, _, err = store.EraseContact(ctx, c.ID)
	require.NoError(t, err)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store}
	env.RegisterActivity(acts)
	_, err = env.ExecuteActivity(acts.BeginEnrollment, begin)
	require.NoError(t, err)
	_, err = env.ExecuteActivity(acts.FinishEnrollment, activities.FinishEnrollmentInput{EnrollmentID: "e_1", Status: model.RunExited,
		Reason: "erased", LastStep: "w"})
	require.NoError(t, err)

	// An enrollment that never existed is still an error.
	_, err = env.ExecuteActivity(acts.FinishEnrollment, activities.FinishEnrollmentInput{EnrollmentID: "e_never", Status: model.RunExited})
	require.Error(t, err)
}
