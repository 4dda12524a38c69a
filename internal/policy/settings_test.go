package policy

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestDefaultSettingsAreValid(t *testing.T) {
	s := DefaultSettings()
	require.NoError(t, ValidateSettings(s))
	assert.Equal(t, FrequencyCap{Max: 7, Window: 7 * 24 * time.Hour}, s.GlobalCap)
	assert.Equal(t, 16*time.Hour, s.Cooldowns[journey.ChannelEmail])
	assert.Equal(t, 24*time.Hour, s.Cooldowns[journey.ChannelSMS])
	_, emailQuiet := s.QuietHours[journey.ChannelEmail]
	assert.False(t, emailQuiet, "email has no quiet hours by default")
	for _, c := range []string{"US", "CA", "FR", "DE", "GB"} {
		assert.NotEmpty(t, s.QuietHours[journey.ChannelSMS].Countries[c], c)
	}
	assert.NotContains(t, s.QuietHours[journey.ChannelSMS].Countries["FR"][0].Days, time.Sunday)

	// Fresh maps on each call.
	s.Cooldowns[journey.ChannelSMS] = time.Minute
	s.QuietHours[journey.ChannelSMS].Countries["FR"][0].Start = Clock(0, 0)
	again := DefaultSettings()
	assert.Equal(t, 24*time.Hour, again.Cooldowns[journey.ChannelSMS])
	assert.Equal(t, Clock(8, 0), again.QuietHours[journey.ChannelSMS].Countries["FR"][0].Start)
}

func TestValidateSettings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
		want   []string // substrings that must appear
	}{
		{"negative cap", func(s *Settings) { s.GlobalCap.Max = -1 }, []string{"GlobalCap.Max"}},
		{"cap without window", func(s *Settings) { s.GlobalCap.Window = 0 }, []string{"GlobalCap.Window"}},
		{"unknown cooldown channel", func(s *Settings) { s.Cooldowns["fax"] = time.Hour }, []string{"Cooldowns[fax]: unknown channel"}},
		{"negative cooldown", func(s *Settings) { s.Cooldowns[journey.ChannelSMS] = -time.Hour }, []string{"Cooldowns[sms]: must be >= 0"}},
		{"unknown quiet channel", func(s *Settings) { s.QuietHours["fax"] = QuietHours{} }, []string{"QuietHours[fax]: unknown channel"}},
		{"lower-case country", func(s *Settings) {
			s.QuietHours[journey.ChannelSMS].Countries["fr"] = []SendWindow{{Start: Clock(8, 0), End: Clock(9, 0)}}
		}, []string{"QuietHours[sms].Countries[fr]: country must be"}},
		{"window crossing midnight", func(s *Settings) {
			s.QuietHours[journey.ChannelSMS] = QuietHours{Default: []SendWindow{{Start: Clock(22, 0), End: Clock(6, 0)}}}
		}, []string{"QuietHours[sms].Default[0]: Start 22:00 must be before End 06:00"}},
		{"window end out of range", func(s *Settings) {
			s.QuietHours[journey.ChannelEmail] = QuietHours{Default: []SendWindow{{Start: Clock(8, 0), End: Clock(25, 0)}}}
		}, []string{"QuietHours[email].Default[0].End"}},
		{"bad and duplicate weekday", func(s *Settings) {
			s.QuietHours[journey.ChannelEmail] = QuietHours{Default: []SendWindow{{Days: []time.Weekday{time.Monday, time.Monday, 9}, Start: Clock(8, 0), End: Clock(9, 0)}}}
		}, []string{"Days: duplicate Monday", "Days: invalid weekday 9"}},
		{"bad default zone", func(s *Settings) { s.DefaultTimeZone = "Mars/Olympus" }, []string{"DefaultTimeZone: unknown time zone"}},
		{"bad default region", func(s *Settings) { s.DefaultRegion = "usa" }, []string{"DefaultRegion"}},
		{"negative unengaged days", func(s *Settings) { s.UnengagedDays = -1 }, []string{"UnengagedDays"}},
		{"no abandonment window", func(s *Settings) { s.AbandonmentSMSWindow = 0 }, []string{"AbandonmentSMSWindow"}},
		{"several problems are all reported", func(s *Settings) {
			s.UnengagedDays = -1
			s.GlobalCap.Max = -2
		}, []string{"UnengagedDays", "GlobalCap.Max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.mutate(&s)
			err := ValidateSettings(s)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	assert.NoError(t, ValidateSettings(Settings{AbandonmentSMSWindow: time.Hour}), "zero settings disable rules")
}

func TestValidateJourneySettings(t *testing.T) {
	neg := -1
	zero := 0
	require.NoError(t, ValidateJourneySettings(JourneySettings{}))
	require.NoError(t, ValidateJourneySettings(JourneySettings{
		GlobalCap: &FrequencyCap{Max: 0}, Cooldowns: map[journey.Channel]time.Duration{journey.ChannelSMS: 0},
		OnCap: OnCapSkip, Abandonment: true, Subscription: "promotions", FallbackChannel: journey.ChannelEmail, UnengagedDays: &zero,
	}))
	err := ValidateJourneySettings(JourneySettings{
		GlobalCap:       &FrequencyCap{Max: 3},
		Cooldowns:       map[journey.Channel]time.Duration{"pigeon": time.Hour},
		OnCap:           "drop",
		Subscription:    " news ",
		FallbackChannel: "pigeon",
		UnengagedDays:   &neg,
	})
	require.Error(t, err)
	for _, w := range []string{"GlobalCap.Window", "Cooldowns[pigeon]", "OnCap", "Subscription", "FallbackChannel", "UnengagedDays"} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestTimeOfDayText(t *testing.T) {
	var w SendWindow
	require.NoError(t, json.Unmarshal([]byte(`{"days":[1,2],"start":"08:30","end":"24:00"}`), &w))
	assert.Equal(t, SendWindow{Days: []time.Weekday{time.Monday, time.Tuesday}, Start: Clock(8, 30), End: Clock(24, 0)}, w)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	assert.JSONEq(t, `{"days":[1,2],"start":"08:30","end":"24:00"}`, string(b))
	for _, bad := range []string{`"8:30"`, `"24:01"`, `"12:60"`, `"ab:cd"`, `"-1:00"`} {
		var tod TimeOfDay
		assert.Error(t, json.Unmarshal([]byte(bad), &tod), bad)
	}
}
