package activities_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

func (b *bundle) assignVariant(t *testing.T, in activities.AssignVariantInput) activities.AssignVariantResult {
	t.Helper()
	v, err := b.env.ExecuteActivity(b.acts.AssignVariant, in)
	require.NoError(t, err)
	var res activities.AssignVariantResult
	require.NoError(t, v.Get(&res))
	return res
}

func TestAssignVariant_RecordedVariantWinsOverNewWeights(t *testing.T) {
	t.Parallel()
	b := setup(t)
	split := journey.Split{Experiment: "subject", Variants: []journey.SplitVariant{
		{Name: "a", Weight: 1, Next: "x"}, {Name: "b", Weight: 1, Next: "y"}}}
	in := activities.AssignVariantInput{EnrollmentID: "e_1", ContactID: b.alice.ID, JourneyID: b.spec.ID, Version: b.jv.Version, Split: split}

	first := b.assignVariant(t, in)
	want, err := experiment.Assign(experiment.ExperimentSalt(b.spec.ID, "subject"), b.alice.ID, split.Arms())
	require.NoError(t, err)
	require.Equal(t, activities.AssignVariantResult{Variant: want, Path: want}, first, "the hash decides the first time")

	rec, err := b.store.AssignmentOf(b.ctx, b.spec.ID, "subject", b.alice.ID)
	require.NoError(t, err)
	require.Equal(t, want, rec.Variant)
	require.Equal(t, "e_1", rec.EnrollmentID)

	// A new version gives every contact to the other variant: the record wins.
	other := "a"
	if want == "a" {
		other = "b"
	}
	reweighted := split
	reweighted.Variants = []journey.SplitVariant{{Name: other, Weight: 1, Next: "x"}, {Name: want, Weight: 1, Next: "y"}}
	reweighted.Variants[0].Weight, reweighted.Variants[1].Weight = journey.MaxVariantWeight, 1
	again := b.assignVariant(t, activities.AssignVariantInput{EnrollmentID: "e_2", ContactID: b.alice.ID,
		JourneyID: b.spec.ID, Version: b.jv.Version + 1, Split: reweighted})
	require.Equal(t, activities.AssignVariantResult{Variant: want, Path: want}, again)

	// A version without the variant: the record still wins, the run takes control's path.
	retired := split
	retired.Variants = []journey.SplitVariant{{Name: other, Weight: 1, Next: "x"}, {Name: "c", Weight: 1, Next: "y"}}
	got := b.assignVariant(t, activities.AssignVariantInput{EnrollmentID: "e_3", ContactID: b.alice.ID,
		JourneyID: b.spec.ID, Version: b.jv.Version + 2, Split: retired})
	require.Equal(t, activities.AssignVariantResult{Variant: want, Path: other}, got)
}

func TestAssignVariant_SharesFollowTheWeights(t *testing.T) {
	t.Parallel()
	b := setup(t)
	split := journey.Split{Experiment: "offer", Variants: []journey.SplitVariant{
		{Name: "a", Weight: 3, Next: "x"}, {Name: "b", Weight: 1, Next: "y"}}}
	counts := map[string]int64{}
	for i := range 400 {
		c, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{Email: fmt.Sprintf("p%d@example.com", i)})
		require.NoError(t, err)
		res := b.assignVariant(t, activities.AssignVariantInput{EnrollmentID: fmt.Sprintf("e_%d", i), ContactID: c.ID,
			JourneyID: b.spec.ID, Version: b.jv.Version, Split: split})
		counts[res.Variant]++
	}
	// A hash split that ignored the weights (or a constant) fails this
	// sample-ratio check by far; a correct one fails it one time in 1000.
	srm, err := experiment.SampleRatioMismatch([]int64{counts["a"], counts["b"]}, []float64{3, 1})
	require.NoError(t, err)
	require.False(t, srm.Mismatch, "counts %v", counts)
}

func TestAssignHoldout_IsStickyAndSkipsMarketingSends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.grant(t, journey.ChannelEmail)
	held := experiment.Held(experiment.HoldoutSalt(b.spec.ID), b.alice.ID, 0.5)
	v, err := b.env.ExecuteActivity(b.acts.AssignHoldout, activities.AssignHoldoutInput{
		EnrollmentID: "e_1", ContactID: b.alice.ID, JourneyID: b.spec.ID, Version: b.jv.Version, Share: 0.5})
	require.NoError(t, err)
	var res activities.AssignHoldoutResult
	require.NoError(t, v.Get(&res))
	want := journey.GroupTreatment
	if held {
		want = journey.GroupHoldout
	}
	require.Equal(t, want, res.Group)
	// A new share that would put everyone in (or no one): the record wins.
	share := 0.999999
	if held {
		share = 0.000001
	}
	v, err = b.env.ExecuteActivity(b.acts.AssignHoldout, activities.AssignHoldoutInput{
		EnrollmentID: "e_2", ContactID: b.alice.ID, JourneyID: b.spec.ID, Version: b.jv.Version, Share: share})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	require.Equal(t, want, res.Group)

	// A held-out run's marketing send is recorded as skipped: holdout, and
	// nothing reaches SendGrid.
	in := b.input("hello")
	in.Withhold = journey.GroupHoldout
	sent, err := b.send(t, in)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, sent.Status)
	require.Equal(t, journey.GroupHoldout, sent.Reason)
	require.Empty(t, b.sg.Requests())
	m, err := b.store.MessageByKey(b.ctx, in.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, m.Status)
	require.Equal(t, journey.GroupHoldout, m.StatusReason)

	// A transactional one goes (the workflow never withholds it; the
	// activity does not either).
	tx := b.input("hello")
	tx.IdempotencyKey += "/tx"
	tx.Class = journey.ClassTransactional
	tx.Withhold = journey.GroupHoldout
	sent, err = b.send(t, tx)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, sent.Status)
}

func TestSend_ControlGroupGetsNoMarketing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.acts.ControlGroupShare = 0.5
	// One contact in the control group and one out (by the hash).
	byGroup := map[bool]string{}
	for i := 0; len(byGroup) < 2; i++ {
		c, _, err := b.store.UpsertContact(b.ctx, storage.ContactInput{Email: fmt.Sprintf("cg%d@example.com", i), Attributes: map[string]any{"first_name": "Cee"}})
		require.NoError(t, err)
		_, _, err = b.store.RecordConsent(b.ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "test", time.Now().Add(-time.Minute))
		require.NoError(t, err)
		byGroup[experiment.Held(experiment.ControlGroupSalt, c.ID, 0.5)] = c.ID
	}
	send := func(contactID, key string, class journey.MessageClass) activities.SendResult {
		in := b.input("hello")
		in.ContactID, in.IdempotencyKey, in.Class = contactID, key, class
		res, err := b.send(t, in)
		require.NoError(t, err)
		return res
	}

	res := send(byGroup[true], "k1", journey.ClassMarketing)
	require.Equal(t, model.MessageSkipped, res.Status)
	require.Equal(t, journey.GroupControlGroup, res.Reason)
	require.Empty(t, b.sg.Requests())
	res = send(byGroup[false], "k2", journey.ClassMarketing)
	require.Equal(t, model.MessageSent, res.Status, res.Reason)
	for in, id := range byGroup {
		rec, err := b.store.AssignmentOf(b.ctx, "", journey.GroupControlGroup, id)
		require.NoError(t, err, "membership is recorded at the first marketing send")
		require.Equal(t, map[bool]string{true: journey.GroupControlGroup, false: journey.GroupTreatment}[in], rec.Variant)
	}

	// Shares changed later move no one recorded.
	b.acts.ControlGroupShare = 0.000001
	require.Equal(t, journey.GroupControlGroup, send(byGroup[true], "k3", journey.ClassMarketing).Reason)
	b.acts.ControlGroupShare = 0.5
	require.Equal(t, model.MessageSent, send(byGroup[false], "k4", journey.ClassMarketing).Status)

	// A transactional message reaches a control-group contact.
	require.Equal(t, model.MessageSent, send(byGroup[true], "k5", journey.ClassTransactional).Status)
}
