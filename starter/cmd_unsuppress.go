package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newUnsuppressCmd is `tutti unsuppress`.
func (c *cli) newUnsuppressCmd() *cobra.Command {
	var (
		by string
	)
	cmd := c.leaf("unsuppress", "ID SUPPRESSION_ID [--by WHO]",
		"Lift one of a contact's suppressions (it stays as history)",
		2, func(ctx context.Context, inv *invocation) error {
			id, supID := inv.args[0], inv.args[1]
			var out api.SuppressionLifted
			path := "/v1/contacts/" + url.PathEscape(id) + "/suppressions/" + url.PathEscape(supID)
			if _, err := c.client().call(ctx, http.MethodDelete, path, url.Values{"lifted_by": {by}}, nil, "", &out); err != nil {
				return err
			}
			sp := out.Suppression
			if !out.Lifted {
				when := ""
				if sp.LiftedAt != nil {
					when = " on " + sp.LiftedAt.UTC().Format(time.DateTime)
				}
				fmt.Fprintf(c.stdout, "suppression %s of contact %s was already lifted%s by %s\n", sp.ID, id, when, sp.LiftedBy)
				return nil
			}
			fmt.Fprintf(c.stdout, "lifted suppression %s of contact %s (%s, %s)\n", sp.ID, id, sp.Reason, scope(sp))
			return nil
		})
	cmd.Flags().StringVar(&by, "by", "cli", "who lifts it, kept with the row")
	return cmd
}
