package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestQuietHoursFor(t *testing.T) {
	t.Parallel()
	s := DefaultSettings()
	// Sunday 1 March 2026, 07:00 UTC.
	sunday := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		ch      journey.Channel
		contact ContactState
		at      time.Time
		want    time.Time
		ok      bool
		zone    string
	}{
		{name: "email has no quiet hours", ch: journey.ChannelEmail, contact: ContactState{TimeZone: "Europe/Paris"},
			at: sunday, want: sunday, ok: true, zone: "Europe/Paris"},
		{name: "sms before 08:00 New York: its opening", ch: journey.ChannelSMS, contact: ContactState{TimeZone: "America/New_York"},
			at: sunday, want: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC), ok: true, zone: "America/New_York"},
		{name: "sms in France on a Sunday: Monday 08:00", ch: journey.ChannelSMS,
			contact: ContactState{TimeZone: "Europe/Paris", Country: "FR"},
			at:      sunday.Add(5 * time.Hour), want: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC), ok: true, zone: "Europe/Paris"},
		{name: "the phone's zone when the contact has none", ch: journey.ChannelSMS, contact: ContactState{Phone: "+33612345678"},
			at: sunday.Add(5 * time.Hour), want: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC), ok: true, zone: "Europe/Paris"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowed, loc, rule := QuietHoursFor(s, tc.ch, tc.contact, tc.at)
			require.NotEmpty(t, rule)
			require.Equal(t, tc.zone, loc.String())
			got, ok := allowed(tc.at)
			require.Equal(t, tc.ok, ok)
			require.True(t, tc.want.Equal(got), "want %s, got %s", tc.want, got)
			// The gate agrees: a marketing send at that instant is not held by quiet hours.
			d := Decide(s, Request{Contact: tc.contact, Channel: tc.ch, Now: got})
			for _, c := range d.Checks {
				if c.Rule == RuleQuietHours {
					require.True(t, c.Passed, c.Detail)
				}
			}
		})
	}
}

func TestChannelCostsSettings(t *testing.T) {
	t.Parallel()
	s, err := ParseSettings([]byte("channel_costs: {sms: 0.02}\n"), DefaultSettings())
	require.NoError(t, err)
	require.Equal(t, 0.02, s.ChannelCosts[journey.ChannelSMS])
	require.Equal(t, 0.001, s.ChannelCosts[journey.ChannelEmail], "a channel the file does not name keeps its cost")

	_, err = ParseSettings([]byte("channel_costs: {sms: -1, fax: 1}\n"), DefaultSettings())
	require.ErrorContains(t, err, "ChannelCosts[sms]: must be a cost >= 0")
	require.ErrorContains(t, err, `ChannelCosts[fax]: unknown channel "fax"`)
}
