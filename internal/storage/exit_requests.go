package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ExitRequest is support asking a run to end, with the free-text reason
// support gave. The reason stays here: the run is told only the code
// "support_exit" and this request's id, because whatever a workflow is told
// is kept in its Temporal history, and support's notes name people ("Jane
// called from +1 415...").
type ExitRequest struct {
	ID           string    `json:"id"`
	EnrollmentID string    `json:"enrollment_id"`
	ContactID    string    `json:"contact_id"`
	Reason       string    `json:"reason"`
	RequestedBy  string    `json:"requested_by"`
	RequestedAt  time.Time `json:"requested_at"`
}

// RecordExitRequest stores an exit request for an enrollment of the
// contact and returns it with its id ("x_...") and time. The enrollment
// must belong to the contact; an unknown one is ErrNotFound.
func (s *Store) RecordExitRequest(ctx context.Context, r ExitRequest) (ExitRequest, error) {
	switch {
	case r.EnrollmentID == "" || r.ContactID == "":
		return ExitRequest{}, errors.New("exit request: enrollment and contact are required")
	case r.Reason == "":
		return ExitRequest{}, fmt.Errorf("exit request for enrollment %s: reason is required", r.EnrollmentID)
	case r.RequestedBy == "":
		return ExitRequest{}, fmt.Errorf("exit request for enrollment %s: requested_by is required", r.EnrollmentID)
	}
	r.ID = newID("x_")
	err := s.pool.QueryRow(ctx, `
		INSERT INTO exit_requests (id, enrollment_id, contact_id, reason, requested_by)
		SELECT $1, e.id, e.contact_id, $4, $5 FROM enrollments e WHERE e.id = $2 AND e.contact_id = $3
		RETURNING requested_at`,
		r.ID, r.EnrollmentID, r.ContactID, r.Reason, r.RequestedBy).Scan(&r.RequestedAt)
	if err != nil {
		return ExitRequest{}, notFound(err, "exit request: enrollment %s of contact %s", r.EnrollmentID, r.ContactID)
	}
	r.RequestedAt = r.RequestedAt.UTC()
	return r, nil
}

// ExitRequest returns the exit request with this id, or ErrNotFound.
func (s *Store) ExitRequest(ctx context.Context, id string) (ExitRequest, error) {
	var r ExitRequest
	err := s.pool.QueryRow(ctx, `
		SELECT id, enrollment_id, contact_id, reason, requested_by, requested_at FROM exit_requests WHERE id = $1`, id).
		Scan(&r.ID, &r.EnrollmentID, &r.ContactID, &r.Reason, &r.RequestedBy, &r.RequestedAt)
	if err != nil {
		return ExitRequest{}, notFound(err, "exit request %s", id)
	}
	r.RequestedAt = r.RequestedAt.UTC()
	return r, nil
}
