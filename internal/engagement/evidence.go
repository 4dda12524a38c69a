package engagement

import "github.com/tutti-dev/tutti/internal/journey"

// Evidence is what a send step's choice rested on, stored beside it and
// shown by tutti why: counts, weights and codes, never the person's data.
type Evidence struct {
	// Time is set for send_time: best.
	Time *TimeEvidence `json:"time,omitempty"`
	// Channels lists, for channel: best, every channel the gate allowed
	// with its counts and posterior rate; Blocked those it did not.
	Channels []ChannelEvidence `json:"channels,omitempty"`
	Blocked  []BlockedChannel  `json:"blocked,omitempty"`
	// ChannelPriorWeight is k of the channel choice.
	ChannelPriorWeight float64 `json:"channel_prior_weight,omitempty"`
}

// TimeEvidence is the evidence of a send_time: best choice.
type TimeEvidence struct {
	// Zone is the zone the contact's hours are counted in.
	Zone string `json:"zone"`
	// Within is the horizon the time was chosen in ("24h").
	Within string `json:"within"`
	// Engagements counts the contact's own engagements read (opens,
	// clicks, replies in the lookback); WorkspaceEngagements the
	// workspace's, which make the prior.
	Engagements          int `json:"engagements"`
	WorkspaceEngagements int `json:"workspace_engagements"`
	// Model is the estimator's settings (k, neighbour and daily weights).
	Model HourModel `json:"model"`
	// Cell is the chosen hour of the week, CellName it in words
	// ("Tue 10:00"); CellEngagements the contact's own engagements in it
	// and HourEngagements at that hour on any day.
	Cell            Cell   `json:"cell"`
	CellName        string `json:"cell_name"`
	CellEngagements int    `json:"cell_engagements"`
	HourEngagements int    `json:"hour_engagements"`
	// Score is the chosen cell's smoothed posterior; NowScore that of
	// sending at once, for comparison.
	Score    float64 `json:"score"`
	NowScore float64 `json:"now_score"`
	// QuietHours is the quiet-hours rule the choice kept to.
	QuietHours string `json:"quiet_hours"`
	// NoneWithin: quiet hours allowed nothing within the horizon; the
	// time is the window's next opening.
	NoneWithin bool `json:"none_within,omitempty"`
}

// BlockedChannel is a candidate channel the send gate would not allow,
// with its reason codes (no_consent, suppressed:hard_bounce...).
type BlockedChannel struct {
	Channel journey.Channel `json:"channel"`
	Reasons []string        `json:"reasons"`
}

// ChannelEvents are the engagement events of each channel: what the
// webhooks store (internal/webhook: KindEmailOpened, KindEmailClicked,
// KindSMSReplied) and what a waterfall waits for.
var ChannelEvents = map[journey.Channel][]string{
	journey.ChannelEmail: {"email.opened", "email.clicked"},
	journey.ChannelSMS:   {"sms.replied"},
}

// EventNames lists every engagement event name, email's first.
func EventNames() []string {
	return append(append([]string(nil), ChannelEvents[journey.ChannelEmail]...), ChannelEvents[journey.ChannelSMS]...)
}

// IsEngagement reports whether an event of this name is engagement.
func IsEngagement(name string) bool {
	for _, names := range ChannelEvents {
		for _, n := range names {
			if n == name {
				return true
			}
		}
	}
	return false
}
