package experiment

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func day(n int) time.Time { return time.Date(2026, 3, n, 0, 0, 0, 0, time.UTC) }

func TestAnalyze(t *testing.T) {
	p50 := 3600.0
	groups := []Counts{
		{Group: "a", Entered: 120, Converted: 12, TimeToConvertP50: &p50, Unsubscribed: 1,
			Daily: []Day{{Day: day(1), Entered: 60, Converted: 5}, {Day: day(2), Entered: 60, Converted: 7}}},
		{Group: "b", Entered: 80, Converted: 16, Unsubscribed: 30, Bounced: 2,
			Daily: []Day{{Day: day(1), Entered: 40, Converted: 6}, {Day: day(2), Entered: 40, Converted: 10}}},
		{Group: "holdout", Entered: 20, Converted: 1,
			Daily: []Day{{Day: day(2), Entered: 20, Converted: 1}}},
	}
	got, err := Analyze(groups, Design{Control: "a", Holdout: "holdout", Weights: map[string]float64{"a": 1, "b": 1}})
	require.NoError(t, err)
	require.Equal(t, 2, got.Looks)
	require.Len(t, got.Groups, 3)

	a, b, h := got.Groups[0], got.Groups[1], got.Groups[2]
	require.True(t, a.IsControl)
	require.True(t, h.IsHoldout)
	require.Nil(t, a.VsControl, "control is not compared with itself")
	require.Nil(t, h.VsControl)
	require.NotNil(t, a.VsHoldout, "control is compared with the holdout")
	require.Equal(t, &p50, a.TimeToConvertP50)

	// Rates and intervals are Wilson's (tested against published values in stats_test.go).
	require.InDelta(t, 0.2, b.Rate, 1e-12)
	ci, _ := Wilson(Proportion{Successes: 16, Trials: 80}, 0.95)
	require.Equal(t, &ci, b.RateCI)

	// b against a: 20% vs 10%; the pooled z-test by hand: p = 28/200,
	// se = sqrt(.14*.86*(1/80+1/120)) = 0.050086, z = 0.1/se = 1.99656,
	// two-sided p = 0.04587.
	require.InDelta(t, 0.1, b.VsControl.Difference, 1e-12)
	require.InDelta(t, 1.0, b.VsControl.Lift, 1e-12)
	require.InDelta(t, 0.04587, b.VsControl.PValue, 5e-5)

	// The sequential p-value runs over the two cumulative daily looks
	// (day 1: a 5/60, b 6/40; day 2: a 12/120, b 16/80).
	want, err := AlwaysValidPValue([]Look{
		{Control: Proportion{5, 60}, Variant: Proportion{6, 40}},
		{Control: Proportion{12, 120}, Variant: Proportion{16, 80}},
	}, DefaultMixingSD)
	require.NoError(t, err)
	require.Equal(t, want, b.VsControl.AlwaysValidPValue)
	require.Greater(t, b.VsControl.AlwaysValidPValue, b.VsControl.PValue, "peeking costs evidence")

	// Sample ratio: 120 vs 80 at 1:1, chi-square (20²/100)·2 = 8 on one
	// degree of freedom, p = erfc(sqrt(8/2)) = 0.0046777: below 0.05, but
	// not the 0.001 that stops a test. The holdout has no weight: left out.
	require.NotNil(t, got.SRM)
	require.InDelta(t, 8, got.SRM.ChiSquare, 1e-9)
	require.InDelta(t, math.Erfc(2), got.SRM.PValue, 1e-9)
	require.False(t, got.SRM.Mismatch)

	// Guardrails: b's unsubscribes (30/80 against 1/120) breach; its
	// bounces (2/80 against 0/120) are not enough to.
	require.Equal(t, MetricUnsubscribed, b.Guardrails[0].Metric)
	require.True(t, b.Guardrails[0].Breached)
	require.Equal(t, MetricBounced, b.Guardrails[2].Metric)
	require.False(t, b.Guardrails[2].Breached)
	require.InDelta(t, 2.0/80, b.Guardrails[2].Rate, 1e-12)
	require.False(t, a.Guardrails[0].Breached, "control cannot breach")
	require.Nil(t, a.Guardrails[0].VsControl)
}

func TestAnalyze_EdgeCases(t *testing.T) {
	_, err := Analyze([]Counts{{Group: "a"}}, Design{Control: "z"})
	require.ErrorContains(t, err, `control group "z" has no counts`)
	_, err = Analyze([]Counts{{Group: "a"}, {Group: "a"}}, Design{Control: "a"})
	require.ErrorContains(t, err, "counted twice")
	_, err = Analyze([]Counts{{Group: "a", Entered: 1, Converted: 2}}, Design{Control: "a"})
	require.ErrorContains(t, err, "more successes than trials")

	// No entries yet: rates without intervals, no comparisons, no SRM.
	got, err := Analyze([]Counts{{Group: "a"}, {Group: "b"}}, Design{Control: "a", Weights: map[string]float64{"a": 1, "b": 1}})
	require.NoError(t, err)
	require.Nil(t, got.Groups[1].RateCI)
	require.Nil(t, got.Groups[1].VsControl)
	require.Nil(t, got.SRM)
	require.Equal(t, 0, got.Looks)

	// A broken 50/50 split (900 against 100) is flagged.
	got, err = Analyze([]Counts{{Group: "a", Entered: 900}, {Group: "b", Entered: 100}},
		Design{Control: "a", Weights: map[string]float64{"a": 1, "b": 1}})
	require.NoError(t, err)
	require.True(t, got.SRM.Mismatch)
}
