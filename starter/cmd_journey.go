package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/journey"
)

// newJourneyValidateCmd is `tutti journey validate`: it validates a spec file
// offline, with the same code the API uses.
func (c *cli) newJourneyValidateCmd() *cobra.Command {
	return c.leaf("validate", "FILE",
		`Check a journey spec offline; prints every problem as "path: message"`,
		1, func(_ context.Context, inv *invocation) error {
			file := inv.args[0]
			data, err := readFile(file)
			if err != nil {
				return err
			}
			spec, err := journey.ParseAndValidate(data)
			var problems journey.Problems
			switch {
			case err == nil:
				fmt.Fprintf(c.stdout, "%s: valid (journey %s, %d steps)\n", file, spec.ID, len(spec.Steps))
				return nil
			case errors.As(err, &problems):
				for _, p := range problems {
					fmt.Fprintln(c.stderr, p.String())
				}
				fmt.Fprintf(c.stderr, "%s: %d problem(s)\n", file, len(problems))
				return errReported
			default:
				fmt.Fprintf(c.stderr, "%s: %v\n", file, err)
				return errReported
			}
		})
}

func readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

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
