package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Explanations: why was (or wasn't) contact X sent step Y of journey Z.
// Every send goes through the gate, which records its decision with the
// reasons and the full rule trace; these handlers read those decisions back
// with the ledger rows they produced, and say in one line what happened.

const (
	defaultDecisionLimit = 20
	maxDecisionLimit     = 500
)

// Why states: what happened to the step, for programs (Summary says it for people).
const (
	WhySent         = "sent"        // the provider accepted the message (it may have bounced since)
	WhySending      = "sending"     // allowed; the provider call is in flight or will be retried
	WhyFailed       = "failed"      // allowed, but the provider refused it
	WhyUnknown      = "unknown"     // allowed; a request reached the provider unanswered, and the message is never resent
	WhySkipped      = "skipped"     // not sent, by decision
	WhyDeferred     = "deferred"    // held; the gate is asked again at until
	WhyPending      = "pending"     // the run is at the step; the gate has not decided yet
	WhyNotReached   = "not_reached" // the run has not reached the step (or ended before it)
	WhyNotASendStep = "not_a_send_step"
)

func (s *Server) why(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultDecisionLimit, maxDecisionLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx := r.Context()
	contactID, journeyID, stepID := r.PathValue("id"), r.PathValue("journey_id"), r.PathValue("step_id")
	if _, err := s.contactByID(ctx, contactID, ""); err != nil {
		writeError(w, r, err)
		return
	}
	decisions, err := s.store.DecisionsFor(ctx, contactID, journeyID, stepID, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	msgs, err := s.store.MessagesForStep(ctx, contactID, journeyID, stepID, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	runs, err := s.journeyRuns(ctx, contactID, journeyID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ans := WhyAnswer{ContactID: contactID, JourneyID: journeyID, StepID: stepID,
		Decisions: nonNilSlice(decisions), Messages: nonNilSlice(msgs)}
	if len(runs) > 0 {
		ans.Enrollment = &runs[0]
	}
	run, step, version, err := s.findStep(ctx, runs, journeyID, stepID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if step != nil {
		ans.Step = &WhyStep{Version: version, Kind: step.Kind()}
		switch {
		case step.Send != nil:
			ans.Step.Channel = step.Send.Channel
		case step.Webhook != nil:
			ans.Step.Channel = journey.ChannelWebhook
		}
	}

	switch {
	case len(msgs) > 0 && withheld(msgs[0]) && (len(decisions) == 0 || !msgs[0].CreatedAt.Before(decisions[0].DecidedAt)):
		// Held out before the gate: the newest word on the step is the
		// ledger's, not an older decision's.
		ans.State, ans.Summary = explainMessage(msgs[0], "")
	case len(decisions) > 0:
		d := decisions[0]
		m, err := s.decisionMessage(ctx, d, msgs)
		if err != nil {
			writeError(w, r, err)
			return
		}
		describe, err := s.reasonDescriber(ctx, contactID, d.Reasons)
		if err != nil {
			writeError(w, r, err)
			return
		}
		ans.State, ans.Summary = explainDecision(d, m, describe)
	case len(msgs) > 0:
		// A ledger row without a gate decision: written before decisions
		// were recorded.
		ans.State, ans.Summary = explainMessage(msgs[0], "")
	case len(runs) == 0:
		writeError(w, r, s.neverEntered(ctx, contactID, journeyID))
		return
	case step == nil:
		writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found",
			Message: fmt.Sprintf("step %q is not in journey %s version %d, the version contact %s runs", stepID, journeyID, runs[0].Version, contactID),
			Fields:  []FieldError{{Path: "step_id", Message: "no such step in the contact's journey version"}}})
		return
	default:
		ans.State, ans.Summary = explainNoDecision(*run, *step, version)
	}
	if step != nil && step.Audience != nil {
		if err := s.explainAudienceStep(ctx, &ans, contactID, *step.Audience); err != nil {
			writeError(w, r, err)
			return
		}
	}
	if len(msgs) > 0 {
		if err := s.explainRateSlot(ctx, &ans, msgs[0]); err != nil {
			writeError(w, r, err)
			return
		}
	}
	choices, err := s.store.SendChoicesForStep(ctx, contactID, journeyID, stepID, limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(choices) > 0 {
		s.explainChoice(&ans, choices, len(decisions) == 0 && len(msgs) == 0)
	}
	writeJSON(w, http.StatusOK, ans)
}

// explainAudienceStep answers for an audience step: the contact's row in
// the audience and its ledger there (every add and remove, with its batch
// and result), and says in one line where it stands.
func (s *Server) explainAudienceStep(ctx context.Context, ans *WhyAnswer, contactID string, step journey.AudienceStep) error {
	rows, ledger, err := s.store.ContactAudiences(ctx, contactID, maxDecisionLimit)
	if err != nil {
		return err
	}
	ans.AudienceLedger = []storage.AudienceLedgerEntry{}
	for _, e := range ledger {
		if e.AudienceID == step.Audience {
			ans.AudienceLedger = append(ans.AudienceLedger, e)
		}
	}
	var row *storage.AudienceMember
	for i := range rows {
		if rows[i].AudienceID == step.Audience {
			row = &rows[i]
		}
	}
	switch {
	case len(ans.AudienceLedger) > 0 && (row == nil || row.Desired == row.Synced):
		last := ans.AudienceLedger[0]
		ans.Summary = fmt.Sprintf("audience %s: %s %s at %s (batch %s)", step.Audience, last.Action, last.Result, stamp(last.At), last.BatchID)
	case row != nil:
		ans.Summary = fmt.Sprintf("audience %s: %s asked by %s at %s, waiting for the audience's next sync", step.Audience, row.Desired, row.DesiredBy, stamp(row.DesiredAt))
	default:
		ans.Summary = fmt.Sprintf("audience %s: nothing asked for this contact yet", step.Audience)
	}
	return nil
}

// explainRateSlot adds the rate-limit slot of the step's newest ledger row,
// and, while an allowed send waits for it, says so.
func (s *Server) explainRateSlot(ctx context.Context, ans *WhyAnswer, m storage.Message) error {
	slot, err := s.store.RateSlotOf(ctx, m.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ans.RateSlot = &slot
	waiting := m.Status == model.MessageReserved || m.Status == model.MessageRetrying
	if waiting && slot.SlotAt.After(s.now()) {
		ans.State = WhyDeferred
		ans.Summary = fmt.Sprintf("allowed on %s; waiting for its slot under the provider rate limit %s, at %s",
			m.Channel, slot.LimitKey, stamp(slot.SlotAt))
	}
	return nil
}

// explainChoice adds what the step chose (channel: best, send_time:
// best) and why; a run waiting for its chosen time, with nothing decided
// yet, says so in the summary.
func (s *Server) explainChoice(ans *WhyAnswer, choices []storage.SendChoice, undecided bool) {
	c := choices[0]
	ans.Choices = choices
	ans.Choice = engagement.Describe(c.Channel, c.SendAt, c.Evidence)
	if undecided && ans.State == WhyPending && c.SendAt != nil && c.SendAt.After(s.now()) {
		ans.Summary = fmt.Sprintf("not sent yet: the run waits until %s, the time chosen for the contact, to send on %s", stamp(*c.SendAt), c.Channel)
	}
}

// contactDecisions lists the contact's recent gate decisions, newest first.
func (s *Server) contactDecisions(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, defaultDecisionLimit, maxDecisionLimit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	journeyID := strings.TrimSpace(r.URL.Query().Get("journey_id"))
	if len(journeyID) > maxIDLen {
		writeError(w, r, invalid(FieldError{Path: "journey_id", Message: fmt.Sprintf("at most %d characters", maxIDLen)}))
		return
	}
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	ds, err := s.store.DecisionsFor(r.Context(), id, journeyID, "", limit)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DecisionList{Decisions: nonNilSlice(ds)})
}

// metrics serves the Prometheus metrics (no auth, like /healthz).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	metrics.Handler().ServeHTTP(w, r)
}

// journeyRuns returns the contact's runs of one journey, newest first.
func (s *Server) journeyRuns(ctx context.Context, contactID, journeyID string) ([]storage.Enrollment, error) {
	all, err := s.store.EnrollmentsForContact(ctx, contactID)
	if err != nil {
		return nil, err
	}
	var runs []storage.Enrollment
	for _, e := range all {
		if e.JourneyID == journeyID {
			runs = append(runs, e)
		}
	}
	return runs, nil
}

// findStep finds the step in the version of the newest run that has it.
// It returns nils when no run's version has the step.
func (s *Server) findStep(ctx context.Context, runs []storage.Enrollment, journeyID, stepID string) (*storage.Enrollment, *journey.Step, int, error) {
	specs := map[int]journey.Spec{}
	for i := range runs {
		v := runs[i].Version
		spec, ok := specs[v]
		if !ok {
			jv, err := s.store.JourneyVersion(ctx, journeyID, v)
			if err != nil {
				return nil, nil, 0, err
			}
			spec, specs[v] = jv.Spec, jv.Spec
		}
		if idx := spec.StepIndex(stepID); idx >= 0 {
			return &runs[i], &spec.Steps[idx], v, nil
		}
	}
	return nil, nil, 0, nil
}

// decisionMessage returns the ledger row a decision wrote, if any.
func (s *Server) decisionMessage(ctx context.Context, d storage.Decision, msgs []storage.Message) (*storage.Message, error) {
	if d.MessageID == "" {
		return nil, nil
	}
	for i := range msgs {
		if msgs[i].ID == d.MessageID {
			return &msgs[i], nil
		}
	}
	m, err := s.store.Message(ctx, d.MessageID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// neverEntered is the 404 for a contact with no run of the journey,
// saying whether the journey exists at all.
func (s *Server) neverEntered(ctx context.Context, contactID, journeyID string) error {
	if _, err := s.store.LatestJourneyVersion(ctx, journeyID); errors.Is(err, storage.ErrNotFound) {
		return notFound("journey", journeyID, "journey_id")
	} else if err != nil {
		return err
	}
	return &Error{Status: http.StatusNotFound, Code: "not_found",
		Message: fmt.Sprintf("contact %s never entered journey %s", contactID, journeyID),
		Fields:  []FieldError{{Path: "journey_id", Message: "the contact never entered this journey"}}}
}

// ---------------------------------------------------------------------------
// summaries

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// reasonDescriber returns how the summary renders one reason: "code
// (detail)", or for a consent reason that names its consent event, "code
// (source at time)" — where the consent came from (sms:STOP, a form...)
// says more than the event number. The full detail stays in decisions.
func (s *Server) reasonDescriber(ctx context.Context, contactID string, rs []policy.Reason) (func(policy.Reason) string, error) {
	plain := func(r policy.Reason) string {
		if r.Detail == "" {
			return r.Code
		}
		return r.Code + " (" + r.Detail + ")"
	}
	named := false
	for _, r := range rs {
		if _, ok := consentEventIn(r); ok {
			named = true
		}
	}
	if !named {
		return plain, nil
	}
	history, err := s.store.ConsentHistory(ctx, contactID)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]storage.ConsentEvent, len(history))
	for _, ev := range history {
		byID[ev.ID] = ev
	}
	return func(r policy.Reason) string {
		id, ok := consentEventIn(r)
		ev, found := byID[id]
		if !ok || !found {
			return plain(r)
		}
		return fmt.Sprintf("%s (%s at %s)", r.Code, ev.Source, stamp(ev.OccurredAt))
	}, nil
}

// consentEventPattern finds the consent event policy names in a consent
// reason's detail: "sms consent revoked (event 12, 2025-05-01T09:00:00Z)...".
var consentEventPattern = regexp.MustCompile(`\(event (\d+), `)

func consentEventIn(r policy.Reason) (int64, bool) {
	switch r.Code {
	case policy.CodeConsentRevoked, policy.CodeConsentPending, policy.CodeSMSPendingDoubleOptIn,
		policy.CodeSubscriptionRevoked, policy.CodeSubscriptionPending:
	default:
		return 0, false
	}
	m := consentEventPattern.FindStringSubmatch(r.Detail)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	return id, err == nil
}

// describeReasons renders reasons as "code (detail); code (detail)".
func describeReasons(rs []policy.Reason, describe func(policy.Reason) string) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, describe(r))
	}
	if len(parts) == 0 {
		return "no reason recorded"
	}
	return strings.Join(parts, "; ")
}

// explainDecision says what the newest decision and its ledger row mean.
func explainDecision(d storage.Decision, m *storage.Message, describe func(policy.Reason) string) (string, string) {
	switch d.Outcome {
	case policy.OutcomeDefer:
		until := "later"
		if d.Until != nil {
			until = "until " + stamp(*d.Until)
		}
		return WhyDeferred, fmt.Sprintf("deferred on %s %s — %s", d.DecidedChannel, until, describeReasons(d.Reasons, describe))
	case policy.OutcomeSkip:
		return WhySkipped, fmt.Sprintf("not sent: skipped on %s — %s", d.DecidedChannel, describeReasons(d.Reasons, describe))
	}
	via := ""
	if d.Outcome == policy.OutcomeFallback {
		via = fmt.Sprintf(" (fallback from %s — %s)", d.Channel, describeReasons(d.Reasons, describe))
	} else if len(d.Reasons) > 0 {
		via = " (" + describeReasons(d.Reasons, describe) + ")"
	}
	if m == nil {
		return WhySending, fmt.Sprintf("allowed on %s%s at %s; no ledger row found for message %s", d.DecidedChannel, via, stamp(d.DecidedAt), d.MessageID)
	}
	return explainMessage(*m, via)
}

// explainMessage says what a ledger row's status means; via qualifies the
// channel (a fallback).
func explainMessage(m storage.Message, via string) (string, string) {
	ch := string(m.Channel) + via
	sentAt := m.UpdatedAt
	if m.SentAt != nil {
		sentAt = *m.SentAt
	}
	because := ""
	if m.StatusReason != "" {
		because = ": " + m.StatusReason
	}
	if m.StatusDetail != "" {
		because += " (" + m.StatusDetail + ")"
	}
	switch m.Status {
	case model.MessageSent:
		return WhySent, fmt.Sprintf("sent on %s at %s", ch, stamp(sentAt))
	case model.MessageDelivered, model.MessageOpened, model.MessageClicked:
		return WhySent, fmt.Sprintf("sent on %s at %s (%s)", ch, stamp(sentAt), m.Status)
	case model.MessageBounced:
		return WhySent, fmt.Sprintf("sent on %s at %s, but it bounced%s", ch, stamp(sentAt), because)
	case model.MessageComplained:
		return WhySent, fmt.Sprintf("sent on %s at %s; the contact reported it as spam", ch, stamp(sentAt))
	case model.MessageReserved:
		return WhySending, fmt.Sprintf("allowed on %s at %s; no request has reached the provider yet", ch, stamp(m.UpdatedAt))
	case model.MessageInFlight:
		return WhySending, fmt.Sprintf("allowed on %s; a request to the provider was being written at %s and its answer is not recorded yet", ch, stamp(m.UpdatedAt))
	case model.MessageRetrying:
		return WhySending, fmt.Sprintf("allowed on %s; the last provider attempt failed and will be retried%s", ch, because)
	case model.MessageFailed:
		return WhyFailed, fmt.Sprintf("not sent: allowed on %s, but the provider refused it%s", ch, because)
	case model.MessageDropped:
		return WhyFailed, fmt.Sprintf("not delivered: allowed on %s, but the provider dropped it%s", ch, because)
	case model.MessageUnknown:
		return WhyUnknown, fmt.Sprintf("allowed on %s; a request reached the provider at %s but no answer came back, and the provider cannot be asked: it may have the message, so it is not resent", ch, stamp(m.UpdatedAt))
	case model.MessageSkipped:
		switch m.StatusReason {
		case journey.GroupHoldout:
			return WhySkipped, fmt.Sprintf("not sent: the contact is in journey %s's holdout (reason holdout), whose marketing messages are withheld so the journey can be measured against them; skipped on %s", m.JourneyID, ch)
		case journey.GroupControlGroup:
			return WhySkipped, fmt.Sprintf("not sent: the contact is in the workspace control group (reason control_group), to whom no marketing message is sent; skipped on %s", ch)
		}
		return WhySkipped, fmt.Sprintf("not sent: skipped on %s%s", ch, because)
	}
	return string(m.Status), fmt.Sprintf("message %s on %s is %s%s", m.ID, ch, m.Status, because)
}

// withheld: the message was skipped because the contact is held out of
// marketing (a journey holdout, the workspace control group).
func withheld(m storage.Message) bool {
	return m.Status == model.MessageSkipped && (m.StatusReason == journey.GroupHoldout || m.StatusReason == journey.GroupControlGroup)
}

// explainNoDecision says why a step of the contact's run has no decision.
func explainNoDecision(run storage.Enrollment, step journey.Step, version int) (string, string) {
	if step.Send == nil && step.Webhook == nil {
		return WhyNotASendStep, fmt.Sprintf("step %s is a %s step in journey %s version %d: it sends nothing, so there is no send decision",
			step.ID, step.Kind(), run.JourneyID, version)
	}
	at := "has not recorded a step yet"
	if run.CurrentStep != "" {
		at = "is at step " + run.CurrentStep
	}
	if run.Status == model.RunActive {
		if run.CurrentStep == step.ID {
			return WhyPending, fmt.Sprintf("not sent yet: the run (version %d, started %s) is at step %s now; the send has not been decided yet",
				version, stamp(run.StartedAt), step.ID)
		}
		return WhyNotReached, fmt.Sprintf("not sent: the journey has not reached step %s yet (the run, version %d started %s, %s)",
			step.ID, version, stamp(run.StartedAt), at)
	}
	ended := string(run.Status)
	if run.EndedAt != nil {
		ended += " at " + stamp(*run.EndedAt)
	}
	switch {
	case run.ExitReason != "" && run.ExitNote != "":
		ended += " (" + run.ExitReason + ": " + run.ExitNote + ")"
	case run.ExitReason != "":
		ended += " (" + run.ExitReason + ")"
	}
	if run.CurrentStep != "" {
		ended += ", at step " + run.CurrentStep
	}
	return WhyNotReached, fmt.Sprintf("not sent: the run (version %d, started %s) ended %s without reaching step %s",
		version, stamp(run.StartedAt), ended, step.ID)
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
