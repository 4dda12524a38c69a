// Package attribution shares the credit for a conversion among the
// touchpoints that came before it: sends, opens, clicks, SMS replies and
// ad-audience membership periods. It is pure: touchpoints and a conversion
// in, credits out; reports sum the credits by channel, journey and step.
package attribution

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// Model is how the credit for one conversion is shared.
type Model string

// The models.
const (
	// FirstTouch gives all the credit to the earliest touchpoint.
	FirstTouch Model = "first_touch"
	// LastTouch gives all the credit to the latest touchpoint.
	LastTouch Model = "last_touch"
	// Linear shares the credit equally.
	Linear Model = "linear"
	// TimeDecay weighs each touchpoint by 0.5^(age / half-life), its age
	// being the time from it to the conversion.
	TimeDecay Model = "time_decay"
	// UShaped (position based) gives 40% to the first and 40% to the last
	// touchpoint and shares 20% among those between; with two touchpoints
	// each gets half, with one it gets all.
	UShaped Model = "u_shaped"
)

// Models lists every model, in the order reports show them.
var Models = []Model{FirstTouch, LastTouch, Linear, TimeDecay, UShaped}

// Defaults.
const (
	DefaultLookback = 7 * 24 * time.Hour
	DefaultHalfLife = 24 * time.Hour
)

// Touch is one touchpoint. At is when it happened; for a period (an
// ad-audience membership) At is when it began and Until when it ended,
// zero while it lasts.
type Touch struct {
	ID      string          `json:"id"`
	Channel journey.Channel `json:"channel"`
	Journey string          `json:"journey,omitempty"`
	Step    string          `json:"step,omitempty"`
	Kind    string          `json:"kind"`
	At      time.Time       `json:"at"`
	Until   time.Time       `json:"until,omitzero"`
}

// Options set the lookback window and the half-life of TimeDecay.
type Options struct {
	Lookback time.Duration
	HalfLife time.Duration
}

func (o Options) withDefaults() Options {
	if o.Lookback <= 0 {
		o.Lookback = DefaultLookback
	}
	if o.HalfLife <= 0 {
		o.HalfLife = DefaultHalfLife
	}
	return o
}

// Credit is one touchpoint's share of one conversion (0 to 1).
type Credit struct {
	Touch Touch   `json:"touch"`
	Share float64 `json:"share"`
}

// Attribute shares one conversion at convertedAt among the touchpoints in
// its lookback window, by model. A touchpoint counts if it happened in
// (convertedAt - lookback, convertedAt]; a period counts if it overlapped
// that window, as of the latest moment it did (its end, or the
// conversion). Touchpoints with the same ID are one touchpoint, as of the
// latest of them in the window (repeated opens of one email). The shares sum to 1; none (nil) means the conversion had no
// touchpoint in the window, which reports count as unattributed rather
// than dropping.
func Attribute(model Model, touches []Touch, convertedAt time.Time, opts Options) ([]Credit, error) {
	opts = opts.withDefaults()
	in := window(touches, convertedAt, opts.Lookback)
	if len(in) == 0 {
		if !model.Valid() {
			return nil, fmt.Errorf("unknown attribution model %q", model)
		}
		return nil, nil
	}
	w, err := weights(model, in, convertedAt, opts.HalfLife)
	if err != nil {
		return nil, err
	}
	out := make([]Credit, 0, len(in))
	for i, s := range in {
		if w[i] == 0 {
			continue
		}
		out = append(out, Credit{Touch: s.t, Share: w[i]})
	}
	return out, nil
}

// seen is a touchpoint in a conversion's window, with the moment it
// counts as of.
type seen struct {
	t  Touch
	at time.Time
}

// window keeps the touchpoints that count for a conversion at convertedAt
// (see Attribute), in time order, ties by id, so that every model is
// deterministic.
func window(touches []Touch, convertedAt time.Time, lookback time.Duration) []seen {
	from := convertedAt.Add(-lookback)
	var in []seen
	for _, t := range touches {
		at := t.At
		if !t.Until.IsZero() || t.Kind == KindAudience {
			// A period counts as of its latest moment within the window.
			at = convertedAt
			if !t.Until.IsZero() && t.Until.Before(convertedAt) {
				at = t.Until
			}
			if t.At.After(convertedAt) {
				continue
			}
		}
		if at.After(convertedAt) || !at.After(from) {
			continue
		}
		in = append(in, seen{t, at})
	}
	// One touchpoint id counts once, as of its latest moment in the
	// window: an email opened three times is one open.
	latest := make(map[string]int, len(in))
	kept := in[:0]
	for _, s := range in {
		if i, ok := latest[s.t.ID]; ok {
			if s.at.After(kept[i].at) {
				kept[i] = s
			}
			continue
		}
		latest[s.t.ID] = len(kept)
		kept = append(kept, s)
	}
	in = kept
	slices.SortStableFunc(in, func(a, b seen) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.t.ID, b.t.ID)
	})
	return in
}

// Valid reports whether m is one of Models.
func (m Model) Valid() bool { return slices.Contains(Models, m) }

// weights are the shares of in (not empty, in time order) by model,
// summing to 1.
func weights(model Model, in []seen, convertedAt time.Time, halfLife time.Duration) ([]float64, error) {
	w := make([]float64, len(in))
	n := len(in)
	switch model {
	case FirstTouch:
		w[0] = 1
	case LastTouch:
		w[n-1] = 1
	case Linear:
		for i := range w {
			w[i] = 1
		}
	case TimeDecay:
		for i, s := range in {
			w[i] = math.Exp2(-float64(convertedAt.Sub(s.at)) / float64(halfLife))
		}
	case UShaped:
		switch n {
		case 1:
			w[0] = 1
		case 2:
			w[0], w[1] = 0.5, 0.5
		default:
			w[0], w[n-1] = 0.4, 0.4
			for i := 1; i < n-1; i++ {
				w[i] = 0.2 / float64(n-2)
			}
		}
	default:
		return nil, fmt.Errorf("unknown attribution model %q", model)
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	for i := range w {
		w[i] /= sum
	}
	return w, nil
}

// KindAudience is an ad-audience membership period.
const KindAudience = "audience"

// Key picks what credits are summed by.
type Key func(Touch) string

// The usual keys.
var (
	ByChannel Key = func(t Touch) string { return string(t.Channel) }
	ByJourney Key = func(t Touch) string { return t.Journey }
	ByStep    Key = func(t Touch) string { return t.Journey + "/" + t.Step }
)

// Conversion is one conversion with the touchpoints of its contact.
type Conversion struct {
	// ID is the conversion's event id, ContactID its contact's.
	ID, ContactID string
	At            time.Time
	Touches       []Touch
}

// Totals are many conversions' credits summed by a key.
type Totals struct {
	Conversions int `json:"conversions"`
	// Credit sums the shares by key: a key's attributed conversions.
	Credit map[string]float64 `json:"credit"`
	// Unattributed counts conversions with no touchpoint in the window.
	Unattributed int `json:"unattributed"`
}

// Sum attributes every conversion by model and sums the credit by key.
func Sum(model Model, conversions []Conversion, key Key, opts Options) (Totals, error) {
	t := Totals{Credit: map[string]float64{}}
	for _, c := range conversions {
		credits, err := Attribute(model, c.Touches, c.At, opts)
		if err != nil {
			return Totals{}, err
		}
		t.Conversions++
		if len(credits) == 0 {
			t.Unattributed++
			continue
		}
		for _, cr := range credits {
			t.Credit[key(cr.Touch)] += cr.Share
		}
	}
	return t, nil
}
