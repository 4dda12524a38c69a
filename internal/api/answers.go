package api

import (
	"fmt"
	"time"

	"github.com/tutti-dev/tutti/internal/experiment"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/score"
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
	// Audiences are the contact's ad audience rows, AudienceLedger their
	// latest adds and removes (contactLedgerPage of them, newest first;
	// GET /v1/contacts/{id}/audiences pages further).
	Audiences      []storage.AudienceMember      `json:"audiences"`
	AudienceLedger []storage.AudienceLedgerEntry `json:"audience_ledger"`
}

// contactLedgerPage is how much of the audience ledger GET /v1/contacts/{id} shows.
const contactLedgerPage = 20

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
	// StartPending: the enrollment is recorded and its run is yet to be
	// started by the dispatcher (an enrollment asked with Prefer:
	// respond-async, answered 202); no run id yet.
	StartPending bool `json:"start_pending,omitempty"`
}

// MergeAnswer answers POST /v1/contacts/{id}/merge.
type MergeAnswer struct {
	storage.Merge
}

// ExitAnswer answers POST /v1/contacts/{id}/journeys/{journey_id}/exit:
// the request is stored with its delivery to the run, which the dispatcher
// hands to Temporal (PendingDeliveries until it has).
type ExitAnswer struct {
	// Enrollment, ExitRequest and WorkflowID are the first (oldest) run's.
	Enrollment        storage.Enrollment  `json:"enrollment"`
	ExitRequest       storage.ExitRequest `json:"exit_request"`
	ExitRequested     bool                `json:"exit_requested"`
	PendingDeliveries int                 `json:"pending_deliveries"`
	WorkflowID        string              `json:"workflow_id"`
	// Runs is every run told to end, oldest first: one, or one per key
	// value in a keyed journey.
	Runs []ExitedRun `json:"runs"`
}

// ExitedRun is one run an exit request was stored for.
type ExitedRun struct {
	Enrollment  storage.Enrollment  `json:"enrollment"`
	ExitRequest storage.ExitRequest `json:"exit_request"`
	WorkflowID  string              `json:"workflow_id"`
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
	// AudienceLedger is, for an audience step, the contact's adds and
	// removes in that audience, newest first.
	AudienceLedger []storage.AudienceLedgerEntry `json:"audience_ledger,omitempty"`
	// Choices are what the step chose before it sent (channel: best,
	// send_time: best), newest first, with their evidence; Choice says the
	// newest in words.
	Choices []storage.SendChoice `json:"choices,omitempty"`
	Choice  string               `json:"choice,omitempty"`
}

// ScoreModelAnswer answers PUT and GET /v1/score-model: the model in
// force. Created (PUT only) says the PUT stored a new version; false when
// the model equals the latest version.
type ScoreModelAnswer struct {
	Version   int         `json:"version"`
	Model     score.Model `json:"model"`
	CreatedAt time.Time   `json:"created_at"`
	Created   bool        `json:"created,omitempty"`
}

// ScoreAnswer answers GET /v1/contacts/{id}/score: the scores at At under
// the latest model, their bands, every contribution, and the bands last
// stored (what the next band change is measured from; nil if the contact
// was never scored).
type ScoreAnswer struct {
	ContactID     string               `json:"contact_id"`
	ModelVersion  int                  `json:"model_version"`
	At            time.Time            `json:"at"`
	Fit           float64              `json:"fit"`
	Intent        float64              `json:"intent"`
	Combined      float64              `json:"combined"`
	Bands         score.BandSet        `json:"bands"`
	Stored        *storage.StoredScore `json:"stored,omitempty"`
	Contributions []ScoreContribution  `json:"contributions"`
	// Unevaluated lists fit rules without a value for the contact (an
	// attribute it lacks), with the reason: they add nothing.
	Unevaluated map[string]string `json:"unevaluated,omitempty"`
}

// ScoreContribution is one part of a score: a fit rule that matched, or
// one event of an intent rule with its age and its value now (its points
// decayed, and scaled down when the rule reached its cap).
type ScoreContribution struct {
	Kind       string     `json:"kind"`
	Rule       string     `json:"rule"`
	EventID    string     `json:"event_id,omitempty"`
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	Age        string     `json:"age,omitempty"`
	AgeSeconds float64    `json:"age_seconds,omitempty"`
	Points     float64    `json:"points"`
	Value      float64    `json:"value"`
	Capped     bool       `json:"capped,omitempty"`
}

// JourneyReport answers GET /v1/reports/journeys/{journey_id}: the
// journey's funnel, one entry per published version, newest first.
type JourneyReport struct {
	JourneyID   string          `json:"journey_id"`
	GeneratedAt time.Time       `json:"generated_at"`
	Versions    []VersionReport `json:"versions"`
}

// VersionReport is one journey version's funnel: runs that entered it,
// what each step did, conversions, and opt-outs by channel.
type VersionReport struct {
	Version int `json:"version"`
	// Goal and ConversionWindow ("7d") say what counts as a conversion:
	// the goal event at or after entry, no later than the window after it.
	Goal             string `json:"goal,omitempty"`
	ConversionWindow string `json:"conversion_window,omitempty"`
	// Entered counts runs; Contacts the distinct contacts among them.
	Entered  int64 `json:"entered"`
	Contacts int64 `json:"contacts"`
	// Converted, its rate and the rate's 95% Wilson interval; null
	// without a goal (and the interval without entries).
	Converted               *int64               `json:"converted"`
	ConversionRate          *float64             `json:"conversion_rate"`
	ConversionRateCI        *experiment.Interval `json:"conversion_rate_ci"`
	TimeToConvertP50Seconds *float64             `json:"time_to_convert_p50_seconds"`
	TimeToConvertP90Seconds *float64             `json:"time_to_convert_p90_seconds"`
	Steps                   []StepReport         `json:"steps"`
	Channels                []ChannelReport      `json:"channels"`
	// Holdout counts the contacts first recorded in or out of the
	// journey's holdout at this version (absent without one).
	Holdout map[string]int64 `json:"holdout,omitempty"`
	// BySegment is conversion by the segments contacts were in when their
	// run began, by segment id.
	BySegment []SegmentConversion `json:"by_segment"`
	// ByPath is conversion by the path runs took (the step ids in order),
	// counted over the runs that ended: the storage.MaxPaths paths most
	// runs took, most first, then the rest together (kind "other") and
	// the ended runs with no recorded path (kind "unrecorded").
	ByPath []PathConversion `json:"by_path"`
}

// PathConversion is a version's ended runs that took one path, the
// paths beyond the listed ones, or no recorded path (Kind: path, other,
// unrecorded): how many, how many converted (null without a goal), the
// rate, its 95% Wilson interval and the median time to convert.
type PathConversion struct {
	Kind string `json:"kind"`
	// Path is the path's step ids joined by " > " ("" for a run that
	// took no step, and for kinds other and unrecorded); Steps the same
	// ids. Truncated: the run dropped its oldest steps to keep its state
	// bounded, so the path lacks its front.
	Path      string   `json:"path"`
	Steps     []string `json:"steps"`
	Truncated bool     `json:"truncated"`
	// Paths counts the distinct paths in the row: 1 for kind path.
	Paths                   int64                `json:"paths"`
	Entered                 int64                `json:"entered"`
	Converted               *int64               `json:"converted"`
	ConversionRate          *float64             `json:"conversion_rate"`
	ConversionRateCI        *experiment.Interval `json:"conversion_rate_ci"`
	TimeToConvertP50Seconds *float64             `json:"time_to_convert_p50_seconds"`
}

// PathSeparator joins a path's step ids in PathConversion.Path.
const PathSeparator = " > "

// Label names the row for people (the CLI, the report page): the path,
// "… " before one whose front was dropped, "(no steps)" for a run that
// took none; "other (N paths)"; "no recorded path".
func (p PathConversion) Label() string {
	switch p.Kind {
	case storage.PathOther:
		return fmt.Sprintf("other (%d paths)", p.Paths)
	case storage.PathUnrecorded:
		return "no recorded path"
	}
	label := p.Path
	if label == "" {
		label = "(no steps)"
	}
	if p.Truncated {
		label = "… " + label
	}
	return label
}

// SegmentConversion is a version's runs that began in one segment: how
// many, how many converted (null without a goal), the rate and its 95%
// Wilson interval.
type SegmentConversion struct {
	Segment          string               `json:"segment"`
	Entered          int64                `json:"entered"`
	Converted        *int64               `json:"converted"`
	ConversionRate   *float64             `json:"conversion_rate"`
	ConversionRateCI *experiment.Interval `json:"conversion_rate_ci"`
}

// StepReport is one step of a version's funnel.
type StepReport struct {
	StepID string           `json:"step_id"`
	Kind   journey.StepKind `json:"kind"`
	// Reached counts distinct contacts recorded at the step: a ledger row
	// for a send, a first assignment at this version for a split. Null for
	// steps that leave no record (wait, wait_for, branch, exit).
	Reached *int64 `json:"reached"`
	// Sends is a send step's ledger by outcome.
	Sends *StepSends `json:"sends,omitempty"`
	// Variants counts a split's contacts first assigned at this version, by variant.
	Variants map[string]int64 `json:"variants,omitempty"`
}

// StepSends is a send step's ledger rows by outcome (model.SendOutcome),
// with the reasons of skips and failures, and the sends the gate deferred
// at least once (a deferred send is later sent or skipped, so it is also
// counted there).
type StepSends struct {
	Messages        int64                         `json:"messages"`
	Sent            int64                         `json:"sent"`
	Skipped         int64                         `json:"skipped"`
	Failed          int64                         `json:"failed"`
	Pending         int64                         `json:"pending"`
	Unknown         int64                         `json:"unknown"`
	Deferred        int64                         `json:"deferred"`
	SkippedByReason map[string]int64              `json:"skipped_by_reason"`
	FailedByReason  map[string]int64              `json:"failed_by_reason"`
	ByStatus        map[model.MessageStatus]int64 `json:"by_status"`
}

// ChannelReport is a version's opt-outs on one channel: runs during which
// the contact revoked the channel's consent (an unsubscribe, a STOP), and
// their share of the runs that entered.
type ChannelReport struct {
	Channel journey.Channel `json:"channel"`
	// SentTo counts contacts sent at least one message on the channel.
	SentTo     int64   `json:"sent_to"`
	OptedOut   int64   `json:"opted_out"`
	OptOutRate float64 `json:"opt_out_rate"`
}

// ExperimentReport answers GET
// /v1/reports/journeys/{journey_id}/experiments/{experiment}: each group's
// conversion with its interval, against control (and the holdout) with
// lift, interval, p-value and always-valid p-value, the sample-ratio
// check and the guardrails (experiment.Analysis).
type ExperimentReport struct {
	JourneyID  string `json:"journey_id"`
	Experiment string `json:"experiment"`
	// Version is the latest version with the experiment: its variants,
	// weights, control and goal are what the results are judged by.
	Version          int     `json:"version"`
	Goal             string  `json:"goal"`
	ConversionWindow string  `json:"conversion_window"`
	Control          string  `json:"control"`
	Confidence       float64 `json:"confidence"`
	// ControlGroupExcluded counts contacts left out of the groups because
	// they are in the workspace control group.
	ControlGroupExcluded int64     `json:"control_group_excluded"`
	GeneratedAt          time.Time `json:"generated_at"`
	experiment.Analysis
}

// SegmentDefined answers PUT /v1/segments/{segment_id}: the stored version,
// and whether this request stored it (false: the definition was the latest
// version already).
type SegmentDefined struct {
	storage.SegmentVersion
	Created bool `json:"created"`
}

// SegmentList answers GET /v1/segments.
type SegmentList struct {
	Segments []storage.SegmentSummary `json:"segments"`
}

// SegmentMembers answers GET /v1/segments/{segment_id}/members; Next is the
// after of the next page, absent on the last.
type SegmentMembers struct {
	SegmentID string                      `json:"segment_id"`
	Members   []storage.SegmentMembership `json:"members"`
	Next      string                      `json:"next,omitempty"`
}

// ContactSegments answers GET /v1/contacts/{id}/segments: the contact's
// memberships, newest first, and every segment's verdict on its data now
// (which clauses hold). A verdict may differ from the memberships for the
// moment the workers take to record a change.
type ContactSegments struct {
	ContactID   string                      `json:"contact_id"`
	Memberships []storage.SegmentMembership `json:"memberships"`
	Now         []storage.SegmentVerdict    `json:"now"`
}
