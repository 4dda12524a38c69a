package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/spf13/cobra"
)

// newEventsSendCmd is `tutti events send`.
func (c *cli) newEventsSendCmd() *cobra.Command {
	var (
		contactID string
		name      string
		id        string
		props     string
	)
	cmd := c.leaf("send", "--contact ID --name NAME [--id ID] [--properties JSON]",
		"Track an event for a contact (handy for demos)",
		0, func(ctx context.Context, inv *invocation) error {
			if contactID == "" || name == "" {
				return inv.usagef("--contact and --name are required")
			}
			req := map[string]any{"contact_id": contactID, "name": name, "event_id": id}
			if id == "" {
				req["event_id"] = "cli-" + randomHex(8)
			}
			if props != "" {
				var p map[string]any
				if err := json.Unmarshal([]byte(props), &p); err != nil {
					return inv.usagef("--properties must be a JSON object: %v", err)
				}
				req["properties"] = p
			}
			body, _ := json.Marshal(req)
			// A 202 means stored and on its way to the journeys: the worker's
			// dispatcher delivers it (`tutti deliveries` shows how far behind).
			raw, err := c.client().call(ctx, http.MethodPost, "/v1/events", nil, body, "application/json", nil)
			if err != nil {
				return err
			}
			return c.printRaw(raw)
		})
	cmd.Flags().StringVar(&contactID, "contact", "", "contact id (required)")
	cmd.Flags().StringVar(&name, "name", "", "event name, e.g. purchase or email.opened (required)")
	cmd.Flags().StringVar(&id, "id", "", "event id, the idempotency key (default: a new random id)")
	cmd.Flags().StringVar(&props, "properties", "", `event properties as a JSON object, e.g. '{"amount": 42}'`)
	return cmd
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
