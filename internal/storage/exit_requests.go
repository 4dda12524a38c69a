package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/model"
)

// ExitRequest is support asking a run to end, with the free-text reason
// support gave. The reason stays here: the run is told only the code
// "support_exit" and this request's id, because whatever a workflow is told
// is kept in its Temporal history, and support's notes name people ("Jane
// called from +1 415...").
type ExitRequest struct {
	ID           string `json:"id"`
	EnrollmentID string `json:"enrollment_id"`
	ContactID    string `json:"contact_id"`
	// Code is the reason code the run is told: model.ExitSupport for
	// support's requests (RecordExitRequest), model.ExitMerged for a merge's.
	Code        string    `json:"code"`
	Reason      string    `json:"reason"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
}

// RecordExitRequest stores an exit request for an enrollment of the
// contact and returns it with its id ("x_...") and time, and how many
// deliveries it stored: if the enrollment is active, an 'exit' delivery for
// its run is stored in the same transaction (1), which the dispatcher hands
// to Temporal after every delivery stored before it for the contact; a run
// that has ended needs none (0). The enrollment must belong to the
// contact; an unknown one is ErrNotFound.
func (s *Store) RecordExitRequest(ctx context.Context, r ExitRequest) (ExitRequest, int, error) {
	switch {
	case r.EnrollmentID == "" || r.ContactID == "":
		return ExitRequest{}, 0, errors.New("exit request: enrollment and contact are required")
	case r.Reason == "":
		return ExitRequest{}, 0, fmt.Errorf("exit request for enrollment %s: reason is required", r.EnrollmentID)
	case r.RequestedBy == "":
		return ExitRequest{}, 0, fmt.Errorf("exit request for enrollment %s: requested_by is required", r.EnrollmentID)
	}
	r.ID, r.Code = newID("x_"), model.ExitSupport
	var pending int
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The delivery lock first, then a key-share lock on the contact,
		// as TrackEvent takes them. Before the enrollment's: an erasure
		// (which holds the row FOR UPDATE and then deletes the contact's
		// enrollments, and takes no delivery lock) either waits for this
		// request or has gone before it, which is then a plain not-found;
		// taking the row after the enrollment's key-share lock instead makes
		// the two deadlock. Key share conflicts with no other lock on the
		// row but FOR UPDATE (the send gate's and a webhook's are NO KEY
		// UPDATE). A merge (merge.go) holds the row NO KEY UPDATE, then the
		// delivery lock, then upgrades to FOR UPDATE: holding the key share
		// while waiting for the delivery lock would close a cycle with it.
		if err := lockContactDeliveries(ctx, tx, r.ContactID); err != nil {
			return fmt.Errorf("exit request for enrollment %s: %w", r.EnrollmentID, err)
		}
		if err := tx.QueryRow(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR KEY SHARE`, r.ContactID).Scan(new(int)); err != nil {
			return notFound(err, "exit request: contact %s", r.ContactID)
		}
		var (
			workflowID string
			active     bool
		)
		err := tx.QueryRow(ctx, `SELECT workflow_id, status = 'active' FROM enrollments WHERE id = $1 AND contact_id = $2`,
			r.EnrollmentID, r.ContactID).Scan(&workflowID, &active)
		if err != nil {
			return notFound(err, "exit request: enrollment %s of contact %s", r.EnrollmentID, r.ContactID)
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO exit_requests (id, enrollment_id, contact_id, reason, requested_by) VALUES ($1, $2, $3, $4, $5)
			RETURNING requested_at`, r.ID, r.EnrollmentID, r.ContactID, r.Reason, r.RequestedBy).Scan(&r.RequestedAt); err != nil {
			if _, gone := foreignKeyViolation(err); gone {
				// The contact was erased between the read above and this
				// insert (the erasure held its row): there is no run left
				// to exit, which is a not-found, not a failure.
				return fmt.Errorf("exit request: enrollment %s of contact %s was erased meanwhile: %w", r.EnrollmentID, r.ContactID, ErrNotFound)
			}
			return fmt.Errorf("exit request for enrollment %s: %w", r.EnrollmentID, err)
		}
		// A run that ends meanwhile (its status is read without a lock) is
		// harmless: the dispatcher finds it ended and counts that delivered.
		if !active {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (contact_id, kind, exit_request_id, workflow_id) VALUES ($1, 'exit', $2, $3)`,
			r.ContactID, r.ID, workflowID); err != nil {
			return fmt.Errorf("exit request %s: storing its delivery: %w", r.ID, err)
		}
		pending = 1
		return nil
	})
	if err != nil {
		return ExitRequest{}, 0, err
	}
	r.RequestedAt = r.RequestedAt.UTC()
	return r, pending, nil
}

// ExitRequest returns the exit request with this id, or ErrNotFound.
func (s *Store) ExitRequest(ctx context.Context, id string) (ExitRequest, error) {
	var r ExitRequest
	err := s.pool.QueryRow(ctx, `
		SELECT id, enrollment_id, contact_id, code, reason, requested_by, requested_at FROM exit_requests WHERE id = $1`, id).
		Scan(&r.ID, &r.EnrollmentID, &r.ContactID, &r.Code, &r.Reason, &r.RequestedBy, &r.RequestedAt)
	if err != nil {
		return ExitRequest{}, notFound(err, "exit request %s", id)
	}
	r.RequestedAt = r.RequestedAt.UTC()
	return r, nil
}
