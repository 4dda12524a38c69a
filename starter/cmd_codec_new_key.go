package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/codec"
)

// newCodecNewKeyCmd is `tutti codec new-key`: it prints a new random payload
// encryption key in the form TUTTI_CODEC_KEYS lists keys. It runs offline:
// keys are made where they are configured, never sent anywhere.
func (c *cli) newCodecNewKeyCmd() *cobra.Command {
	return c.leaf("new-key", "ID",
		"Print a new payload encryption key as ID:BASE64 for TUTTI_CODEC_KEYS (offline; list it first to rotate)",
		1, func(_ context.Context, inv *invocation) error {
			k, err := codec.GenerateKey(inv.args[0])
			if err != nil {
				return inv.usagef("%v", err)
			}
			fmt.Fprintln(c.stdout, k.Entry())
			return nil
		})
}
