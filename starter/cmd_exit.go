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
		runKey    string
	)
	cmd := c.leaf("exit", "--contact ID --journey ID --reason TEXT [--run-key KEY]",
		"Ask a contact's active runs of a journey (one per key value in a keyed journey) to end now",
		0, func(ctx context.Context, inv *invocation) error {
			if contactID == "" || journeyID == "" || strings.TrimSpace(reason) == "" {
				return inv.usagef("--contact, --journey and --reason are required")
			}
			req := map[string]string{"reason": reason}
			if runKey != "" {
				req["run_key"] = runKey
			}
			body, _ := json.Marshal(req)
			var out api.ExitAnswer
			path := "/v1/contacts/" + url.PathEscape(contactID) + "/journeys/" + url.PathEscape(journeyID) + "/exit"
			if _, err := c.client().call(ctx, http.MethodPost, path, nil, body, "application/json", &out); err != nil {
				return err
			}
			runs := out.Runs
			if len(runs) == 0 { // an API before keyed journeys
				runs = []api.ExitedRun{{Enrollment: out.Enrollment, ExitRequest: out.ExitRequest, WorkflowID: out.WorkflowID}}
			}
			for _, r := range runs {
				fmt.Fprintf(c.stdout, "exit requested: workflow %s (enrollment %s, exit request %s)\n", r.WorkflowID, r.Enrollment.ID, r.ExitRequest.ID)
			}
			if out.PendingDeliveries > 0 {
				fmt.Fprintf(c.stdout, "  the runs are told by the delivery outbox (%d pending; `tutti deliveries`)\n", out.PendingDeliveries)
			}
			return nil
		})
	cmd.Flags().StringVar(&contactID, "contact", "", "contact id (required)")
	cmd.Flags().StringVar(&journeyID, "journey", "", "journey id (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the contact leaves the journey (required; kept in PostgreSQL and shown on the run, which itself is told only support_exit)")
	cmd.Flags().StringVar(&runKey, "run-key", "", "end only the run with this run_key (a keyed journey's run, as `tutti contact show` lists it); default: every run of the journey")
	return cmd
}
