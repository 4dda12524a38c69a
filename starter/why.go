package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/storage"
)

// why asks the API why a contact was (or was not) sent a step, and prints
// the summary, the newest decision's reasons and check trace, the older
// decisions and the ledger rows.
func (c *cli) why(ctx context.Context, contactID, journeyID, stepID string, asJSON bool) error {
	path := "/v1/contacts/" + url.PathEscape(contactID) + "/journeys/" + url.PathEscape(journeyID) +
		"/steps/" + url.PathEscape(stepID) + "/why"
	var out api.WhyAnswer
	raw, err := c.client().call(ctx, http.MethodGet, path, nil, nil, "", &out)
	if err != nil {
		return err
	}
	if asJSON {
		return c.printRaw(raw)
	}
	printWhy(c.stdout, out)
	return nil
}

func whenUTC(t time.Time) string { return t.UTC().Format(time.DateTime) + " UTC" }

func printWhy(w io.Writer, a api.WhyAnswer) {
	fmt.Fprintf(w, "contact %s, journey %s, step %s", a.ContactID, a.JourneyID, a.StepID)
	if a.Step != nil {
		fmt.Fprintf(w, " (%s", a.Step.Kind)
		if a.Step.Channel != "" {
			fmt.Fprintf(w, " on %s", a.Step.Channel)
		}
		fmt.Fprintf(w, ", version %d)", a.Step.Version)
	}
	fmt.Fprintf(w, "\n%s\n", a.Summary)
	for _, e := range a.AudienceLedger {
		fmt.Fprintf(w, "  %s %s %s: %s (batch %s)\n", whenUTC(e.At), e.Action, e.AudienceID, e.Result, e.BatchID)
	}
	if rs := a.RateSlot; rs != nil {
		fmt.Fprintf(w, "rate limit %s: slot at %s (taken %s)\n", rs.LimitKey, whenUTC(rs.SlotAt), whenUTC(rs.ReservedAt))
	}
	if a.Choice != "" {
		fmt.Fprintf(w, "chosen %s: %s\n", whenUTC(a.Choices[0].ChosenAt), a.Choice)
	}

	if e := a.Enrollment; e != nil {
		fmt.Fprintf(w, "\nlatest run: %s, version %d, %s since %s", e.ID, e.Version, e.Status, whenUTC(e.StartedAt))
		if e.EndedAt != nil {
			fmt.Fprintf(w, ", ended %s", whenUTC(*e.EndedAt))
		}
		switch {
		case e.ExitReason != "" && e.ExitNote != "":
			fmt.Fprintf(w, " (%s: %s)", e.ExitReason, e.ExitNote)
		case e.ExitReason != "":
			fmt.Fprintf(w, " (%s)", e.ExitReason)
		}
		if e.CurrentStep != "" {
			fmt.Fprintf(w, ", at step %s", e.CurrentStep)
		}
		fmt.Fprintln(w)
	}

	for i, d := range a.Decisions {
		if i == 0 {
			fmt.Fprintln(w)
			printDecision(w, d, true)
			if len(a.Decisions) > 1 {
				fmt.Fprintln(w, "\nearlier decisions:")
			}
			continue
		}
		printDecision(w, d, false)
	}

	if len(a.Messages) > 0 {
		fmt.Fprintln(w, "\nledger:")
		for _, m := range a.Messages {
			fmt.Fprintf(w, "  %s  %s via %s: %s", m.ID, m.Channel, m.Provider, m.Status)
			if m.StatusReason != "" {
				fmt.Fprintf(w, " (%s)", m.StatusReason)
			}
			fmt.Fprintf(w, ", created %s", whenUTC(m.CreatedAt))
			if m.SentAt != nil {
				fmt.Fprintf(w, ", sent %s", whenUTC(*m.SentAt))
			}
			fmt.Fprintf(w, ", %d attempt(s)\n", m.Attempts)
		}
	}
}

// printDecision prints the decision's headline; in full, also its reasons
// and its check trace, one rule per line with pass or FAIL.
func printDecision(w io.Writer, d storage.Decision, full bool) {
	indent := "  "
	if full {
		indent = ""
	}
	fmt.Fprintf(w, "%sdecision %d at %s: %s on %s", indent, d.ID, whenUTC(d.DecidedAt), d.Outcome, d.DecidedChannel)
	if d.Until != nil {
		fmt.Fprintf(w, " until %s", whenUTC(*d.Until))
	}
	fmt.Fprintf(w, " (requested %s, %s, version %d", d.Channel, d.Class, d.JourneyVersion)
	if d.ConsentEventID != nil {
		fmt.Fprintf(w, ", consent event %d", *d.ConsentEventID)
	}
	if d.MessageID != "" {
		fmt.Fprintf(w, ", message %s", d.MessageID)
	}
	fmt.Fprint(w, ")")
	if !full {
		codes := make([]string, len(d.Reasons))
		for i, r := range d.Reasons {
			codes[i] = r.Code
		}
		if len(codes) > 0 {
			fmt.Fprintf(w, ": %s", strings.Join(codes, ", "))
		}
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintln(w)
	if len(d.Reasons) > 0 {
		fmt.Fprintln(w, "reasons:")
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "  %s", r.Code)
			if r.Channel != "" {
				fmt.Fprintf(w, " [%s]", r.Channel)
			}
			fmt.Fprintf(w, ": %s\n", r.Detail)
		}
	}
	if len(d.Checks) > 0 {
		fmt.Fprintln(w, "checks:")
		for _, ch := range d.Checks {
			mark := "pass"
			if !ch.Passed {
				mark = "FAIL"
			}
			rule := ch.Rule
			if ch.Channel != "" {
				rule = string(ch.Channel) + "/" + ch.Rule
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", mark, rule, ch.Detail)
		}
	}
}
