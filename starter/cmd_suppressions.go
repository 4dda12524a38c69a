package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newSuppressionsCmd is `tutti suppressions`.
func (c *cli) newSuppressionsCmd() *cobra.Command {
	var (
		asJSON bool
	)
	cmd := c.leaf("suppressions", "ID [--json]",
		"List a contact's suppressions, lifted and expired ones included",
		1, func(ctx context.Context, inv *invocation) error {
			id := inv.args[0]
			var out api.SuppressionList
			raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(id)+"/suppressions", nil, nil, "", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			if len(out.Suppressions) == 0 {
				fmt.Fprintf(c.stdout, "contact %s has no suppressions\n", id)
				return nil
			}
			for _, sp := range out.Suppressions {
				printSuppression(c.stdout, sp)
			}
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

func printSuppression(w io.Writer, sp api.Suppression) {
	state := "active"
	switch {
	case sp.LiftedAt != nil:
		state = "lifted"
	case !sp.Active:
		state = "expired"
	}
	fmt.Fprintf(w, "%s  %-7s %s, %s  (source %s, since %s", sp.ID, state, sp.Reason, scope(sp), sp.Source, sp.CreatedAt.UTC().Format(time.DateTime))
	if sp.ExpiresAt != nil {
		fmt.Fprintf(w, ", until %s", sp.ExpiresAt.UTC().Format(time.DateTime))
	}
	fmt.Fprintln(w, ")")
	if sp.LiftedAt != nil {
		fmt.Fprintf(w, "    lifted %s by %s\n", sp.LiftedAt.UTC().Format(time.DateTime), sp.LiftedBy)
	}
	if sp.Note != "" {
		fmt.Fprintf(w, "    note: %s\n", sp.Note)
	}
}
