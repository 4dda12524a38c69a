package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
)

// newReportAttributionCmd is `tutti report attribution`: GET
// /v1/reports/attribution, every model side by side.
func (c *cli) newReportAttributionCmd() *cobra.Command {
	var (
		asJSON bool
		flags  = map[string]*string{}
	)
	cmd := c.leaf("attribution", "--event NAME [--from --to --model --lookback --half-life] [--json]",
		"Conversions of a period credited to channels, journeys and steps by first touch, last touch, linear, time decay and U-shaped; unattributed conversions counted",
		0, func(ctx context.Context, inv *invocation) error {
			q := url.Values{}
			for name, v := range flags {
				if *v != "" {
					q.Set(strings.ReplaceAll(name, "-", "_"), *v)
				}
			}
			var out api.AttributionReport
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/reports/attribution", q, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			printAttributionReport(c.stdout, out)
			return nil
		})
	for _, f := range []struct{ name, usage string }{
		{"event", "the conversion event, e.g. purchase"},
		{"journey", "a journey whose goal event is the conversion (instead of --event)"},
		{"from", "start of the period, RFC 3339 or a date (default: 30 days before --to)"},
		{"to", "end of the period, excluded (default: now)"},
		{"model", "models, comma-separated (default: all): first_touch, last_touch, linear, time_decay, u_shaped"},
		{"lookback", "how long before a conversion a touchpoint counts (default 7d)"},
		{"half-life", "the time_decay half-life (default 1d)"},
	} {
		flags[f.name] = cmd.Flags().String(f.name, "", f.usage)
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of the report")
	return cmd
}

func printAttributionReport(w io.Writer, r api.AttributionReport) {
	fmt.Fprintf(w, "attribution of %s", r.Event)
	if r.JourneyID != "" {
		fmt.Fprintf(w, " (goal of journey %s)", r.JourneyID)
	}
	fmt.Fprintf(w, ", %s to %s (end excluded), lookback %s, half-life %s\n", whenUTC(r.From), whenUTC(r.To), r.Lookback, r.HalfLife)
	fmt.Fprintf(w, "%d conversion(s) by %d contact(s): %d attributed, %d unattributed (no touchpoint in the window)\n",
		r.Conversions, r.Contacts, r.Attributed, r.Unattributed)
	var kinds []string
	for _, k := range []string{"send", "open", "click", "reply", "audience"} {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.Touchpoints[k]))
	}
	fmt.Fprintf(w, "touchpoints in the windows: %s\n", strings.Join(kinds, ", "))
	header := func(title string) {
		fmt.Fprintf(w, "\n%-24s", title)
		for _, m := range r.Models {
			fmt.Fprintf(w, " %11s", m)
		}
		fmt.Fprintf(w, " %11s %8s\n", "touchpoints", "touched")
	}
	row := func(name string, c api.AttributionCredit) {
		fmt.Fprintf(w, "  %-22s", name)
		for _, m := range r.Models {
			fmt.Fprintf(w, " %11.2f", c.Credit[m])
		}
		fmt.Fprintf(w, " %11d %8d\n", c.Touchpoints, c.Touched)
	}
	header("by channel")
	for _, ch := range r.ByChannel {
		row(string(ch.Channel), ch.AttributionCredit)
	}
	fmt.Fprintf(w, "  %-22s", "unattributed")
	for range r.Models {
		fmt.Fprintf(w, " %11d", r.Unattributed)
	}
	fmt.Fprintln(w)
	header("by journey")
	for _, j := range r.ByJourney {
		row(noJourney(j.JourneyID), j.AttributionCredit)
	}
	header("by step")
	for _, st := range r.ByStep {
		name := noJourney(st.JourneyID)
		if st.JourneyID != "" {
			name += "/" + st.StepID
		}
		row(name, st.AttributionCredit)
	}
}

func noJourney(id string) string {
	if id == "" {
		return "(no journey)"
	}
	return id
}
