package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Assignment is a contact's recorded group in one experiment: a split's
// variant, the journey holdout ('holdout' or 'treatment'), or the
// workspace control group ('control_group' or 'treatment'). See migration
// 00008 for how the three share the table.
type Assignment struct {
	// JourneyID is "" for the workspace control group.
	JourneyID  string `json:"journey_id"`
	Experiment string `json:"experiment"`
	ContactID  string `json:"contact_id"`
	Variant    string `json:"variant"`
	// EnrollmentID and JourneyVersion are the run first assigned.
	EnrollmentID   string    `json:"enrollment_id"`
	JourneyVersion int       `json:"journey_version"`
	AssignedAt     time.Time `json:"assigned_at"`
}

const assignmentColumns = `journey_id, experiment, contact_id, variant, enrollment_id, journey_version, assigned_at`

func scanAssignment(r rowScanner) (Assignment, error) {
	var a Assignment
	if err := r.Scan(&a.JourneyID, &a.Experiment, &a.ContactID, &a.Variant, &a.EnrollmentID, &a.JourneyVersion, &a.AssignedAt); err != nil {
		return Assignment{}, err
	}
	a.AssignedAt = a.AssignedAt.UTC()
	return a, nil
}

// Assign records a's group for its contact and experiment unless one is
// recorded already, and returns the recorded assignment: the existing row
// wins, so a contact keeps its group whatever the caller computed this
// time (new weights, a new share). created says whether a was written.
// AssignedAt zero means now.
func (s *Store) Assign(ctx context.Context, a Assignment) (Assignment, bool, error) {
	if a.Experiment == "" || a.ContactID == "" || a.Variant == "" {
		return Assignment{}, false, errors.New("assign: experiment, contact and variant are required")
	}
	what := fmt.Sprintf("assignment of contact %s in %s/%s", a.ContactID, a.JourneyID, a.Experiment)
	got, err := queryOne(ctx, s.pool, what, scanAssignment, `
		INSERT INTO assignments (`+assignmentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))
		ON CONFLICT (journey_id, experiment, contact_id) DO NOTHING
		RETURNING `+assignmentColumns,
		a.JourneyID, a.Experiment, a.ContactID, a.Variant, a.EnrollmentID, a.JourneyVersion, timeOrNow(a.AssignedAt))
	if err == nil {
		return got, true, nil
	}
	if c, ok := foreignKeyViolation(err); ok && c == "assignments_contact_id_fkey" {
		return Assignment{}, false, fmt.Errorf("%s: contact: %w", what, ErrNotFound)
	}
	if !errors.Is(err, ErrNotFound) {
		return Assignment{}, false, err
	}
	// A row was there (or a concurrent insert committed first, which this
	// statement's snapshot did not see): read it in a new statement.
	got, err = s.AssignmentOf(ctx, a.JourneyID, a.Experiment, a.ContactID)
	return got, false, err
}

// AssignmentOf returns the contact's recorded group in an experiment, or
// ErrNotFound.
func (s *Store) AssignmentOf(ctx context.Context, journeyID, experiment, contactID string) (Assignment, error) {
	return queryOne(ctx, s.pool, fmt.Sprintf("assignment of contact %s in %s/%s", contactID, journeyID, experiment), scanAssignment, `
		SELECT `+assignmentColumns+` FROM assignments
		WHERE journey_id = $1 AND experiment = $2 AND contact_id = $3`, journeyID, experiment, contactID)
}

// AssignmentsForContact lists every group the contact is recorded in.
func (s *Store) AssignmentsForContact(ctx context.Context, contactID string) ([]Assignment, error) {
	return queryAll(ctx, s.pool, "assignments of contact "+contactID, scanAssignment, `
		SELECT `+assignmentColumns+` FROM assignments WHERE contact_id = $1
		ORDER BY assigned_at, journey_id, experiment`, contactID)
}
