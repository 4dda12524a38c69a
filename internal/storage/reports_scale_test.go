package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// tinyScale is the benchmark's data set at a size the normal tests seed
// in a second or two: the same generator, the same shape.
func tinyScale() storagetest.ScaleConfig {
	return storagetest.ScaleConfig{Contacts: 300, Messages: 1000, NoiseEvents: 3000, Seed: 7}
}

// TestScaleSeed_ReportsCountWhatWasSeeded seeds the report benchmark's
// data set at a small size and checks every count of both reports
// against the generator's own tally, made in Go from what it wrote.
func TestScaleSeed_ReportsCountWhatWasSeeded(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seed, err := storagetest.SeedScale(ctx, s, tinyScale())
	require.NoError(t, err)
	t.Log(seed.Summary())
	checkScaleReports(t, s, seed)
}

// checkScaleReports compares Funnel (both versions of the big journey)
// and Experiment (its split and its holdout) with seed's tally.
func checkScaleReports(t *testing.T, s *storage.Store, seed *storagetest.ScaleSeed) {
	t.Helper()
	ctx := context.Background()
	for _, v := range []int{1, 2} {
		got, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: storagetest.ScaleJourney, Version: v,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		require.NoError(t, err)
		want := seed.ExpectFunnel(storagetest.ScaleJourney, v, storagetest.ScaleWindow, time.Now())
		require.Positive(t, want.Entered, "version %d", v)
		require.Positive(t, want.Converted, "version %d", v)
		require.Equal(t, want.Entered, got.Entered, "version %d", v)
		require.Equal(t, want.Contacts, got.Contacts, "version %d", v)
		require.NotNil(t, got.Converted)
		require.Equal(t, want.Converted, *got.Converted, "version %d", v)
		require.InDelta(t, storagetest.Percentile(want.ConvertSeconds, 0.5), *got.TimeToConvertP50, 1e-6)
		require.InDelta(t, storagetest.Percentile(want.ConvertSeconds, 0.9), *got.TimeToConvertP90, 1e-6)
		sends := map[string]map[model.MessageStatus]map[string]int64{}
		for _, c := range got.Sends {
			if sends[c.StepID] == nil {
				sends[c.StepID] = map[model.MessageStatus]map[string]int64{}
			}
			if sends[c.StepID][c.Status] == nil {
				sends[c.StepID][c.Status] = map[string]int64{}
			}
			sends[c.StepID][c.Status][c.Reason] = c.Count
		}
		require.Equal(t, want.Sends, sends, "version %d", v)
		require.Equal(t, want.Reached, got.Reached, "version %d", v)
		require.Equal(t, want.Deferred, got.Deferred, "version %d", v)
		require.Equal(t, want.SentTo, got.SentTo, "version %d", v)
		require.Equal(t, want.OptedOut, got.OptedOut, "version %d", v)
		require.Equal(t, want.Assigned, got.Assigned, "version %d", v)
		bySegment := map[string][2]int64{}
		for id, sf := range got.BySegment {
			bySegment[id] = [2]int64{sf.Entered, sf.Converted}
		}
		require.Equal(t, want.BySegment, bySegment, "version %d", v)
	}

	for _, exp := range []string{storagetest.ScaleExperiment, journey.GroupHoldout} {
		got, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: storagetest.ScaleJourney, Experiment: exp,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		require.NoError(t, err)
		want, excluded := seed.ExpectGroups(exp, storagetest.ScaleWindow)
		require.Positive(t, excluded)
		require.Equal(t, excluded, got.ControlGroupExcluded, exp)
		require.Len(t, got.Groups, len(want), exp)
		for _, g := range got.Groups {
			w := want[g.Group]
			require.NotNil(t, w, "%s %s", exp, g.Group)
			require.Equal(t, w.Entered, g.Entered, "%s %s", exp, g.Group)
			require.Equal(t, w.Converted, g.Converted, "%s %s", exp, g.Group)
			require.Equal(t, w.Unsubscribed, g.Unsubscribed, "%s %s", exp, g.Group)
			require.Equal(t, w.SpamComplaints, g.SpamComplaints, "%s %s", exp, g.Group)
			require.Equal(t, w.Bounced, g.Bounced, "%s %s", exp, g.Group)
			if w.Converted > 0 {
				require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.5), *g.TimeToConvertP50, 1e-6)
				require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.9), *g.TimeToConvertP90, 1e-6)
			}
			entered, converted := map[time.Time]int64{}, map[time.Time]int64{}
			for _, d := range g.Daily {
				if d.Entered > 0 {
					entered[d.Day] = d.Entered
				}
				if d.Converted > 0 {
					converted[d.Day] = d.Converted
				}
			}
			require.Equal(t, w.DailyEntered, entered, "%s %s", exp, g.Group)
			require.Equal(t, w.DailyConverted, converted, "%s %s", exp, g.Group)
			require.Equal(t, w.Steps, g.Steps, "%s %s", exp, g.Group)
		}
	}
}
