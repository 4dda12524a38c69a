package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
)

// ---------------------------------------------------------------------------
// consent and suppressions

// consent records a consent change through the API and says what was
// recorded, including the SMS double opt-in outcome.
func (c *cli) consent(ctx context.Context, inv *invocation) error {
	channel := inv.fs.String("channel", "", "email, sms or ads (required)")
	status := inv.fs.String("status", "", "granted, revoked or pending (required)")
	subscription := inv.fs.String("subscription", "", "a subscription type such as newsletter (default: the channel-level consent)")
	source := inv.fs.String("source", "cli", "where the consent came from, kept in the history")
	confirmed := inv.fs.Bool("confirmed", false, "an SMS grant was already confirmed (double opt-in done elsewhere): record it as granted")
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	if *channel == "" || *status == "" {
		return inv.usagef("--channel and --status are required")
	}
	req := map[string]any{"channel": *channel, "status": *status, "source": *source}
	if *subscription != "" {
		req["subscription"] = *subscription
	}
	if *confirmed {
		req["double_opt_in_confirmed"] = true
	}
	body, _ := json.Marshal(req)
	var out api.ConsentAnswer
	id := inv.args[0]
	if _, err := c.client().call(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(id)+"/consent", nil, body, "application/json", &out); err != nil {
		return err
	}
	what := string(out.Consent.Channel)
	if out.Consent.Subscription != "" {
		what += "/" + out.Consent.Subscription
	}
	fmt.Fprintf(c.stdout, "recorded %s consent of contact %s as %s (history %d)\n", what, id, out.RecordedStatus, out.HistoryID)
	if out.Consent.Status != out.RecordedStatus {
		fmt.Fprintf(c.stdout, "  a later change stays in force: current %s consent is %s\n", what, out.Consent.Status)
	}
	if d := out.DoubleOptIn; d != nil {
		fmt.Fprintf(c.stdout, "  SMS double opt-in: %s: %s\n", d.Status, d.Reason)
		switch p := d.Prompt; {
		case p == nil:
		case p.Sent:
			fmt.Fprintf(c.stdout, "  confirmation prompt sent (message %s)\n", p.MessageID)
		default:
			fmt.Fprintf(c.stdout, "  confirmation prompt NOT sent: %s\n", p.Error)
		}
	}
	if len(out.SignalFailed) > 0 {
		fmt.Fprintf(c.stdout, "  not signalled (the send gate still reads the new consent): %s\n", strings.Join(out.SignalFailed, ", "))
	}
	return nil
}

// scope is "every journey, every channel", "journey welcome, email only"...
func scope(sp api.Suppression) string {
	j, ch := "every journey", "every channel"
	if sp.JourneyID != "" {
		j = "journey " + sp.JourneyID
	}
	if sp.Channel != "" {
		ch = string(sp.Channel) + " only"
	}
	return j + ", " + ch
}

func (c *cli) suppress(ctx context.Context, inv *invocation) error {
	reason := inv.fs.String("reason", "", "converted, in_opportunity, do_not_contact, hard_bounce, spam_complaint or unengaged (required)")
	journeyID := inv.fs.String("journey", "", "only this journey (default: every journey)")
	channel := inv.fs.String("channel", "", "only this channel: email, sms or ads (default: every channel)")
	note := inv.fs.String("note", "", "a note kept with the suppression")
	expires := inv.fs.String("expires", "", "when it ends, RFC 3339 like 2030-01-31T00:00:00Z (default: until lifted)")
	source := inv.fs.String("source", "cli", "who or what suppressed the contact, kept with the row")
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	if *reason == "" {
		return inv.usagef("--reason is required")
	}
	req := map[string]any{"reason": *reason, "source": *source}
	for k, v := range map[string]string{"journey_id": *journeyID, "channel": *channel, "note": *note} {
		if v != "" {
			req[k] = v
		}
	}
	if *expires != "" {
		if _, err := time.Parse(time.RFC3339, *expires); err != nil {
			return inv.usagef("--expires must be an RFC 3339 time like 2030-01-31T00:00:00Z")
		}
		req["expires_at"] = *expires
	}
	body, _ := json.Marshal(req)
	var out api.SuppressionAdded
	id := inv.args[0]
	if _, err := c.client().call(ctx, http.MethodPost, "/v1/contacts/"+url.PathEscape(id)+"/suppressions", nil, body, "application/json", &out); err != nil {
		return err
	}
	sp := out.Suppression
	verb := "suppressed"
	if !out.Created {
		verb = "already suppressed (unchanged)"
	}
	fmt.Fprintf(c.stdout, "%s contact %s: %s, %s (%s", verb, id, sp.Reason, scope(sp), sp.ID)
	if sp.ExpiresAt != nil {
		fmt.Fprintf(c.stdout, ", until %s", sp.ExpiresAt.UTC().Format(time.DateTime))
	}
	fmt.Fprintln(c.stdout, ")")
	return nil
}

func (c *cli) suppressions(ctx context.Context, inv *invocation) error {
	asJSON := inv.fs.Bool("json", false, "print the API's JSON instead of a summary")
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	id := inv.args[0]
	var out api.SuppressionList
	raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts/"+url.PathEscape(id)+"/suppressions", nil, nil, "", &out)
	if err != nil {
		return err
	}
	if *asJSON {
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

func (c *cli) unsuppress(ctx context.Context, inv *invocation) error {
	by := inv.fs.String("by", "cli", "who lifts it, kept with the row")
	if err := inv.parse(c, 2); err != nil {
		return err
	}
	id, supID := inv.args[0], inv.args[1]
	var out api.SuppressionLifted
	path := "/v1/contacts/" + url.PathEscape(id) + "/suppressions/" + url.PathEscape(supID)
	if _, err := c.client().call(ctx, http.MethodDelete, path, url.Values{"lifted_by": {*by}}, nil, "", &out); err != nil {
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
}
