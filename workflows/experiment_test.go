package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

func experimentSpec(t *testing.T) journey.Spec {
	t.Helper()
	spec, err := journey.ParseAndValidate([]byte(`
id: offer
name: Offer test
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase, window: 14d}
holdout: {share: 0.1}
steps:
  - id: pick
    split:
      experiment: discount
      variants:
        - {name: ten, weight: 1, next: email_ten}
        - {name: twenty, weight: 1, next: email_twenty}
  - {id: email_ten, send: {channel: email, email: {subject: "10% off", text: t}}, next: receipt}
  - {id: email_twenty, send: {channel: email, email: {subject: "20% off", text: t}}}
  - {id: receipt, send: {channel: email, class: transactional, email: {subject: "Your account", text: t}}}
`))
	require.NoError(t, err)
	return spec
}

// mockAssignments answers the experiment activities with fixed groups and
// records what they were asked.
func mockAssignments(h *harness, variant, holdoutGroup string) *[]activities.AssignVariantInput {
	var asked []activities.AssignVariantInput
	var a *activities.Activities
	h.env.OnActivity(a.AssignVariant, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AssignVariantInput) (activities.AssignVariantResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			asked = append(asked, in)
			return activities.AssignVariantResult{Variant: variant, Path: variant}, nil
		})
	h.env.OnActivity(a.AssignHoldout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AssignHoldoutInput) (activities.AssignHoldoutResult, error) {
			if in.Share != 0.1 || in.JourneyID != "offer" || in.ContactID != "c_1" || in.EnrollmentID != "e_1" {
				return activities.AssignHoldoutResult{}, context.Canceled
			}
			return activities.AssignHoldoutResult{Group: holdoutGroup}, nil
		})
	return &asked
}

func TestJourney_SplitTakesTheAssignedVariantsPath(t *testing.T) {
	for _, tc := range []struct {
		variant string
		sent    []string
	}{
		{"ten", []string{"email_ten", "receipt"}},
		{"twenty", []string{"email_twenty", "receipt"}},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			h := newHarness(t)
			asked := mockAssignments(h, tc.variant, journey.GroupTreatment)
			res := h.run(t, input(experimentSpec(t)))
			require.Equal(t, model.RunCompleted, res.Status)
			require.Equal(t, tc.sent, h.sentSteps())
			require.Len(t, *asked, 1)
			require.Equal(t, "discount", (*asked)[0].Split.Experiment)
			require.Equal(t, "c_1", (*asked)[0].ContactID)
			require.Equal(t, 3, (*asked)[0].Version)
			for _, s := range h.sends {
				require.Empty(t, s.Withhold, "a treatment contact's messages are sent")
			}
		})
	}
}

func TestJourney_HoldoutWithholdsMarketingOnly(t *testing.T) {
	h := newHarness(t)
	mockAssignments(h, "twenty", journey.GroupHoldout)
	res := h.run(t, input(experimentSpec(t)))
	require.Equal(t, model.RunCompleted, res.Status)
	// The held-out contact walks the journey; each send says why it must
	// not go, except the transactional one.
	require.Equal(t, []string{"email_twenty", "receipt"}, h.sentSteps())
	require.Equal(t, journey.GroupHoldout, h.sends[0].Withhold)
	require.Empty(t, h.sends[1].Withhold)
	require.Equal(t, journey.ClassTransactional, h.sends[1].Class)
}

func TestJourney_HoldoutSurvivesContinueAsNew(t *testing.T) {
	h := newHarness(t)
	mockAssignments(h, "ten", journey.GroupHoldout)
	in := input(experimentSpec(t))
	in.Carried = &CarriedState{Cursor: "email_ten", Withhold: journey.GroupHoldout}
	h.run(t, in)
	require.Equal(t, []string{"email_ten", "receipt"}, h.sentSteps())
	require.Equal(t, journey.GroupHoldout, h.sends[0].Withhold)
}
