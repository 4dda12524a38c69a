package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestParseSettings_OverlaysDefaults(t *testing.T) {
	s, err := ParseSettings([]byte(`
global_cap: {max: 5, window: 7d}
cooldowns: {email: 12h}
quiet_hours:
  email:
    default: [{start: "09:00", end: "20:00"}]
    countries:
      FR: [{days: [mon, tue, wed, thu, fri, sat], start: "08:00", end: "22:00"}]
default_time_zone: Europe/Paris
unengaged_days: 90
`), DefaultSettings())
	require.NoError(t, err)
	require.Equal(t, FrequencyCap{Max: 5, Window: 7 * 24 * time.Hour}, s.GlobalCap)
	require.Equal(t, map[journey.Channel]time.Duration{journey.ChannelEmail: 12 * time.Hour}, s.Cooldowns)
	require.Equal(t, []SendWindow{{Start: Clock(9, 0), End: Clock(20, 0)}}, s.QuietHours[journey.ChannelEmail].Default)
	require.Len(t, s.QuietHours[journey.ChannelEmail].Countries["FR"][0].Days, 6)
	require.Equal(t, DefaultSettings().QuietHours[journey.ChannelSMS], s.QuietHours[journey.ChannelSMS], "channels not in the file keep their rules")
	require.Equal(t, "Europe/Paris", s.DefaultTimeZone)
	require.Equal(t, 90, s.UnengagedDays)
	require.Equal(t, 48*time.Hour, s.AbandonmentSMSWindow)
}

func TestParseSettings_Errors(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"unknown field":   {"global_cap: {max: 5, window: 7d, burst: 2}", `unknown field "burst"`},
		"bad duration":    {"cooldowns: {sms: 5}", "duration must be a string"},
		"bad day":         {`quiet_hours: {sms: {default: [{days: [funday], start: "08:00", end: "21:00"}]}}`, `quiet_hours.sms.default[0].days: unknown day "funday"`},
		"bad time":        {`quiet_hours: {sms: {default: [{start: "8am", end: "21:00"}]}}`, `time of day "8am"`},
		"bad zone":        {"default_time_zone: Mars/Olympus", `unknown time zone "Mars/Olympus"`},
		"negative window": {"global_cap: {max: 5, window: 0s}", "GlobalCap"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSettings([]byte(tc.doc), DefaultSettings())
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestForJourneyAndLookback(t *testing.T) {
	days := 30
	p := &journey.Policy{
		Subscription: "promotions", OnCap: "skip", Abandonment: true, UnengagedDays: &days,
		GlobalCap:       &journey.Cap{Max: 2, Window: journey.Duration(14 * 24 * time.Hour)},
		Cooldowns:       map[journey.Channel]journey.Duration{journey.ChannelSMS: journey.Duration(48 * time.Hour)},
		FallbackChannel: journey.ChannelEmail,
	}
	js := ForJourney(p, true)
	require.Equal(t, JourneySettings{
		GlobalCap: &FrequencyCap{Max: 2, Window: 14 * 24 * time.Hour}, Cooldowns: map[journey.Channel]time.Duration{journey.ChannelSMS: 48 * time.Hour},
		OnCap: OnCapSkip, Abandonment: true, Subscription: "promotions", FallbackChannel: journey.ChannelEmail, UnengagedDays: &days,
	}, js)
	require.NoError(t, ValidateJourneySettings(js))
	require.Empty(t, ForJourney(p, false).FallbackChannel, "no fallback message, no fallback")
	require.Equal(t, JourneySettings{}, ForJourney(nil, true))
	require.Equal(t, 14*24*time.Hour, Lookback(DefaultSettings(), js))
	require.Equal(t, 7*24*time.Hour, Lookback(DefaultSettings(), JourneySettings{}))
}
