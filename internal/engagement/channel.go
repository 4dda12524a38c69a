package engagement

import (
	"math"

	"github.com/tutti-dev/tutti/internal/journey"
)

// ChannelPriorWeight is k for channel choice: the workspace's rate on a
// channel weighs as much as k of the contact's own sends on it.
const ChannelPriorWeight = 10.0

// ChannelEvidence is what is known about one channel for one contact.
type ChannelEvidence struct {
	Channel journey.Channel `json:"channel"`
	// Sent and Engaged count the contact's recent messages on the channel
	// and the engagement events on them (at most Sent).
	Sent    int `json:"sent"`
	Engaged int `json:"engaged"`
	// PriorRate is the workspace's engagement rate on the channel.
	PriorRate float64 `json:"prior_rate"`
	// Cost is the cost of one message (channel_costs).
	Cost float64 `json:"cost"`
	// Rate is the posterior mean, filled by BestChannel.
	Rate float64 `json:"rate"`
}

// BestChannel scores each candidate (in place) and returns the index of
// the one with the highest posterior engagement rate; on equal rates the
// cheaper one, then the earlier one. -1 for no candidates.
func BestChannel(cands []ChannelEvidence, k float64) int {
	best := -1
	for i := range cands {
		c := &cands[i]
		p := min(max(c.PriorRate, 0), 1)
		engaged := float64(min(max(c.Engaged, 0), max(c.Sent, 0)))
		if denom := float64(max(c.Sent, 0)) + k; denom > 0 {
			c.Rate = (engaged + k*p) / denom
		} else {
			c.Rate = p
		}
		if best < 0 {
			best = i
			continue
		}
		b := cands[best]
		switch {
		case !sameRate(c.Rate, b.Rate) && c.Rate > b.Rate:
			best = i
		case sameRate(c.Rate, b.Rate) && c.Cost < b.Cost:
			best = i
		}
	}
	return best
}

// sameRate treats rates within a millionth as equal: what the data cannot
// tell apart is a tie, which cost decides.
func sameRate(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
