package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/experiment"
)

// newReportCmd is `tutti report`: a journey's funnel and an experiment's
// results, as GET /v1/reports/... answers them.
func (c *cli) newReportCmd() *cobra.Command {
	var journeyJSON, experimentJSON bool
	journeyCmd := c.leaf("journey", "JOURNEY [--json]",
		"A journey's funnel per version: entered, each step (sent, skipped by reason, deferred, failed), converted, time to convert, opt-outs, conversion by path",
		1, func(ctx context.Context, inv *invocation) error {
			var out api.JourneyReport
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/reports/journeys/"+url.PathEscape(inv.args[0]), nil, nil, "", &out)
			if err != nil {
				return err
			}
			if journeyJSON {
				return c.printRaw(raw)
			}
			printJourneyReport(c.stdout, out)
			return nil
		})
	journeyCmd.Flags().BoolVar(&journeyJSON, "json", false, "print the API's JSON instead of the report")
	experimentCmd := c.leaf("experiment", "JOURNEY EXPERIMENT [--json]",
		"An experiment's results: conversion per group with intervals, lift against control, p-values (fixed and always-valid), sample ratio, guardrails (EXPERIMENT holdout: the journey against its holdout)",
		2, func(ctx context.Context, inv *invocation) error {
			var out api.ExperimentReport
			path := "/v1/reports/journeys/" + url.PathEscape(inv.args[0]) + "/experiments/" + url.PathEscape(inv.args[1])
			raw, err := c.client().call(ctx, http.MethodGet, path, nil, nil, "", &out)
			if err != nil {
				return err
			}
			if experimentJSON {
				return c.printRaw(raw)
			}
			printExperimentReport(c.stdout, out)
			return nil
		})
	experimentCmd.Flags().BoolVar(&experimentJSON, "json", false, "print the API's JSON instead of the report")
	return c.group("report", "Reports", journeyCmd, experimentCmd, c.newReportAttributionCmd())
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

func interval(ci *experiment.Interval) string {
	if ci == nil {
		return "-"
	}
	return "[" + pct(ci.Low) + ", " + pct(ci.High) + "]"
}

func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return time.Duration(*s * float64(time.Second)).Round(time.Second).String()
}

// counts prints a map as "k1 n1, k2 n2" in key order.
func counts[K ~string](m map[K]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[K(k)])
	}
	return strings.Join(parts, ", ")
}

func printJourneyReport(w io.Writer, r api.JourneyReport) {
	fmt.Fprintf(w, "journey %s: %d version(s), as of %s\n", r.JourneyID, len(r.Versions), whenUTC(r.GeneratedAt))
	for _, v := range r.Versions {
		fmt.Fprintf(w, "\nversion %d: %d entered (%d contacts)", v.Version, v.Entered, v.Contacts)
		if v.Goal != "" {
			fmt.Fprintf(w, ", goal %s within %s of entry", v.Goal, v.ConversionWindow)
		}
		fmt.Fprintln(w)
		if v.Converted != nil {
			rate := "-"
			if v.ConversionRate != nil {
				rate = pct(*v.ConversionRate)
			}
			fmt.Fprintf(w, "  converted %d (%s, 95%% CI %s), time to convert p50 %s, p90 %s\n",
				*v.Converted, rate, interval(v.ConversionRateCI), seconds(v.TimeToConvertP50Seconds), seconds(v.TimeToConvertP90Seconds))
		}
		fmt.Fprintf(w, "  %-20s %-8s %8s %6s %8s %7s %8s %8s %9s\n", "step", "kind", "reached", "sent", "skipped", "failed", "pending", "unknown", "deferred")
		for _, s := range v.Steps {
			reached := "-"
			if s.Reached != nil {
				reached = fmt.Sprint(*s.Reached)
			}
			fmt.Fprintf(w, "  %-20s %-8s %8s", s.StepID, s.Kind, reached)
			if x := s.Sends; x != nil {
				fmt.Fprintf(w, " %6d %8d %7d %8d %8d %9d", x.Sent, x.Skipped, x.Failed, x.Pending, x.Unknown, x.Deferred)
			}
			if len(s.Variants) > 0 {
				fmt.Fprintf(w, "  variants: %s", counts(s.Variants))
			}
			fmt.Fprintln(w)
			if x := s.Sends; x != nil && len(x.SkippedByReason) > 0 {
				fmt.Fprintf(w, "  %-20s skipped: %s\n", "", counts(x.SkippedByReason))
			}
			if x := s.Sends; x != nil && len(x.FailedByReason) > 0 {
				fmt.Fprintf(w, "  %-20s failed: %s\n", "", counts(x.FailedByReason))
			}
		}
		for _, ch := range v.Channels {
			fmt.Fprintf(w, "  %s: sent to %d contact(s); %d run(s) opted out (%s of entered)\n", ch.Channel, ch.SentTo, ch.OptedOut, pct(ch.OptOutRate))
		}
		if len(v.Holdout) > 0 {
			fmt.Fprintf(w, "  holdout (first entered at this version): %s\n", counts(v.Holdout))
		}
		printByPath(w, v)
	}
}

// printByPath prints conversion by path: the ended runs of each path,
// the label last as paths are long.
func printByPath(w io.Writer, v api.VersionReport) {
	if len(v.ByPath) == 0 {
		return
	}
	fmt.Fprintf(w, "  by path (runs that ended):\n  %8s %9s %8s %-18s %8s  %s\n", "runs", "converted", "rate", "95% CI", "p50", "path")
	for _, p := range v.ByPath {
		converted, rate := "-", "-"
		if p.Converted != nil {
			converted = fmt.Sprint(*p.Converted)
		}
		if p.ConversionRate != nil {
			rate = pct(*p.ConversionRate)
		}
		fmt.Fprintf(w, "  %8d %9s %8s %-18s %8s  %s\n", p.Entered, converted, rate, interval(p.ConversionRateCI),
			seconds(p.TimeToConvertP50Seconds), p.Label())
	}
}

func pvalue(p float64) string {
	if p < 0.0001 {
		return "<0.0001"
	}
	return fmt.Sprintf("%.4f", p)
}

func printTest(w io.Writer, label string, t *experiment.Test) {
	if t == nil {
		return
	}
	lift := "n/a (base converted no one)"
	if t.LiftDefined {
		lift = fmt.Sprintf("%+.1f%% [%+.1f%%, %+.1f%%]", 100*t.Lift, 100*t.LiftCI.Low, 100*t.LiftCI.High)
	}
	fmt.Fprintf(w, "      vs %s: difference %+.1f pts [%+.1f, %+.1f], lift %s, p %s, always-valid p %s\n", label,
		100*t.Difference, 100*t.DifferenceCI.Low, 100*t.DifferenceCI.High, lift, pvalue(t.PValue), pvalue(t.AlwaysValidPValue))
}

func printExperimentReport(w io.Writer, r api.ExperimentReport) {
	fmt.Fprintf(w, "experiment %s of journey %s (design of version %d): goal %s within %s, control %s, %.0f%% intervals, %d daily look(s)\n",
		r.Experiment, r.JourneyID, r.Version, r.Goal, r.ConversionWindow, r.Control, 100*r.Confidence, r.Looks)
	fmt.Fprintf(w, "%-24s %8s %9s %8s  %s\n", "group", "entered", "converted", "rate", "95% CI")
	for _, g := range r.Groups {
		name := g.Group
		switch {
		case g.IsControl:
			name += " (control)"
		case g.IsHoldout:
			name += " (holdout)"
		}
		fmt.Fprintf(w, "%-24s %8d %9d %8s  %s\n", name, g.Entered, g.Converted, pct(g.Rate), interval(g.RateCI))
		printTest(w, "control", g.VsControl)
		printTest(w, "holdout", g.VsHoldout)
		var guard []string
		for _, c := range g.Guardrails {
			s := fmt.Sprintf("%s %d (%s)", c.Metric, c.Count, pct(c.Rate))
			if c.Breached {
				s += " BREACHED"
			}
			guard = append(guard, s)
		}
		fmt.Fprintf(w, "      guardrails: %s\n", strings.Join(guard, ", "))
		if len(g.Steps) > 0 {
			steps := make([]string, 0, len(g.Steps))
			for step := range g.Steps {
				steps = append(steps, step)
			}
			sort.Strings(steps)
			for i, step := range steps {
				steps[i] = fmt.Sprintf("%s %d reached, %d sent", step, g.Steps[step].Reached, g.Steps[step].Sent)
			}
			fmt.Fprintf(w, "      steps: %s\n", strings.Join(steps, "; "))
		}
	}
	switch {
	case r.SRM == nil:
		fmt.Fprintln(w, "sample ratio: not enough entries to check")
	case r.SRM.Mismatch:
		fmt.Fprintf(w, "sample ratio: MISMATCH (chi-square %.2f, p %s): the assignment is broken; trust no lift until it is explained\n", r.SRM.ChiSquare, pvalue(r.SRM.PValue))
	default:
		fmt.Fprintf(w, "sample ratio: as configured (chi-square %.2f, p %s)\n", r.SRM.ChiSquare, pvalue(r.SRM.PValue))
	}
	if r.ControlGroupExcluded > 0 {
		fmt.Fprintf(w, "left out: %d contact(s) in the workspace control group\n", r.ControlGroupExcluded)
	}
}
