package engagement

import (
	"fmt"
	"time"
)

// HoursPerWeek is the number of hour-of-week cells.
const HoursPerWeek = 7 * 24

// Cell is an hour of the week in local time: 0 is Monday 00:00-01:00,
// 167 is Sunday 23:00-24:00.
type Cell int

// CellOf is the cell t falls in, on loc's wall clock.
func CellOf(t time.Time, loc *time.Location) Cell {
	lt := t.In(loc)
	day := (int(lt.Weekday()) + 6) % 7 // Monday first
	return Cell(day*24 + lt.Hour())
}

var dayAbbr = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

// String is "Tue 10:00".
func (c Cell) String() string {
	if c < 0 || c >= HoursPerWeek {
		return fmt.Sprintf("cell(%d)", int(c))
	}
	return fmt.Sprintf("%s %02d:00", dayAbbr[int(c)/24], int(c)%24)
}

// Histogram counts engagements per cell.
type Histogram [HoursPerWeek]float64

// Total is the sum of the counts.
func (h Histogram) Total() float64 {
	var n float64
	for _, v := range h {
		n += v
	}
	return n
}

// Add counts t in its cell on loc's clock.
func (h *Histogram) Add(t time.Time, loc *time.Location) { h[CellOf(t, loc)]++ }

// HourModel is the estimator's two settings.
type HourModel struct {
	// PriorWeight (k) is how many of the contact's own engagements the
	// workspace pattern weighs.
	PriorWeight float64 `json:"prior_weight"`
	// Neighbour is the weight of each adjacent hour in the smoothing.
	Neighbour float64 `json:"neighbour"`
	// Daily is the weight of the same hour on the other six days (their
	// mean): routines repeat daily, so a Tuesday 10:00 open says something
	// about Wednesday 10:00. The cell itself keeps 1-2·Neighbour-Daily.
	Daily float64 `json:"daily"`
}

// DefaultHourModel is the model send_time: best uses. k = 8 was the best
// of 2, 4, 8, 16, 32 in the offline evaluation (eval_test.go); the results
// change little between 4 and 16.
var DefaultHourModel = HourModel{PriorWeight: 8, Neighbour: 0.15, Daily: 0.4}

// Scores is each cell's smoothed posterior probability of engagement.
type Scores [HoursPerWeek]float64

// Scores is the posterior mean of each cell, shrunk towards workspace,
// smoothed with its neighbours (see the package comment).
func (m HourModel) Scores(own, workspace Histogram) Scores {
	var prior [HoursPerWeek]float64
	wTotal := workspace.Total() + 0.5*HoursPerWeek
	for c := range prior {
		prior[c] = (max(workspace[c], 0) + 0.5) / wTotal
	}
	n := own.Total()
	k := max(m.PriorWeight, 0)
	var post [HoursPerWeek]float64
	for c := range post {
		if n+k == 0 {
			post[c] = prior[c]
			continue
		}
		post[c] = (max(own[c], 0) + k*prior[c]) / (n + k)
	}
	w := min(max(m.Neighbour, 0), 0.5)
	d := min(max(m.Daily, 0), 1-2*w)
	var hourOfDay [24]float64
	for c, v := range post {
		hourOfDay[c%24] += v
	}
	var out Scores
	for c := range out {
		prev, next := post[(c+HoursPerWeek-1)%HoursPerWeek], post[(c+1)%HoursPerWeek]
		otherDays := (hourOfDay[c%24] - post[c]) / 6
		out[c] = (1-2*w-d)*post[c] + w*(prev+next) + d*otherDays
	}
	return out
}

// Choice is the instant send_time: best picked.
type Choice struct {
	At    time.Time `json:"at"`
	Cell  Cell      `json:"cell"`
	Score float64   `json:"score"`
	// NoneWithin: no instant within the horizon is allowed by quiet hours;
	// At is the first allowed instant after it (the window's opening).
	NoneWithin bool `json:"none_within,omitempty"`
}

// Allowed is the earliest instant at or after t that quiet hours allow,
// false when none opens (policy.QuietHoursFor).
type Allowed func(t time.Time) (time.Time, bool)

// BestTime picks the instant within [now, now+within] whose cell scores
// highest among the instants quiet hours allow; the earliest on ties.
// Candidates are now itself and the start of each local hour after it
// (moved to the window's opening when quiet hours start mid-hour), so the
// answer is never inside quiet hours. When nothing within the horizon is
// allowed it is the first allowed instant after now (NoneWithin), and
// when nothing is allowed at all, now (the gate will say why).
func BestTime(s Scores, now time.Time, within time.Duration, loc *time.Location, allowed Allowed) Choice {
	end := now.Add(within)
	var best Choice
	found := false
	consider := func(t time.Time) {
		at, ok := allowed(t)
		if !ok || at.After(end) || CellOf(at, loc) != CellOf(t, loc) {
			return // that instant's own cell is a candidate of its own
		}
		c := CellOf(at, loc)
		if !found || s[c] > best.Score {
			best, found = Choice{At: at, Cell: c, Score: s[c]}, true
		}
	}
	consider(now)
	lt := now.In(loc)
	into := time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	for t := now.Add(time.Hour - into); !t.After(end); t = t.Add(time.Hour) {
		consider(t)
	}
	if found {
		return best
	}
	if at, ok := allowed(now); ok {
		c := CellOf(at, loc)
		return Choice{At: at, Cell: c, Score: s[c], NoneWithin: true}
	}
	return Choice{At: now, Cell: CellOf(now, loc), Score: s[CellOf(now, loc)], NoneWithin: true}
}
