package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
)

// newScoreCmd is `tutti score`: the scoring model and a contact's score.
func (c *cli) newScoreCmd() *cobra.Command {
	return c.group("score", "Lead scores", c.newScoreModelCmd(), c.newScoreExplainCmd())
}

// newScoreModelCmd is `tutti score model set FILE` and `tutti score model show`.
func (c *cli) newScoreModelCmd() *cobra.Command {
	set := c.leaf("set", "FILE",
		"Store a scoring model (YAML or JSON) as the workspace's next version; a bad model is refused with every problem's path",
		1, func(ctx context.Context, inv *invocation) error {
			data, ctype, err := readDocument(inv.args[0])
			if err != nil {
				return err
			}
			var out api.ScoreModelAnswer
			if _, err := c.client().call(ctx, http.MethodPut, "/v1/score-model", nil, data, ctype, &out); err != nil {
				return err
			}
			if out.Created {
				fmt.Fprintf(c.stdout, "stored score model %s as version %d\n", out.Model.ID, out.Version)
			} else {
				fmt.Fprintf(c.stdout, "score model %s unchanged: version %d\n", out.Model.ID, out.Version)
			}
			return nil
		})
	show := c.leaf("show", "", "Print the scoring model in force (JSON)", 0, func(ctx context.Context, _ *invocation) error {
		raw, err := c.client().call(ctx, http.MethodGet, "/v1/score-model", nil, nil, "", nil)
		if err != nil {
			return err
		}
		return c.printRaw(raw)
	})
	return c.group("model", "The workspace's scoring model", set, show)
}

// newScoreExplainCmd is `tutti score explain CONTACT`.
func (c *cli) newScoreExplainCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("explain", "CONTACT [--json]",
		"Show a contact's fit, intent and combined scores now, their bands, and every contribution with its age and decayed value",
		1, func(ctx context.Context, inv *invocation) error {
			var out api.ScoreAnswer
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(inv.args[0])+"/score", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			return writeScoreExplanation(c.stdout, out)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of the explanation")
	return cmd
}

// writeScoreExplanation prints a score answer for people.
func writeScoreExplanation(w io.Writer, s api.ScoreAnswer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "contact %s, score model version %d, at %s\n\n", s.ContactID, s.ModelVersion, s.At.Format(time.RFC3339))
	band := func(b string) string {
		if b == "" {
			return "-"
		}
		return b
	}
	fmt.Fprintln(tw, "SCORE\tVALUE\tBAND\tSTORED BAND")
	stored := func(name string) string {
		if s.Stored == nil {
			return "(never scored)"
		}
		return band(map[string]string{"fit": s.Stored.Bands.Fit, "intent": s.Stored.Bands.Intent, "combined": s.Stored.Bands.Combined}[name])
	}
	fmt.Fprintf(tw, "fit\t%.2f\t%s\t%s\n", s.Fit, band(s.Bands.Fit), stored("fit"))
	fmt.Fprintf(tw, "intent\t%.2f\t%s\t%s\n", s.Intent, band(s.Bands.Intent), stored("intent"))
	fmt.Fprintf(tw, "combined\t%.2f\t%s\t%s\n", s.Combined, band(s.Bands.Combined), stored("combined"))
	if s.Stored != nil && s.Stored.NextCheckAt != nil {
		fmt.Fprintf(tw, "\ntime alone moves a band at %s\n", s.Stored.NextCheckAt.Format(time.RFC3339))
	}
	if len(s.Contributions) == 0 {
		fmt.Fprintln(tw, "\nno contributions: no fit rule matched and no event counts")
	} else {
		fmt.Fprintln(tw, "\nKIND\tRULE\tEVENT\tAGE\tPOINTS\tVALUE NOW")
		for _, c := range s.Contributions {
			event, age := "-", "-"
			if c.Kind == "intent" {
				event, age = c.EventID, c.Age
			}
			capped := ""
			if c.Capped {
				capped = " (capped)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f%s\n", c.Kind, c.Rule, event, age, c.Points, c.Value, capped)
		}
	}
	if len(s.Unevaluated) > 0 {
		fmt.Fprintln(tw, "\nfit rules without a value (they add nothing):")
		rules := make([]string, 0, len(s.Unevaluated))
		for r := range s.Unevaluated {
			rules = append(rules, r)
		}
		sort.Strings(rules)
		for _, r := range rules {
			fmt.Fprintf(tw, "  %s\t%s\n", r, s.Unevaluated[r])
		}
	}
	return tw.Flush()
}
