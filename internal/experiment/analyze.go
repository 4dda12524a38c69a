package experiment

import (
	"fmt"
	"sort"
	"time"
)

// Counts is what was counted for one group of an experiment (a variant,
// the holdout): contacts who entered it, and how many of them converted
// and tripped each guardrail within the conversion window of entering.
type Counts struct {
	Group     string
	Entered   int64
	Converted int64
	// TimeToConvertP50 and P90 are in seconds, nil with no conversion.
	TimeToConvertP50 *float64
	TimeToConvertP90 *float64
	// Guardrail counts: contacts who opted out of a channel (an
	// unsubscribe, an SMS STOP), reported spam, or had a message of the
	// journey bounce.
	Unsubscribed   int64
	SpamComplaints int64
	Bounced        int64
	// Daily is entries and conversions per UTC day (not cumulative), in
	// any order: the looks of the sequential test.
	Daily []Day
	// Steps counts, per send step, the group's contacts with a message of
	// the step from entering the group on, and those it was sent to.
	Steps map[string]StepCounts
}

// StepCounts is how far a group got through one send step.
type StepCounts struct {
	Reached int64 `json:"reached"`
	Sent    int64 `json:"sent"`
}

// Day is one day's entries into a group and conversions in it.
type Day struct {
	Day       time.Time
	Entered   int64
	Converted int64
}

// Design is how an experiment is judged.
type Design struct {
	// Control is the group the others are compared with.
	Control string
	// Holdout is the group that was sent nothing, if any: every other
	// group but Control is also compared with it (VsHoldout).
	Holdout string
	// Weights are the configured shares of the groups the assignment
	// hashed contacts into, for the sample-ratio check; groups without a
	// weight (a holdout within a split) are left out of it.
	Weights map[string]float64
	// Confidence of the intervals (DefaultConfidence when 0) and the
	// mixture sd of the sequential test (DefaultMixingSD when 0).
	Confidence float64
	MixingSD   float64
}

// Result is one group's figures.
type Result struct {
	Group     string `json:"group"`
	IsControl bool   `json:"is_control"`
	IsHoldout bool   `json:"is_holdout"`
	Entered   int64  `json:"entered"`
	Converted int64  `json:"converted"`
	// Rate is Converted/Entered, with its Wilson interval (absent with no entries).
	Rate             float64   `json:"rate"`
	RateCI           *Interval `json:"rate_ci,omitempty"`
	TimeToConvertP50 *float64  `json:"time_to_convert_p50_seconds,omitempty"`
	TimeToConvertP90 *float64  `json:"time_to_convert_p90_seconds,omitempty"`
	// VsControl and VsHoldout compare this group's conversion with the
	// control's and the holdout's (absent for those groups themselves, and
	// when either side has no entries).
	VsControl  *Test        `json:"vs_control,omitempty"`
	VsHoldout  *Test        `json:"vs_holdout,omitempty"`
	Guardrails []GuardCheck `json:"guardrails"`
	// Steps is Counts.Steps: the group's contacts reaching, and sent, each
	// send step (a held-out group reaches steps and is sent nothing).
	Steps map[string]StepCounts `json:"steps"`
}

// Test is a comparison with its always-valid sequential p-value.
type Test struct {
	Comparison
	// AlwaysValidPValue is the mSPRT p-value over daily looks
	// (AlwaysValidPValue): the one to act on when results are read
	// before the planned end.
	AlwaysValidPValue float64 `json:"always_valid_p_value"`
}

// GuardCheck is one guardrail metric of a group.
type GuardCheck struct {
	Metric string  `json:"metric"`
	Count  int64   `json:"count"`
	Rate   float64 `json:"rate"`
	// Breached: the group's rate is above control's with the whole
	// interval of the difference above zero (Guardrail). Never for control.
	Breached  bool        `json:"breached"`
	VsControl *Comparison `json:"vs_control,omitempty"`
}

// Guardrail metric names.
const (
	MetricUnsubscribed   = "unsubscribed"
	MetricSpamComplaints = "spam_complaints"
	MetricBounced        = "bounced"
)

// Analysis is an experiment's result.
type Analysis struct {
	Groups []Result `json:"groups"`
	// SRM checks the groups' sizes against their weights; absent when
	// fewer than two weighted groups have entries.
	SRM *SRM `json:"srm,omitempty"`
	// Looks is how many daily looks the sequential p-values are over.
	Looks int `json:"looks"`
}

// Analyze judges an experiment from its counts: every group's rate with
// its interval, each against control (and the holdout) with lift,
// interval, fixed-horizon and always-valid p-values, the sample-ratio
// check, and the guardrails against control. groups keep their order.
func Analyze(groups []Counts, d Design) (Analysis, error) {
	if d.Confidence == 0 {
		d.Confidence = DefaultConfidence
	}
	if d.MixingSD == 0 {
		d.MixingSD = DefaultMixingSD
	}
	byName := map[string]Counts{}
	for _, g := range groups {
		if _, dup := byName[g.Group]; dup {
			return Analysis{}, fmt.Errorf("group %q counted twice", g.Group)
		}
		byName[g.Group] = g
	}
	control, ok := byName[d.Control]
	if !ok {
		return Analysis{}, fmt.Errorf("control group %q has no counts", d.Control)
	}
	holdout, hasHoldout := byName[d.Holdout]
	hasHoldout = hasHoldout && d.Holdout != "" && d.Holdout != d.Control

	days := allDays(groups)
	out := Analysis{Groups: make([]Result, 0, len(groups)), Looks: len(days)}
	for _, g := range groups {
		r := Result{Group: g.Group, IsControl: g.Group == d.Control, IsHoldout: g.Group == d.Holdout,
			Entered: g.Entered, Converted: g.Converted, TimeToConvertP50: g.TimeToConvertP50, TimeToConvertP90: g.TimeToConvertP90,
			Guardrails: []GuardCheck{}, Steps: g.Steps}
		if r.Steps == nil {
			r.Steps = map[string]StepCounts{}
		}
		p := Proportion{Successes: g.Converted, Trials: g.Entered}
		if err := p.validate("group " + g.Group); err != nil {
			return Analysis{}, err
		}
		r.Rate = p.Rate()
		if g.Entered > 0 {
			ci, err := Wilson(p, d.Confidence)
			if err != nil {
				return Analysis{}, err
			}
			r.RateCI = &ci
		}
		var err error
		if !r.IsControl && !r.IsHoldout {
			if r.VsControl, err = test(control, g, days, d); err != nil {
				return Analysis{}, err
			}
		}
		if hasHoldout && !r.IsHoldout {
			if r.VsHoldout, err = test(holdout, g, days, d); err != nil {
				return Analysis{}, err
			}
		}
		for _, m := range []struct {
			name string
			of   func(Counts) int64
		}{
			{MetricUnsubscribed, func(c Counts) int64 { return c.Unsubscribed }},
			{MetricSpamComplaints, func(c Counts) int64 { return c.SpamComplaints }},
			{MetricBounced, func(c Counts) int64 { return c.Bounced }},
		} {
			gp := Proportion{Successes: m.of(g), Trials: g.Entered}
			if err := gp.validate("group " + g.Group + ": " + m.name); err != nil {
				return Analysis{}, err
			}
			check := GuardCheck{Metric: m.name, Count: gp.Successes, Rate: gp.Rate()}
			if !r.IsControl && !r.IsHoldout && g.Entered > 0 && control.Entered > 0 {
				breached, c, err := Guardrail(Proportion{Successes: m.of(control), Trials: control.Entered}, gp, d.Confidence)
				if err != nil {
					return Analysis{}, err
				}
				check.Breached, check.VsControl = breached, &c
			}
			r.Guardrails = append(r.Guardrails, check)
		}
		out.Groups = append(out.Groups, r)
	}

	var observed []int64
	var weights []float64
	var total int64
	for _, g := range groups {
		if w, ok := d.Weights[g.Group]; ok {
			observed, weights = append(observed, g.Entered), append(weights, w)
			total += g.Entered
		}
	}
	if len(observed) >= 2 && total > 0 {
		srm, err := SampleRatioMismatch(observed, weights)
		if err != nil {
			return Analysis{}, err
		}
		out.SRM = &srm
	}
	return out, nil
}

// test compares g with base, and runs the sequential test over the daily
// looks (cumulative counts at the end of each day either group saw).
func test(base, g Counts, days []time.Time, d Design) (*Test, error) {
	if base.Entered == 0 || g.Entered == 0 {
		return nil, nil
	}
	c, err := Compare(Proportion{Successes: base.Converted, Trials: base.Entered},
		Proportion{Successes: g.Converted, Trials: g.Entered}, d.Confidence)
	if err != nil {
		return nil, err
	}
	looks := cumulative(base, g, days)
	p, err := AlwaysValidPValue(looks, d.MixingSD)
	if err != nil {
		return nil, err
	}
	return &Test{Comparison: c, AlwaysValidPValue: p}, nil
}

// allDays is every day any group has entries or conversions on, in order.
func allDays(groups []Counts) []time.Time {
	seen := map[time.Time]bool{}
	var days []time.Time
	for _, g := range groups {
		for _, dd := range g.Daily {
			if !seen[dd.Day] {
				seen[dd.Day] = true
				days = append(days, dd.Day)
			}
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days
}

// cumulative is the looks at the end of each day.
func cumulative(base, g Counts, days []time.Time) []Look {
	sum := func(c Counts, upTo time.Time) Proportion {
		var p Proportion
		for _, dd := range c.Daily {
			if !dd.Day.After(upTo) {
				p.Trials += dd.Entered
				p.Successes += dd.Converted
			}
		}
		return p
	}
	looks := make([]Look, len(days))
	for i, day := range days {
		looks[i] = Look{Control: sum(base, day), Variant: sum(g, day)}
	}
	return looks
}
