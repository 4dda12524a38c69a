package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newUnknownCmd is `tutti unknown`: it lists the sends ops must account for: a
// request reached the provider unanswered, and the provider cannot be asked.
func (c *cli) newUnknownCmd() *cobra.Command {
	var (
		limit  int
		before string
		asJSON bool
	)
	cmd := c.leaf("unknown", "[--limit N] [--before ID] [--json]",
		"List sends whose outcome is unknown (the provider may have them; never resent), across contacts",
		0, func(ctx context.Context, inv *invocation) error {
			if limit < 1 || limit > 500 {
				return inv.usagef("--limit must be from 1 to 500")
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if before != "" {
				q.Set("before", before)
			}
			var out api.MessageList
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/messages/unknown", q, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			if len(out.Messages) == 0 {
				fmt.Fprintln(c.stdout, "no send has an unknown outcome")
				return nil
			}
			for _, m := range out.Messages {
				fmt.Fprintf(c.stdout, "%s  %-5s via %s  contact %s  journey %s, step %s  message %s (%s)\n",
					m.UpdatedAt.UTC().Format(time.DateTime), m.Channel, m.Provider, m.ContactID, m.JourneyID, m.StepID, m.ID, m.StatusReason)
			}
			return nil
		})
	cmd.Flags().IntVar(&limit, "limit", 50, "how many, most recent first (1-500)")
	cmd.Flags().StringVar(&before, "before", "", "the last message id of the previous page")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}
