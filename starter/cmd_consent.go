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

// newConsentCmd is `tutti consent`: it records a consent change through the
// API and says what was recorded, including the SMS double opt-in outcome.
func (c *cli) newConsentCmd() *cobra.Command {
	var (
		channel      string
		status       string
		subscription string
		source       string
		confirmed    bool
	)
	cmd := c.leaf("consent", "ID --channel C --status S [--subscription T] [--source S] [--confirmed]",
		"Record a consent change (an SMS grant stays pending until the contact replies YES, unless --confirmed)",
		1, func(ctx context.Context, inv *invocation) error {
			if channel == "" || status == "" {
				return inv.usagef("--channel and --status are required")
			}
			req := map[string]any{"channel": channel, "status": status, "source": source}
			if subscription != "" {
				req["subscription"] = subscription
			}
			if confirmed {
				req["double_opt_in_confirmed"] = true
			}
			body, _ := json.Marshal(req)
			var out api.ConsentAnswer
			id := inv.args[0]
			if _, err := c.client().call(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(id)+"/consent", nil, body, "application/json", &out); err != nil {
				return err
			}
			what := string(out.Consent.Channel)
			if out.Consent.Subscription != "" {
				what += "/" + out.Consent.Subscription
			}
			fmt.Fprintf(c.stdout, "recorded %s consent of contact %s as %s (history %d)\n", what, id, out.RecordedStatus, out.HistoryID)
			if out.Consent.Status != out.RecordedStatus {
				fmt.Fprintf(c.stdout, "  a later change stays in force: current %s consent is %s\n", what, out.Consent.Status)
			}
			if d := out.DoubleOptIn; d != nil {
				fmt.Fprintf(c.stdout, "  SMS double opt-in: %s: %s\n", d.Status, d.Reason)
				switch p := d.Prompt; {
				case p == nil:
				case p.Sent:
					fmt.Fprintf(c.stdout, "  confirmation prompt sent (message %s)\n", p.MessageID)
				default:
					fmt.Fprintf(c.stdout, "  confirmation prompt NOT sent: %s\n", p.Error)
				}
			}
			if out.PendingDeliveries > 0 {
				fmt.Fprintf(c.stdout, "  running journeys are told by the delivery outbox (%d pending; `tutti deliveries`); the send gate already reads the new consent\n", out.PendingDeliveries)
			}
			return nil
		})
	cmd.Flags().StringVar(&channel, "channel", "", "email, sms or ads (required)")
	cmd.Flags().StringVar(&status, "status", "", "granted, revoked or pending (required)")
	cmd.Flags().StringVar(&subscription, "subscription", "", "a subscription type such as newsletter (default: the channel-level consent)")
	cmd.Flags().StringVar(&source, "source", "cli", "where the consent came from, kept in the history")
	cmd.Flags().BoolVar(&confirmed, "confirmed", false, "an SMS grant was already confirmed (double opt-in done elsewhere): record it as granted")
	return cmd
}
