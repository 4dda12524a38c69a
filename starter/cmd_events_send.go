package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
)

// newEventsSendCmd is `tutti events send`.
func (c *cli) newEventsSendCmd() *cobra.Command {
	var (
		contactID string
		name      string
		id        string
		props     string
		batch     string
	)
	cmd := c.leaf("send", "--contact ID --name NAME [--id ID] [--properties JSON] | --batch FILE",
		"Track an event for a contact (handy for demos), or a batch of events from a file",
		0, func(ctx context.Context, inv *invocation) error {
			if batch != "" {
				if contactID != "" || name != "" || id != "" || props != "" {
					return inv.usagef("--batch takes the events from the file: give no --contact, --name, --id or --properties with it")
				}
				return c.sendEventBatch(ctx, batch)
			}
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
	cmd.Flags().StringVar(&batch, "batch", "", `a file (- for standard input) of events for POST /v1/events/batch: {"items": [...]} or a JSON array of them`)
	return cmd
}

// sendEventBatch posts the file's events as one batch and prints the
// answer; some items failing is a failure.
func (c *cli) sendEventBatch(ctx context.Context, file string) error {
	data, err := readFile(file)
	if err != nil {
		return err
	}
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("[")) {
		data = append(append([]byte(`{"items":`), data...), '}')
	}
	raw, err := c.client().call(ctx, http.MethodPost, "/v1/events/batch", nil, data, "application/json", nil)
	if err != nil {
		return err
	}
	if err := c.printRaw(raw); err != nil {
		return err
	}
	var ans api.BatchAnswer[json.RawMessage]
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if ans.Failed > 0 {
		return fmt.Errorf("%d of %d events were refused (see their errors above)", ans.Failed, ans.Failed+ans.Succeeded)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
