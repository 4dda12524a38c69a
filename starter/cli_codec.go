package main

import (
	"context"
	"fmt"

	"github.com/tutti-dev/tutti/internal/codec"
)

// codecNewKey prints a new random payload encryption key in the form
// TUTTI_CODEC_KEYS lists keys. It runs offline: keys are made where they
// are configured, never sent anywhere.
func (c *cli) codecNewKey(_ context.Context, inv *invocation) error {
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	k, err := codec.GenerateKey(inv.args[0])
	if err != nil {
		return inv.usagef("%v", err)
	}
	fmt.Fprintln(c.stdout, k.Entry())
	return nil
}
