package engagement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The offline evaluation of send_time: best (README, "Send at the best
// hour"). It generates an engagement history in which every contact has a
// known best hour of the week, lets the estimator choose from that history
// alone, and scores each choice by the contact's true chance of engaging at
// the chosen hour, against sending at a fixed 10:00 local time.
//
// The generator (genWorkspace), per contact:
//   - a habit: a peak cell drawn from the workspace's mix: 55% a weekday
//     working hour (09:00-12:00 Mon-Fri), 30% a weekday or weekend evening
//     (19:00-22:00), 15% any hour from 07:00 to 22:00 of any day;
//   - a true engagement probability per cell (the chance that a message
//     arriving in that hour is opened, clicked or replied to): 0.02
//     everywhere, plus 0.15·exp(-d²/2) around the peak (d in hours, around
//     the week) and 0.15·exp(-h²/2) around the peak's hour on every day
//     (routines repeat daily): the peak cell is the contact's known best
//     hour;
//   - a history: N past messages, N uniform in 0..40, each engaged with
//     probability 0.25, at an hour drawn from the contact's own habits
//     (the true probabilities, normalised): people open when they read
//     their mail, whenever it was sent, so the times of their opens say
//     when they read it.
//
// The workspace pattern is the sum of every contact's engagements.
// Each contact is then to be sent a message from a random moment of the
// week within 24 hours, in quiet hours of 08:00-21:00: the estimator
// picks with BestTime; the baseline is the next 10:00.

type evalContact struct {
	truth   [HoursPerWeek]float64
	peak    Cell
	history Histogram
	sends   int
}

func hourDist(a, b int, period int) float64 {
	d := (a - b + period) % period
	return float64(min(d, period-d))
}

func genWorkspace(rng *rand.Rand, n int) ([]evalContact, Histogram) {
	cs := make([]evalContact, n)
	var ws Histogram
	for i := range cs {
		c := &cs[i]
		var day, hour int
		switch r := rng.Float64(); {
		case r < 0.55:
			day, hour = rng.IntN(5), 9+rng.IntN(4)
		case r < 0.85:
			day, hour = rng.IntN(7), 19+rng.IntN(4)
		default:
			day, hour = rng.IntN(7), 7+rng.IntN(16)
		}
		c.peak = Cell(day*24 + hour)
		var total float64
		for cell := range c.truth {
			d := hourDist(cell, int(c.peak), HoursPerWeek)
			h := hourDist(cell%24, hour, 24)
			c.truth[cell] = 0.02 + 0.15*math.Exp(-d*d/2) + 0.15*math.Exp(-h*h/2)
			total += c.truth[cell]
		}
		c.sends = rng.IntN(41)
		for range c.sends {
			if rng.Float64() >= 0.25 {
				continue
			}
			x := rng.Float64() * total
			for cell, p := range c.truth {
				if x -= p; x < 0 || cell == HoursPerWeek-1 {
					c.history[cell]++
					break
				}
			}
		}
		for cell, v := range c.history {
			ws[cell] += v
		}
	}
	return cs, ws
}

// quiet0821 allows 08:00-21:00 UTC (the evaluation's contacts live in UTC).
func quiet0821(t time.Time) (time.Time, bool) {
	for i := 0; i < 48; i++ {
		c := t
		if i > 0 {
			c = t.Truncate(time.Hour).Add(time.Duration(i) * time.Hour)
		}
		if h := c.Hour(); h >= 8 && h < 21 {
			return c, true
		}
	}
	return time.Time{}, false
}

type evalResult struct {
	contacts            int
	better, worse, same int
	estimator, fixed    float64 // mean true engagement probability
	oracle              float64
	hitBest             int // chose the contact's true best allowed cell
}

func (r evalResult) String() string {
	n := float64(r.contacts)
	return fmt.Sprintf("%5d contacts: beats 10:00 for %4.1f%%, loses for %4.1f%%, ties %4.1f%%; mean P(engage) %.3f vs %.3f (%+.0f%%), oracle %.3f; picks the true best hour %4.1f%%",
		r.contacts, 100*float64(r.better)/n, 100*float64(r.worse)/n, 100*float64(r.same)/n,
		r.estimator/n, r.fixed/n, 100*(r.estimator/r.fixed-1), r.oracle/n, 100*float64(r.hitBest)/n)
}

func evaluate(rng *rand.Rand, cs []evalContact, ws Histogram, m HourModel, bucket func(evalContact) int) map[int]*evalResult {
	weekStart := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	out := map[int]*evalResult{}
	for _, c := range cs {
		now := weekStart.Add(time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))))
		choice := BestTime(m.Scores(c.history, ws), now, 24*time.Hour, time.UTC, quiet0821)
		fixed := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC)
		if fixed.Before(now) {
			fixed = fixed.AddDate(0, 0, 1)
		}
		var truth Scores
		copy(truth[:], c.truth[:])
		oracle := BestTime(truth, now, 24*time.Hour, time.UTC, quiet0821)
		pe, pf := c.truth[choice.Cell], c.truth[CellOf(fixed, time.UTC)]
		for _, b := range []int{-1, bucket(c)} {
			r := out[b]
			if r == nil {
				r = &evalResult{}
				out[b] = r
			}
			r.contacts++
			r.estimator += pe
			r.fixed += pf
			r.oracle += c.truth[oracle.Cell]
			switch {
			case pe > pf+1e-12:
				r.better++
			case pe < pf-1e-12:
				r.worse++
			default:
				r.same++
			}
			if choice.Cell == oracle.Cell {
				r.hitBest++
			}
		}
	}
	return out
}

// TestOfflineEvaluation reports how often and by how much send_time: best
// beats a fixed 10:00 on the generated workspace (go test -run
// OfflineEvaluation -v ./internal/engagement prints the table the README
// quotes), and fails if it does not beat it on average, or if new contacts
// (no history) do worse than 10:00 (the workspace prior must be sensible).
func TestOfflineEvaluation(t *testing.T) {
	t.Parallel()
	cs, ws := genWorkspace(rand.New(rand.NewPCG(1, 2)), 5000)
	byHistory := func(c evalContact) int {
		switch n := c.history.Total(); {
		case n == 0:
			return 0
		case n <= 2:
			return 1
		case n <= 5:
			return 2
		default:
			return 3
		}
	}
	names := map[int]string{-1: "all", 0: "no engagement yet", 1: "1-2 engagements", 2: "3-5 engagements", 3: "6+ engagements"}
	var b strings.Builder
	res := evaluate(rand.New(rand.NewPCG(3, 4)), cs, ws, DefaultHourModel, byHistory)
	for _, k := range []int{-1, 0, 1, 2, 3} {
		fmt.Fprintf(&b, "%-18s %s\n", names[k], res[k])
	}
	b.WriteString("variants (all contacts):\n")
	variant := func(name string, m HourModel) {
		r := evaluate(rand.New(rand.NewPCG(3, 4)), cs, ws, m, byHistory)
		fmt.Fprintf(&b, "  %-24s %s\n", name, r[-1])
	}
	def := DefaultHourModel
	for _, k := range []float64{0, 8, 32, 64, 128, 256} {
		m := def
		m.PriorWeight = k
		variant(fmt.Sprintf("k=%g", k), m)
	}
	for _, d := range []float64{0, 0.2, 0.6} {
		m := def
		m.Daily = d
		m.Neighbour = min(m.Neighbour, (1-d)/2)
		variant(fmt.Sprintf("daily=%g", d), m)
	}
	m := def
	m.Neighbour = 0
	variant("no neighbour smoothing", m)
	t.Log("\n" + b.String())

	all := res[-1]
	require.Greater(t, all.estimator, all.fixed*1.2, "send_time: best beats 10:00 by at least 20%% on average")
	require.Greater(t, all.better, all.worse)
	require.GreaterOrEqual(t, res[0].estimator, 0.95*res[0].fixed, "a new contact gets the workspace's pattern, about as good as 10:00")
	require.Greater(t, res[3].estimator/float64(res[3].contacts), res[0].estimator/float64(res[0].contacts),
		"a contact's own history helps")
}
