package engagement

import (
	"fmt"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// Describe says in one line what a send step chose and why, for tutti why:
// the channel with each candidate's evidence, and the time with the
// counts behind it.
func Describe(ch journey.Channel, sendAt *time.Time, ev Evidence) string {
	var parts []string
	if len(ev.Channels) > 0 || len(ev.Blocked) > 0 {
		var cands []string
		for _, c := range ev.Channels {
			cands = append(cands, fmt.Sprintf("%s %.2f (%d engaged of %d sent, workspace rate %.2f, cost %g)",
				c.Channel, c.Rate, min(c.Engaged, c.Sent), c.Sent, c.PriorRate, c.Cost))
		}
		s := fmt.Sprintf("channel %s chosen by engagement rate", ch)
		if len(cands) > 0 {
			s += fmt.Sprintf(" with a prior of %g sends: %s", ev.ChannelPriorWeight, strings.Join(cands, " vs "))
		}
		for _, b := range ev.Blocked {
			s += fmt.Sprintf("; %s not allowed (%s)", b.Channel, strings.Join(b.Reasons, ", "))
		}
		if len(ev.Channels) == 0 {
			s += "; no channel allowed, so the gate decides on " + string(ch)
		}
		parts = append(parts, s)
	}
	if t := ev.Time; t != nil && sendAt != nil {
		loc, err := time.LoadLocation(t.Zone)
		if err != nil {
			loc = time.UTC
		}
		s := fmt.Sprintf("send time %s (%s %s), the best hour of the week within %s: %d of the contact's %d engagements fell in %s and %d at %02d:00 on any day; the workspace's %d engagements are the prior, weighing %g",
			sendAt.UTC().Format(time.RFC3339), sendAt.In(loc).Format("Mon 15:04"), t.Zone, t.Within,
			t.CellEngagements, t.Engagements, t.CellName, t.HourEngagements, int(t.Cell)%24, t.WorkspaceEngagements, t.Model.PriorWeight)
		if t.NowScore > 0 {
			s += fmt.Sprintf("; score %.4f against %.4f for sending at once", t.Score, t.NowScore)
		}
		if t.NoneWithin {
			s += "; quiet hours allowed nothing within " + t.Within + ", so the window's next opening"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
