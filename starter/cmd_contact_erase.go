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
