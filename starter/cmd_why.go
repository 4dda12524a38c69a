package main

import (
	"context"

	"github.com/spf13/cobra"
)

// newWhyCmd is `tutti why`; what it asks and prints is in why.go.
func (c *cli) newWhyCmd() *cobra.Command {
	var asJSON bool
	cmd := c.leaf("why", "CONTACT JOURNEY STEP [--json]",
		"Explain why a contact was (or was not) sent a journey step: the gate's decision, its reasons and every rule checked",
		3, func(ctx context.Context, inv *invocation) error {
			return c.why(ctx, inv.args[0], inv.args[1], inv.args[2], asJSON)
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of the explanation")
	return cmd
}
