package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

// newContactShowCmd is `tutti contact show`: it prints the contact and its
// consent, with the journey runs from the live listing (which asks active runs
// where they are).
func (c *cli) newContactShowCmd() *cobra.Command {
	return c.leaf("show", "ID",
		"Show a contact with its consent and journeys (live state of active runs)",
		1, func(ctx context.Context, inv *invocation) error {
			id := url.PathEscape(inv.args[0])
			cl := c.client()
			var detail map[string]json.RawMessage
			if _, err := cl.call(ctx, http.MethodGet, "/v1/contacts/"+id, nil, nil, "", &detail); err != nil {
				return err
			}
			var runs struct {
				Journeys json.RawMessage `json:"journeys"`
			}
			if _, err := cl.call(ctx, http.MethodGet, "/v1/contacts/"+id+"/journeys", nil, nil, "", &runs); err != nil {
				return err
			}
			out := struct {
				Contact              json.RawMessage `json:"contact"`
				Consents             json.RawMessage `json:"consents"`
				SubscriptionConsents json.RawMessage `json:"subscription_consents,omitempty"`
				Journeys             json.RawMessage `json:"journeys"`
			}{detail["contact"], detail["consents"], detail["subscription_consents"], runs.Journeys}
			return c.printJSON(out)
		})
}
