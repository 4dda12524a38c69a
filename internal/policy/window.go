package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// openAt reports whether t falls in one of the windows, in loc's wall clock.
func openAt(ws []SendWindow, t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
	wd := lt.Weekday()
	for _, w := range ws {
		if w.appliesOn(wd) && sec >= int(w.Start)*60 && sec < int(w.End)*60 {
			return true
		}
	}
	return false
}

// searchDays bounds the search for the next opening: a week plus margin, so
// any valid rule (at least one window on at least one weekday) is found.
const searchDays = 8

// nextOpen returns the earliest instant at or after t at which a window is
// open, or false when no window opens within searchDays (an empty rule is
// handled by the caller as "no restriction").
func nextOpen(ws []SendWindow, t time.Time, loc *time.Location) (time.Time, bool) {
	if openAt(ws, t, loc) {
		return t, true
	}
	y, m, d := t.In(loc).Date()
	for off := 0; off <= searchDays; off++ {
		wd := time.Date(y, m, d+off, 12, 0, 0, 0, time.UTC).Weekday()
		var best time.Time
		for _, w := range ws {
			if !w.appliesOn(wd) {
				continue
			}
			c := wallInstant(y, m, d+off, int(w.Start)*60, loc)
			// A window can vanish in a DST gap (02:00-02:30 on a spring-forward day).
			if !c.After(t) || !openAt(ws, c, loc) {
				continue
			}
			if best.IsZero() || c.Before(best) {
				best = c
			}
		}
		if !best.IsZero() {
			return best, true
		}
	}
	return time.Time{}, false
}

// wallInstant returns the first instant whose local wall clock in loc is at
// or after the given date and second of day. time.Date alone is ambiguous
// around DST transitions: in a spring-forward gap the wall time does not
// exist (the answer is the transition instant), and on a fall-back day it
// exists twice (the answer is the first occurrence).
func wallInstant(y int, m time.Month, d, sec int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, sec, 0, loc)
	want := time.Date(y, m, d, 0, 0, sec, 0, time.UTC)
	got := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	start, end := t.ZoneBounds()
	switch {
	case got.After(want): // normalized past a gap: the gap ends at start
		if !start.IsZero() && start.Before(t) {
			return start
		}
	case got.Before(want): // normalized before a gap: it ends at end
		if !end.IsZero() {
			return end
		}
	default: // exact; an earlier instant shows the same wall time after a fall-back
		if !start.IsZero() {
			_, cur := t.Zone()
			_, prev := start.Add(-time.Nanosecond).Zone()
			if prev > cur {
				if e := t.Add(-time.Duration(prev-cur) * time.Second); e.Before(start) {
					return e
				}
			}
		}
	}
	return t
}

func describeWindows(ws []SendWindow) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = describeDays(w.Days) + " " + w.Start.String() + "-" + w.End.String()
	}
	return strings.Join(parts, ", ")
}

func describeDays(days []time.Weekday) string {
	if len(days) == 0 || len(days) == 7 {
		return "every day"
	}
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = d.String()[:3]
	}
	return strings.Join(names, "/")
}

func localString(t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	return fmt.Sprintf("%s %s %s", lt.Format("Mon 2006-01-02 15:04"), lt.Format("MST"), loc.String())
}

// NextLocalTime is the first instant at or after t whose wall clock in loc
// reads at, on one of days (every day when days is empty): when a
// wait_until step ends. It follows the zone's rules like quiet hours do: a
// wall time that a spring-forward gap skips is the end of the gap, and one
// that a fall-back repeats is its first occurrence.
func NextLocalTime(t time.Time, at TimeOfDay, days []time.Weekday, loc *time.Location) time.Time {
	w := SendWindow{Days: days}
	y, m, d := t.In(loc).Date()
	for off := 0; ; off++ {
		wd := time.Date(y, m, d+off, 12, 0, 0, 0, time.UTC).Weekday()
		if !w.appliesOn(wd) {
			continue
		}
		if c := wallInstant(y, m, d+off, int(at)*60, loc); !c.Before(t) {
			return c
		}
	}
}

// QuietHoursFor is the quiet-hours rule a marketing message on ch to the
// contact is held to, for choosing a send time ahead of the gate: allowed
// gives the earliest instant at or after t the rule allows (false when no
// window opens within searchDays; every instant when the channel has no
// rule), loc is the zone the contact's local time is judged in, and rule
// describes it as the gate would at now. It is the gate's own quiet-hours
// rule, so a time it allows is one the gate allows, as far as quiet hours go.
func QuietHoursFor(s Settings, ch journey.Channel, contact ContactState, now time.Time) (allowed func(time.Time) (time.Time, bool), loc *time.Location, rule string) {
	g := &gate{s: s, r: Request{Contact: contact, Channel: ch, Now: now}, class: journey.ClassMarketing}
	e := &channelEval{gate: g, ch: ch, now: now}
	q := e.quietConstraint()
	loc = q.loc
	if loc == nil {
		loc, _ = resolveLocation(contact, s, g.phoneInfo())
	}
	return q.earliest, loc, q.nowDetail
}
