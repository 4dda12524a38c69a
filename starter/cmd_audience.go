package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
)

// newAudienceCmd is `tutti audience`: ad audiences (README "Ad audiences").
func (c *cli) newAudienceCmd() *cobra.Command {
	return c.group("audience", "Ad audiences (Meta, Google, LinkedIn)",
		c.newAudienceDefineCmd(), c.newAudienceListCmd(), c.newAudienceMembersCmd())
}

func (c *cli) newAudienceDefineCmd() *cobra.Command {
	var req api.AudienceRequest
	cmd := c.leaf("define", "ID --destination meta|google|linkedin --external-id ID --name NAME [--segment ID]",
		"Define (or change) an ad audience and start its sync", 1, func(ctx context.Context, inv *invocation) error {
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out api.AudienceAnswer
			if _, err := c.client().call(ctx, http.MethodPut, "/v1/audiences/"+url.PathEscape(inv.args[0]), nil, body, "application/json", &out); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "audience %s: %s list %s (%s)\n", out.ID, out.Destination, out.ExternalID, out.Name)
			if out.SyncError != "" {
				fmt.Fprintf(c.stderr, "warning: %s\n", out.SyncError)
			}
			return nil
		})
	cmd.Flags().StringVar(&req.Destination, "destination", "", "meta, google or linkedin (required)")
	cmd.Flags().StringVar(&req.ExternalID, "external-id", "", "the platform's id of the list (required)")
	cmd.Flags().StringVar(&req.Name, "name", "", "what people see (required)")
	cmd.Flags().StringVar(&req.Segment, "segment", "", "a segment the audience follows (its members are added, those who leave removed)")
	return cmd
}

func (c *cli) newAudienceListCmd() *cobra.Command {
	return c.leaf("list", "", "List ad audiences with their member counts", 0, func(ctx context.Context, _ *invocation) error {
		var out api.AudienceList
		if _, err := c.client().call(ctx, http.MethodGet, "/v1/audiences", nil, nil, "", &out); err != nil {
			return err
		}
		for _, a := range out.Audiences {
			fmt.Fprintf(c.stdout, "%s\t%s %s\t%d members, %d to add, %d to remove\t%s\n", a.ID, a.Destination, a.ExternalID,
				a.Counts.Members, a.Counts.PendingAdd, a.Counts.PendingRemove, a.Name)
		}
		return nil
	})
}

func (c *cli) newAudienceMembersCmd() *cobra.Command {
	var after string
	cmd := c.leaf("members", "ID [--after CONTACT]", "List an audience's rows (JSON, a page at a time)", 1, func(ctx context.Context, inv *invocation) error {
		q := url.Values{}
		if after != "" {
			q.Set("after", after)
		}
		raw, err := c.client().call(ctx, http.MethodGet, "/v1/audiences/"+url.PathEscape(inv.args[0])+"/members", q, nil, "", nil)
		if err != nil {
			return err
		}
		return c.printRaw(raw)
	})
	cmd.Flags().StringVar(&after, "after", "", "the next value of the previous page")
	return cmd
}

// newContactAudiencesCmd is `tutti contact audiences`.
func (c *cli) newContactAudiencesCmd() *cobra.Command {
	return c.leaf("audiences", "ID", "A contact's ad audiences and every add and remove (JSON)", 1, func(ctx context.Context, inv *invocation) error {
		raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(inv.args[0])+"/audiences", nil, nil, "", nil)
		if err != nil {
			return err
		}
		return c.printRaw(raw)
	})
}
