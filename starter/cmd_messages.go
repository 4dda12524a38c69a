package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/storage"
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

// newOutboxCmd is `tutti outbox`.
func (c *cli) newOutboxCmd() *cobra.Command {
	var (
		contactID string
		limit     int
		asJSON    bool
	)
	cmd := c.leaf("outbox", "[--contact ID] [--limit N] [--json]",
		"List the messages the sandbox provider recorded instead of sending",
		0, func(ctx context.Context, inv *invocation) error {
			if limit < 1 || limit > 500 {
				return inv.usagef("--limit must be from 1 to 500")
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if contactID != "" {
				q.Set("contact_id", contactID)
			}
			var out api.SandboxMessageList
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/sandbox/messages", q, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			if len(out.Messages) == 0 {
				fmt.Fprintln(c.stdout, "the outbox is empty")
				return nil
			}
			for i, m := range out.Messages {
				if i > 0 {
					fmt.Fprintln(c.stdout)
				}
				printSandboxMessage(c.stdout, m)
			}
			return nil
		})
	cmd.Flags().StringVar(&contactID, "contact", "", "only this contact's messages")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many messages, newest first (1-500)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

func printSandboxMessage(w io.Writer, m storage.SandboxMessage) {
	fmt.Fprintf(w, "%s  %-5s to %s  journey %s, step %s  (contact %s, message %s)\n",
		m.CreatedAt.UTC().Format(time.DateTime), m.Channel, m.Recipient, m.JourneyID, m.StepID, m.ContactID, m.MessageID)
	str := func(k string) string { s, _ := m.Payload[k].(string); return s }
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") }
	switch m.Channel {
	case "email":
		if t := str("template_id"); t != "" {
			data, _ := json.Marshal(m.Payload["template_data"])
			fmt.Fprintf(w, "    Template: %s %s\n", t, data)
		}
		if s := str("subject"); s != "" {
			fmt.Fprintf(w, "    Subject: %s\n", s)
		}
		if t := str("text"); t != "" {
			fmt.Fprintln(w, indent(t))
		} else if h := str("html"); h != "" {
			fmt.Fprintln(w, indent(h))
		}
	case "sms":
		fmt.Fprintln(w, indent(str("body")))
	default:
		data, _ := json.Marshal(m.Payload)
		fmt.Fprintln(w, indent(string(data)))
	}
}
