package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newSuppressCmd is `tutti suppress`.
func (c *cli) newSuppressCmd() *cobra.Command {
	var (
		reason    string
		journeyID string
		channel   string
		note      string
		expires   string
		source    string
	)
	cmd := c.leaf("suppress", "ID --reason R [--journey J] [--channel C] [--note N] [--expires RFC3339]",
		"Suppress a contact (every journey and channel unless --journey/--channel narrow it)",
		1, func(ctx context.Context, inv *invocation) error {
			if reason == "" {
				return inv.usagef("--reason is required")
			}
			req := map[string]any{"reason": reason, "source": source}
			for k, v := range map[string]string{"journey_id": journeyID, "channel": channel, "note": note} {
				if v != "" {
					req[k] = v
				}
			}
			if expires != "" {
				if _, err := time.Parse(time.RFC3339, expires); err != nil {
					return inv.usagef("--expires must be an RFC 3339 time like 2030-01-31T00:00:00Z")
				}
				req["expires_at"] = expires
			}
			body, _ := json.Marshal(req)
			var out api.SuppressionAdded
			id := inv.args[0]
			if _, err := c.client().call(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(id)+"/suppressions", nil, body, "application/json", &out); err != nil {
				return err
			}
			sp := out.Suppression
			verb := "suppressed"
			if !out.Created {
				verb = "already suppressed (unchanged)"
			}
			fmt.Fprintf(c.stdout, "%s contact %s: %s, %s (%s", verb, id, sp.Reason, scope(sp), sp.ID)
			if sp.ExpiresAt != nil {
				fmt.Fprintf(c.stdout, ", until %s", sp.ExpiresAt.UTC().Format(time.DateTime))
			}
			fmt.Fprintln(c.stdout, ")")
			return nil
		})
	cmd.Flags().StringVar(&reason, "reason", "", "converted, in_opportunity, do_not_contact, hard_bounce, spam_complaint or unengaged (required)")
	cmd.Flags().StringVar(&journeyID, "journey", "", "only this journey (default: every journey)")
	cmd.Flags().StringVar(&channel, "channel", "", "only this channel: email, sms or ads (default: every channel)")
	cmd.Flags().StringVar(&note, "note", "", "a note kept with the suppression")
	cmd.Flags().StringVar(&expires, "expires", "", "when it ends, RFC 3339 like 2030-01-31T00:00:00Z (default: until lifted)")
	cmd.Flags().StringVar(&source, "source", "cli", "who or what suppressed the contact, kept with the row")
	return cmd
}

// scope is "every journey, every channel", "journey welcome, email only"...
func scope(sp api.Suppression) string {
	j, ch := "every journey", "every channel"
	if sp.JourneyID != "" {
		j = "journey " + sp.JourneyID
	}
	if sp.Channel != "" {
		ch = string(sp.Channel) + " only"
	}
	return j + ", " + ch
}

// newSuppressionsCmd is `tutti suppressions`.
func (c *cli) newSuppressionsCmd() *cobra.Command {
	var (
		asJSON bool
	)
	cmd := c.leaf("suppressions", "ID [--json]",
		"List a contact's suppressions, lifted and expired ones included",
		1, func(ctx context.Context, inv *invocation) error {
			id := inv.args[0]
			var out api.SuppressionList
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(id)+"/suppressions", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			if len(out.Suppressions) == 0 {
				fmt.Fprintf(c.stdout, "contact %s has no suppressions\n", id)
				return nil
			}
			for _, sp := range out.Suppressions {
				printSuppression(c.stdout, sp)
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

func printSuppression(w io.Writer, sp api.Suppression) {
	state := "active"
	switch {
	case sp.LiftedAt != nil:
		state = "lifted"
	case !sp.Active:
		state = "expired"
	}
	fmt.Fprintf(w, "%s  %-7s %s, %s  (source %s, since %s", sp.ID, state, sp.Reason, scope(sp), sp.Source, sp.CreatedAt.UTC().Format(time.DateTime))
	if sp.ExpiresAt != nil {
		fmt.Fprintf(w, ", until %s", sp.ExpiresAt.UTC().Format(time.DateTime))
	}
	fmt.Fprintln(w, ")")
	if sp.LiftedAt != nil {
		fmt.Fprintf(w, "    lifted %s by %s\n", sp.LiftedAt.UTC().Format(time.DateTime), sp.LiftedBy)
	}
	if sp.Note != "" {
		fmt.Fprintf(w, "    note: %s\n", sp.Note)
	}
}

// newUnsuppressCmd is `tutti unsuppress`.
func (c *cli) newUnsuppressCmd() *cobra.Command {
	var (
		by string
	)
	cmd := c.leaf("unsuppress", "ID SUPPRESSION_ID [--by WHO]",
		"Lift one of a contact's suppressions (it stays as history)",
		2, func(ctx context.Context, inv *invocation) error {
			id, supID := inv.args[0], inv.args[1]
			var out api.SuppressionLifted
			path := "/v1/contacts/" + url.PathEscape(id) + "/suppressions/" + url.PathEscape(supID)
			if _, err := c.client().call(ctx, http.MethodDelete, path, url.Values{"lifted_by": {by}}, nil, "", &out); err != nil {
				return err
			}
			sp := out.Suppression
			if !out.Lifted {
				when := ""
				if sp.LiftedAt != nil {
					when = " on " + sp.LiftedAt.UTC().Format(time.DateTime)
				}
				fmt.Fprintf(c.stdout, "suppression %s of contact %s was already lifted%s by %s\n", sp.ID, id, when, sp.LiftedBy)
				return nil
			}
			fmt.Fprintf(c.stdout, "lifted suppression %s of contact %s (%s, %s)\n", sp.ID, id, sp.Reason, scope(sp))
			return nil
		})
	cmd.Flags().StringVar(&by, "by", "cli", "who lifts it, kept with the row")
	return cmd
}
