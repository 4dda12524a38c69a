package engagement

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestCellOf(t *testing.T) {
	t.Parallel()
	paris := mustLoc(t, "Europe/Paris")
	for _, tc := range []struct {
		at   time.Time
		loc  *time.Location
		want Cell
		str  string
	}{
		{time.Date(2026, 3, 2, 0, 30, 0, 0, time.UTC), time.UTC, 0, "Mon 00:00"}, // a Monday
		{time.Date(2026, 3, 3, 10, 59, 0, 0, time.UTC), time.UTC, 34, "Tue 10:00"},
		{time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC), time.UTC, 167, "Sun 23:00"},
		// 23:30 UTC on Sunday is already Monday 00:30 in Paris (winter, +1).
		{time.Date(2026, 3, 8, 23, 30, 0, 0, time.UTC), paris, 0, "Mon 00:00"},
	} {
		got := CellOf(tc.at, tc.loc)
		require.Equal(t, tc.want, got, tc.at)
		require.Equal(t, tc.str, got.String())
	}
}

func hist(cells map[Cell]float64) Histogram {
	var h Histogram
	for c, n := range cells {
		h[c] = n
	}
	return h
}

func argmax(s Scores) Cell {
	best := Cell(0)
	for c := range s {
		if s[c] > s[best] {
			best = Cell(c)
		}
	}
	return best
}

func TestScores(t *testing.T) {
	t.Parallel()
	tue10, thu20 := Cell(34), Cell(3*24+20)
	workspace := hist(map[Cell]float64{tue10: 500, tue10 - 1: 200, tue10 + 1: 200})
	for _, tc := range []struct {
		name      string
		own, ws   Histogram
		model     HourModel
		wantBest  Cell
		wantEqual bool // every cell scores the same
	}{
		{name: "no history anywhere: uniform", model: DefaultHourModel, wantEqual: true},
		{name: "new contact: the workspace's hour", ws: workspace, model: DefaultHourModel, wantBest: tue10},
		{name: "two own opens do not outweigh the workspace", own: hist(map[Cell]float64{thu20: 2}), ws: workspace,
			model: DefaultHourModel, wantBest: tue10},
		{name: "a clear habit does", own: hist(map[Cell]float64{thu20: 12, thu20 + 1: 1}), ws: workspace,
			model: DefaultHourModel, wantBest: thu20},
		{name: "no prior: own counts alone", own: hist(map[Cell]float64{thu20: 1}), ws: workspace,
			model: HourModel{PriorWeight: 0, Neighbour: 0.25}, wantBest: thu20},
		{name: "smoothing: two neighbours beat one lonely hour", own: hist(map[Cell]float64{50: 3, 100: 2, 101: 2, 102: 2}),
			model: HourModel{PriorWeight: 1, Neighbour: 0.25}, wantBest: 101},
		{name: "without smoothing the lonely hour wins", own: hist(map[Cell]float64{50: 3, 100: 2, 101: 2, 102: 2}),
			model: HourModel{PriorWeight: 1, Neighbour: 0}, wantBest: 50},
		{name: "daily routine: 10:00 on three days makes 10:00 best on the others", own: hist(map[Cell]float64{10: 1, 24 + 10: 1, 48 + 10: 1, 80: 1}),
			model: HourModel{PriorWeight: 1, Neighbour: 0, Daily: 0.5}, wantBest: 10},
		{name: "smoothing wraps Sunday night to Monday", own: hist(map[Cell]float64{167: 3, 1: 3}),
			model: HourModel{PriorWeight: 1, Neighbour: 0.25}, wantBest: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.model.Scores(tc.own, tc.ws)
			var sum float64
			for _, v := range s {
				sum += v
			}
			require.InDelta(t, 1, sum, 1e-9, "the scores are a distribution")
			if tc.wantEqual {
				for _, v := range s {
					require.InDelta(t, s[0], v, 1e-12)
				}
				return
			}
			require.Equal(t, tc.wantBest, argmax(s))
		})
	}
}

func TestBestTime(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	kolkata := mustLoc(t, "Asia/Kolkata")
	// Monday 2 March 2026, 06:20 in New York.
	now := time.Date(2026, 3, 2, 11, 20, 0, 0, time.UTC)
	peak := func(c Cell) Scores {
		var s Scores
		for i := range s {
			s[i] = 0.001
		}
		s[c] = 0.5
		return s
	}
	always := func(t time.Time) (time.Time, bool) { return t, true }
	never := func(time.Time) (time.Time, bool) { return time.Time{}, false }
	// 08:00-21:00 local, as policy.QuietHoursFor would answer for SMS.
	window := func(loc *time.Location, startMin int) Allowed {
		return func(t time.Time) (time.Time, bool) {
			for i := 0; i < 8*24*60; i++ {
				c := t.Add(time.Duration(i) * time.Minute)
				if i > 0 {
					c = c.Truncate(time.Minute)
				}
				lt := c.In(loc)
				m := lt.Hour()*60 + lt.Minute()
				if m >= startMin && m < 21*60 {
					return c, true
				}
			}
			return time.Time{}, false
		}
	}
	for _, tc := range []struct {
		name    string
		scores  Scores
		loc     *time.Location
		within  time.Duration
		allowed Allowed
		want    time.Time
		none    bool
	}{
		{name: "the best hour later today", scores: peak(14), loc: ny, within: 24 * time.Hour, allowed: always,
			want: time.Date(2026, 3, 2, 19, 0, 0, 0, time.UTC)}, // Mon 14:00 EST
		{name: "the current hour: now, not its start", scores: peak(6), loc: ny, within: 24 * time.Hour, allowed: always,
			want: now},
		{name: "the best hour is past the horizon: the best within it", scores: func() Scores {
			s := peak(24 + 14) // Tuesday 14:00: 31h away
			s[20] = 0.2        // Monday 20:00
			return s
		}(), loc: ny, within: 24 * time.Hour, allowed: always, want: time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC)},
		{name: "the best hour is in quiet hours: the best allowed one", scores: func() Scores {
			s := peak(22) // Monday 22:00, after 21:00
			s[13] = 0.2
			return s
		}(), loc: ny, within: 24 * time.Hour, allowed: window(ny, 8*60), want: time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)},
		{name: "a window opening mid-hour: its opening", scores: peak(8), loc: ny, within: 24 * time.Hour,
			allowed: window(ny, 8*60+30), want: time.Date(2026, 3, 2, 13, 30, 0, 0, time.UTC)},
		{name: "half-hour zone: local hours start at :30 UTC", scores: peak(34), loc: kolkata, within: 24 * time.Hour,
			allowed: always, want: time.Date(2026, 3, 3, 4, 30, 0, 0, time.UTC)}, // Tue 10:00 IST
		{name: "nothing allowed within the horizon: the window's opening", scores: peak(14), loc: ny, within: time.Hour,
			allowed: window(ny, 8*60), want: time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC), none: true},
		{name: "nothing allowed at all: now, for the gate to explain", scores: peak(14), loc: ny, within: 24 * time.Hour,
			allowed: never, want: now, none: true},
		{name: "ties: the earliest", scores: Scores{}, loc: ny, within: 24 * time.Hour, allowed: always, want: now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BestTime(tc.scores, now, tc.within, tc.loc, tc.allowed)
			require.True(t, tc.want.Equal(got.At), "want %s, got %s", tc.want, got.At)
			require.Equal(t, tc.none, got.NoneWithin)
			require.Equal(t, CellOf(got.At, tc.loc), got.Cell)
			if !tc.none {
				at, ok := tc.allowed(got.At)
				require.True(t, ok && at.Equal(got.At), "the choice is allowed")
			}
		})
	}
}
