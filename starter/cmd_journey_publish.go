package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
)

// newJourneyPublishCmd is `tutti journey publish`.
func (c *cli) newJourneyPublishCmd() *cobra.Command {
	return c.leaf("publish", "FILE",
		"Publish a journey spec (YAML or JSON) as the journey's next version",
		1, func(ctx context.Context, inv *invocation) error {
			file := inv.args[0]
			data, err := readFile(file)
			if err != nil {
				return err
			}
			ctype := "application/yaml"
			if strings.EqualFold(filepath.Ext(file), ".json") {
				ctype = "application/json"
			}
			var out api.PublishAnswer
			if _, err := c.client().call(ctx, http.MethodPost, "/v1/journeys", nil, data, ctype, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "published journey %s version %d\n", out.JourneyID, out.Version)
			return nil
		})
}
