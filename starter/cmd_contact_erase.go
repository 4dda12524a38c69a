package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
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
			var out eraseAnswer
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

// eraseAnswer is the part of DELETE /v1/contacts/{id} the CLI prints.
type eraseAnswer struct {
	Erasure struct {
		ID         string    `json:"id"`
		ContactID  string    `json:"contact_id"`
		ErasedAt   time.Time `json:"erased_at"`
		ActiveRuns []string  `json:"active_runs"`
		ProofsKept int       `json:"proofs_kept"`
	} `json:"erasure"`
	Already bool     `json:"already_erased"`
	Ended   []string `json:"runs_told_to_end"`
	Failed  []struct {
		WorkflowID string `json:"workflow_id"`
		Error      string `json:"error"`
	} `json:"failed"`
}

func printErasure(w io.Writer, a eraseAnswer) {
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
