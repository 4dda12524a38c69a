package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// FrequencyCap limits marketing messages across all channels: at most Max
// within any rolling Window. Max 0 disables the cap.
type FrequencyCap struct {
	Max    int           `json:"max"`
	Window time.Duration `json:"window"`
}

func (c FrequencyCap) enabled() bool { return c.Max > 0 && c.Window > 0 }

// TimeOfDay is a local wall-clock time in minutes after midnight, 00:00 to
// 24:00 (24:00 is only meaningful as a window end). Text form "HH:MM".
type TimeOfDay int

// Clock returns the TimeOfDay h:m.
func Clock(h, m int) TimeOfDay { return TimeOfDay(h*60 + m) }

func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(t)/60, int(t)%60) }

func (t TimeOfDay) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *TimeOfDay) UnmarshalText(b []byte) error {
	var h, m int
	s := string(b)
	if len(s) != 5 || s[2] != ':' {
		return fmt.Errorf("time of day %q: want HH:MM", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil {
		return fmt.Errorf("time of day %q: want HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return fmt.Errorf("time of day %q: out of range 00:00-24:00", s)
	}
	*t = Clock(h, m)
	return nil
}

// SendWindow is a period when sending is allowed: [Start, End) local time on
// each of Days (empty: every day). Windows do not cross midnight; use two.
type SendWindow struct {
	Days  []time.Weekday `json:"days,omitempty"`
	Start TimeOfDay      `json:"start"`
	End   TimeOfDay      `json:"end"`
}

func (w SendWindow) appliesOn(d time.Weekday) bool {
	return len(w.Days) == 0 || slices.Contains(w.Days, d)
}

// QuietHours are a channel's allowed send windows. A contact's country rule
// (ISO 3166-1 alpha-2, upper case) replaces Default; an empty window list
// (Default or a country's) means no restriction.
type QuietHours struct {
	Default   []SendWindow            `json:"default,omitempty"`
	Countries map[string][]SendWindow `json:"countries,omitempty"`
}

// CapAction is what a journey does with a capped (cap or cooldown) send.
type CapAction string

const (
	// OnCapDefer (the default) defers the send until the cap allows it.
	OnCapDefer CapAction = "defer"
	// OnCapSkip skips it.
	OnCapSkip CapAction = "skip"
)

// Settings are the workspace-wide policy settings.
type Settings struct {
	GlobalCap FrequencyCap `json:"global_cap"`
	// Cooldowns is the minimum time between two marketing sends on one channel.
	Cooldowns map[journey.Channel]time.Duration `json:"cooldowns,omitempty"`
	// QuietHours per channel; a channel without an entry has none.
	QuietHours map[journey.Channel]QuietHours `json:"quiet_hours,omitempty"`
	// DefaultTimeZone is used when neither the contact nor its phone number
	// gives a zone (IANA name; empty means UTC).
	DefaultTimeZone string `json:"default_time_zone,omitempty"`
	// DefaultRegion parses phone numbers without a leading + (ISO alpha-2);
	// empty requires E.164.
	DefaultRegion string `json:"default_region,omitempty"`
	// UnengagedDays: marketing is suppressed when the last engagement is more
	// than this many days old. 0 disables.
	UnengagedDays int `json:"unengaged_days"`
	// AbandonmentSMSWindow is how long after an abandonment event its one SMS
	// may be sent.
	AbandonmentSMSWindow time.Duration `json:"abandonment_sms_window"`
	// ChannelCosts is the cost of one message per channel, in any one unit
	// (channel: best takes the cheaper of channels engaging equally well).
	ChannelCosts map[journey.Channel]float64 `json:"channel_costs,omitempty"`
}

// JourneySettings are a journey's (or step's) policy settings and overrides.
type JourneySettings struct {
	// GlobalCap replaces Settings.GlobalCap for this journey's sends.
	GlobalCap *FrequencyCap `json:"global_cap,omitempty"`
	// Cooldowns replace Settings.Cooldowns per channel (0 disables).
	Cooldowns map[journey.Channel]time.Duration `json:"cooldowns,omitempty"`
	// OnCap: defer (default) or skip a send held by a cap or cooldown.
	OnCap CapAction `json:"on_cap,omitempty"`
	// Abandonment journeys send at most one SMS per abandonment event, within
	// Settings.AbandonmentSMSWindow of it.
	Abandonment bool `json:"abandonment,omitempty"`
	// Subscription is the subscription type of the journey's messages.
	Subscription string `json:"subscription,omitempty"`
	// FallbackChannel is used when the primary channel is blocked by consent
	// or suppression.
	FallbackChannel journey.Channel `json:"fallback_channel,omitempty"`
	// UnengagedDays replaces Settings.UnengagedDays (0 disables).
	UnengagedDays *int `json:"unengaged_days,omitempty"`
}

var (
	weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	monSat   = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday}
	weekend  = []time.Weekday{time.Saturday, time.Sunday}
)

// defaultSMSCountryWindows is the per-country SMS marketing rule table.
// Conservative practice, not legal advice; adjust per counsel.
func defaultSMSCountryWindows() map[string][]SendWindow {
	return map[string][]SendWindow{
		// US: TCPA's 8am-9pm in the recipient's local time (some states are
		// stricter; not modelled).
		"US": {{Start: Clock(8, 0), End: Clock(21, 0)}},
		// CA: CRTC telemarketing hours, weekdays 9:00-21:30, weekends 10:00-18:00.
		"CA": {
			{Days: weekdays, Start: Clock(9, 0), End: Clock(21, 30)},
			{Days: weekend, Start: Clock(10, 0), End: Clock(18, 0)},
		},
		// FR: 08:00-22:00, never on Sunday (public holidays not modelled).
		"FR": {{Days: monSat, Start: Clock(8, 0), End: Clock(22, 0)}},
		// DE: no statutory hours; Sunday rest and 08:00-20:00 by practice.
		"DE": {{Days: monSat, Start: Clock(8, 0), End: Clock(20, 0)}},
		// GB: PECR sets no hours; 08:00-21:00 by practice.
		"GB": {{Start: Clock(8, 0), End: Clock(21, 0)}},
	}
}

// DefaultSettings returns the defaults: at most 7 marketing messages per
// rolling 7 days across channels; cooldowns email 16h, sms 24h; SMS quiet
// hours 08:00-21:00 with the country table above; no quiet hours for email
// and ads; default zone UTC; unengaged after 180 days; abandonment SMS within
// 48h. Each call returns fresh maps.
func DefaultSettings() Settings {
	return Settings{
		GlobalCap: FrequencyCap{Max: 7, Window: 7 * 24 * time.Hour},
		Cooldowns: map[journey.Channel]time.Duration{
			journey.ChannelEmail: 16 * time.Hour,
			journey.ChannelSMS:   24 * time.Hour,
		},
		QuietHours: map[journey.Channel]QuietHours{
			journey.ChannelSMS: {
				Default:   []SendWindow{{Start: Clock(8, 0), End: Clock(21, 0)}},
				Countries: defaultSMSCountryWindows(),
			},
		},
		DefaultTimeZone:      "UTC",
		UnengagedDays:        180,
		AbandonmentSMSWindow: 48 * time.Hour,
		// List prices in US dollars: SendGrid's per-email cost on a
		// mid-tier plan, a US SMS segment at Twilio.
		ChannelCosts: map[journey.Channel]float64{
			journey.ChannelEmail: 0.001,
			journey.ChannelSMS:   0.0083,
		},
	}
}

func validChannel(ch journey.Channel) bool {
	switch ch {
	case journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds:
		return true
	}
	return false
}

func validCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// ValidateSettings reports every problem, each naming its field.
func ValidateSettings(s Settings) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	validateCap("GlobalCap", s.GlobalCap, add)
	validateCooldowns("Cooldowns", s.Cooldowns, add)
	for _, ch := range sortedKeys(s.QuietHours) {
		qh := s.QuietHours[ch]
		field := fmt.Sprintf("QuietHours[%s]", ch)
		if !validChannel(ch) {
			add(field, "unknown channel %q", ch)
		}
		validateWindows(field+".Default", qh.Default, add)
		for _, c := range sortedKeys(qh.Countries) {
			cf := fmt.Sprintf("%s.Countries[%s]", field, c)
			if !validCountry(c) {
				add(cf, "country must be an upper-case ISO 3166-1 alpha-2 code")
			}
			validateWindows(cf, qh.Countries[c], add)
		}
	}
	if s.DefaultTimeZone != "" {
		if _, err := loadLocation(s.DefaultTimeZone); err != nil {
			add("DefaultTimeZone", "unknown time zone %q", s.DefaultTimeZone)
		}
	}
	if s.DefaultRegion != "" && !validCountry(s.DefaultRegion) {
		add("DefaultRegion", "must be an upper-case ISO 3166-1 alpha-2 code, got %q", s.DefaultRegion)
	}
	if s.UnengagedDays < 0 {
		add("UnengagedDays", "must be >= 0 (0 disables), got %d", s.UnengagedDays)
	}
	if s.AbandonmentSMSWindow <= 0 {
		add("AbandonmentSMSWindow", "must be > 0, got %s", s.AbandonmentSMSWindow)
	}
	for _, ch := range sortedKeys(s.ChannelCosts) {
		field := fmt.Sprintf("ChannelCosts[%s]", ch)
		if !validChannel(ch) {
			add(field, "unknown channel %q", ch)
		}
		if c := s.ChannelCosts[ch]; c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			add(field, "must be a cost >= 0, got %v", c)
		}
	}
	return errors.Join(errs...)
}

// ValidateJourneySettings reports every problem, each naming its field.
func ValidateJourneySettings(j JourneySettings) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if j.GlobalCap != nil {
		validateCap("GlobalCap", *j.GlobalCap, add)
	}
	validateCooldowns("Cooldowns", j.Cooldowns, add)
	switch j.OnCap {
	case "", OnCapDefer, OnCapSkip:
	default:
		add("OnCap", "must be %q or %q, got %q", OnCapDefer, OnCapSkip, j.OnCap)
	}
	if j.Subscription != strings.TrimSpace(j.Subscription) {
		add("Subscription", "must not have surrounding spaces, got %q", j.Subscription)
	}
	if j.FallbackChannel != "" && !validChannel(j.FallbackChannel) {
		add("FallbackChannel", "unknown channel %q", j.FallbackChannel)
	}
	if j.UnengagedDays != nil && *j.UnengagedDays < 0 {
		add("UnengagedDays", "must be >= 0 (0 disables), got %d", *j.UnengagedDays)
	}
	return errors.Join(errs...)
}

func validateCap(field string, c FrequencyCap, add func(string, string, ...any)) {
	if c.Max < 0 {
		add(field+".Max", "must be >= 0 (0 disables), got %d", c.Max)
	}
	if c.Max > 0 && c.Window <= 0 {
		add(field+".Window", "must be > 0 when Max is set, got %s", c.Window)
	}
	if c.Window < 0 {
		add(field+".Window", "must be >= 0, got %s", c.Window)
	}
}

func validateCooldowns(field string, m map[journey.Channel]time.Duration, add func(string, string, ...any)) {
	for _, ch := range sortedKeys(m) {
		f := fmt.Sprintf("%s[%s]", field, ch)
		if !validChannel(ch) {
			add(f, "unknown channel %q", ch)
		}
		if m[ch] < 0 {
			add(f, "must be >= 0 (0 disables), got %s", m[ch])
		}
	}
}

func validateWindows(field string, ws []SendWindow, add func(string, string, ...any)) {
	for i, w := range ws {
		f := fmt.Sprintf("%s[%d]", field, i)
		if w.Start < 0 || w.Start >= Clock(24, 0) {
			add(f+".Start", "must be in 00:00-23:59, got %d minutes", int(w.Start))
		}
		if w.End <= 0 || w.End > Clock(24, 0) {
			add(f+".End", "must be in 00:01-24:00, got %d minutes", int(w.End))
		}
		if w.Start >= w.End {
			add(f, "Start %s must be before End %s (windows do not cross midnight)", w.Start, w.End)
		}
		seen := map[time.Weekday]bool{}
		for _, d := range w.Days {
			if d < time.Sunday || d > time.Saturday {
				add(f+".Days", "invalid weekday %d", int(d))
			} else if seen[d] {
				add(f+".Days", "duplicate %s", d)
			}
			seen[d] = true
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
