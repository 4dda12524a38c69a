package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/api"
)

// newContactMergeCmd is `tutti contact merge SURVIVOR ABSORBED`: it folds
// the second contact into the first through POST /v1/contacts/{id}/merge.
// Running it again after it succeeded is safe: it says the contacts were
// merged already.
func (c *cli) newContactMergeCmd() *cobra.Command {
	var (
		byExternalID bool
		asJSON       bool
	)
	cmd := c.leaf("merge", "SURVIVOR ABSORBED [--external-id] [--json]",
		"Fold one contact (ABSORBED) into another (SURVIVOR): the same person known twice",
		2, func(ctx context.Context, inv *invocation) error {
			req := api.MergeRequest{Absorb: inv.args[1]}
			if byExternalID {
				req = api.MergeRequest{AbsorbExternalID: inv.args[1]}
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out api.MergeAnswer
			raw, err := c.client().call(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(inv.args[0])+"/merge", nil, body, "application/json", &out)
			if err != nil {
				return err
			}
			if asJSON {
				return c.printRaw(raw)
			}
			printMerge(c.stdout, out)
			return nil
		})
	cmd.Flags().BoolVar(&byExternalID, "external-id", false, "ABSORBED is the contact's external id (your system's), not its Tutti id")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON instead of a summary")
	return cmd
}

func printMerge(w io.Writer, a api.MergeAnswer) {
	if a.Already {
		fmt.Fprintf(w, "contact %s was already merged into %s (at %s)\n", a.AbsorbedID, a.Survivor.ID, whenUTC(a.MergedAt))
		return
	}
	fmt.Fprintf(w, "merged contact %s into %s at %s\n", a.AbsorbedID, a.Survivor.ID, whenUTC(a.MergedAt))
	kinds := func(ks []string) string {
		if len(ks) == 0 {
			return "none"
		}
		return strings.Join(ks, ", ")
	}
	var taken, aliases []string
	for _, k := range a.IdentifiersTaken {
		taken = append(taken, string(k))
	}
	for _, k := range a.Aliases {
		aliases = append(aliases, string(k))
	}
	fmt.Fprintf(w, "  identifiers taken: %s; kept as aliases: %s\n", kinds(taken), kinds(aliases))
	fmt.Fprintf(w, "  attributes added: %s\n", kinds(a.AttributesAdded))
	m := a.Moved
	fmt.Fprintf(w, "  moved: %d event(s), %d message(s), %d decision(s), %d suppression(s), %d ended run(s)\n",
		m.Events, m.Messages, m.Decisions, m.Suppressions, m.Enrollments)
	for _, ev := range a.ConsentChanges {
		ch := string(ev.Channel)
		if ev.Subscription != "" {
			ch += "/" + ev.Subscription
		}
		fmt.Fprintf(w, "  consent %s: now %s (the more restrictive)\n", ch, ev.Status)
	}
	for _, id := range a.RunsExiting {
		fmt.Fprintf(w, "  told to end (merged): %s\n", id)
	}
	if a.PendingDeliveries > 0 {
		fmt.Fprintf(w, "  delivered by the outbox (%d pending; `tutti deliveries`)\n", a.PendingDeliveries)
	}
}
