package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
)

func TestExperimentDesign(t *testing.T) {
	spec, err := journey.ParseAndValidate([]byte(`
id: j
name: J
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
holdout: {share: 0.2}
steps:
  - id: pick
    split:
      experiment: offer
      control: twenty
      variants:
        - {name: ten, weight: 3, next: end}
        - {name: twenty, weight: 1, next: end}
  - {id: end, exit: {}}
`))
	require.NoError(t, err)

	d, ok := experimentDesign(spec, "offer")
	require.True(t, ok)
	require.Equal(t, "twenty", d.Control)
	require.Equal(t, journey.GroupHoldout, d.Holdout)
	require.Equal(t, map[string]float64{"ten": 3, "twenty": 1}, d.Weights)

	d, ok = experimentDesign(spec, journey.GroupHoldout)
	require.True(t, ok)
	require.Equal(t, journey.GroupHoldout, d.Control)
	require.Empty(t, d.Holdout, "the holdout is the control of its own experiment")
	require.Equal(t, map[string]float64{journey.GroupHoldout: 0.2, journey.GroupTreatment: 0.8}, d.Weights)

	_, ok = experimentDesign(spec, "colour")
	require.False(t, ok)
	spec.Holdout = nil
	_, ok = experimentDesign(spec, journey.GroupHoldout)
	require.False(t, ok)
}

func TestExperimentGroups_Order(t *testing.T) {
	d := experiment.Design{Control: "b", Holdout: journey.GroupHoldout, Weights: map[string]float64{"a": 1, "b": 1, "c": 1}}
	counted := []experiment.Counts{
		{Group: journey.GroupHoldout, Entered: 1},
		{Group: "retired", Entered: 2}, // a variant an older version had
		{Group: "a", Entered: 3},
		{Group: "b", Entered: 4},
	}
	got := experimentGroups(counted, d)
	var names []string
	for _, g := range got {
		names = append(names, g.Group)
	}
	// Control first, the designed variants (c entered by no one yet), the
	// older ones, the holdout last.
	require.Equal(t, []string{"b", "a", "c", "retired", journey.GroupHoldout}, names)
	require.Equal(t, int64(4), got[0].Entered)
	require.Zero(t, got[2].Entered)
}

func TestPathConversionLabel(t *testing.T) {
	for _, tc := range []struct {
		p    PathConversion
		want string
	}{
		{PathConversion{Kind: "path", Path: "a > b", Steps: []string{"a", "b"}, Paths: 1}, "a > b"},
		{PathConversion{Kind: "path", Path: "b > c", Steps: []string{"b", "c"}, Truncated: true, Paths: 1}, "… b > c"},
		{PathConversion{Kind: "path", Steps: []string{}, Paths: 1}, "(no steps)"},
		{PathConversion{Kind: "other", Paths: 7}, "other (7 paths)"},
		{PathConversion{Kind: "unrecorded"}, "no recorded path"},
	} {
		require.Equal(t, tc.want, tc.p.Label(), "%+v", tc.p)
	}
}
