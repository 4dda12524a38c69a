package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
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

// newContactEraseCmd is `tutti contact erase`: it erases a contact through
// DELETE /v1/contacts/{id}. Running it again for an erased contact is safe: it
// finishes telling the runs.
func (c *cli) newContactEraseCmd() *cobra.Command {
	var (
		asJSON bool
	)
	cmd := c.leaf("erase", "ID [--json]",
		"Erase a contact on their request: delete everything that identifies them, keep only hashed proof of consent and opt-out, end their journeys",
		1, func(ctx context.Context, inv *invocation) error {
			var out api.EraseAnswer
			raw, err := c.client().call(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(inv.args[0]), nil, nil, "", &out)
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && len(raw) > 0 {
				// Erased, but some runs were not told: say which, then fail.
				if json.Unmarshal(raw, &out) == nil {
					printErasure(c.stdout, out)
				}
				return err
			}
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			printErasure(c.stdout, out)
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

func printErasure(w io.Writer, a api.EraseAnswer) {
	e := a.Erasure
	verb := "erased"
	if a.Already {
		verb = "was already erased"
	}
	fmt.Fprintf(w, "contact %s %s at %s (erasure %s); %d consent record(s) kept under hashed identifiers\n",
		e.ContactID, verb, whenUTC(e.ErasedAt), e.ID, e.ProofsKept)
	for _, id := range a.Ended {
		fmt.Fprintf(w, "  told to end (erased): %s\n", id)
	}
	for _, f := range a.Failed {
		fmt.Fprintf(w, "  NOT told, retry: %s: %s\n", f.WorkflowID, f.Error)
	}
}
