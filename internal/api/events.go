package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.temporal.io/api/serviceerror"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

type eventRequest struct {
	EventID    string         `json:"event_id"`
	ContactID  string         `json:"contact_id"`
	ExternalID string         `json:"external_id"`
	Email      string         `json:"email"`
	Name       string         `json:"name"`
	OccurredAt string         `json:"occurred_at"`
	Properties map[string]any `json:"properties"`
}

// eventResponse is the answer to POST /v1/events. When part of the fan-out
// failed it is sent with a 503 and Error set: the event is stored, and
// retrying with the same event_id finishes the delivery.
type eventResponse struct {
	Error       *Error          `json:"error,omitempty"`
	Event       storage.Event   `json:"event"`
	Duplicate   bool            `json:"duplicate"`
	Signalled   []string        `json:"signalled"`
	Enrolled    []enrolledRun   `json:"enrolled"`
	NotEnrolled []notEnrolled   `json:"not_enrolled"`
	Failed      []DeliveryError `json:"failed,omitempty"`
}

type enrolledRun struct {
	JourneyID    string `json:"journey_id"`
	Version      int    `json:"version"`
	EnrollmentID string `json:"enrollment_id"`
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id,omitempty"`
}

type notEnrolled struct {
	JourneyID string `json:"journey_id"`
	Reason    string `json:"reason"` // the refusal code: already_active, reentry_refused, reentry_cooldown
	Message   string `json:"message"`
}

// DeliveryError is one signal or start that failed for a reason other than
// the run having ended or the re-entry policy refusing.
type DeliveryError struct {
	WorkflowID string `json:"workflow_id,omitempty"`
	JourneyID  string `json:"journey_id,omitempty"`
	Error      string `json:"error"`
}

// trackEvent stores an event, delivers it to the contact's running journeys
// and enrolls the contact in journeys the event triggers.
//
// Order matters. The event is stored first, so a retry finds it and the
// client's event_id makes the call idempotent. Running journeys are signalled
// next, before any triggered journey starts, so a journey the event itself
// starts does not also receive it as an in-journey event. Everything happens
// before the response, so a running journey sees the event right away.
func (s *Server) trackEvent(w http.ResponseWriter, r *http.Request) {
	var req eventRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var fe fieldErrors
	req.EventID = strings.TrimSpace(req.EventID)
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.EventID == "":
		fe.add("event_id", "required: a unique id for this event, used to make retries idempotent")
	case len(req.EventID) > maxIDLen:
		fe.add("event_id", "at most %d characters", maxIDLen)
	}
	switch {
	case req.Name == "":
		fe.add("name", "required, e.g. purchase")
	case len(req.Name) > maxIDLen:
		fe.add("name", "at most %d characters", maxIDLen)
	}
	var given []string
	for _, f := range []struct{ name, v string }{{"contact_id", req.ContactID}, {"external_id", req.ExternalID}, {"email", req.Email}} {
		if strings.TrimSpace(f.v) != "" {
			given = append(given, f.name)
		}
	}
	switch len(given) {
	case 0:
		fe.add("contact_id", "required: give exactly one of contact_id, external_id or email")
	case 1:
	default:
		for _, g := range given[1:] {
			fe.add(g, "give exactly one of contact_id, external_id or email, not %s", strings.Join(given, " and "))
		}
	}
	email := ""
	switch {
	case len(given) != 1:
	case given[0] == "email":
		email = s.normalize(&fe, "email", req.Email)
	case given[0] == "external_id":
		if err := contact.ValidateExternalID(req.ExternalID); err != nil {
			fe.add("external_id", "%s", reason(err))
		}
	}
	now := s.now().UTC()
	occurred := parseTime(&fe, "occurred_at", req.OccurredAt, now)
	s.checkNotFuture(&fe, "occurred_at", occurred, now)
	if err := fe.err(); err != nil {
		writeError(w, r, err)
		return
	}

	ctx := r.Context()
	var (
		c   storage.Contact
		err error
	)
	switch given[0] {
	case "contact_id":
		c, err = s.contactByID(ctx, strings.TrimSpace(req.ContactID), "contact_id")
	case "external_id":
		c, err = s.store.ContactByExternalID(ctx, req.ExternalID)
		if errors.Is(err, storage.ErrNotFound) {
			err = notFound("contact with external_id", req.ExternalID, "external_id")
		}
	default:
		c, err = s.store.ContactByEmail(ctx, email)
		if errors.Is(err, storage.ErrNotFound) {
			err = &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no contact with that email",
				Fields: []FieldError{{Path: "email", Message: "no contact with this email"}}}
		}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}

	ev, inserted, err := s.store.InsertEvent(ctx, storage.Event{
		ID: req.EventID, ContactID: c.ID, Name: req.Name, Properties: req.Properties, OccurredAt: occurred,
	})
	switch {
	case errors.Is(err, storage.ErrEventConflict):
		writeError(w, r, conflict("event_conflict", err.Error(),
			FieldError{Path: "event_id", Message: "already used for a different event (another contact or name)"}))
		return
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, r, notFound("contact", c.ID, given[0]))
		return
	case err != nil:
		writeError(w, r, err)
		return
	}

	resp := eventResponse{Event: ev, Duplicate: !inserted, Signalled: []string{}, Enrolled: []enrolledRun{}, NotEnrolled: []notEnrolled{}}

	// Deliver to the runs that were active when the event was received. A run
	// started later (for example by this event on an earlier attempt) was not
	// running then and must not see it as an in-journey event.
	fan := s.fanOut(ctx, c.ID, workflows.SignalEvent,
		workflows.EventSignal{EventID: ev.ID, Name: ev.Name, OccurredAt: ev.OccurredAt},
		func(e storage.Enrollment) bool { return ev.ReceivedAt.IsZero() || !e.StartedAt.After(ev.ReceivedAt) })
	resp.Signalled = append(resp.Signalled, fan.signalled...)
	resp.Failed = append(resp.Failed, fan.failed...)

	s.startTriggered(ctx, c, ev, inserted, &resp)

	if len(resp.Failed) > 0 {
		resp.Error = &Error{Status: http.StatusServiceUnavailable, Code: "delivery_incomplete",
			Message: fmt.Sprintf("event %s is stored, but %d deliveries failed; retry with the same event_id to finish them", ev.ID, len(resp.Failed))}
		loggerFrom(ctx).Warn("api: event delivery incomplete", "event_id", ev.ID, "failed", resp.Failed)
		writeJSON(w, http.StatusServiceUnavailable, resp)
		return
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// startTriggered enrolls the contact in every journey whose latest version is
// triggered by this event. For a duplicate event, a journey the contact
// entered after the event was first received counts as enrolled by it: a
// retry repairs a start that failed, but never starts a second run.
func (s *Server) startTriggered(ctx context.Context, c storage.Contact, ev storage.Event, inserted bool, resp *eventResponse) {
	versions, err := s.store.LatestVersionsTriggeredBy(ctx, ev.Name)
	if err != nil {
		resp.Failed = append(resp.Failed, DeliveryError{Error: "finding journeys triggered by " + ev.Name + ": " + err.Error()})
		return
	}
	for _, jv := range versions {
		if !inserted {
			last, err := s.store.LastEnrollment(ctx, c.ID, jv.JourneyID)
			if err == nil && !ev.ReceivedAt.IsZero() && !last.StartedAt.Before(ev.ReceivedAt) {
				resp.Enrolled = append(resp.Enrolled, enrolledRun{JourneyID: jv.JourneyID, Version: last.Version, EnrollmentID: last.ID, WorkflowID: last.WorkflowID})
				continue
			}
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				resp.Failed = append(resp.Failed, DeliveryError{JourneyID: jv.JourneyID, Error: err.Error()})
				continue
			}
		}
		trigger := &workflows.EventSignal{EventID: ev.ID, Name: ev.Name, OccurredAt: ev.OccurredAt}
		// The event id names the start: a retry of the event is the same enrollment.
		started, err := s.startJourney(ctx, c.ID, jv, trigger, "event/"+ev.ID)
		var ae *Error
		switch {
		case err == nil:
			resp.Enrolled = append(resp.Enrolled, enrolledRun{JourneyID: jv.JourneyID, Version: jv.Version,
				EnrollmentID: started.Enrollment.ID, WorkflowID: started.Enrollment.WorkflowID, RunID: started.RunID})
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			resp.NotEnrolled = append(resp.NotEnrolled, notEnrolled{JourneyID: jv.JourneyID, Reason: ae.Code, Message: ae.Message})
		default:
			resp.Failed = append(resp.Failed, DeliveryError{JourneyID: jv.JourneyID, Error: err.Error()})
		}
	}
}

// fanResult is what a signal fan-out did.
type fanResult struct {
	signalled []string
	failed    []DeliveryError
}

func (f fanResult) failedIDs() []string {
	out := []string{}
	for _, d := range f.failed {
		out = append(out, d.WorkflowID)
	}
	return out
}

// fanOut sends one signal to the workflow of every active enrollment of the
// contact (those include accepts, if set). A workflow that has already
// finished is skipped: its enrollment row lags the workflow by one activity.
// The whole fan-out is bounded by cfg.SignalTimeout.
func (s *Server) fanOut(ctx context.Context, contactID, signal string, arg any, include func(storage.Enrollment) bool) fanResult {
	res := fanResult{signalled: []string{}}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SignalTimeout)
	defer cancel()
	active, err := s.store.ActiveEnrollments(ctx, contactID)
	if err != nil {
		res.failed = append(res.failed, DeliveryError{Error: "listing active journeys: " + err.Error()})
		return res
	}
	for _, e := range active {
		if include != nil && !include(e) {
			continue
		}
		err := s.temporal.SignalWorkflow(ctx, e.WorkflowID, "", signal, arg)
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			res.signalled = append(res.signalled, e.WorkflowID)
		case errors.As(err, &nf):
			// The run ended; nothing to deliver.
		default:
			res.failed = append(res.failed, DeliveryError{WorkflowID: e.WorkflowID, JourneyID: e.JourneyID, Error: err.Error()})
		}
	}
	return res
}
