package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Limits
		err  string
	}{
		{"", Limits{}, ""},
		{" twilio=1/s , sendgrid = 600/s,", Limits{
			"twilio":   {Key: "twilio", N: 1, Per: time.Second},
			"sendgrid": {Key: "sendgrid", N: 600, Per: time.Second}}, ""},
		{"twilio:+14155550100=60/m,twilio=5/h", Limits{
			"twilio:+14155550100": {Key: "twilio:+14155550100", N: 60, Per: time.Minute},
			"twilio":              {Key: "twilio", N: 5, Per: time.Hour}}, ""},
		{"twilio", nil, "want KEY=N/UNIT"},
		{"=1/s", nil, "want KEY=N/UNIT"},
		{"twilio=0/s", nil, "N from 1"},
		{"twilio=-1/s", nil, "N from 1"},
		{"twilio=1", nil, "N from 1"},
		{"twilio=1/d", nil, "unit must be"},
		{"twilio=1.5/s", nil, "N from 1"},
		{"twilio=2000000/s", nil, "N from 1"},
		{"twilio=1/s,twilio=2/s", nil, "limited twice"},
		{"two words=1/s", nil, "space"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := Parse(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again, "String reads back")
		})
	}
}

func TestFor(t *testing.T) {
	t.Parallel()
	ls, err := Parse("twilio=10/s,twilio:+14155550100=1/s")
	require.NoError(t, err)
	l, ok := ls.For("twilio", "+14155550100")
	require.True(t, ok)
	require.Equal(t, 1, l.N, "the sender's own limit")
	l, ok = ls.For("twilio", "+14155550199")
	require.True(t, ok)
	require.Equal(t, 10, l.N, "another sender: the provider's")
	l, ok = ls.For("twilio", "")
	require.True(t, ok)
	require.Equal(t, 10, l.N)
	_, ok = ls.For("sendgrid", "news@example.com")
	require.False(t, ok)
}

func TestWindows(t *testing.T) {
	t.Parallel()
	l := Limit{Key: "twilio", N: 10, Per: time.Second}
	at := time.Date(2026, 12, 2, 15, 0, 7, 420_000_000, time.UTC)
	slot := l.WindowStart(at)
	require.Equal(t, time.Date(2026, 12, 2, 15, 0, 7, 0, time.UTC), slot)
	require.Equal(t, 50*time.Millisecond, l.Margin())
	for _, tt := range []struct {
		now  time.Duration // after the slot
		want bool
	}{
		{-time.Millisecond, false}, // not yet
		{0, true},
		{900 * time.Millisecond, true},
		{949 * time.Millisecond, true},
		{950 * time.Millisecond, false}, // too close to the window's end
		{time.Second, false},
		{time.Hour, false},
	} {
		require.Equal(t, tt.want, l.Usable(slot, slot.Add(tt.now)), tt.now)
	}
	m := Limit{Key: "sendgrid", N: 100, Per: time.Minute}
	require.Equal(t, time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC), m.WindowStart(at))
}
