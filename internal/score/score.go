// Package score is Tutti's lead scoring: a workspace's scoring model (fit
// rules over a contact's attributes, intent rules over its events, bands
// over the scores), and the pure function that scores a contact at a given
// moment and explains every point.
//
// Decay is exact at read time: an intent event is worth
// points × 0.5^(age / half-life) at the moment the score is read, with no
// periodic job approximating it. With no new events a contact's intent can
// only fall, so the moment its band will next change is computable
// (NextBandChange), and a sweep needs to look only at the contacts whose
// moment has come.
package score

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
)

// Model is a workspace's scoring model, written in YAML or JSON.
//
//	id: default
//	fit:
//	  - {id: big_company, when: 'contact.?employees.orValue(0.0) >= 200', points: 20}
//	intent:
//	  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 10, cap: 30, half_life: 7d}
//	bands:
//	  combined: [{name: cold, below: 30}, {name: warm, below: 60}, {name: hot}]
type Model struct {
	ID     string       `json:"id"`
	Fit    []FitRule    `json:"fit,omitempty"`
	Intent []IntentRule `json:"intent,omitempty"`
	Bands  Bands        `json:"bands,omitzero"`
}

// FitRule gives points to contacts whose attributes match: a CEL condition
// over contact and consent, as in a journey's branch (journey.CompileCondition).
type FitRule struct {
	ID     string  `json:"id"`
	When   string  `json:"when"`
	Points float64 `json:"points"`
}

// IntentRule gives points for each event of a name (whose properties equal
// those in Where), decaying with a half-life; Cap, when set, bounds what the
// rule can add up to at any moment.
type IntentRule struct {
	ID       string           `json:"id"`
	Event    string           `json:"event"`
	Where    map[string]any   `json:"where,omitempty"`
	Points   float64          `json:"points"`
	Cap      float64          `json:"cap,omitempty"`
	HalfLife journey.Duration `json:"half_life"`
}

// Bands name ranges of each score. Each list goes up: every band but the
// last has an exclusive upper bound (below); the last has none.
type Bands struct {
	Fit      []Band `json:"fit,omitempty"`
	Intent   []Band `json:"intent,omitempty"`
	Combined []Band `json:"combined,omitempty"`
}

// Band is one named range of a score.
type Band struct {
	Name  string   `json:"name"`
	Below *float64 `json:"below,omitempty"`
}

var modelDocument = journey.DocumentKind{
	Name:   "score model",
	Shape:  "an object with id, fit, intent and bands",
	OnePer: "a workspace has one score model",
}

// Parse reads and validates a scoring model. Errors are journey.Problems
// (each with its path) or a *journey.TextError, as for journey specs.
func Parse(data []byte) (*Compiled, error) {
	var m Model
	if err := journey.ParseDocument(data, modelDocument, &m); err != nil {
		return nil, err
	}
	return Compile(m)
}

// Compiled is a validated model with its conditions compiled. It is safe
// for concurrent use.
type Compiled struct {
	Model Model
	fit   []*journey.Condition
}

// Compile validates a model and compiles its conditions; the error lists
// every problem with its path.
func Compile(m Model) (*Compiled, error) {
	var ps journey.Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, journey.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if m.ID == "" {
		add("id", "required")
	}
	ids := map[string]string{}
	rule := func(path, id string) {
		switch {
		case id == "":
			add(path+".id", "required")
		case ids[id] != "":
			add(path+".id", "%q is also the id of %s: rule ids name contributions and must be unique", id, ids[id])
		default:
			ids[id] = path
		}
	}
	points := func(path string, p float64) {
		if math.IsNaN(p) || math.IsInf(p, 0) || p == 0 || math.Abs(p) > 1e6 {
			add(path, "must be a non-zero number of points between -1000000 and 1000000")
		}
	}
	c := &Compiled{Model: m, fit: make([]*journey.Condition, len(m.Fit))}
	for i, r := range m.Fit {
		path := fmt.Sprintf("fit[%d]", i)
		rule(path, r.ID)
		points(path+".points", r.Points)
		cond, err := journey.CompileCondition(r.When)
		if err != nil {
			add(path+".when", "%v", err)
		}
		c.fit[i] = cond
	}
	for i, r := range m.Intent {
		path := fmt.Sprintf("intent[%d]", i)
		rule(path, r.ID)
		points(path+".points", r.Points)
		if r.Points < 0 {
			// Negative intent would rise as it decays, and a score that
			// time can raise has no computable next band change. Negative
			// signals (a competitor's domain, a student) are fit rules.
			add(path+".points", "must be positive: intent adds points; write negative signals as fit rules")
		}
		switch r.Event {
		case "":
			add(path+".event", "required")
		case BandChangedEvent:
			// A band change scored as intent could move a band again,
			// which would be another band change: a loop.
			add(path+".event", "%s is what scores emit: it cannot give intent points", BandChangedEvent)
		}
		for k, v := range r.Where {
			switch v.(type) {
			case string, float64, bool:
			default:
				add(path+".where."+k, "must be a string, number or boolean the event's property equals")
			}
		}
		if r.HalfLife.Std() < time.Minute {
			add(path+".half_life", "must be at least 1m (intent that never decays is a fit rule)")
		}
		if r.Cap < 0 || math.IsNaN(r.Cap) || math.IsInf(r.Cap, 0) {
			add(path+".cap", "must be a positive number of points")
		}
	}
	for name, bands := range map[string][]Band{"fit": m.Bands.Fit, "intent": m.Bands.Intent, "combined": m.Bands.Combined} {
		names := map[string]bool{}
		for i, b := range bands {
			path := fmt.Sprintf("bands.%s[%d]", name, i)
			if b.Name == "" {
				add(path+".name", "required")
			} else if names[b.Name] {
				add(path+".name", "%q appears twice", b.Name)
			}
			names[b.Name] = true
			last := i == len(bands)-1
			switch {
			case last && b.Below != nil:
				add(path+".below", "the last band has no upper bound: remove below")
			case !last && b.Below == nil:
				add(path+".below", "required: every band but the last has an upper bound")
			case !last && i > 0 && bands[i-1].Below != nil && *b.Below <= *bands[i-1].Below:
				add(path+".below", "must be above the previous band's (%v): bands go up", *bands[i-1].Below)
			}
		}
	}
	if len(ps) > 0 {
		slices.SortStableFunc(ps, func(a, b journey.Problem) int { return strings.Compare(a.Path, b.Path) })
		return nil, ps
	}
	return c, nil
}

// Event is a stored event, as scoring reads it.
type Event struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	OccurredAt time.Time      `json:"occurred_at"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Contribution is one rule's (fit) or one event's (intent) part of a score.
type Contribution struct {
	Kind string `json:"kind"` // "fit" or "intent"
	Rule string `json:"rule"`
	// Intent only: the event, its age at the moment scored and its
	// points before decay.
	EventID    string        `json:"event_id,omitempty"`
	OccurredAt time.Time     `json:"occurred_at,omitzero"`
	Age        time.Duration `json:"age,omitempty"`
	Points     float64       `json:"points"`
	// Value is what it adds now: the points, decayed, and scaled down
	// with the rule's other events when the rule reached its cap.
	Value  float64 `json:"value"`
	Capped bool    `json:"capped,omitempty"`
}

// Result is a contact's scores at one moment, with their explanation.
type Result struct {
	At            time.Time      `json:"at"`
	Fit           float64        `json:"fit"`
	Intent        float64        `json:"intent"`
	Combined      float64        `json:"combined"`
	FitBand       string         `json:"fit_band,omitempty"`
	IntentBand    string         `json:"intent_band,omitempty"`
	CombinedBand  string         `json:"combined_band,omitempty"`
	Contributions []Contribution `json:"contributions"`
	// Unevaluated lists fit rules whose condition had no value for the
	// contact (a missing attribute, say), with the reason: they add nothing.
	Unevaluated map[string]string `json:"unevaluated,omitempty"`
}

// FitInput is what fit rules read.
type FitInput struct {
	Contact map[string]any
	Consent map[string]string
}

// Fit evaluates the fit rules: the matched ones' contributions and the
// rules that could not be evaluated.
func (c *Compiled) Fit(in FitInput) ([]Contribution, map[string]string) {
	var out []Contribution
	var unevaluated map[string]string
	for i, r := range c.Model.Fit {
		ok, err := c.fit[i].Eval(journey.ConditionInput{Contact: in.Contact, Consent: in.Consent})
		if err != nil {
			if unevaluated == nil {
				unevaluated = map[string]string{}
			}
			unevaluated[r.ID] = err.Error()
			continue
		}
		if ok {
			out = append(out, Contribution{Kind: "fit", Rule: r.ID, Points: r.Points, Value: r.Points})
		}
	}
	return out, unevaluated
}

// Score scores a contact at a moment from its fit contributions (Fit) and
// its events. Events after at are ignored: a score read at a moment
// depends only on what had happened by then.
func (c *Compiled) Score(fit []Contribution, unevaluated map[string]string, events []Event, at time.Time) Result {
	r := Result{At: at, Unevaluated: unevaluated, Contributions: []Contribution{}}
	for _, f := range fit {
		r.Fit += f.Value
		r.Contributions = append(r.Contributions, f)
	}
	for _, rule := range c.Model.Intent {
		start := len(r.Contributions)
		var sum float64
		for _, e := range events {
			if e.Name != rule.Event || e.OccurredAt.After(at) || !journey.PropertiesMatch(rule.Where, e.Properties) {
				continue
			}
			age := at.Sub(e.OccurredAt)
			v := rule.Points * decay(age, rule.HalfLife.Std())
			sum += v
			r.Contributions = append(r.Contributions, Contribution{Kind: "intent", Rule: rule.ID, EventID: e.ID,
				OccurredAt: e.OccurredAt, Age: age, Points: rule.Points, Value: v})
		}
		if rule.Cap > 0 && sum > rule.Cap {
			scale := rule.Cap / sum
			for i := start; i < len(r.Contributions); i++ {
				r.Contributions[i].Value *= scale
				r.Contributions[i].Capped = true
			}
			sum = rule.Cap
		}
		r.Intent += sum
	}
	r.Combined = r.Fit + r.Intent
	r.FitBand = BandOf(c.Model.Bands.Fit, r.Fit)
	r.IntentBand = BandOf(c.Model.Bands.Intent, r.Intent)
	r.CombinedBand = BandOf(c.Model.Bands.Combined, r.Combined)
	return r
}

// decay is 0.5^(age/halfLife).
func decay(age, halfLife time.Duration) float64 {
	return math.Exp2(-age.Seconds() / halfLife.Seconds())
}

// BandOf names the band value falls in; "" when the score has no bands.
func BandOf(bands []Band, value float64) string {
	for _, b := range bands {
		if b.Below == nil || value < *b.Below {
			return b.Name
		}
	}
	return ""
}

// Lookback is how far back events can still matter: twenty half-lives of
// the slowest rule, after which an event is worth less than a millionth of
// its points. Callers read events since at - Lookback.
func (c *Compiled) Lookback() time.Duration {
	var longest time.Duration
	for _, r := range c.Model.Intent {
		longest = max(longest, r.HalfLife.Std())
	}
	return 20 * longest
}

// NextBandChange is the first moment after r.At at which, with no new
// events, the intent or combined band will differ from r's (time alone only
// lowers them), to the second; ok is false when none will within Lookback.
// A sweep stores it per contact and looks only at contacts whose moment
// has passed.
func (c *Compiled) NextBandChange(fit []Contribution, events []Event, r Result) (time.Time, bool) {
	if len(c.Model.Bands.Intent) == 0 && len(c.Model.Bands.Combined) == 0 {
		return time.Time{}, false
	}
	changed := func(at time.Time) bool {
		s := c.Score(fit, nil, events, at)
		return s.IntentBand != r.IntentBand || s.CombinedBand != r.CombinedBand
	}
	lo, hi := r.At, r.At.Add(c.Lookback())
	if !changed(hi) {
		return time.Time{}, false
	}
	// Bisection: changed is false at lo and true at hi, and stays true
	// once true, since scores only fall with time.
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if changed(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi.Truncate(time.Second).Add(time.Second), true
}

// BandChangedEvent is the event stored for a contact when one of its bands
// changes, with the properties of BandChange.
const BandChangedEvent = "score.band_changed"

// BandSet is a contact's band on each score ("" for a score without bands).
type BandSet struct {
	Fit      string `json:"fit"`
	Intent   string `json:"intent"`
	Combined string `json:"combined"`
}

// BandChange is one score moving from one band to another: the properties
// of a score.band_changed event (no PII: names from the model only).
type BandChange struct {
	Score string `json:"score"` // "fit", "intent" or "combined"
	From  string `json:"from"`
	To    string `json:"to"`
}

// Properties are the change as a score.band_changed event's properties.
func (b BandChange) Properties() map[string]any {
	return map[string]any{"score": b.Score, "from": b.From, "to": b.To}
}

// Bands are r's bands.
func (r Result) Bands() BandSet {
	return BandSet{Fit: r.FitBand, Intent: r.IntentBand, Combined: r.CombinedBand}
}

// ZeroBands are the bands of a contact nobody has scored yet: those of a
// score of 0 everywhere. A contact first scored into them has not changed
// band, so creating a model does not announce every contact as cold.
func (c *Compiled) ZeroBands() BandSet {
	return BandSet{Fit: BandOf(c.Model.Bands.Fit, 0), Intent: BandOf(c.Model.Bands.Intent, 0),
		Combined: BandOf(c.Model.Bands.Combined, 0)}
}

// Changes lists the scores whose band differs between from and to, in the
// order fit, intent, combined.
func Changes(from, to BandSet) []BandChange {
	var out []BandChange
	for _, c := range []BandChange{{"fit", from.Fit, to.Fit}, {"intent", from.Intent, to.Intent},
		{"combined", from.Combined, to.Combined}} {
		if c.From != c.To {
			out = append(out, c)
		}
	}
	return out
}

// IntentEvents are the event names the intent rules read, sorted, each
// once: only these events can move a contact's intent.
func (c *Compiled) IntentEvents() []string {
	var names []string
	for _, r := range c.Model.Intent {
		names = append(names, r.Event)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// NextCheck is when a contact scored r (from fit and events) must be
// looked at again with no new events: the next band change time alone
// brings (NextBandChange), or the moment an event dated after r.At starts
// to count, whichever comes first; ok is false when neither will happen.
func (c *Compiled) NextCheck(fit []Contribution, events []Event, r Result) (time.Time, bool) {
	next, ok := c.NextBandChange(fit, events, r)
	for _, e := range events {
		if e.OccurredAt.After(r.At) && (!ok || e.OccurredAt.Before(next)) {
			next, ok = e.OccurredAt, true
		}
	}
	return next, ok
}

// FormatAge writes an age for people, to the minute: "3d4h", "5h12m",
// "7m", "0m" (under a minute).
func FormatAge(d time.Duration) string {
	if d < 0 {
		return "-" + FormatAge(-d)
	}
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	hours, mins := rest/time.Hour, (rest%time.Hour)/time.Minute
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if hours > 0 {
		fmt.Fprintf(&b, "%dh", hours)
	}
	if mins > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dm", mins)
	}
	return b.String()
}
