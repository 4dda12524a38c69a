package main

import (
	"context"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// newContactFindCmd is `tutti contact find`.
func (c *cli) newContactFindCmd() *cobra.Command {
	var (
		email string
		phone string
		ext   string
	)
	cmd := c.leaf("find", "--email X | --phone X | --external-id X",
		"Look a contact up by one identifier",
		0, func(ctx context.Context, inv *invocation) error {
			q := url.Values{}
			for k, v := range map[string]string{"email": email, "phone": phone, "external_id": ext} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if len(q) != 1 {
				return inv.usagef("give exactly one of --email, --phone or --external-id")
			}
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts", q, nil, "", nil)
			if err != nil {
				return err
			}
			return c.printRaw(raw)
		})
	cmd.Flags().StringVar(&email, "email", "", "the contact's email address")
	cmd.Flags().StringVar(&phone, "phone", "", "the contact's phone number (any format; read in TUTTI_DEFAULT_REGION without +)")
	cmd.Flags().StringVar(&ext, "external-id", "", "the contact's id in your system")
	return cmd
}
