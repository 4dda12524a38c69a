package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNextLocalTime(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name string
		from string
		at   TimeOfDay
		days []time.Weekday
		loc  *time.Location
		want string
	}{
		{"later today", "2026-06-03T05:00:00Z", Clock(9, 30), nil, paris, "2026-06-03T07:30:00Z"},
		{"exactly now", "2026-06-03T07:30:00Z", Clock(9, 30), nil, paris, "2026-06-03T07:30:00Z"},
		{"just past: tomorrow", "2026-06-03T07:30:01Z", Clock(9, 30), nil, paris, "2026-06-04T07:30:00Z"},
		// Friday 10:00 in Paris, weekdays only: Monday.
		{"over the weekend", "2026-06-05T08:00:00Z", Clock(9, 30), weekdays, paris, "2026-06-08T07:30:00Z"},
		{"saturday only", "2026-06-03T05:00:00Z", Clock(9, 30), []time.Weekday{time.Saturday}, paris, "2026-06-06T07:30:00Z"},
		// The zone's day, not UTC's: 23:00 UTC Tuesday is already Wednesday in Paris.
		{"local date", "2026-06-02T23:00:00Z", Clock(9, 30), []time.Weekday{time.Wednesday}, paris, "2026-06-03T07:30:00Z"},
		// 2026-03-29 02:00 -> 03:00 in Paris: 02:30 does not exist; the gap ends at 01:00 UTC.
		{"spring-forward gap", "2026-03-29T00:00:00Z", Clock(2, 30), nil, paris, "2026-03-29T01:00:00Z"},
		// 2026-10-25 03:00 -> 02:00 in Paris: 02:30 happens twice; the first is 00:30 UTC.
		{"fall-back repeat", "2026-10-24T22:00:00Z", Clock(2, 30), nil, paris, "2026-10-25T00:30:00Z"},
		// New York's 09:30 moves from 14:30 UTC (EST) to 13:30 UTC (EDT) on 2026-03-08.
		{"across a change", "2026-03-07T15:00:00Z", Clock(9, 30), nil, ny, "2026-03-08T13:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := NextLocalTime(utc(tt.from), tt.at, tt.days, tt.loc)
			require.Equal(t, utc(tt.want), got.UTC(), "local %s", got.In(tt.loc))
		})
	}
}
