package activities_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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

// A branch over stored behaviour reads the contact's events at the moment it
// runs, only of the names it asks for, and has no value (the else path) for a
// contact with more of them than a branch reads, rather than a count over
// part of the history.
func TestEvaluateCondition_StoredBehaviour(t *testing.T) {
	t.Parallel()
	store, dsn := storagetest.NewWithDSN(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "behaviour@example.com"})
	require.NoError(t, err)
	busy, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "busy@example.com"})
	require.NoError(t, err)
	now := time.Now().UTC()
	track := func(contactID, id, name string, ago time.Duration, props map[string]any) {
		t.Helper()
		_, _, _, err := store.TrackEvent(ctx, storage.Event{ID: id, ContactID: contactID, Name: name, Properties: props, OccurredAt: now.Add(-ago)})
		require.NoError(t, err)
	}
	const day = 24 * time.Hour
	track(c.ID, "e1", "page.viewed", 1*day, map[string]any{"path": "/pricing"})
	track(c.ID, "e2", "page.viewed", 2*day, map[string]any{"path": "/pricing"})
	track(c.ID, "e3", "page.viewed", 3*day, map[string]any{"path": "/pricing"})
	track(c.ID, "e4", "page.viewed", 9*day, map[string]any{"path": "/pricing"})
	track(c.ID, "e5", "purchase", 40*day, map[string]any{"total": 30})
	// One more event of a name than a branch reads, for the busy contact.
	_, err = pool.Exec(ctx, `INSERT INTO events (id, contact_id, name, properties, occurred_at)
		SELECT 'bulk-' || g, $1, 'page.viewed', '{}', now() - g * interval '1 minute' FROM generate_series(1, $2::int) g`,
		busy.ID, journey.MaxBranchEvents+1)
	require.NoError(t, err)
	track(busy.ID, "b1", "purchase", 2*day, nil)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store}
	env.RegisterActivity(acts)
	eval := func(contactID, expr string) activities.EvaluateConditionResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.EvaluateCondition, activities.EvaluateConditionInput{
			ContactID: contactID, Condition: expr,
			Journey: activities.JourneyContext{ID: "j", Version: 1, Step: "b", EventCounts: map[string]int{"purchase": 0}}})
		require.NoError(t, err)
		var res activities.EvaluateConditionResult
		require.NoError(t, v.Get(&res))
		return res
	}
	for expr, want := range map[string]bool{
		`events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3`:                      true,
		`events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 4`:                      false,
		`events.count("page.viewed", days(10)) == 4`:                                           true,
		`events.count("purchase", days(30)) == 0`:                                              true, // "no purchase in 30 days"
		`events.sum("purchase", "total", days(60)) == 30.0 && journey.events["purchase"] == 0`: true,
		`events.first("page.viewed").value() < now - days(8)`:                                  true,
		`!events.last("refund").hasValue()`:                                                    true,
	} {
		require.Equal(t, activities.EvaluateConditionResult{Value: want}, eval(c.ID, expr), expr)
	}
	// The busy contact: its page views are not read for a branch about
	// purchases, and are too many for one about page views.
	require.Equal(t, activities.EvaluateConditionResult{Value: true}, eval(busy.ID, `events.count("purchase", days(7)) == 1`))
	require.Equal(t, activities.EvaluateConditionResult{Error: journey.CondTooManyEvents},
		eval(busy.ID, `events.count("page.viewed", days(1)) > 0`))
	require.Equal(t, activities.EvaluateConditionResult{Error: journey.CondTooManyEvents},
		eval(busy.ID, `events.count(string(contact.id), days(1)) > 0`))
}

// FinishEnrollment stores the run's path with its ending; a retry writes
// the same; an empty path (a run that took no step) stays distinct from
// none (a worker older than paths) through the payload converter.
func TestFinishEnrollment_RecordsThePath(t *testing.T) {
	t.Parallel()
	store := storagetest.New(t)
	ctx := context.Background()
	c, _, err := store.UpsertContact(ctx, storage.ContactInput{Email: "path@example.com"})
	require.NoError(t, err)
	jv, err := store.PublishJourney(ctx, journey.Spec{ID: "j", Name: "J", Trigger: journey.Trigger{Type: journey.TriggerAPI},
		Reentry: journey.Reentry{Policy: journey.ReentryAlways},
		Steps:   []journey.Step{{ID: "w", Wait: &journey.Wait{Duration: journey.Duration(1e9)}}}})
	require.NoError(t, err)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	acts := &activities.Activities{Store: store}
	env.RegisterActivity(acts)
	pathOf := func(id string) ([]string, *bool) {
		var (
			path      []string
			truncated *bool
		)
		require.NoError(t, store.Pool().QueryRow(ctx, `SELECT path, path_truncated FROM enrollments WHERE id = $1`, id).Scan(&path, &truncated))
		return path, truncated
	}
	for _, tc := range []struct {
		id            string
		path          []string
		truncated     bool
		wantTruncated *bool
	}{
		{"e_walked", []string{"w", "w"}, true, ptr(true)},
		{"e_no_step", []string{}, false, ptr(false)},
		{"e_old_worker", nil, false, nil},
	} {
		require.NoError(t, store.RecordEnrollment(ctx, storage.Enrollment{ID: tc.id, ContactID: c.ID, JourneyID: jv.JourneyID,
			Version: jv.Version, WorkflowID: "wf/" + tc.id}))
		in := activities.FinishEnrollmentInput{EnrollmentID: tc.id, Status: model.RunCompleted, Reason: "reached the end",
			LastStep: "w", Path: tc.path, PathTruncated: tc.truncated}
		for range 2 { // the second is a retry
			_, err = env.ExecuteActivity(acts.FinishEnrollment, in)
			require.NoError(t, err)
		}
		path, truncated := pathOf(tc.id)
		require.Equal(t, tc.path, path, tc.id)
		require.Equal(t, tc.wantTruncated, truncated, tc.id)
	}
}

func ptr[T any](v T) *T { return &v }
