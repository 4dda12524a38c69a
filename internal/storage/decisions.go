package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
)

// Decision is one recorded send gate decision (the decisions table): what
// was asked (contact, journey step, requested channel and class), what the
// gate answered, why, and the full rule trace.
type Decision struct {
	ID             int64  `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	ContactID      string `json:"contact_id"`
	JourneyID      string `json:"journey_id"`
	JourneyVersion int    `json:"journey_version"`
	StepID         string `json:"step_id"`
	// Channel is the requested channel; DecidedChannel the one the decision
	// is about (the fallback channel for a fallback, or a deferred fallback).
	Channel        journey.Channel      `json:"channel"`
	Class          journey.MessageClass `json:"class"`
	Outcome        policy.Outcome       `json:"outcome"`
	DecidedChannel journey.Channel      `json:"decided_channel"`
	// Until is when a deferred send is asked again.
	Until   *time.Time      `json:"until,omitempty"`
	Reasons []policy.Reason `json:"reasons"`
	Checks  []policy.Check  `json:"checks"`
	// ConsentEventID is the consent record that allowed the send.
	ConsentEventID *int64 `json:"consent_event_id,omitempty"`
	// MessageID is the ledger row the decision reserved (allow, fallback) or
	// wrote as skipped; empty for a deferral.
	MessageID string    `json:"message_id,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Policy returns the decision as policy.Decide returned it, for Explain.
func (d Decision) Policy() policy.Decision {
	out := policy.Decision{Outcome: d.Outcome, Channel: d.DecidedChannel, Reasons: d.Reasons, Checks: d.Checks}
	if d.Until != nil {
		out.Until = *d.Until
	}
	if d.ConsentEventID != nil {
		out.ConsentEventID = *d.ConsentEventID
	}
	return out
}

const decisionColumns = `id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
	outcome, decided_channel, defer_until, reasons, checks, consent_event_id, message_id, decided_at`

func scanDecision(r rowScanner) (Decision, error) {
	var (
		d               Decision
		reasons, checks []byte
		messageID       *string
	)
	if err := r.Scan(&d.ID, &d.IdempotencyKey, &d.ContactID, &d.JourneyID, &d.JourneyVersion, &d.StepID, &d.Channel, &d.Class,
		&d.Outcome, &d.DecidedChannel, &d.Until, &reasons, &checks, &d.ConsentEventID, &messageID, &d.DecidedAt); err != nil {
		return Decision{}, err
	}
	if err := json.Unmarshal(reasons, &d.Reasons); err != nil {
		return Decision{}, fmt.Errorf("decision %d: decoding reasons: %w", d.ID, err)
	}
	if err := json.Unmarshal(checks, &d.Checks); err != nil {
		return Decision{}, fmt.Errorf("decision %d: decoding checks: %w", d.ID, err)
	}
	d.Reasons, d.Checks = nonNil(d.Reasons), nonNil(d.Checks)
	d.MessageID = deref(messageID)
	d.Until, d.DecidedAt = utcPtr(d.Until), d.DecidedAt.UTC()
	return d, nil
}

// DecisionsFor returns the contact's gate decisions for one step of a
// journey, newest first. stepID "" means every step of the journey, and
// journeyID "" every journey (stepID must then be ""). limit <= 0 means a
// default page of 100.
func (s *Store) DecisionsFor(ctx context.Context, contactID, journeyID, stepID string, limit int) ([]Decision, error) {
	what := fmt.Sprintf("decisions of contact %s", contactID)
	if journeyID != "" {
		what += " in journey " + journeyID
	}
	if stepID != "" {
		if journeyID == "" {
			return nil, errors.New(what + ": a step needs its journey")
		}
		what += " at step " + stepID
	}
	// One statement per filter, so each plan can use decisions_contact_step.
	where, args := `contact_id = $2`, []any{listLimit(limit), contactID}
	if journeyID != "" {
		where, args = where+` AND journey_id = $3`, append(args, journeyID)
	}
	if stepID != "" {
		where, args = where+` AND step_id = $4`, append(args, stepID)
	}
	return queryAll(ctx, s.pool, what, scanDecision, `
		SELECT `+decisionColumns+` FROM decisions
		WHERE `+where+`
		ORDER BY decided_at DESC, id DESC
		LIMIT $1`, args...)
}

// MessagesForStep returns the contact's ledger rows for one step of a
// journey (one per run that reached the send, plus any fallback), newest
// first. limit <= 0 means a default page of 100.
func (s *Store) MessagesForStep(ctx context.Context, contactID, journeyID, stepID string, limit int) ([]Message, error) {
	what := fmt.Sprintf("messages of contact %s in journey %s at step %s", contactID, journeyID, stepID)
	return queryAll(ctx, s.pool, what, scanMessage, `
		SELECT `+messageColumns+` FROM messages
		WHERE contact_id = $1 AND journey_id = $2 AND step_id = $3
		ORDER BY created_at DESC, id DESC
		LIMIT $4`, contactID, journeyID, stepID, listLimit(limit))
}
