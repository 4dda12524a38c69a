package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// newDeliveriesCmd is `tutti deliveries`: the delivery outbox (events,
// consent changes, exits) as ops see it (GET /v1/deliveries/status). `tutti outbox` is the sandbox
// provider's messages, a different thing.
func (c *cli) newDeliveriesCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("deliveries", "[--json]",
		"Show the delivery outbox (events, consent changes, exits, queued starts): pending deliveries by kind, the oldest one's age, failures",
		0, func(ctx context.Context, inv *invocation) error {
			var out api.DeliveriesStatus
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/deliveries/status", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			fmt.Fprintf(c.stdout, "pending:             %d (%d failing)\n", out.Pending, out.Failing)
			if len(out.PendingByKind) > 0 {
				var kinds []string
				for _, k := range model.DeliveryKinds {
					if n := out.PendingByKind[string(k)]; n > 0 {
						kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
					}
				}
				if len(kinds) > 0 {
					fmt.Fprintf(c.stdout, "  by kind:           %s\n", strings.Join(kinds, ", "))
				}
			}
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
				fmt.Fprintf(c.stdout, "  #%d %s: %d attempts, next %s\n      %s\n",
					d.ID, describeDelivery(d), d.Attempts, d.NextAttemptAt.UTC().Format(time.DateTime), d.LastError)
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

// describeDelivery says what a delivery asks of Temporal, for whom.
func describeDelivery(d storage.Delivery) string {
	switch d.Kind {
	case storage.DeliveryStart:
		return fmt.Sprintf("start of %s v%d for event %s (%s, contact %s)", d.JourneyID, d.JourneyVersion, d.Event.ID, d.Event.Name, d.ContactID)
	case storage.DeliverySignal:
		return fmt.Sprintf("signal for event %s (%s, contact %s)", d.Event.ID, d.Event.Name, d.ContactID)
	case storage.DeliveryConsent:
		return fmt.Sprintf("consent %s %s for contact %s (consent event %d)", d.Channel, d.ConsentStatus, d.ContactID, d.ConsentEventID)
	case storage.DeliveryExit:
		return fmt.Sprintf("exit of %s for contact %s (exit request %s)", d.WorkflowID, d.ContactID, d.ExitRequestID)
	case storage.DeliveryEnroll:
		return fmt.Sprintf("start of %s v%d for enrollment %s (contact %s)", d.JourneyID, d.JourneyVersion, d.EnrollmentID, d.ContactID)
	}
	return d.Kind + " for contact " + d.ContactID
}
