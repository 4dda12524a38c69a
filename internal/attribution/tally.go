package attribution

import (
	"fmt"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// The kinds of touchpoint reports read from storage.
const (
	// KindSend is a message a provider accepted.
	KindSend = "send"
	// KindOpen and KindClick are a recipient's open and click of an email.
	KindOpen  = "open"
	KindClick = "click"
	// KindReply is an SMS reply (an inbound SMS that is not a keyword).
	KindReply = "reply"
)

// StepKey names one step of one journey; an empty Journey is a touchpoint
// that came from no journey (an SMS reply to no journey's message, an
// audience membership asked for by a segment).
type StepKey struct {
	Journey, Step string
}

// Line is one row of a Tally.
type Line struct {
	// Credit is the row's summed shares by model: the conversions it is
	// credited with.
	Credit map[Model]float64
	// Touchpoints counts the row's touchpoints in the conversions'
	// windows (a touchpoint in the windows of two conversions counts
	// twice); Touched the conversions with at least one of them, whatever
	// the model (the conversions it "influenced").
	Touchpoints int
	Touched     int
}

// Tally sums many conversions' credits by model, by channel, journey and
// step, streaming: Add one conversion at a time, so memory holds one
// contact's touchpoints, not the period's.
type Tally struct {
	Models  []Model
	Options Options
	// Conversions counts those added; Unattributed those with no
	// touchpoint in their window, which no model credits to anything.
	Conversions  int
	Unattributed int
	// ByKind counts touchpoints in the windows by kind.
	ByKind    map[string]int
	ByChannel map[journey.Channel]*Line
	ByJourney map[string]*Line
	ByStep    map[StepKey]*Line
}

// NewTally is an empty tally of models (all of Models if none) with
// opts' lookback and half-life (defaults filled in).
func NewTally(models []Model, opts Options) (*Tally, error) {
	if len(models) == 0 {
		models = Models
	}
	for _, m := range models {
		if !m.Valid() {
			return nil, fmt.Errorf("unknown attribution model %q", m)
		}
	}
	return &Tally{Models: models, Options: opts.withDefaults(), ByKind: map[string]int{},
		ByChannel: map[journey.Channel]*Line{}, ByJourney: map[string]*Line{}, ByStep: map[StepKey]*Line{}}, nil
}

// Add attributes one conversion at convertedAt among touches (its
// contact's; those outside the window are left out as Attribute does)
// by every model of the tally.
func (t *Tally) Add(convertedAt time.Time, touches []Touch) error {
	in := window(touches, convertedAt, t.Options.Lookback)
	t.Conversions++
	if len(in) == 0 {
		t.Unattributed++
		return nil
	}
	channels := map[journey.Channel]bool{}
	journeys := map[string]bool{}
	steps := map[StepKey]bool{}
	for _, s := range in {
		t.ByKind[s.t.Kind]++
		k := StepKey{s.t.Journey, s.t.Step}
		line(t.ByChannel, s.t.Channel).Touchpoints++
		line(t.ByJourney, s.t.Journey).Touchpoints++
		line(t.ByStep, k).Touchpoints++
		channels[s.t.Channel], journeys[s.t.Journey], steps[k] = true, true, true
	}
	for c := range channels {
		t.ByChannel[c].Touched++
	}
	for j := range journeys {
		t.ByJourney[j].Touched++
	}
	for k := range steps {
		t.ByStep[k].Touched++
	}
	for _, m := range t.Models {
		w, err := weights(m, in, convertedAt, t.Options.HalfLife)
		if err != nil {
			return err
		}
		for i, s := range in {
			if w[i] == 0 {
				continue
			}
			t.ByChannel[s.t.Channel].Credit[m] += w[i]
			t.ByJourney[s.t.Journey].Credit[m] += w[i]
			t.ByStep[StepKey{s.t.Journey, s.t.Step}].Credit[m] += w[i]
		}
	}
	return nil
}

func line[K comparable](m map[K]*Line, k K) *Line {
	l := m[k]
	if l == nil {
		l = &Line{Credit: map[Model]float64{}}
		m[k] = l
	}
	return l
}
