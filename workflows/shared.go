// Package workflows holds Tutti's Temporal workflows. The journey workflow
// interprets one published journey spec for one contact; it is deterministic
// and does no I/O of its own: activities load contacts, evaluate conditions
// and send messages.
package workflows

import (
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/searchattr"
)

// TaskQueue is the one task queue shared by the worker and every client.
const TaskQueue = "tutti-journeys"

// Signal and query names. Clients use these constants, never string literals.
const (
	// SignalEvent delivers a tracked event (purchase, email.opened...) to a running journey.
	SignalEvent = "event"
	// SignalEvents delivers several tracked events at once ([]EventSignal):
	// the outbox's dispatcher batches a contact's pending events under a
	// flood, so one signal (one history event and one workflow task) carries
	// up to a hundred of them. The journey handles both names alike.
	SignalEvents = "events"
	// SignalConsent tells a running journey that the contact's consent for a channel changed.
	SignalConsent = "consent"
	// SignalExit asks the journey to end now (support's "exit contact", with a reason).
	SignalExit = "exit"
	// QueryState returns the journey's JourneyState.
	QueryState = "state"
)

// Search attributes, registered on the Temporal server (the dev scripts pass
// them to `temporal server start-dev --search-attribute`). No PII: ids only.
// Declared once, in internal/searchattr.
var (
	SearchContactID      = searchattr.ContactID
	SearchJourneyID      = searchattr.JourneyID
	SearchJourneyVersion = searchattr.JourneyVersion
	SearchJourneyStep    = searchattr.JourneyStep
)

// MemoEnrollmentID is the memo field that names a run's enrollment. After a
// start call whose answer was lost, the API describes the workflow and
// compares it with the enrollment it tried to start, so it can tell its own
// run from another one. An id, never PII.
const MemoEnrollmentID = "enrollment_id"

// JourneyWorkflowID is readable in the Temporal UI and carries no email or phone:
// one id per (journey, contact) is what keeps two runs from being concurrent.
func JourneyWorkflowID(journeyID, contactID string) string {
	return "journey/" + journeyID + "/contact/" + contactID
}

// JourneyRunWorkflowID is the workflow id of a contact's run of a journey
// for one key value (journey.Trigger.Key): JourneyWorkflowID followed by
// "/key/" and the value's digest (journey.RunKeyDigest), never the value,
// which may be anything a client sends. An empty runKey (a journey without
// a key) is JourneyWorkflowID.
func JourneyRunWorkflowID(journeyID, contactID, runKey string) string {
	if runKey == "" {
		return JourneyWorkflowID(journeyID, contactID)
	}
	return JourneyWorkflowID(journeyID, contactID) + "/key/" + runKey
}

// DefaultContinueAsNewAfter is the history length a run keeps under when
// TUTTI_CONTINUE_AS_NEW_AFTER is 0: far below Temporal's 51,200-event limit
// even for year-long journeys that receive many events.
const DefaultContinueAsNewAfter = 5000

// The headroom between the setting and the point where a run hands over
// (HandOverPoint). A run of the bounded-hand-over version continues as new
// at its first workflow task that starts at or past the hand-over point, and
// the outbox's dispatcher stops signalling a run that has reached it until
// the run has handed over (internal/api/dispatch.go). What a run can still
// write after the hand-over point is then bounded by what the headroom
// counts:
const (
	// stepEvents: the most events one workflow task that does not hand over
	// writes from its start on: its WorkflowTaskCompleted and the commands of
	// a step (at most 4 in the recorded histories: a version marker and its
	// TemporalChangeVersion upsert, the step's search attribute upsert, an
	// activity or a timer; 7 leaves room for a second version marker and a
	// local activity's marker).
	stepEvents = 8
	// signalEvents: one delivered signal and its workflow task
	// (WorkflowExecutionSignaled, WorkflowTaskScheduled, WorkflowTaskStarted),
	// and the WorkflowTaskFailed Temporal writes when that signal arrives
	// while a task is handing over (a run cannot close over unseen events).
	signalEvents = 4
	// handOverEvents: the hand-over itself (WorkflowTaskCompleted,
	// TimerCanceled for the interrupted wait, WorkflowExecutionContinuedAsNew).
	handOverEvents = 3
	// HandOverHeadroom is the sum: how far below the setting a run hands over.
	HandOverHeadroom = stepEvents + signalEvents + handOverEvents
)

// HandOverPoint is the history length at which a run hands over to a new
// one (continues as new), for the setting TUTTI_CONTINUE_AS_NEW_AFTER (0:
// DefaultContinueAsNewAfter). The workflow and the outbox's dispatcher both
// use it: the run continues as new at its first task that starts there, and
// the dispatcher holds a run's deliveries from there on until it has. It is
// HandOverHeadroom below the setting, so the setting is a ceiling for runs
// fed through the outbox; but never below half the setting, so a run with a
// very small setting still gets work done before handing over (such a
// setting is then not a ceiling; the configuration refuses settings below
// 2*HandOverHeadroom, config.MinContinueAsNewAfter, and only tests set them).
func HandOverPoint(setting int) int {
	if setting <= 0 {
		setting = DefaultContinueAsNewAfter
	}
	return max(setting-HandOverHeadroom, setting/2)
}

// JourneyInput starts (or continues) a journey run for one contact.
type JourneyInput struct {
	EnrollmentID string       `json:"enrollment_id"`
	ContactID    string       `json:"contact_id"`
	Version      int          `json:"version"`
	Spec         journey.Spec `json:"spec"`
	// ContinueAsNewAfter bounds the history length before the run continues as
	// new (TUTTI_CONTINUE_AS_NEW_AFTER; see HandOverPoint); zero means the
	// default. Tests set it small.
	ContinueAsNewAfter int `json:"continue_as_new_after,omitempty"`
	// Carried is the interpreter state handed over by continue-as-new; nil on a fresh start.
	Carried *CarriedState `json:"carried,omitempty"`
	// Trigger is the event that enrolled the contact (event-triggered
	// journeys); an abandonment journey's SMS rules are counted against it.
	Trigger *EventSignal `json:"trigger,omitempty"`
}

// EventSignal is the payload of SignalEvent. It carries the event id and name,
// not its properties: activities load those by id when a condition needs them.
type EventSignal struct {
	EventID    string    `json:"event_id"`
	Name       string    `json:"name"`
	OccurredAt time.Time `json:"occurred_at"`
	// Segment is the segment a segment.entered or segment.exited event is
	// about (its id: no person's data), which exit_when_leaving needs.
	Segment string `json:"segment,omitempty"`
}

// SignalOf is the signal payload of a stored event: its id, name and
// time, and the segment of a segment event.
func SignalOf(id, name string, occurredAt time.Time, properties map[string]any) EventSignal {
	ev := EventSignal{EventID: id, Name: name, OccurredAt: occurredAt}
	if name == journey.EventSegmentEntered || name == journey.EventSegmentExited {
		ev.Segment, _ = properties["segment"].(string)
	}
	return ev
}

// ConsentSignal is the payload of SignalConsent.
type ConsentSignal struct {
	Channel journey.Channel     `json:"channel"`
	Status  model.ConsentStatus `json:"status"`
}

// Exit reason codes: what a run told to end (SignalExit) ends with.
const (
	// ExitSupport: support asked the run to end. Their free-text reason is
	// in PostgreSQL, in the exit request the signal names (RequestID).
	ExitSupport = model.ExitSupport
	// ExitErased: the contact was erased (DELETE /v1/contacts/{id}).
	ExitErased = model.ExitErased
	// ExitMerged: the contact was merged into another one; the exit
	// request the signal names says into which.
	ExitMerged = model.ExitMerged
)

// ExitSignal is the payload of SignalExit. A signal is kept in the run's
// Temporal history, so it carries a reason code and the id of the exit
// request row, never support's free text ("Jane called from +1 415...").
// Signals from before the codes carried the text itself in Reason; such a
// history replays the same (an exit signal's handling issues no command),
// and the text ends up as that run's reason as it did then.
type ExitSignal struct {
	// Reason is an exit reason code (ExitSupport, ExitErased, ExitMerged).
	Reason string `json:"reason"`
	// RequestID is the exit request (storage.ExitRequest) holding the
	// free-text reason, for ExitSupport.
	RequestID string `json:"request_id,omitempty"`
	By        string `json:"by,omitempty"`
}

// StepRecord is one step taken, as shown to support and ops.
type StepRecord struct {
	StepID     string           `json:"step_id"`
	Kind       journey.StepKind `json:"kind"`
	StartedAt  time.Time        `json:"started_at"`
	FinishedAt time.Time        `json:"finished_at,omitempty"`
	// Outcome says what happened: "sent", "skipped: no_consent", "event", "timeout", "then", "else"...
	Outcome string `json:"outcome,omitempty"`
}

// JourneyState is what QueryState returns.
type JourneyState struct {
	JourneyID   string          `json:"journey_id"`
	Version     int             `json:"version"`
	ContactID   string          `json:"contact_id"`
	Status      model.RunStatus `json:"status"`
	CurrentStep string          `json:"current_step,omitempty"`
	ExitReason  string          `json:"exit_reason,omitempty"`
	StepsTaken  []StepRecord    `json:"steps_taken"`
	// StepsTruncated counts older step records dropped to keep state bounded.
	StepsTruncated int `json:"steps_truncated,omitempty"`
	// EventCounts counts the events the journey received, by name, over
	// every run it continued as new into.
	EventCounts map[string]int `json:"event_counts,omitempty"`
	// WaitingUntil is when the wait or wait_for in progress ends at the
	// latest (absent for runs that began the wait before it was recorded).
	WaitingUntil *time.Time `json:"waiting_until,omitempty"`
}

// JourneyResult is the workflow's result: a status and a reason code
// ("goal: purchase", "support_exit", "erased"...), never free text.
type JourneyResult struct {
	Status     model.RunStatus `json:"status"`
	ExitReason string          `json:"exit_reason,omitempty"`
}

// Audience sync (AudienceSync).
const (
	// SignalAudienceSync wakes an audience's sync for a pass now.
	SignalAudienceSync = "sync"
	// DefaultAudienceSyncInterval is the time between passes: the longest
	// a revoked ads consent or a new suppression keeps someone in an
	// audience (TUTTI_AUDIENCE_SYNC_INTERVAL).
	DefaultAudienceSyncInterval = time.Minute
	// AudienceSyncPassesPerRun bounds one run's history before it
	// continues as new.
	AudienceSyncPassesPerRun = 200
	// DefaultAudienceFullSyncEvery is the time between full syncs
	// (TUTTI_AUDIENCE_FULL_SYNC_EVERY).
	DefaultAudienceFullSyncEvery = 24 * time.Hour
)

// AudienceSyncInput names the audience a sync keeps.
type AudienceSyncInput struct {
	AudienceID string        `json:"audience_id"`
	Interval   time.Duration `json:"interval,omitempty"`
	// FullEvery is the time between full syncs, which send the members
	// whole again to repair drift on the platform's side (0: never);
	// LastFull, carried over continue-as-new, is when the last one ran.
	FullEvery time.Duration `json:"full_every,omitempty"`
	LastFull  time.Time     `json:"last_full,omitzero"`
}

// AudienceSyncWorkflowID is the one sync workflow of an audience.
func AudienceSyncWorkflowID(audienceID string) string { return "audience-sync/" + audienceID }
