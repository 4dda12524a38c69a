package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/preview"
)

// newJourneyPreviewCmd is `tutti journey preview`: POST /v1/journeys/preview
// with a spec file, printed as a timeline.
func (c *cli) newJourneyPreviewCmd() *cobra.Command {
	var (
		contact, events, start, horizon string
		asJSON                          bool
	)
	cmd := c.leaf("preview", "SPEC --contact ID [--events FILE] [--start TIME] [--horizon 90d] [--json]",
		"Play a journey spec for a real contact in simulated time, without sending: the path, each rendered message and each gate decision",
		1, func(ctx context.Context, inv *invocation) error {
			if strings.TrimSpace(contact) == "" {
				return inv.usagef("--contact is required")
			}
			data, err := readFile(inv.args[0])
			if err != nil {
				return err
			}
			spec, err := yaml.YAMLToJSON(data)
			if err != nil {
				return fmt.Errorf("%s: not YAML or JSON: %w", inv.args[0], err)
			}
			req := api.PreviewRequest{Spec: spec, ContactID: contact, StartAt: start, Horizon: horizon}
			if events != "" {
				data, err := readFile(events)
				if err != nil {
					return err
				}
				if err := yaml.UnmarshalStrict(data, &req.Events); err != nil {
					return fmt.Errorf("%s: want a list of {after, name, properties}: %w", events, err)
				}
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out preview.Result
			raw, err := c.client().call(ctx, http.MethodPost, "/v1/journeys/preview", nil, body, "application/json", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			printPreview(c.stdout, out)
			return nil
		})
	cmd.Flags().StringVar(&contact, "contact", "", "the contact to preview the journey for (required)")
	cmd.Flags().StringVar(&events, "events", "", `a YAML or JSON file of events to post during the preview: [{after: "2d", name: purchase}]`)
	cmd.Flags().StringVar(&start, "start", "", "the simulated moment the contact enters (RFC 3339; default now)")
	cmd.Flags().StringVar(&horizon, "horizon", "", `how much simulated time to follow the run (default "90d")`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a timeline")
	return cmd
}

// printPreview prints a preview as one timeline: steps, messages and the
// events posted, in time order.
func printPreview(w io.Writer, r preview.Result) {
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for _, st := range r.Steps {
		text := fmt.Sprintf("step %s (%s)", st.StepID, st.Kind)
		if st.Outcome != "" {
			text += ": " + st.Outcome
		}
		lines = append(lines, line{st.StartedAt, text})
	}
	for _, e := range r.Events {
		lines = append(lines, line{e.At, "event " + e.Name + " posted"})
	}
	for _, m := range r.Messages {
		text := fmt.Sprintf("  %s %s", m.Channel, strings.ReplaceAll(m.Status, "_", " "))
		if m.Reason != "" {
			text += " (" + m.Reason + ")"
		}
		if m.Decision != nil && !m.Decision.Until.IsZero() {
			text += ", asked again at " + m.Decision.Until.UTC().Format(time.RFC3339)
		}
		switch {
		case m.Email != nil && m.Email.TemplateID != "":
			text += fmt.Sprintf("\n      to %s: template %s", m.Email.To, m.Email.TemplateID)
		case m.Email != nil:
			text += fmt.Sprintf("\n      to %s: %q\n      %s", m.Email.To, m.Email.Subject, indent(m.Email.Text))
		case m.SMS != nil:
			text += fmt.Sprintf("\n      to %s: %s", m.SMS.To, indent(m.SMS.Body))
		}
		lines = append(lines, line{m.At, text})
	}
	// Stable: at one moment a step comes before the message it sent.
	slices.SortStableFunc(lines, func(a, b line) int { return a.at.Compare(b.at) })
	fmt.Fprintf(w, "Preview from %s (nothing sent, nothing written)\n", r.StartedAt.UTC().Format(time.RFC3339))
	for _, l := range lines {
		fmt.Fprintf(w, "%s  %s\n", l.at.UTC().Format(time.RFC3339), l.text)
	}
	end := string(r.Status)
	if r.ExitReason != "" {
		end += " (" + r.ExitReason + ")"
	}
	if r.Status == "active" {
		end = "still active at the horizon"
	}
	fmt.Fprintf(w, "%s  ended: %s\n", r.EndedAt.UTC().Format(time.RFC3339), end)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ")
}
