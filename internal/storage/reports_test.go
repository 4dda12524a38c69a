package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestFunnel_CountsWhatTheSeedDid(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seed := storagetest.SeedReports(t, s)

	for _, version := range []int{1, 2} {
		got, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: seed.JourneyID, Version: version, Goal: seed.Goal, Window: seed.Window})
		require.NoError(t, err)
		want := seed.ExpectFunnel(version, time.Now())

		require.Equal(t, want.Entered, got.Entered, "version %d", version)
		require.Equal(t, want.Entered, got.Contacts)
		require.NotNil(t, got.Converted)
		require.Equal(t, want.Converted, *got.Converted)
		require.Greater(t, want.Converted, int64(0))
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
		require.Equal(t, want.Sends, sends)
		require.Equal(t, want.Reached, got.Reached)
		require.Equal(t, want.Deferred, got.Deferred)
		require.Equal(t, want.OptedOut, got.OptedOut)
		require.Equal(t, want.SentTo, got.SentTo)
		require.Equal(t, want.Assigned, got.Assigned)
	}

	// Version 1 by hand, as a check on the check: 25 runs; contacts 0, 3,
	// ..., 24 (9 of them) bought within a week of entering; 1, 8, 15, 22
	// bought eight days in, 2 an hour before: none of those count.
	v1 := seed.ExpectFunnel(1, time.Now())
	require.Equal(t, int64(25), v1.Entered)
	require.Equal(t, int64(9), v1.Converted)
	require.Equal(t, int64(2), v1.Sends["hello"][model.MessageSkipped][journey.GroupHoldout]) // 9 and 19

	// A version nobody entered, and no goal.
	got, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: seed.JourneyID, Version: 3})
	require.NoError(t, err)
	require.Zero(t, got.Entered)
	require.Nil(t, got.Converted)
	require.Nil(t, got.TimeToConvertP50)
}

func TestExperiment_CountsWhatTheSeedDid(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seed := storagetest.SeedReports(t, s)

	got, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: seed.JourneyID, Experiment: seed.Experiment, Goal: seed.Goal, Window: seed.Window})
	require.NoError(t, err)
	want, excluded := seed.ExpectGroups()
	require.Equal(t, excluded, got.ControlGroupExcluded)
	require.Equal(t, int64(1), excluded)
	require.Len(t, got.Groups, len(want))
	for _, g := range got.Groups {
		w := want[g.Group]
		require.NotNil(t, w, g.Group)
		require.Equal(t, w.Entered, g.Entered, g.Group)
		require.Equal(t, w.Converted, g.Converted, g.Group)
		require.Equal(t, w.Unsubscribed, g.Unsubscribed, g.Group)
		require.Equal(t, w.SpamComplaints, g.SpamComplaints, g.Group)
		require.Equal(t, w.Bounced, g.Bounced, g.Group)
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
		require.Equal(t, w.DailyEntered, entered, g.Group)
		require.Equal(t, w.DailyConverted, converted, g.Group)
		require.Equal(t, w.Steps, g.Steps, g.Group)
	}
	// By hand: the held out are 9, 19, 29, 39; of them 9 and 39 bought.
	require.Equal(t, int64(4), want[journey.GroupHoldout].Entered)
	require.Equal(t, int64(2), want[journey.GroupHoldout].Converted)
	// They all reached hello, and were sent nothing.
	require.Equal(t, experiment.StepCounts{Reached: 4, Sent: 0}, want[journey.GroupHoldout].Steps["hello"])

	// The holdout as an experiment of its own: every entrant, held out or
	// not, but the control group's (contact 4), from entering the journey.
	hold, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: seed.JourneyID, Experiment: journey.GroupHoldout, Goal: seed.Goal, Window: seed.Window})
	require.NoError(t, err)
	wantHold, excluded := seed.ExpectHoldoutGroups()
	require.Equal(t, int64(1), hold.ControlGroupExcluded)
	require.Equal(t, excluded, hold.ControlGroupExcluded)
	sizes := map[string]int64{}
	for _, g := range hold.Groups {
		sizes[g.Group] = g.Entered
		require.Equal(t, wantHold[g.Group].Converted, g.Converted, g.Group)
		require.Equal(t, wantHold[g.Group].Unsubscribed, g.Unsubscribed, g.Group)
	}
	require.Equal(t, map[string]int64{journey.GroupHoldout: 4, journey.GroupTreatment: 35}, sizes)

	none, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: seed.JourneyID, Experiment: "nothing", Goal: seed.Goal, Window: seed.Window})
	require.NoError(t, err)
	require.Empty(t, none.Groups)
}

// Conversion by path counts the ended runs of each path the seed gave
// them, the runs beyond the listed paths together, and the runs with no
// recorded path on their own; runs still active not at all.
func TestFunnel_ByPath(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	seed := storagetest.SeedReports(t, s)

	for _, version := range []int{1, 2} {
		for _, max := range []int{0, 1, 2} {
			got, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: seed.JourneyID, Version: version, Goal: seed.Goal, Window: seed.Window, MaxPaths: max})
			require.NoError(t, err)
			listed := max
			if max == 0 {
				listed = storage.MaxPaths
			}
			want := seed.ExpectPaths(version, listed)
			require.Len(t, got.ByPath, len(want), "version %d, max %d", version, max)
			for i, w := range want {
				g := got.ByPath[i]
				require.Equal(t, w.Kind, g.Kind, "version %d, max %d, row %d", version, max, i)
				require.Equal(t, w.Steps, g.Steps, "row %d", i)
				require.Equal(t, w.Truncated, g.Truncated, "row %d", i)
				require.Equal(t, w.Paths, g.Paths, "row %d", i)
				require.Equal(t, w.Entered, g.Entered, "row %d", i)
				require.Equal(t, w.Converted, g.Converted, "row %d", i)
				if w.Converted == 0 {
					require.Nil(t, g.TimeToConvertP50, "row %d", i)
				} else {
					require.InDelta(t, storagetest.Percentile(w.ConvertSeconds, 0.5), *g.TimeToConvertP50, 1e-6, "row %d", i)
				}
			}
		}
	}

	// Version 1 by hand, as a check on the check: of its 13 ended runs
	// (the even contacts 0-24), 6 took the whole journey (0, 4, 8, 12,
	// 16, 24), 4 stopped after the pause (2, 6, 18, 22), 14 took no step,
	// 20 lost its front, and 10 ended before paths were recorded.
	// Converted (every third contact): 0, 12 and 24; 6 and 18.
	v1 := seed.ExpectPaths(1, storage.MaxPaths)
	require.Equal(t, []storagetest.ExpectedPath{
		{Kind: storage.PathOne, Steps: []string{"pick", "hello", "pause", "nudge"}, Paths: 1, Entered: 6, Converted: 3},
		{Kind: storage.PathOne, Steps: []string{"pick", "hello", "pause"}, Paths: 1, Entered: 4, Converted: 2},
		{Kind: storage.PathOne, Steps: []string{}, Paths: 1, Entered: 1},
		{Kind: storage.PathOne, Steps: []string{"pause", "nudge"}, Truncated: true, Paths: 1, Entered: 1},
		{Kind: storage.PathUnrecorded, Entered: 1},
	}, withoutSeconds(v1))
	v1Other := seed.ExpectPaths(1, 1)
	require.Equal(t, storagetest.ExpectedPath{Kind: storage.PathOther, Paths: 3, Entered: 6, Converted: 2}, withoutSeconds(v1Other)[1])

	// Without a goal nothing converts.
	none, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: seed.JourneyID, Version: 1})
	require.NoError(t, err)
	require.Len(t, none.ByPath, len(v1))
	for _, p := range none.ByPath {
		require.Zero(t, p.Converted)
		require.Nil(t, p.TimeToConvertP50)
	}
}

func withoutSeconds(ps []storagetest.ExpectedPath) []storagetest.ExpectedPath {
	out := make([]storagetest.ExpectedPath, len(ps))
	for i, p := range ps {
		p.ConvertSeconds = nil
		out[i] = p
	}
	return out
}
