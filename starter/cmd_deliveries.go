package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/storage"
)

// newDeliveriesCmd is `tutti deliveries`: the event delivery outbox as ops
// see it (GET /v1/deliveries/status). `tutti outbox` is the sandbox
// provider's messages, a different thing.
func (c *cli) newDeliveriesCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("deliveries", "[--json]",
		"Show the event delivery outbox: pending deliveries, the oldest one's age, failures",
		0, func(ctx context.Context, inv *invocation) error {
			var out struct {
				storage.DeliveryStats
				OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
			}
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/deliveries/status", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			fmt.Fprintf(c.stdout, "pending:             %d (%d failing)\n", out.Pending, out.Failing)
			if out.OldestPendingAt != nil {
				age := time.Duration(out.OldestPendingAgeSeconds * float64(time.Second)).Round(time.Second)
				fmt.Fprintf(c.stdout, "oldest pending:      %s ago (stored %s)\n", age, out.OldestPendingAt.UTC().Format(time.DateTime))
			} else {
				fmt.Fprintln(c.stdout, "oldest pending:      none")
			}
			fmt.Fprintf(c.stdout, "delivered last hour: %d\n", out.DoneLastHour)
			if len(out.RecentFailures) > 0 {
				fmt.Fprintln(c.stdout, "failing deliveries (most attempted first):")
			}
			for _, d := range out.RecentFailures {
				what := d.Kind
				if d.JourneyID != "" {
					what = fmt.Sprintf("start of %s v%d", d.JourneyID, d.JourneyVersion)
				}
				fmt.Fprintf(c.stdout, "  #%d %s for event %s (%s, contact %s): %d attempts, next %s\n      %s\n",
					d.ID, what, d.Event.ID, d.Event.Name, d.Event.ContactID, d.Attempts, d.NextAttemptAt.UTC().Format(time.DateTime), d.LastError)
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}
