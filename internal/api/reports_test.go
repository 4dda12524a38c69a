package api_test

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestJourneyReport(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed := storagetest.SeedReports(t, h.store)

	var rep api.JourneyReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/journeys/offer", nil, 200).raw), &rep))
	require.Equal(t, "offer", rep.JourneyID)
	require.Len(t, rep.Versions, 2)
	require.Equal(t, []int{2, 1}, []int{rep.Versions[0].Version, rep.Versions[1].Version}, "newest first")

	const z = 1.959963984540054
	for _, v := range rep.Versions {
		want := seed.ExpectFunnel(v.Version, time.Now())
		require.Equal(t, "purchase", v.Goal)
		require.Equal(t, "7d", v.ConversionWindow)
		require.Equal(t, want.Entered, v.Entered)
		require.Equal(t, want.Converted, *v.Converted)
		rate := float64(want.Converted) / float64(want.Entered)
		require.InDelta(t, rate, *v.ConversionRate, 1e-12)
		// Wilson by its formula (Newcombe 1998, method 3), z = 1.959964.
		n := float64(want.Entered)
		centre := (rate + z*z/(2*n)) / (1 + z*z/n)
		half := z / (1 + z*z/n) * math.Sqrt(rate*(1-rate)/n+z*z/(4*n*n))
		require.InDelta(t, centre-half, v.ConversionRateCI.Low, 1e-9)
		require.InDelta(t, centre+half, v.ConversionRateCI.High, 1e-9)
		require.InDelta(t, storagetest.Percentile(want.ConvertSeconds, 0.9), *v.TimeToConvertP90Seconds, 1e-6)

		steps := map[string]api.StepReport{}
		for _, s := range v.Steps {
			steps[s.StepID] = s
		}
		require.Equal(t, []string{"pick", "hello", "pause", "nudge"}, []string{v.Steps[0].StepID, v.Steps[1].StepID, v.Steps[2].StepID, v.Steps[3].StepID})
		require.Nil(t, steps["pause"].Reached, "a wait leaves no record")
		require.Equal(t, want.Assigned["discount"], steps["pick"].Variants)
		require.Equal(t, want.Assigned["discount"]["a"]+want.Assigned["discount"]["b"], *steps["pick"].Reached)
		for _, step := range []string{"hello", "nudge"} {
			s := steps[step]
			require.Equal(t, want.Reached[step], *s.Reached, step)
			var sent, skipped, failed int64
			skippedBy, failedBy := map[string]int64{}, map[string]int64{}
			for status, byReason := range want.Sends[step] {
				for reason, n := range byReason {
					if reason == "" {
						reason = "none"
					}
					switch status {
					case model.MessageSkipped:
						skipped += n
						skippedBy[reason] += n
					case model.MessageFailed:
						failed += n
						failedBy[reason] += n
					default:
						sent += n
					}
				}
			}
			require.Equal(t, sent, s.Sends.Sent, step)
			require.Equal(t, skipped, s.Sends.Skipped, step)
			require.Equal(t, failed, s.Sends.Failed, step)
			require.Equal(t, skippedBy, s.Sends.SkippedByReason, step)
			require.Equal(t, failedBy, s.Sends.FailedByReason, step)
			require.Equal(t, want.Deferred[step], s.Sends.Deferred, step)
		}
		require.Len(t, v.Channels, 2)
		for _, c := range v.Channels {
			require.Equal(t, want.OptedOut[c.Channel], c.OptedOut, c.Channel)
			require.Equal(t, want.SentTo[c.Channel], c.SentTo, c.Channel)
			require.InDelta(t, float64(want.OptedOut[c.Channel])/float64(want.Entered), c.OptOutRate, 1e-12)
		}
		require.Equal(t, want.Assigned[journey.GroupHoldout], v.Holdout)

		wantPaths := seed.ExpectPaths(v.Version, storage.MaxPaths)
		require.Len(t, v.ByPath, len(wantPaths), "version %d", v.Version)
		for i, w := range wantPaths {
			p := v.ByPath[i]
			require.Equal(t, w.Kind, p.Kind, "row %d", i)
			require.Equal(t, w.Truncated, p.Truncated, "row %d", i)
			require.Equal(t, w.Paths, p.Paths, "row %d", i)
			require.Equal(t, strings.Join(w.Steps, " > "), p.Path, "row %d", i)
			if w.Steps == nil {
				w.Steps = []string{}
			}
			require.Equal(t, w.Steps, p.Steps, "row %d", i)
			require.Equal(t, w.Entered, p.Entered, "row %d", i)
			require.Equal(t, w.Converted, *p.Converted, "row %d", i)
			rate := float64(w.Converted) / float64(w.Entered)
			require.InDelta(t, rate, *p.ConversionRate, 1e-12, "row %d", i)
			n := float64(w.Entered)
			centre := (rate + z*z/(2*n)) / (1 + z*z/n)
			half := z / (1 + z*z/n) * math.Sqrt(rate*(1-rate)/n+z*z/(4*n*n))
			require.InDelta(t, centre-half, p.ConversionRateCI.Low, 1e-9, "row %d", i)
			require.InDelta(t, centre+half, p.ConversionRateCI.High, 1e-9, "row %d", i)
			if w.Converted == 0 {
				require.Nil(t, p.TimeToConvertP50Seconds, "row %d", i)
			} else {
				require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.5), *p.TimeToConvertP50Seconds, 1e-6, "row %d", i)
			}
		}
	}
	// Version 1 by path, by hand: the whole journey first (6 runs, 3
	// converted), and the run that ended before paths were recorded last.
	v1 := rep.Versions[1].ByPath
	require.Equal(t, "pick > hello > pause > nudge", v1[0].Path)
	require.Equal(t, [2]int64{6, 3}, [2]int64{v1[0].Entered, *v1[0].Converted})
	require.Equal(t, "unrecorded", v1[len(v1)-1].Kind)
	// Version 1's held-out sends, by hand: contacts 9 and 19.
	require.Equal(t, int64(2), rep.Versions[1].Steps[1].Sends.SkippedByReason[journey.GroupHoldout])

	r := h.call("GET", "/v1/reports/journeys/nope", nil, 404)
	require.Equal(t, []string{"journey_id"}, r.fieldPaths())
}

func TestExperimentReport(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed := storagetest.SeedReports(t, h.store)

	var rep api.ExperimentReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/journeys/offer/experiments/discount", nil, 200).raw), &rep))
	require.Equal(t, 2, rep.Version)
	require.Equal(t, "a", rep.Control)
	require.Equal(t, "7d", rep.ConversionWindow)
	want, excluded := seed.ExpectGroups()
	require.Equal(t, excluded, rep.ControlGroupExcluded)
	require.Equal(t, []string{"a", "b", journey.GroupHoldout}, []string{rep.Groups[0].Group, rep.Groups[1].Group, rep.Groups[2].Group})
	for _, g := range rep.Groups {
		w := want[g.Group]
		require.Equal(t, w.Entered, g.Entered, g.Group)
		require.Equal(t, w.Converted, g.Converted, g.Group)
		require.Equal(t, []int64{w.Unsubscribed, w.SpamComplaints, w.Bounced},
			[]int64{g.Guardrails[0].Count, g.Guardrails[1].Count, g.Guardrails[2].Count}, g.Group)
		require.Equal(t, w.Steps, g.Steps, g.Group)
	}
	a, b, held := want["a"], want["b"], want[journey.GroupHoldout]

	// b against a, by hand: the difference, the relative lift, the pooled
	// z-test's two-sided p-value.
	pa, pb := float64(a.Converted)/float64(a.Entered), float64(b.Converted)/float64(b.Entered)
	vs := rep.Groups[1].VsControl
	require.NotNil(t, vs)
	require.InDelta(t, pb-pa, vs.Difference, 1e-12)
	require.InDelta(t, pb/pa-1, vs.Lift, 1e-12)
	pooled := float64(a.Converted+b.Converted) / float64(a.Entered+b.Entered)
	zs := (pb - pa) / math.Sqrt(pooled*(1-pooled)*(1/float64(a.Entered)+1/float64(b.Entered)))
	require.InDelta(t, math.Erfc(math.Abs(zs)/math.Sqrt2), vs.PValue, 1e-12)
	require.True(t, vs.DifferenceCI.Contains(vs.Difference))

	// The sequential p-value over the cumulative daily looks.
	days := map[time.Time]bool{}
	for _, g := range []*storagetest.ExpectedGroup{a, b, held} {
		for d := range g.DailyEntered {
			days[d] = true
		}
		for d := range g.DailyConverted {
			days[d] = true
		}
	}
	var order []time.Time
	for d := range days {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].Before(order[j]) })
	cum := func(g *storagetest.ExpectedGroup, upTo time.Time) experiment.Proportion {
		var p experiment.Proportion
		for d, n := range g.DailyEntered {
			if !d.After(upTo) {
				p.Trials += n
			}
		}
		for d, n := range g.DailyConverted {
			if !d.After(upTo) {
				p.Successes += n
			}
		}
		return p
	}
	var looks []experiment.Look
	for _, d := range order {
		looks = append(looks, experiment.Look{Control: cum(a, d), Variant: cum(b, d)})
	}
	avp, err := experiment.AlwaysValidPValue(looks, experiment.DefaultMixingSD)
	require.NoError(t, err)
	require.InDelta(t, avp, vs.AlwaysValidPValue, 1e-12)
	require.Equal(t, len(order), rep.Looks)

	// Sample ratio of a and b at 1:1, by hand (one degree of freedom).
	e := float64(a.Entered+b.Entered) / 2
	chi := (float64(a.Entered)-e)*(float64(a.Entered)-e)/e + (float64(b.Entered)-e)*(float64(b.Entered)-e)/e
	require.NotNil(t, rep.SRM)
	require.InDelta(t, chi, rep.SRM.ChiSquare, 1e-9)
	require.InDelta(t, math.Erfc(math.Sqrt(chi/2)), rep.SRM.PValue, 1e-9)

	// The holdout row: held-out contacts who reached the split; each
	// variant is compared with it too.
	require.True(t, rep.Groups[2].IsHoldout)
	require.Nil(t, rep.Groups[2].VsControl)
	require.NotNil(t, rep.Groups[0].VsHoldout)
	ph := float64(held.Converted) / float64(held.Entered)
	require.InDelta(t, pa-ph, rep.Groups[0].VsHoldout.Difference, 1e-12)

	// The journey against its holdout: the holdout is control, and the
	// control group's contact is left out of it too.
	var hold api.ExperimentReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/journeys/offer/experiments/holdout", nil, 200).raw), &hold))
	require.Equal(t, journey.GroupHoldout, hold.Control)
	require.Equal(t, []string{journey.GroupHoldout, journey.GroupTreatment}, []string{hold.Groups[0].Group, hold.Groups[1].Group})
	require.Equal(t, []int64{4, 35}, []int64{hold.Groups[0].Entered, hold.Groups[1].Entered})
	require.Equal(t, int64(1), hold.ControlGroupExcluded)
	// Expected 3.9 and 35.1 of 39: (0.1²/3.9 + 0.1²/35.1).
	require.InDelta(t, 0.01/3.9+0.01/35.1, hold.SRM.ChiSquare, 1e-9)
	require.NotNil(t, hold.Groups[1].VsControl)

	r := h.call("GET", "/v1/reports/journeys/offer/experiments/colour", nil, 404)
	require.Equal(t, []string{"experiment"}, r.fieldPaths())
	r = h.call("GET", "/v1/reports/journeys/nope/experiments/discount", nil, 404)
	require.Equal(t, []string{"journey_id"}, r.fieldPaths())
}

func TestWhy_HeldOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	seed := storagetest.SeedReports(t, h.store)
	held := seed.Contacts[9] // in the holdout: its hello was skipped, reason holdout
	require.True(t, held.Held)
	var ans api.WhyAnswer
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/contacts/"+held.ID+"/journeys/offer/steps/hello/why", nil, 200).raw), &ans))
	require.Equal(t, api.WhySkipped, ans.State)
	require.Contains(t, ans.Summary, "holdout")

	cg := seed.Contacts[4] // in the workspace control group
	require.True(t, cg.ControlGroup)
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/contacts/"+cg.ID+"/journeys/offer/steps/hello/why", nil, 200).raw), &ans))
	require.Equal(t, api.WhySkipped, ans.State)
	require.Contains(t, ans.Summary, "control group")
}

// A bad split is refused at its paths, and nothing is published.
func TestPublish_BadSplitNamesItsPaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bad := `
id: bad-split
name: Bad split
trigger: {type: api}
reentry: {policy: once}
goal: {event: purchase}
holdout: {share: 1.5}
steps:
  - id: pick
    split:
      experiment: subject
      variants:
        - {name: a, weight: 1, next: nowhere}
        - {name: a, weight: 0, next: end}
  - {id: end, exit: {}}
`
	r := h.do("POST", "/v1/journeys", bad, "application/yaml", "Bearer "+token)
	require.Equal(t, 422, r.status, r.raw)
	require.ElementsMatch(t, []string{"holdout.share", "steps[0].split.variants[0].next", "steps[0].split.variants[1].name",
		"steps[0].split.variants[1].weight"}, r.fieldPaths())
	require.Zero(t, h.count("journey_versions"))
}
