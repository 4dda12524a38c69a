package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
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

// eventResponse is the answer to POST /v1/events: always 202 once the
// event is stored, because its deliveries are stored with it and the
// dispatcher (dispatch.go) hands them to Temporal.
type eventResponse struct {
	Event     storage.Event `json:"event"`
	Duplicate bool          `json:"duplicate"`
	// PendingDeliveries counts the event's deliveries not yet taken by
	// Temporal (signals to running journeys, starts of triggered ones).
	PendingDeliveries int `json:"pending_deliveries"`
}

// DeliveryError is one signal or start that failed for a reason other than
// the run having ended or the re-entry policy refusing.
type DeliveryError struct {
	WorkflowID string `json:"workflow_id,omitempty"`
	JourneyID  string `json:"journey_id,omitempty"`
	Error      string `json:"error"`
}

// trackEvent stores an event with its pending deliveries and answers 202:
// the event will reach every journey that should see it. The deliveries
// (storage.TrackEvent) are a signal to the contact's running journeys and a
// start of each journey the event triggers; the dispatcher delivers them,
// retrying until Temporal takes them. The client's event_id makes the call
// idempotent: a retry finds the event and stores nothing more.
func (s *Server) trackEvent(w http.ResponseWriter, r *http.Request) {
	var req eventRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	res, status, err := s.track(r.Context(), req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, status, res)
}

// track validates one event and stores it with its deliveries: the whole of
// POST /v1/events after decoding, and of each item of POST /v1/events/batch.
// The status is the single route's (202); an error is what it answers.
func (s *Server) track(ctx context.Context, req eventRequest) (eventResponse, int, error) {
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
	case req.Name == journey.EventSegmentEntered || req.Name == journey.EventSegmentExited:
		// Only a segment's own evaluation says who entered or left it.
		fe.add("name", "%s is recorded by Tutti when a contact enters or leaves a segment; it cannot be posted", req.Name)
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
		return eventResponse{}, 0, err
	}

	var (
		c   storage.Contact
		err error
	)
	switch given[0] {
	case "contact_id":
		// Not looked up first: TrackEvent answers ErrNotFound for an
		// unknown contact (below), in the transaction that stores the
		// event, which saves a round trip and a read per event.
		c.ID = strings.TrimSpace(req.ContactID)
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
		return eventResponse{}, 0, err
	}

	ev, inserted, pending, err := s.store.TrackEvent(ctx, storage.Event{
		ID: req.EventID, ContactID: c.ID, Name: req.Name, Properties: req.Properties, OccurredAt: occurred,
	})
	switch {
	case errors.Is(err, storage.ErrEventConflict):
		return eventResponse{}, 0, conflict("event_conflict", err.Error(),
			FieldError{Path: "event_id", Message: "already used for a different event (another contact or name)"})
	case errors.Is(err, storage.ErrNotFound):
		return eventResponse{}, 0, notFound("contact", c.ID, given[0])
	case err != nil:
		return eventResponse{}, 0, err
	}
	return eventResponse{Event: ev, Duplicate: !inserted, PendingDeliveries: pending}, http.StatusAccepted, nil
}
