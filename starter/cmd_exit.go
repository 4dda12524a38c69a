package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newExitCmd is `tutti exit`.
func (c *cli) newExitCmd() *cobra.Command {
	var (
		contactID string
		journeyID string
		reason    string
	)
	cmd := c.leaf("exit", "--contact ID --journey ID --reason TEXT",
		"Ask a contact's active run of a journey to end now",
		0, func(ctx context.Context, inv *invocation) error {
			if contactID == "" || journeyID == "" || strings.TrimSpace(reason) == "" {
				return inv.usagef("--contact, --journey and --reason are required")
			}
			body, _ := json.Marshal(map[string]string{"reason": reason})
			var out api.ExitAnswer
			path := "/v1/contacts/" + url.PathEscape(contactID) + "/journeys/" + url.PathEscape(journeyID) + "/exit"
			if _, err := c.client().call(ctx, http.MethodPost, path, nil, body, "application/json", &out); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "exit requested: workflow %s (enrollment %s, exit request %s)\n", out.WorkflowID, out.Enrollment.ID, out.ExitRequest.ID)
			if out.PendingDeliveries > 0 {
				fmt.Fprintf(c.stdout, "  the run is told by the delivery outbox (%d pending; `tutti deliveries`)\n", out.PendingDeliveries)
			}
			return nil
		})
	cmd.Flags().StringVar(&contactID, "contact", "", "contact id (required)")
	cmd.Flags().StringVar(&journeyID, "journey", "", "journey id (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the contact leaves the journey (required; kept in PostgreSQL and shown on the run, which itself is told only support_exit)")
	return cmd
}
