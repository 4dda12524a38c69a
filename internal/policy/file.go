package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tutti-dev/tutti/internal/journey"
)

// settingsFile is the YAML/JSON form of Settings an operator writes
// (TUTTI_POLICY_FILE): durations as "7d"/"16h", days as "mon".."sun". Every
// field is optional; what is absent keeps the default.
type settingsFile struct {
	GlobalCap *struct {
		Max    int              `json:"max"`
		Window journey.Duration `json:"window"`
	} `json:"global_cap,omitempty"`
	Cooldowns            map[journey.Channel]journey.Duration `json:"cooldowns,omitempty"`
	QuietHours           map[journey.Channel]quietHoursFile   `json:"quiet_hours,omitempty"`
	DefaultTimeZone      *string                              `json:"default_time_zone,omitempty"`
	UnengagedDays        *int                                 `json:"unengaged_days,omitempty"`
	AbandonmentSMSWindow *journey.Duration                    `json:"abandonment_sms_window,omitempty"`
	// ChannelCosts replace the costs of the channels they name.
	ChannelCosts map[journey.Channel]float64 `json:"channel_costs,omitempty"`
}

type quietHoursFile struct {
	Default   []windowFile            `json:"default,omitempty"`
	Countries map[string][]windowFile `json:"countries,omitempty"`
}

type windowFile struct {
	Days  []string  `json:"days,omitempty"`
	Start TimeOfDay `json:"start"`
	End   TimeOfDay `json:"end"`
}

// LoadSettingsFile reads a settings file (YAML or JSON) over base and
// validates the result. A channel listed under quiet_hours replaces that
// channel's rules entirely, so a file states exactly what it means.
func LoadSettingsFile(path string, base Settings) (Settings, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("policy settings: %w", err)
	}
	return ParseSettings(raw, base)
}

// ParseSettings is LoadSettingsFile on bytes.
func ParseSettings(raw []byte, base Settings) (Settings, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return Settings{}, fmt.Errorf("policy settings: %w", err)
	}
	var f settingsFile
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Settings{}, fmt.Errorf("policy settings: %w", err)
	}
	s := base
	if f.GlobalCap != nil {
		s.GlobalCap = FrequencyCap{Max: f.GlobalCap.Max, Window: f.GlobalCap.Window.Std()}
	}
	if f.Cooldowns != nil {
		s.Cooldowns = map[journey.Channel]time.Duration{}
		for ch, d := range f.Cooldowns {
			s.Cooldowns[ch] = d.Std()
		}
	}
	if f.QuietHours != nil {
		qh := map[journey.Channel]QuietHours{}
		for ch, q := range base.QuietHours {
			qh[ch] = q
		}
		for ch, q := range f.QuietHours {
			def, err := windows(fmt.Sprintf("quiet_hours.%s.default", ch), q.Default)
			if err != nil {
				return Settings{}, err
			}
			out := QuietHours{Default: def}
			for c, ws := range q.Countries {
				w, err := windows(fmt.Sprintf("quiet_hours.%s.countries.%s", ch, c), ws)
				if err != nil {
					return Settings{}, err
				}
				if out.Countries == nil {
					out.Countries = map[string][]SendWindow{}
				}
				out.Countries[c] = w
			}
			qh[ch] = out
		}
		s.QuietHours = qh
	}
	if f.DefaultTimeZone != nil {
		s.DefaultTimeZone = *f.DefaultTimeZone
	}
	if f.UnengagedDays != nil {
		s.UnengagedDays = *f.UnengagedDays
	}
	if f.AbandonmentSMSWindow != nil {
		s.AbandonmentSMSWindow = f.AbandonmentSMSWindow.Std()
	}
	if f.ChannelCosts != nil {
		costs := map[journey.Channel]float64{}
		for ch, c := range base.ChannelCosts {
			costs[ch] = c
		}
		for ch, c := range f.ChannelCosts {
			costs[ch] = c
		}
		s.ChannelCosts = costs
	}
	if err := ValidateSettings(s); err != nil {
		return Settings{}, fmt.Errorf("policy settings: %w", err)
	}
	return s, nil
}

func windows(path string, in []windowFile) ([]SendWindow, error) {
	out := make([]SendWindow, 0, len(in))
	for i, w := range in {
		sw := SendWindow{Start: w.Start, End: w.End}
		for _, d := range w.Days {
			wd, ok := journey.ParseWeekday(d)
			if !ok {
				return nil, fmt.Errorf("policy settings: %s[%d].days: unknown day %q (use %s)", path, i, d, journey.WeekdayNames)
			}
			sw.Days = append(sw.Days, wd)
		}
		out = append(out, sw)
	}
	return out, nil
}

// ForJourney turns a journey spec's policy section into JourneySettings.
// fallbackAvailable says whether the step being sent carries a message for
// the fallback channel; without one there is nothing to fall back to.
func ForJourney(p *journey.Policy, fallbackAvailable bool) JourneySettings {
	if p == nil {
		return JourneySettings{}
	}
	js := JourneySettings{
		OnCap:         CapAction(p.OnCap),
		Abandonment:   p.Abandonment,
		Subscription:  p.Subscription,
		UnengagedDays: p.UnengagedDays,
	}
	if p.GlobalCap != nil {
		js.GlobalCap = &FrequencyCap{Max: p.GlobalCap.Max, Window: p.GlobalCap.Window.Std()}
	}
	if p.Cooldowns != nil {
		js.Cooldowns = map[journey.Channel]time.Duration{}
		for ch, d := range p.Cooldowns {
			js.Cooldowns[ch] = d.Std()
		}
	}
	if fallbackAvailable {
		js.FallbackChannel = p.FallbackChannel
	}
	return js
}

// Lookback is how far back a contact's sends matter to a decision under s
// and j: the longest cap window or cooldown in force.
func Lookback(s Settings, j JourneySettings) time.Duration {
	longest := s.GlobalCap.Window
	if j.GlobalCap != nil && j.GlobalCap.Window > longest {
		longest = j.GlobalCap.Window
	}
	for _, d := range s.Cooldowns {
		longest = max(longest, d)
	}
	for _, d := range j.Cooldowns {
		longest = max(longest, d)
	}
	return longest
}
