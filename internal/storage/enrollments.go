package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const enrollmentColumns = `id, contact_id, journey_id, version, workflow_id, status, exit_reason, current_step, started_at, ended_at`

func scanEnrollment(r rowScanner) (Enrollment, error) {
	var (
		e            Enrollment
		reason, step *string
	)
	if err := r.Scan(&e.ID, &e.ContactID, &e.JourneyID, &e.Version, &e.WorkflowID, &e.Status, &reason, &step, &e.StartedAt, &e.EndedAt); err != nil {
		return Enrollment{}, err
	}
	e.ExitReason, e.CurrentStep = deref(reason), deref(step)
	e.StartedAt, e.EndedAt = e.StartedAt.UTC(), utcPtr(e.EndedAt)
	return e, nil
}

func collectEnrollments(rows pgx.Rows) ([]Enrollment, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Enrollment, error) { return scanEnrollment(r) })
}

// enrollmentInsertError maps the constraint violations of an enrollment
// insert to the sentinel errors callers branch on.
func enrollmentInsertError(e Enrollment, err error) error {
	if c, ok := uniqueViolation(err); ok && c == "enrollments_one_active" {
		return fmt.Errorf("enrollment %s: contact %s, journey %s: %w", e.ID, e.ContactID, e.JourneyID, ErrAlreadyActive)
	}
	if c, ok := foreignKeyViolation(err); ok {
		what := fmt.Sprintf("contact %s", e.ContactID)
		if c != "enrollments_contact_id_fkey" {
			what = fmt.Sprintf("journey %s version %d", e.JourneyID, e.Version)
		}
		return fmt.Errorf("enrollment %s: %s: %w", e.ID, what, ErrNotFound)
	}
	return fmt.Errorf("enrollment %s: inserting: %w", e.ID, err)
}

func checkNewEnrollment(e Enrollment) error {
	switch {
	case e.ID == "":
		return errors.New("enrollment: id is required")
	case e.ContactID == "" || e.JourneyID == "" || e.Version <= 0:
		return fmt.Errorf("enrollment %s: contact, journey and version are required", e.ID)
	case e.WorkflowID == "":
		return fmt.Errorf("enrollment %s: workflow id is required", e.ID)
	}
	return nil
}

// CreateEnrollment enrolls a contact and starts its run, all or nothing. In
// one transaction it inserts the enrollment as active (started now if
// e.StartedAt is zero) and then calls start, which starts the Temporal
// workflow. If start fails the row is rolled back and start's error
// returned; otherwise the row is committed.
//
// The partial unique index enrollments_one_active makes a second active run
// of the journey for the contact fail with ErrAlreadyActive before start is
// called. A concurrent CreateEnrollment for the same contact and journey
// waits on the first one's uncommitted row, so exactly one of them starts a
// workflow.
//
// If the commit itself fails after start succeeded, the workflow is running
// without its row; its first activity (EnsureEnrollment) writes it.
func (s *Store) CreateEnrollment(ctx context.Context, e Enrollment, start func(ctx context.Context) error) error {
	if err := checkNewEnrollment(e); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at)
			VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()))`,
			e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt)); err != nil {
			return enrollmentInsertError(e, err)
		}
		if start != nil {
			if err := start(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// EnsureEnrollment inserts the enrollment as active unless a row with its id
// exists. The workflow's first activity calls it: it is a no-op after
// CreateEnrollment committed (and waits for it if it has not yet), and writes
// the row if that commit was lost. If another enrollment of the journey is
// already active for the contact it returns ErrAlreadyActive: this run must
// not proceed.
func (s *Store) EnsureEnrollment(ctx context.Context, e Enrollment) error {
	if err := checkNewEnrollment(e); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at)
		VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()))
		ON CONFLICT (id) DO NOTHING`,
		e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt)); err != nil {
		return enrollmentInsertError(e, err)
	}
	return nil
}

// FinishEnrollment ends an active enrollment with a final status (completed,
// converted, exited or failed) and an optional reason; a zero endedAt means
// now. It is idempotent: an enrollment that already ended keeps its first
// ending (a retried activity must not rewrite history). Unknown id is
// ErrNotFound.
func (s *Store) FinishEnrollment(ctx context.Context, id, status, reason string, endedAt time.Time) error {
	switch status {
	case EnrollmentCompleted, EnrollmentConverted, EnrollmentExited, EnrollmentFailed:
	default:
		return fmt.Errorf("finish enrollment %s: %q is not a final status", id, status)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE enrollments
		SET status = $2, exit_reason = NULLIF($3, ''), ended_at = COALESCE($4, now())
		WHERE id = $1 AND status = 'active'`,
		id, status, reason, timeOrNow(endedAt))
	if err != nil {
		return fmt.Errorf("finish enrollment %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		// Either already finished (fine) or never existed (not fine).
		if _, err := s.Enrollment(ctx, id); err != nil {
			return fmt.Errorf("finish enrollment: %w", err)
		}
	}
	return nil
}

// SetEnrollmentStep records the step the run is at, for display. It is
// written whatever the status, so the step a run ended at stays visible.
func (s *Store) SetEnrollmentStep(ctx context.Context, id, step string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE enrollments SET current_step = NULLIF($2, '') WHERE id = $1`, id, step)
	if err != nil {
		return fmt.Errorf("set step of enrollment %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set step of enrollment %s: %w", id, ErrNotFound)
	}
	return nil
}

// Enrollment returns the enrollment with this id, or ErrNotFound.
func (s *Store) Enrollment(ctx context.Context, id string) (Enrollment, error) {
	e, err := scanEnrollment(s.pool.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id = $1`, id))
	if err != nil {
		return Enrollment{}, notFound(err, "enrollment %s", id)
	}
	return e, nil
}

// EnrollmentsForContact returns every enrollment of the contact, newest first.
func (s *Store) EnrollmentsForContact(ctx context.Context, contactID string) ([]Enrollment, error) {
	return s.listEnrollments(ctx, "enrollments of contact "+contactID, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1
		ORDER BY started_at DESC, id DESC`, contactID)
}

// ActiveEnrollments returns the contact's active enrollments, newest first.
func (s *Store) ActiveEnrollments(ctx context.Context, contactID string) ([]Enrollment, error) {
	return s.listEnrollments(ctx, "active enrollments of contact "+contactID, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND status = 'active'
		ORDER BY started_at DESC, id DESC`, contactID)
}

func (s *Store) listEnrollments(ctx context.Context, what, query string, args ...any) ([]Enrollment, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := collectEnrollments(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// ActiveEnrollment returns the contact's active run of the journey, or
// ErrNotFound if there is none.
func (s *Store) ActiveEnrollment(ctx context.Context, contactID, journeyID string) (Enrollment, error) {
	e, err := scanEnrollment(s.pool.QueryRow(ctx, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND journey_id = $2 AND status = 'active'`, contactID, journeyID))
	if err != nil {
		return Enrollment{}, notFound(err, "active enrollment of contact %s in journey %s", contactID, journeyID)
	}
	return e, nil
}

// LastEnrollment returns the contact's most recently started run of the
// journey, active or not (re-entry policies look at it), or ErrNotFound.
func (s *Store) LastEnrollment(ctx context.Context, contactID, journeyID string) (Enrollment, error) {
	e, err := scanEnrollment(s.pool.QueryRow(ctx, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND journey_id = $2
		ORDER BY started_at DESC, id DESC
		LIMIT 1`, contactID, journeyID))
	if err != nil {
		return Enrollment{}, notFound(err, "last enrollment of contact %s in journey %s", contactID, journeyID)
	}
	return e, nil
}
