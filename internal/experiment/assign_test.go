package experiment

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The bucket is part of stored results: if it changed, contacts of running
// experiments would switch arms. The pinned values were computed
// independently in Python (hashlib.sha256 over the same bytes, first 8
// bytes big-endian >> 11, / 2**53); a change here must be a deliberate,
// migrated one.
func TestBucket_isStable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		salt, contact string
		want          string
	}{
		{ExperimentSalt("welcome", "subject"), "c_1", "welcome/subject c_1"},
		{HoldoutSalt("welcome"), "c_1", "holdout c_1"},
		{ControlGroupSalt, "c_1", "control c_1"},
	} {
		got, err := Assign(tc.salt, tc.contact, []Variant{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}})
		require.NoError(t, err)
		require.Equal(t, pinned[tc.want], fmt.Sprintf("%s %.12f", got, Bucket(tc.salt, tc.contact)), tc.want)
	}
}

var pinned = map[string]string{
	"welcome/subject c_1": "b 0.448785529286", // 0.448785529286435
	"holdout c_1":         "a 0.139063789792", // 0.13906378979158618
	"control c_1":         "b 0.351076316338", // 0.3510763163375754
}

func TestAssign_isStickyAndFollowsTheWeights(t *testing.T) {
	t.Parallel()
	arms := []Variant{{"control", 50}, {"short", 30}, {"long", 20}}
	salt := ExperimentSalt("welcome", "cadence")
	counts := map[string]int64{}
	const n = 100_000
	for i := range n {
		id := fmt.Sprintf("contact-%d", i)
		a, err := Assign(salt, id, arms)
		require.NoError(t, err)
		again, err := Assign(salt, id, arms)
		require.NoError(t, err)
		require.Equal(t, a, again)
		counts[a]++
	}
	srm, err := SampleRatioMismatch(
		[]int64{counts["control"], counts["short"], counts["long"]}, []float64{50, 30, 20})
	require.NoError(t, err)
	t.Logf("100,000 contacts over 50/30/20: %v, chi-square p = %.3f", counts, srm.PValue)
	require.False(t, srm.Mismatch, "the assignment follows its weights")
}

// A contact's holdout membership and its arm use independent buckets: the
// holdout takes the same share of every arm.
func TestAssign_isIndependentOfTheHoldout(t *testing.T) {
	t.Parallel()
	arms := []Variant{{"a", 1}, {"b", 1}}
	var held, notHeld [2]int64
	for i := range 100_000 {
		id := fmt.Sprintf("c%d", i)
		a, err := Assign(ExperimentSalt("cart", "offer"), id, arms)
		require.NoError(t, err)
		k := 0
		if a == "b" {
			k = 1
		}
		if Held(HoldoutSalt("cart"), id, 0.1) {
			held[k]++
		} else {
			notHeld[k]++
		}
	}
	// Within the holdout the arms are still 50/50, and the holdout is 10%.
	srm, err := SampleRatioMismatch(held[:], []float64{1, 1})
	require.NoError(t, err)
	require.False(t, srm.Mismatch, "arms within the holdout: %v", held)
	srm, err = SampleRatioMismatch([]int64{held[0] + held[1], notHeld[0] + notHeld[1]}, []float64{10, 90})
	require.NoError(t, err)
	require.False(t, srm.Mismatch, "holdout share: %v held, %v not", held, notHeld)
}

func TestHeld(t *testing.T) {
	t.Parallel()
	require.False(t, Held(ControlGroupSalt, "c_1", 0))
	require.True(t, Held(ControlGroupSalt, "c_1", 1))
}

func TestValidateVariants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		arms []Variant
		want string
	}{
		{[]Variant{{"a", 1}}, "at least two"},
		{[]Variant{{"a", 1}, {"", 1}}, "variants[1].name"},
		{[]Variant{{"a", 1}, {"a", 1}}, "appears twice"},
		{[]Variant{{"a", 1}, {"b", 0}}, "variants[1].weight"},
		{[]Variant{{"a", 1}, {"b", -3}}, "variants[1].weight"},
	} {
		require.ErrorContains(t, ValidateVariants(tc.arms), tc.want)
	}
	require.NoError(t, ValidateVariants([]Variant{{"a", 90}, {"b", 10}}))
}
