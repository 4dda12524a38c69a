package api

import (
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// Answers: the JSON bodies of the API's answers, one Go type per body that
// openapi.yaml describes. The handlers answer with them and the CLI
// (starter) decodes them, so no shape is declared twice; contract_test.go
// checks every answer the tests see against the document.

// ErrorEnvelope is every error answer (respond.go): the error alone.
type ErrorEnvelope struct {
	Error *Error `json:"error"`
}

// Health answers GET /healthz when Postgres answers.
type Health struct {
	Status string `json:"status"`
}

// ContactAnswer answers POST /v1/contacts (GET /v1/contacts and
// GET /v1/contacts/{id} answer with ContactDetail).
type ContactAnswer struct {
	Contact storage.Contact `json:"contact"`
}

// ContactDetail answers GET /v1/contacts/{id} and a lookup: the contact, its current
// channel-level consent by channel (what the send gate reads), its
// subscription-type consents ("newsletter"...) ordered by channel and
// subscription, and its journey runs.
type ContactDetail struct {
	Contact              storage.Contact                     `json:"contact"`
	Consents             map[journey.Channel]storage.Consent `json:"consents"`
	SubscriptionConsents []storage.Consent                   `json:"subscription_consents"`
	Enrollments          []storage.Enrollment                `json:"enrollments"`
}

// ConsentAnswer answers POST /v1/contacts/{id}/consent.
type ConsentAnswer struct {
	// Consent is the consent now in force, which a change dated before it
	// does not replace.
	Consent     storage.Consent `json:"consent"`
	DoubleOptIn *DoubleOptIn    `json:"double_opt_in,omitempty"`
	HistoryID   int64           `json:"history_id"`
	// PendingDeliveries is 1 when the change was stored with a delivery to
	// the contact's running journeys (a channel-level change of a contact
	// with runs) not yet taken by Temporal, else 0. The send gate reads the
	// new consent from Postgres either way.
	PendingDeliveries int `json:"pending_deliveries"`
	// RecordedStatus differs from RequestedStatus for an SMS grant waiting
	// for the contact's confirmation (pending).
	RecordedStatus  model.ConsentStatus `json:"recorded_status"`
	RequestedStatus model.ConsentStatus `json:"requested_status"`
}

// ConsentHistory answers GET /v1/contacts/{id}/consent: the consent in
// force (channel-level and by subscription) and every change, oldest first.
type ConsentHistory struct {
	Consents []storage.Consent      `json:"consents"`
	History  []storage.ConsentEvent `json:"history"`
}

// DecisionList answers GET /v1/contacts/{id}/decisions, newest first.
type DecisionList struct {
	Decisions []storage.Decision `json:"decisions"`
}

// DoubleOptIn explains what happened to a channel-level SMS grant.
type DoubleOptIn struct {
	// Status: pending (waiting for YES/START), confirmed_by_caller, or
	// already_granted (the contact had confirmed before; it stays granted).
	Status string         `json:"status"`
	Reason string         `json:"reason"`
	Prompt *ConfirmPrompt `json:"prompt,omitempty"`
}

// ConfirmPrompt says whether the confirmation SMS went out.
type ConfirmPrompt struct {
	Sent      bool   `json:"sent"`
	MessageID string `json:"message_id,omitempty"`
	Provider  string `json:"provider,omitempty"`
	Body      string `json:"body,omitempty"`
	// Error says why it was not sent.
	Error string `json:"error,omitempty"`
}

// EraseAnswer answers DELETE /v1/contacts/{id}: 200 once every run that was
// active was told to end, 503 (with Error) when some could not be.
type EraseAnswer struct {
	Error   *Error          `json:"error,omitempty"`
	Erasure storage.Erasure `json:"erasure"`
	Already bool            `json:"already_erased"`
	Ended   []string        `json:"runs_told_to_end"`
	Failed  []DeliveryError `json:"failed,omitempty"`
}

// DeliveriesStatus answers GET /v1/deliveries/status: the outbox's state,
// with the age of its oldest pending delivery.
type DeliveriesStatus struct {
	storage.DeliveryStats
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
}

// EnrollmentAnswer answers POST /v1/journeys/{journey_id}/enrollments.
type EnrollmentAnswer struct {
	Enrollment storage.Enrollment `json:"enrollment"`
	// RunID is absent when an Idempotency-Key retry reports a run that has
	// ended and is no longer the workflow's current run.
	RunID      string `json:"run_id,omitempty"`
	WorkflowID string `json:"workflow_id"`
}

// MergeAnswer answers POST /v1/contacts/{id}/merge.
type MergeAnswer struct {
	storage.Merge
}

// ExitAnswer answers POST /v1/contacts/{id}/journeys/{journey_id}/exit:
// the request is stored with its delivery to the run, which the dispatcher
// hands to Temporal (PendingDeliveries until it has).
type ExitAnswer struct {
	Enrollment        storage.Enrollment  `json:"enrollment"`
	ExitRequest       storage.ExitRequest `json:"exit_request"`
	ExitRequested     bool                `json:"exit_requested"`
	PendingDeliveries int                 `json:"pending_deliveries"`
	WorkflowID        string              `json:"workflow_id"`
}

// JourneyRun is an enrollment with, for active runs, the workflow's own view.
type JourneyRun struct {
	storage.Enrollment
	StepsTaken     []workflows.StepRecord `json:"steps_taken,omitempty"`
	StepsTruncated int                    `json:"steps_truncated,omitempty"`
	// StateError says why the live state is missing (no worker, Temporal
	// down); the stored enrollment is still shown.
	StateError string `json:"state_error,omitempty"`
}

// JourneyRunList answers GET /v1/contacts/{id}/journeys, newest first.
type JourneyRunList struct {
	Journeys []JourneyRun `json:"journeys"`
}

// JourneySummary is one journey in GET /v1/journeys: its latest version.
type JourneySummary struct {
	JourneyID   string                `json:"journey_id"`
	Name        string                `json:"name"`
	Version     int                   `json:"version"`
	Trigger     journey.Trigger       `json:"trigger"`
	Reentry     journey.ReentryPolicy `json:"reentry"`
	PublishedAt time.Time             `json:"published_at"`
}

// JourneyList answers GET /v1/journeys.
type JourneyList struct {
	Journeys []JourneySummary `json:"journeys"`
}

// JourneyDetail answers GET /v1/journeys/{journey_id}: the latest version
// with its spec, and every version number.
type JourneyDetail struct {
	JourneyID   string       `json:"journey_id"`
	PublishedAt time.Time    `json:"published_at"`
	Spec        journey.Spec `json:"spec"`
	Version     int          `json:"version"`
	Versions    []int        `json:"versions"`
}

// ValidationResult answers POST /v1/journeys/validate, and POST
// /v1/journeys with a 422 (then with Error, invalid_journey).
type ValidationResult struct {
	Error    *Error           `json:"error,omitempty"`
	Problems journey.Problems `json:"problems"`
	Valid    bool             `json:"valid"`
}

// MessageList answers GET /v1/contacts/{id}/messages and
// GET /v1/messages/unknown: ledger rows.
type MessageList struct {
	Messages []storage.Message `json:"messages"`
}

// SandboxMessageList answers GET /v1/sandbox/messages: what the sandbox
// provider "sent".
type SandboxMessageList struct {
	Messages []storage.SandboxMessage `json:"messages"`
}

// PublishAnswer answers POST /v1/journeys.
type PublishAnswer struct {
	JourneyID   string    `json:"journey_id"`
	PublishedAt time.Time `json:"published_at"`
	Version     int       `json:"version"`
}

// Suppression is a suppression with whether it is in force now.
type Suppression struct {
	storage.Suppression
	Active bool `json:"active"`
}

// SuppressionAdded answers POST /v1/contacts/{id}/suppressions; Created is
// false when an identical active suppression was already there.
type SuppressionAdded struct {
	Created     bool        `json:"created"`
	Suppression Suppression `json:"suppression"`
}

// SuppressionLifted answers DELETE .../suppressions/{suppression_id};
// Lifted is false when it had been lifted before.
type SuppressionLifted struct {
	Lifted      bool        `json:"lifted"`
	Suppression Suppression `json:"suppression"`
}

// SuppressionList answers GET /v1/contacts/{id}/suppressions.
type SuppressionList struct {
	Suppressions []Suppression `json:"suppressions"`
}

// WhyStep is the step as the contact's journey version defines it.
type WhyStep struct {
	Version int              `json:"version"`
	Kind    journey.StepKind `json:"kind"`
	Channel journey.Channel  `json:"channel,omitempty"`
}

// WhyAnswer answers GET /v1/contacts/{id}/journeys/{journey_id}/steps/{step_id}/why.
type WhyAnswer struct {
	ContactID string `json:"contact_id"`
	JourneyID string `json:"journey_id"`
	StepID    string `json:"step_id"`
	State     string `json:"state"`
	Summary   string `json:"summary"`
	// Step is absent when no run of the contact has the step in its version
	// (the decisions then come from a version the contact no longer runs).
	Step *WhyStep `json:"step,omitempty"`
	// Enrollment is the contact's latest run of the journey.
	Enrollment *storage.Enrollment `json:"enrollment,omitempty"`
	Decisions  []storage.Decision  `json:"decisions"`
	Messages   []storage.Message   `json:"messages"`
	// RateSlot is the provider rate-limit slot the newest ledger row holds,
	// if it took one (TUTTI_RATE_LIMITS).
	RateSlot *storage.RateSlot `json:"rate_slot,omitempty"`
	// Choices are what the step chose before it sent (channel: best,
	// send_time: best), newest first, with their evidence; Choice says the
	// newest in words.
	Choices []storage.SendChoice `json:"choices,omitempty"`
	Choice  string               `json:"choice,omitempty"`
}
