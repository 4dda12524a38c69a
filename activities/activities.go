// Package activities holds every Temporal activity of Tutti: the only code a
// journey runs that touches Postgres or a provider. All activities are methods
// on Activities, whose fields are their dependencies.
package activities

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Activities holds the dependencies of every activity.
type Activities struct {
	Store *storage.Store
	// Delivery is the one send path (decide, deliver, settle) every message
	// takes; its Store is the same.
	Delivery *delivery.Service
	Logger   *slog.Logger
	// Audiences are the ad platforms' clients, by destination (sandbox
	// stand-ins in sandbox mode).
	Audiences map[audience.Destination]audience.Platform
	// Now is the clock conditions over stored behaviour read (their now);
	// nil means time.Now. A preview runs journeys in simulated time.
	Now func() time.Time
	// ControlGroupShare is the workspace control group's share
	// (config.Config.ControlGroupShare); 0: no control group.
	ControlGroupShare float64
	// Policy is the send-gate settings ChooseSend keeps to when there is
	// no Delivery (a preview); nil means Delivery.Policy.
	Policy *policy.Settings

	// workspaceCache keeps the workspace's engagement pattern for ChooseSend.
	workspaceOnce  sync.Once
	workspaceCache *workspaceCache
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// BeginEnrollmentInput identifies the run being started.
type BeginEnrollmentInput struct {
	EnrollmentID string `json:"enrollment_id"`
	ContactID    string `json:"contact_id"`
	JourneyID    string `json:"journey_id"`
	Version      int    `json:"version"`
	WorkflowID   string `json:"workflow_id"`
}

// BeginEnrollment makes sure the enrollment row exists (idempotent).
func (a *Activities) BeginEnrollment(ctx context.Context, in BeginEnrollmentInput) error {
	err := a.Store.EnsureEnrollment(ctx, storage.Enrollment{
		ID:         in.EnrollmentID,
		ContactID:  in.ContactID,
		JourneyID:  in.JourneyID,
		Version:    in.Version,
		WorkflowID: in.WorkflowID,
		Status:     model.RunActive,
		RunKey:     runKeyOf(in.WorkflowID),
	})
	if errors.Is(err, storage.ErrAlreadyActive) {
		// Another run owns the active slot: this one must not proceed.
		return temporal.NewNonRetryableApplicationError("contact already has an active run of this journey", "AlreadyActive", err)
	}
	if errors.Is(err, storage.ErrErased) {
		// The contact was erased between the start and this activity. The
		// erasure has told the run to end (workflows.ExitErased); nothing
		// is left to record, and retrying would only wait forever.
		a.logger().Info("begin enrollment: contact erased", "enrollment_id", in.EnrollmentID, "contact_id", in.ContactID)
		return nil
	}
	return err
}

// runKeyOf is the key digest a keyed run's workflow id ends with
// (workflows.JourneyRunWorkflowID), "" for a run of a journey without a
// key. Read from the id rather than carried in the input, so runs started
// before keys existed, and their histories, are unchanged.
func runKeyOf(workflowID string) string {
	i := strings.LastIndex(workflowID, "/key/")
	if i < 0 {
		return ""
	}
	if digest := workflowID[i+len("/key/"):]; journey.IsRunKeyDigest(digest) {
		return digest
	}
	return ""
}

// FinishEnrollmentInput records how a run ended.
type FinishEnrollmentInput struct {
	EnrollmentID string          `json:"enrollment_id"`
	Status       model.RunStatus `json:"status"`
	// Reason is a reason code, never free text: this input is kept in the
	// run's history.
	Reason string `json:"reason"`
	// ExitRequestID is the exit request that ended the run, if one did;
	// the enrollment row points at it, and so at support's own words.
	ExitRequestID string `json:"exit_request_id,omitempty"`
	// LastStep is the step the run was at when it ended, kept for support
	// once the run can no longer be queried.
	LastStep string `json:"last_step,omitempty"`
	// Path is the ids of the steps the run took, in order, over every run
	// it continued as new into (the journey report counts conversion by
	// it). Ids only: they are names from the spec. Nil, as from a worker
	// older than the field, records no path; empty is a run that took no
	// step.
	Path []string `json:"path"`
	// PathTruncated: older steps were dropped from the front of Path to
	// keep the run's state bounded.
	PathTruncated bool `json:"path_truncated,omitempty"`
}

// FinishEnrollment marks the enrollment ended (idempotent).
func (a *Activities) FinishEnrollment(ctx context.Context, in FinishEnrollmentInput) error {
	if in.LastStep != "" {
		if err := a.Store.SetEnrollmentStep(ctx, in.EnrollmentID, in.LastStep); err != nil {
			return err
		}
	}
	return a.Store.EndEnrollment(ctx, in.EnrollmentID, storage.EnrollmentEnd{
		Status: in.Status, Reason: in.Reason, ExitRequestID: in.ExitRequestID, EndedAt: time.Now(),
		Path: in.Path, PathTruncated: in.PathTruncated})
}

// JourneyContext is what a condition may read about the run.
type JourneyContext struct {
	ID          string         `json:"id"`
	Version     int            `json:"version"`
	Step        string         `json:"step"`
	EventCounts map[string]int `json:"event_counts"`
	EnteredAt   time.Time      `json:"entered_at"`
}

// EvaluateConditionInput names the contact and the CEL condition to evaluate.
type EvaluateConditionInput struct {
	ContactID string         `json:"contact_id"`
	Condition string         `json:"condition"`
	Journey   JourneyContext `json:"journey"`
}

// EvaluateConditionResult is the condition's value, or why it has none.
type EvaluateConditionResult struct {
	Value bool `json:"value"`
	// Error is a code saying why the condition has no value: one of
	// journey's Cond* codes ("invalid_timestamp", "no_such_attribute"...)
	// or ConditionContactNotFound. Never the evaluator's message: the
	// result is kept in workflow history, and the message quotes the
	// contact's values.
	Error string `json:"error,omitempty"`
}

// ConditionContactNotFound is EvaluateConditionResult.Error when the
// contact is gone (erased).
const ConditionContactNotFound = "contact_not_found"

// EvaluateCondition evaluates a branch condition against the contact's current
// attributes and consent and, when the condition reads them, the contact's
// stored events (of the names it asks for) at the moment it runs. Only the
// boolean, or an error code, goes into workflow history.
func (a *Activities) EvaluateCondition(ctx context.Context, in EvaluateConditionInput) (EvaluateConditionResult, error) {
	cond, err := journey.CachedCondition(in.Condition)
	if err != nil {
		// The spec was validated at publish time, so this is a real defect.
		return EvaluateConditionResult{}, temporal.NewNonRetryableApplicationError("condition does not compile: "+err.Error(), "BadCondition", err)
	}
	c, err := a.Store.Contact(ctx, in.ContactID)
	if errors.Is(err, storage.ErrNotFound) {
		return EvaluateConditionResult{Error: ConditionContactNotFound}, nil
	}
	if err != nil {
		return EvaluateConditionResult{}, err
	}
	consents, err := a.Store.Consents(ctx, in.ContactID)
	if err != nil {
		return EvaluateConditionResult{}, err
	}
	consentView := map[string]string{}
	for ch, cs := range consents {
		consentView[string(ch)] = string(cs.Status)
	}
	events := map[string]any{}
	for name, n := range in.Journey.EventCounts {
		events[name] = int64(n)
	}
	var behaviour *journey.Behaviour
	if reads := cond.Behaviour(); reads.Reads {
		stored, truncated, err := a.Store.BehaviourEvents(ctx, in.ContactID, reads.Names, reads.AllNames, journey.MaxBranchEvents)
		if err != nil {
			return EvaluateConditionResult{}, err
		}
		if truncated {
			a.logger().Info("condition has no value", "contact_id", in.ContactID, "journey_id", in.Journey.ID,
				"version", in.Journey.Version, "step", in.Journey.Step, "code", journey.CondTooManyEvents)
			return EvaluateConditionResult{Error: journey.CondTooManyEvents}, nil
		}
		behaviour = &journey.Behaviour{Events: stored, Now: a.now().UTC()}
	}
	data := journey.TemplateData(contactView(c), in.Journey.ID, in.Journey.Version)
	value, err := cond.Eval(journey.ConditionInput{
		Behaviour: behaviour,
		Contact:   data["contact"].(map[string]any),
		Consent:   consentView,
		Journey: map[string]any{
			"id":         in.Journey.ID,
			"version":    int64(in.Journey.Version),
			"step":       in.Journey.Step,
			"events":     events,
			"entered_at": in.Journey.EnteredAt,
		},
	})
	var ee *journey.EvalError
	if errors.As(err, &ee) {
		// The code says which class of failure; the condition (from the
		// spec) says where. The message is not logged: it quotes values.
		a.logger().Info("condition has no value", "contact_id", in.ContactID, "journey_id", in.Journey.ID,
			"version", in.Journey.Version, "step", in.Journey.Step, "code", ee.Code)
		return EvaluateConditionResult{Error: ee.Code}, nil
	}
	if err != nil {
		return EvaluateConditionResult{}, err
	}
	return EvaluateConditionResult{Value: value}, nil
}

func contactView(c storage.Contact) journey.ContactView {
	return journey.ContactView{
		ID:         c.ID,
		ExternalID: c.ExternalID,
		Email:      c.Email,
		Phone:      c.Phone,
		TimeZone:   c.TimeZone,
		Attributes: c.Attributes,
	}
}
