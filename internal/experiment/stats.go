// Package experiment is what Tutti knows about controlled tests of journeys:
// which variant a contact is in (a deterministic, sticky assignment), and
// the statistics a result is judged by: conversion rates with intervals,
// lift against control with its interval and p-value, an always-valid
// sequential p-value for results that are looked at every day, and the
// sample-ratio check that catches broken assignment before anyone reads a
// lift. Everything here is pure: counts in, numbers out.
package experiment

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Proportion is a count of successes (conversions, unsubscribes...) out of
// trials (contacts who entered).
type Proportion struct {
	Successes int64 `json:"successes"`
	Trials    int64 `json:"trials"`
}

// Rate is Successes/Trials, 0 when there were no trials.
func (p Proportion) Rate() float64 {
	if p.Trials == 0 {
		return 0
	}
	return float64(p.Successes) / float64(p.Trials)
}

func (p Proportion) validate(name string) error {
	switch {
	case p.Trials < 0 || p.Successes < 0:
		return fmt.Errorf("%s: counts cannot be negative (%d of %d)", name, p.Successes, p.Trials)
	case p.Successes > p.Trials:
		return fmt.Errorf("%s: more successes than trials (%d of %d)", name, p.Successes, p.Trials)
	}
	return nil
}

// Interval is a two-sided confidence interval.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Contains reports whether x lies in the interval (bounds included).
func (i Interval) Contains(x float64) bool { return i.Low <= x && x <= i.High }

// DefaultConfidence is the confidence level reports use.
const DefaultConfidence = 0.95

// ErrNoTrials is a statistic asked of a group with no trials.
var ErrNoTrials = errors.New("no trials")

// z is the two-sided standard normal quantile for a confidence level.
func z(confidence float64) (float64, error) {
	if !(confidence > 0 && confidence < 1) {
		return 0, fmt.Errorf("confidence must be between 0 and 1, got %v", confidence)
	}
	return distuv.UnitNormal.Quantile(1 - (1-confidence)/2), nil
}

// Wilson is the Wilson score interval for a proportion. Unlike the textbook
// p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and keeps its coverage near
// the nominal level for the small counts and rare conversions that journey
// variants produce (Newcombe 1998, "Two-sided confidence intervals for the
// single proportion: comparison of seven methods", method 3).
func Wilson(p Proportion, confidence float64) (Interval, error) {
	if err := p.validate("proportion"); err != nil {
		return Interval{}, err
	}
	if p.Trials == 0 {
		return Interval{}, ErrNoTrials
	}
	zz, err := z(confidence)
	if err != nil {
		return Interval{}, err
	}
	return wilson(p, zz), nil
}

func wilson(p Proportion, z float64) Interval {
	n := float64(p.Trials)
	ph := p.Rate()
	z2 := z * z
	centre := (ph + z2/(2*n)) / (1 + z2/n)
	half := z / (1 + z2/n) * math.Sqrt(ph*(1-ph)/n+z2/(4*n*n))
	// At 0 or n successes the exact bound is 0 or 1; the formula gives it
	// up to rounding.
	lo, hi := centre-half, centre+half
	if p.Successes == 0 {
		lo = 0
	}
	if p.Successes == p.Trials {
		hi = 1
	}
	return Interval{Low: max(0, lo), High: min(1, hi)}
}

// Comparison is a variant against control.
type Comparison struct {
	Control Proportion `json:"control"`
	Variant Proportion `json:"variant"`
	// Difference is the variant's rate minus control's (absolute lift),
	// with Newcombe's hybrid score interval (method 10 of Newcombe 1998,
	// "Interval estimation for the difference between independent
	// proportions"), which behaves at rates near 0 where Wald does not.
	Difference   float64  `json:"difference"`
	DifferenceCI Interval `json:"difference_ci"`
	// Lift is the relative lift, variant/control - 1, with the interval
	// from the log risk ratio (Katz et al. 1978). Zero counts make the
	// log undefined; a half is then added to every cell (Haldane-Anscombe)
	// for the interval only. LiftDefined is false when control converted
	// no one: a relative lift of something over nothing is not a number.
	Lift        float64  `json:"lift"`
	LiftCI      Interval `json:"lift_ci"`
	LiftDefined bool     `json:"lift_defined"`
	// PValue is the two-sided p-value of the pooled two-proportion z-test
	// of "no difference": a fixed-horizon test, valid once, at the sample
	// size decided in advance. For results looked at repeatedly, use
	// AlwaysValidPValue.
	PValue float64 `json:"p_value"`
}

// Compare compares a variant with control at a confidence level.
func Compare(control, variant Proportion, confidence float64) (Comparison, error) {
	if err := control.validate("control"); err != nil {
		return Comparison{}, err
	}
	if err := variant.validate("variant"); err != nil {
		return Comparison{}, err
	}
	if control.Trials == 0 || variant.Trials == 0 {
		return Comparison{}, ErrNoTrials
	}
	zz, err := z(confidence)
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{Control: control, Variant: variant}
	p1, p2 := variant.Rate(), control.Rate()
	c.Difference = p1 - p2
	w1, w2 := wilson(variant, zz), wilson(control, zz)
	c.DifferenceCI = Interval{
		Low:  c.Difference - math.Sqrt((p1-w1.Low)*(p1-w1.Low)+(w2.High-p2)*(w2.High-p2)),
		High: c.Difference + math.Sqrt((w1.High-p1)*(w1.High-p1)+(p2-w2.Low)*(p2-w2.Low)),
	}
	c.PValue = twoProportionP(control, variant)
	if control.Successes > 0 {
		c.LiftDefined = true
		c.Lift = p1/p2 - 1
	}
	// Log risk ratio interval, with the half correction when a cell is empty.
	a, n1 := float64(variant.Successes), float64(variant.Trials)
	b, n2 := float64(control.Successes), float64(control.Trials)
	if variant.Successes == 0 || control.Successes == 0 || variant.Successes == variant.Trials || control.Successes == control.Trials {
		a, b, n1, n2 = a+0.5, b+0.5, n1+1, n2+1
	}
	logRR := math.Log((a / n1) / (b / n2))
	se := math.Sqrt(1/a - 1/n1 + 1/b - 1/n2)
	c.LiftCI = Interval{Low: math.Exp(logRR-zz*se) - 1, High: math.Exp(logRR+zz*se) - 1}
	return c, nil
}

// twoProportionP is the two-sided p-value of the pooled z-test.
func twoProportionP(control, variant Proportion) float64 {
	n1, n2 := float64(variant.Trials), float64(control.Trials)
	pooled := float64(variant.Successes+control.Successes) / (n1 + n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2))
	if se == 0 {
		// Everyone converted, or no one did, in both groups: no evidence
		// of a difference.
		return 1
	}
	zs := (variant.Rate() - control.Rate()) / se
	return math.Erfc(math.Abs(zs) / math.Sqrt2)
}

// Look is the cumulative counts of control and one variant at one look at
// the results (for example each day's report).
type Look struct {
	Control Proportion `json:"control"`
	Variant Proportion `json:"variant"`
}

// DefaultMixingSD is the default standard deviation (tau) of the normal
// mixture over the true difference in conversion rate that the sequential
// test averages over: 0.02, two percentage points, the size of effect
// journey tests of offers, cadence and channel order usually chase. It
// changes how fast a real effect is detected, never the guarantee against
// false positives; it must be chosen before the data is seen.
const DefaultMixingSD = 0.02

// AlwaysValidPValue is the mixture sequential probability ratio test's
// always-valid p-value (Johari, Koomen, Pekelis, Walsh 2017, "Peeking at
// A/B tests", with the normal approximation for two Bernoulli streams):
// at each look, with d the observed difference in rates and V its
// variance,
//
//	Λ = sqrt(V/(V+τ²)) · exp(τ² d² / (2 V (V+τ²)))
//
// and the p-value is the running minimum of 1/Λ over the looks, starting
// at 1. Rejecting "no difference" when it falls below α keeps the false
// positive rate at α however often, and whenever, the results are looked
// at, provided the looks are taken on a schedule that does not depend on
// the data (every day, say). Looks must be cumulative and in time order;
// looks where a group has no trials or V is 0 count as no evidence.
func AlwaysValidPValue(looks []Look, tau float64) (float64, error) {
	if !(tau > 0) {
		return 0, fmt.Errorf("mixing sd must be positive, got %v", tau)
	}
	p := 1.0
	var prev Look
	for i, l := range looks {
		if err := l.Control.validate(fmt.Sprintf("look %d: control", i)); err != nil {
			return 0, err
		}
		if err := l.Variant.validate(fmt.Sprintf("look %d: variant", i)); err != nil {
			return 0, err
		}
		if l.Control.Trials < prev.Control.Trials || l.Variant.Trials < prev.Variant.Trials ||
			l.Control.Successes < prev.Control.Successes || l.Variant.Successes < prev.Variant.Successes {
			return 0, fmt.Errorf("look %d: counts went down; looks must be cumulative and in time order", i)
		}
		prev = l
		if l.Control.Trials == 0 || l.Variant.Trials == 0 {
			continue
		}
		pc, pv := l.Control.Rate(), l.Variant.Rate()
		v := pc*(1-pc)/float64(l.Control.Trials) + pv*(1-pv)/float64(l.Variant.Trials)
		if v == 0 {
			continue
		}
		t2 := tau * tau
		d := pv - pc
		// In logs: exp(...) overflows long before the p-value stops being 0.
		logLambda := 0.5*math.Log(v/(v+t2)) + t2*d*d/(2*v*(v+t2))
		p = min(p, math.Exp(-logLambda))
	}
	return min(p, 1), nil
}

// SRM is a sample ratio mismatch check: did the groups get the shares of
// contacts the assignment was configured to give them?
type SRM struct {
	ChiSquare float64 `json:"chi_square"`
	PValue    float64 `json:"p_value"`
	// Mismatch is PValue < SRMThreshold: the assignment (or the data
	// collection behind it) is broken, and no lift in the experiment can
	// be trusted until the cause is found.
	Mismatch bool `json:"mismatch"`
}

// SRMThreshold is the p-value below which the split is called broken. It is
// strict, as in Kohavi, Tang and Xu (2020, ch. 21), because the check runs
// on every report and a false alarm stops a test.
const SRMThreshold = 0.001

// SampleRatioMismatch runs Pearson's chi-square goodness-of-fit test of the
// observed group sizes against the configured weights (any positive scale).
func SampleRatioMismatch(observed []int64, weights []float64) (SRM, error) {
	if len(observed) != len(weights) {
		return SRM{}, fmt.Errorf("%d groups but %d weights", len(observed), len(weights))
	}
	if len(observed) < 2 {
		return SRM{}, errors.New("a sample ratio needs at least two groups")
	}
	var total int64
	var wsum float64
	for i := range observed {
		if observed[i] < 0 {
			return SRM{}, fmt.Errorf("group %d: negative count %d", i, observed[i])
		}
		if !(weights[i] > 0) || math.IsInf(weights[i], 0) {
			return SRM{}, fmt.Errorf("group %d: weight must be positive, got %v", i, weights[i])
		}
		total += observed[i]
		wsum += weights[i]
	}
	if total == 0 {
		return SRM{}, ErrNoTrials
	}
	var chi float64
	for i := range observed {
		exp := float64(total) * weights[i] / wsum
		d := float64(observed[i]) - exp
		chi += d * d / exp
	}
	p := distuv.ChiSquared{K: float64(len(observed) - 1)}.Survival(chi)
	return SRM{ChiSquare: chi, PValue: p, Mismatch: p < SRMThreshold}, nil
}

// Guardrail judges a metric a variant must not make worse (unsubscribe or
// STOP rate, spam complaints, bounces): it is breached when the variant's
// rate is above control's and the whole interval of the difference is
// above zero, so noise alone does not stop a test.
func Guardrail(control, variant Proportion, confidence float64) (breached bool, c Comparison, err error) {
	c, err = Compare(control, variant, confidence)
	if err != nil {
		return false, Comparison{}, err
	}
	return c.DifferenceCI.Low > 0, c, nil
}
