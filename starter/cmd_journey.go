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
	return validateCmd(c, "journey spec", journey.ParseAndValidate, func(spec journey.Spec) string {
		return fmt.Sprintf("journey %s, %d steps", spec.ID, len(spec.Steps))
	})
}

// validateCmd is an offline `validate FILE` for a document a marketer
// writes (what it is, its parser, and what to say of a valid one): every
// problem printed as "path: message".
func validateCmd[T any](c *cli, what string, parse func([]byte) (T, error), describe func(T) string) *cobra.Command {
	return c.leaf("validate", "FILE",
		"Check a "+what+` offline; prints every problem as "path: message"`,
		1, func(_ context.Context, inv *invocation) error {
			file := inv.args[0]
			data, err := readFile(file)
			if err != nil {
				return err
			}
			v, err := parse(data)
			var problems journey.Problems
			switch {
			case err == nil:
				fmt.Fprintf(c.stdout, "%s: valid (%s)\n", file, describe(v))
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

// readDocument reads a YAML or JSON file to send to the API, with the
// Content-Type its extension says (YAML unless .json).
func readDocument(file string) ([]byte, string, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, "", err
	}
	if strings.EqualFold(filepath.Ext(file), ".json") {
		return data, "application/json", nil
	}
	return data, "application/yaml", nil
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
			data, ctype, err := readDocument(inv.args[0])
			if err != nil {
				return err
			}
			var out api.PublishAnswer
			if _, err := c.client().call(ctx, http.MethodPost, "/v1/journeys", nil, data, ctype, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "published journey %s version %d\n", out.JourneyID, out.Version)
			return nil
		})
}
