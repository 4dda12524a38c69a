package policy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestWallInstantDST(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	paris := mustLoc(t, "Europe/Paris")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name string
		loc  *time.Location
		y    int
		m    time.Month
		d    int
		hh   int
		mm   int
		want time.Time
	}{
		{"ordinary day", ny, 2025, time.June, 11, 8, 0, utc("2025-06-11T12:00:00Z")},
		{"spring forward day, 08:00 EDT", ny, 2025, time.March, 9, 8, 0, utc("2025-03-09T12:00:00Z")},
		{"spring forward gap 02:30 does not exist: the gap's end", ny, 2025, time.March, 9, 2, 30, utc("2025-03-09T07:00:00Z")},
		{"spring forward gap start 02:00: the gap's end", ny, 2025, time.March, 9, 2, 0, utc("2025-03-09T07:00:00Z")},
		{"fall back day, 08:00 EST", ny, 2025, time.November, 2, 8, 0, utc("2025-11-02T13:00:00Z")},
		{"fall back ambiguous 01:30: first occurrence (EDT)", ny, 2025, time.November, 2, 1, 30, utc("2025-11-02T05:30:00Z")},
		{"Paris spring forward gap 02:15", paris, 2025, time.March, 30, 2, 15, utc("2025-03-30T01:00:00Z")},
		{"Paris fall back ambiguous 02:30: first (CEST)", paris, 2025, time.October, 26, 2, 30, utc("2025-10-26T00:30:00Z")},
		{"24:00 is next midnight", paris, 2025, time.June, 11, 24, 0, utc("2025-06-11T22:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wallInstant(tt.y, tt.m, tt.d, (tt.hh*60+tt.mm)*60, tt.loc)
			assert.True(t, tt.want.Equal(got), "got %s want %s", got.UTC(), tt.want)
		})
	}
}

func TestNextOpen(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	paris := mustLoc(t, "Europe/Paris")
	toronto := mustLoc(t, "America/Toronto")
	daily := []SendWindow{{Start: Clock(8, 0), End: Clock(21, 0)}}
	fr := defaultSMSCountryWindows()["FR"]
	ca := defaultSMSCountryWindows()["CA"]
	gapWindow := []SendWindow{{Start: Clock(2, 30), End: Clock(5, 0)}}
	vanishing := []SendWindow{{Start: Clock(2, 0), End: Clock(2, 30)}}
	split := []SendWindow{{Start: Clock(10, 0), End: Clock(13, 0)}, {Start: Clock(14, 0), End: Clock(20, 0)}}
	tests := []struct {
		name string
		ws   []SendWindow
		loc  *time.Location
		at   time.Time
		want time.Time
	}{
		{"open now", daily, ny, time.Date(2025, 6, 11, 14, 0, 0, 0, ny), time.Date(2025, 6, 11, 14, 0, 0, 0, ny)},
		{"at start is open", daily, ny, time.Date(2025, 6, 11, 8, 0, 0, 0, ny), time.Date(2025, 6, 11, 8, 0, 0, 0, ny)},
		{"one second before start", daily, ny, time.Date(2025, 6, 11, 7, 59, 59, 0, ny), time.Date(2025, 6, 11, 8, 0, 0, 0, ny)},
		{"at end is closed: next day", daily, ny, time.Date(2025, 6, 11, 21, 0, 0, 0, ny), time.Date(2025, 6, 12, 8, 0, 0, 0, ny)},
		{"across midnight", daily, ny, time.Date(2025, 6, 11, 23, 59, 0, 0, ny), time.Date(2025, 6, 12, 8, 0, 0, 0, ny)},
		{"after midnight", daily, ny, time.Date(2025, 6, 12, 0, 30, 0, 0, ny), time.Date(2025, 6, 12, 8, 0, 0, 0, ny)},
		{"across month and year end", daily, ny, time.Date(2025, 12, 31, 22, 0, 0, 0, ny), time.Date(2026, 1, 1, 8, 0, 0, 0, ny)},
		{"FR Saturday 21:59 open", fr, paris, time.Date(2025, 6, 14, 21, 59, 0, 0, paris), time.Date(2025, 6, 14, 21, 59, 0, 0, paris)},
		{"FR Saturday 22:00 to Monday", fr, paris, time.Date(2025, 6, 14, 22, 0, 0, 0, paris), time.Date(2025, 6, 16, 8, 0, 0, 0, paris)},
		{"FR Sunday noon to Monday", fr, paris, time.Date(2025, 6, 15, 12, 0, 0, 0, paris), time.Date(2025, 6, 16, 8, 0, 0, 0, paris)},
		{"FR Saturday night over spring-forward Sunday to Monday CEST", fr, paris, time.Date(2025, 3, 29, 22, 30, 0, 0, paris), time.Date(2025, 3, 31, 8, 0, 0, 0, paris)},
		{"NY spring forward: Sat 22:00 EST to Sun 08:00 EDT", daily, ny, time.Date(2025, 3, 8, 22, 0, 0, 0, ny), time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC)},
		{"NY fall back: Sat 22:00 EDT to Sun 08:00 EST", daily, ny, time.Date(2025, 11, 1, 22, 0, 0, 0, ny), time.Date(2025, 11, 2, 13, 0, 0, 0, time.UTC)},
		{"window starting in the DST gap opens at the gap end", gapWindow, ny, time.Date(2025, 3, 9, 0, 0, 0, 0, ny), time.Date(2025, 3, 9, 7, 0, 0, 0, time.UTC)},
		{"window entirely in the DST gap is skipped that day", vanishing, ny, time.Date(2025, 3, 9, 0, 0, 0, 0, ny), time.Date(2025, 3, 10, 2, 0, 0, 0, ny)},
		{"CA Saturday 09:00 waits for 10:00", ca, toronto, time.Date(2025, 6, 14, 9, 0, 0, 0, toronto), time.Date(2025, 6, 14, 10, 0, 0, 0, toronto)},
		{"CA Friday 21:15 open until 21:30", ca, toronto, time.Date(2025, 6, 13, 21, 15, 0, 0, toronto), time.Date(2025, 6, 13, 21, 15, 0, 0, toronto)},
		{"CA Friday 21:30 to Saturday 10:00", ca, toronto, time.Date(2025, 6, 13, 21, 30, 0, 0, toronto), time.Date(2025, 6, 14, 10, 0, 0, 0, toronto)},
		{"split day: lunch break", split, paris, time.Date(2025, 6, 11, 13, 30, 0, 0, paris), time.Date(2025, 6, 11, 14, 0, 0, 0, paris)},
		{"split day: before first", split, paris, time.Date(2025, 6, 11, 9, 0, 0, 0, paris), time.Date(2025, 6, 11, 10, 0, 0, 0, paris)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := nextOpen(tt.ws, tt.at, tt.loc)
			require.True(t, ok)
			assert.True(t, tt.want.Equal(got), "got %s want %s", got.In(tt.loc), tt.want.In(tt.loc))
			assert.True(t, openAt(tt.ws, got, tt.loc))
		})
	}
	t.Run("no window within a week", func(t *testing.T) {
		_, ok := nextOpen(nil, time.Date(2025, 6, 11, 0, 0, 0, 0, ny), ny) // no windows at all
		assert.False(t, ok)
	})
}

// TestNextOpenProperties: for random instants over a year with DST changes,
// nextOpen returns an open instant at or after t, and no minute before it
// (from t) is open.
func TestNextOpenProperties(t *testing.T) {
	rules := map[string][]SendWindow{
		"daily": {{Start: Clock(8, 0), End: Clock(21, 0)}},
		"FR":    defaultSMSCountryWindows()["FR"],
		"CA":    defaultSMSCountryWindows()["CA"],
		"night": {{Start: Clock(1, 30), End: Clock(3, 30)}},
	}
	zones := []string{"America/New_York", "Europe/Paris", "Australia/Sydney", "America/Santiago", "Asia/Kolkata"}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, zn := range zones {
		loc := mustLoc(t, zn)
		for rn, ws := range rules {
			for range 40 {
				at := time.Unix(start+rng.Int64N(365*24*3600), 0)
				got, ok := nextOpen(ws, at, loc)
				require.True(t, ok, "%s %s %s", zn, rn, at)
				require.False(t, got.Before(at))
				require.True(t, openAt(ws, got, loc), "%s %s from %s: %s not open", zn, rn, at, got.In(loc))
				for u := at; u.Before(got.Add(-time.Minute)); u = u.Add(time.Minute) {
					require.False(t, openAt(ws, u, loc), "%s %s from %s: %s open before %s", zn, rn, at.In(loc), u.In(loc), got.In(loc))
				}
			}
		}
	}
}
