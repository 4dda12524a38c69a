package storage

import (
	"errors"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Errors callers branch on. Wrapped errors carry detail; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrIdentityConflict: the identifiers given belong to different contacts.
	ErrIdentityConflict = errors.New("identifiers belong to different contacts")
	// ErrEventConflict: an event id was reused for a different contact or name.
	ErrEventConflict = errors.New("event id already used for a different event")
	// ErrAlreadyActive: the contact already has an active run of this journey.
	ErrAlreadyActive = errors.New("contact already has an active run of this journey")
	// ErrEnrollmentExists: an enrollment with this id was recorded before
	// (an earlier attempt of the same keyed call).
	ErrEnrollmentExists = errors.New("enrollment already recorded")
	// ErrConflict: the write would break a uniqueness rule (one abandonment
	// SMS per event, one active suppression per reason...).
	ErrConflict = errors.New("conflicts with an existing row")
)

// Contact is a person; email and phone are normalised before they get here.
type Contact struct {
	ID         string         `json:"id"`
	ExternalID string         `json:"external_id,omitempty"`
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	TimeZone   string         `json:"time_zone,omitempty"`
	Country    string         `json:"country,omitempty"` // ISO 3166-1 alpha-2, upper case; "" if unknown
	Attributes map[string]any `json:"attributes"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	// MergedInto is the survivor this contact was merged into (MergeContacts),
	// "" for a contact in its own right; MergedAt says when.
	MergedInto string     `json:"merged_into,omitempty"`
	MergedAt   *time.Time `json:"merged_at,omitempty"`
}

// ContactInput identifies (and updates) a contact. Empty fields are left as
// they are; Attributes are merged key by key (a null value removes the key).
type ContactInput struct {
	ID         string
	ExternalID string
	Email      string
	Phone      string
	TimeZone   string
	Country    string // upper-case ISO 3166-1 alpha-2; "" leaves it as is
	Attributes map[string]any
}

// ConsentEvent is one change of consent, kept forever.
type ConsentEvent struct {
	ID           int64               `json:"id"`
	ContactID    string              `json:"contact_id"`
	Channel      journey.Channel     `json:"channel"`
	Subscription string              `json:"subscription,omitempty"`
	Status       model.ConsentStatus `json:"status"`
	Source       string              `json:"source"`
	OccurredAt   time.Time           `json:"occurred_at"`
	RecordedAt   time.Time           `json:"recorded_at"`
}

// Consent is the current consent for one channel.
type Consent struct {
	ContactID string          `json:"contact_id"`
	Channel   journey.Channel `json:"channel"`
	// Subscription is the subscription type ("newsletter"...); "" is the
	// channel-level record.
	Subscription   string              `json:"subscription,omitempty"`
	Status         model.ConsentStatus `json:"status"`
	Source         string              `json:"source"`
	OccurredAt     time.Time           `json:"occurred_at"`
	ConsentEventID int64               `json:"consent_event_id"`
}

// Event is a tracked behaviour event.
type Event struct {
	ID         string         `json:"id"`
	ContactID  string         `json:"contact_id"`
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties"`
	OccurredAt time.Time      `json:"occurred_at"`
	ReceivedAt time.Time      `json:"received_at"`
}

// JourneyVersion is one published, immutable version of a journey.
type JourneyVersion struct {
	JourneyID   string       `json:"journey_id"`
	Version     int          `json:"version"`
	Spec        journey.Spec `json:"spec"`
	PublishedAt time.Time    `json:"published_at"`
}

// Enrollment is one run of a journey for a contact.
type Enrollment struct {
	ID         string          `json:"id"`
	ContactID  string          `json:"contact_id"`
	JourneyID  string          `json:"journey_id"`
	Version    int             `json:"version"`
	WorkflowID string          `json:"workflow_id"`
	Status     model.RunStatus `json:"status"`
	// RunKey is the run's key digest (journey.RunKeyDigest) in a journey
	// keyed by a property of its triggering event: one run per key value.
	// Empty for a journey without a key.
	RunKey string `json:"run_key,omitempty"`
	// ExitReason is a reason code: "goal: purchase", "support_exit", "erased"...
	ExitReason string `json:"exit_reason,omitempty"`
	// ExitRequestID and ExitNote are the exit request that ended the run,
	// if one did, and support's free-text reason from it. The note stays in
	// PostgreSQL; the run itself only ever saw the code.
	ExitRequestID string     `json:"exit_request_id,omitempty"`
	ExitNote      string     `json:"exit_note,omitempty"`
	CurrentStep   string     `json:"current_step,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
}

// Message is one row of the ledger.
type Message struct {
	ID                string              `json:"id"`
	IdempotencyKey    string              `json:"idempotency_key"`
	ContactID         string              `json:"contact_id"`
	JourneyID         string              `json:"journey_id"`
	JourneyVersion    int                 `json:"journey_version"`
	StepID            string              `json:"step_id"`
	Channel           journey.Channel     `json:"channel"`
	Class             string              `json:"class"`
	Provider          string              `json:"provider"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	Status            model.MessageStatus `json:"status"`
	StatusReason      string              `json:"status_reason,omitempty"`
	ConsentEventID    *int64              `json:"consent_event_id,omitempty"`
	Attempts          int                 `json:"attempts"`
	CreatedAt         time.Time           `json:"created_at"`
	UpdatedAt         time.Time           `json:"updated_at"`
	SentAt            *time.Time          `json:"sent_at,omitempty"`
	// AbandonmentEventID is the abandonment event an abandonment journey's
	// message was sent for.
	AbandonmentEventID string `json:"abandonment_event_id,omitempty"`
	// DecisionID is the gate decision that let the message go (or skipped it).
	DecisionID *int64 `json:"decision_id,omitempty"`
	// Subscription is the subscription type the send rests on ("" for the
	// channel-level consent); re-checked before the request is written.
	Subscription string `json:"subscription,omitempty"`
	// StatusDetail is the provider's own explanation of a failure. It may
	// quote the address, so it stays in Postgres: StatusReason is a code.
	StatusDetail string `json:"status_detail,omitempty"`
	// FlightDeadline: for an in-flight send, the time by which its request
	// is written or never.
	FlightDeadline *time.Time `json:"flight_deadline,omitempty"`
}

// ClaimOutcome tells the send activity what a claim on an idempotency key found.
type ClaimOutcome int

const (
	// ClaimNew: no row existed; one was written as reserved. Send now.
	ClaimNew ClaimOutcome = iota
	// ClaimRetry: an earlier attempt wrote no request (reserved, retrying)
	// and the gate allowed it again; the row is reserved. Send now.
	ClaimRetry
	// ClaimDone: the key already reached a final status; do not send, return it.
	ClaimDone
	// ClaimInFlight: an earlier attempt may have written its request and got
	// no answer. Do not send before finding out (see Store.ReleaseFlight).
	ClaimInFlight
)

// SandboxMessage is what the sandbox provider recorded instead of sending.
type SandboxMessage struct {
	ID        string          `json:"id"`
	MessageID string          `json:"message_id"`
	ContactID string          `json:"contact_id"`
	JourneyID string          `json:"journey_id"`
	StepID    string          `json:"step_id"`
	Channel   journey.Channel `json:"channel"`
	Recipient string          `json:"recipient"`
	Payload   map[string]any  `json:"payload"`
	CreatedAt time.Time       `json:"created_at"`
}
