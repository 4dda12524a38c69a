package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tutti-dev/tutti/internal/model"
)

// enrollmentColumns read an enrollment with the free-text reason of the
// exit request that ended it, if one did.
const enrollmentColumns = `id, contact_id, journey_id, version, workflow_id, status, exit_reason, current_step, started_at, ended_at,
	exit_request_id, (SELECT x.reason FROM exit_requests x WHERE x.id = enrollments.exit_request_id), run_key`

func scanEnrollment(r rowScanner) (Enrollment, error) {
	var (
		e                           Enrollment
		reason, step, request, note *string
	)
	if err := r.Scan(&e.ID, &e.ContactID, &e.JourneyID, &e.Version, &e.WorkflowID, &e.Status, &reason, &step, &e.StartedAt, &e.EndedAt,
		&request, &note, &e.RunKey); err != nil {
		return Enrollment{}, err
	}
	e.ExitReason, e.CurrentStep, e.ExitRequestID, e.ExitNote = deref(reason), deref(step), deref(request), deref(note)
	e.StartedAt, e.EndedAt = e.StartedAt.UTC(), utcPtr(e.EndedAt)
	return e, nil
}

// enrollmentInsertError maps the constraint violations of an enrollment
// insert to the sentinel errors callers branch on.
func enrollmentInsertError(e Enrollment, err error) error {
	if c, ok := uniqueViolation(err); ok && c == "enrollments_one_active" {
		return fmt.Errorf("enrollment %s: contact %s, journey %s: %w", e.ID, e.ContactID, e.JourneyID, ErrAlreadyActive)
	}
	if c, ok := uniqueViolation(err); ok && c == "enrollments_pkey" {
		return fmt.Errorf("enrollment %s: %w", e.ID, ErrEnrollmentExists)
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
			INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at, run_key)
			VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()), $8)`,
			e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt), e.RunKey); err != nil {
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

// RecordEnrollment inserts the enrollment as active (started now if
// e.StartedAt is zero) and commits it before its run is started: the API
// starts the workflow outside any transaction, so no connection waits on
// Temporal. The partial unique index enrollments_one_active refuses a
// second active run of the journey for the contact (ErrAlreadyActive); an
// id recorded before is ErrEnrollmentExists.
//
// The caller then starts the run and, if Temporal refused it, removes the
// row with DropUnstartedEnrollment; a row whose run never started (the
// API died in between, or Temporal could not tell) is found and dropped
// by the next enrollment of the contact in the journey.
func (s *Store) RecordEnrollment(ctx context.Context, e Enrollment) error {
	if err := checkNewEnrollment(e); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at, run_key)
		VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()), $8)`,
		e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt), e.RunKey); err != nil {
		return enrollmentInsertError(e, err)
	}
	return nil
}

// RecordEnrollmentToStart is RecordEnrollment for a run the dispatcher
// starts: in one transaction it inserts the enrollment as active and an
// 'enroll' delivery naming it (migration 00024), under the contact's
// delivery lock, so the start is delivered after every delivery the
// contact already has and before those stored later. Nothing waits on
// Temporal; the same errors as RecordEnrollment. It returns the
// enrollment as stored (its start time is the database's), so the API
// answers without reading it back.
func (s *Store) RecordEnrollmentToStart(ctx context.Context, e Enrollment) (Enrollment, error) {
	if err := checkNewEnrollment(e); err != nil {
		return Enrollment{}, err
	}
	var stored Enrollment
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockContactDeliveries(ctx, tx, e.ContactID); err != nil {
			return err
		}
		var err error
		// The inserted row is read as the table is (enrollmentColumns
		// names it enrollments); the delivery's insert runs whether or not
		// the final SELECT reads it.
		stored, err = scanEnrollment(tx.QueryRow(ctx, `
			WITH e AS (
				INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at, run_key)
				VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()), $8)
				RETURNING *),
			d AS (
				INSERT INTO deliveries (contact_id, kind, journey_id, journey_version, enrollment_id)
				SELECT contact_id, 'enroll', journey_id, version, id FROM e)
			SELECT `+enrollmentColumns+` FROM e AS enrollments`,
			e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt), e.RunKey))
		if err != nil {
			return enrollmentInsertError(e, err)
		}
		return nil
	})
	return stored, err
}

// EnrollmentStartPending reports whether the enrollment's run is still to
// be started by the dispatcher (an 'enroll' delivery not done).
func (s *Store) EnrollmentStartPending(ctx context.Context, id string) (bool, error) {
	var pending bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE enrollment_id = $1 AND kind = 'enroll' AND done_at IS NULL)`, id).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("enrollment %s: reading its pending start: %w", id, err)
	}
	return pending, nil
}

// DropUnstartedEnrollment deletes an active enrollment whose run Temporal
// says never started; an enrollment that has ended is kept. It reports
// whether a row was deleted. Should the run start after all (a start still
// in flight inside Temporal), its first activity writes the row again
// (EnsureEnrollment).
func (s *Store) DropUnstartedEnrollment(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM enrollments WHERE id = $1 AND status = 'active'`, id)
	if err != nil {
		return false, fmt.Errorf("dropping unstarted enrollment %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// SettleVanishedEnrollment settles an active enrollment whose run Temporal
// does not know: if Tutti's rows show the run ran (a gate decision for the
// contact in the journey since the enrollment started, or a split
// assignment of the enrollment), the run existed and Temporal has removed
// it after the namespace's retention, so the enrollment ends as failed
// (reason model.RunVanished) and its record stays; otherwise the run never
// started and the row is deleted (DropUnstartedEnrollment). It reports
// whether the enrollment is no longer active. An enrollment whose start
// is still in the outbox (an 'enroll' delivery not done) is not settled:
// its run is yet to be started.
func (s *Store) SettleVanishedEnrollment(ctx context.Context, id string) (bool, error) {
	settled := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var ran bool
		err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM decisions d
			               WHERE d.contact_id = e.contact_id AND d.journey_id = e.journey_id AND d.decided_at >= e.started_at)
			    OR EXISTS (SELECT 1 FROM assignments a WHERE a.enrollment_id = e.id AND a.contact_id = e.contact_id)
			FROM enrollments e WHERE e.id = $1 AND e.status = 'active'
			  AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.enrollment_id = e.id AND p.kind = 'enroll' AND p.done_at IS NULL)
			FOR UPDATE OF e`, id).Scan(&ran)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil // ended or gone meanwhile, or its start is pending: nothing to settle
		case err != nil:
			return err
		}
		var tag pgconn.CommandTag
		if ran {
			tag, err = tx.Exec(ctx, `UPDATE enrollments SET status = $2, exit_reason = $3, ended_at = now() WHERE id = $1`,
				id, model.RunFailed, model.RunVanished)
		} else {
			tag, err = tx.Exec(ctx, `DELETE FROM enrollments WHERE id = $1`, id)
		}
		settled = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("settling enrollment %s, whose run Temporal does not know: %w", id, err)
	}
	return settled, nil
}

// EnsureEnrollment inserts the enrollment as active unless a row with its id
// exists. The workflow's first activity calls it: it is a no-op after
// RecordEnrollment (or CreateEnrollment) committed, and writes the row if it
// is missing (a commit that was lost, a row dropped while the start was
// still in flight). If another enrollment of the journey is
// already active for the contact it returns ErrAlreadyActive: this run must
// not proceed. If the contact was erased (the run started just before the
// erasure deleted its row) it returns ErrErased.
func (s *Store) EnsureEnrollment(ctx context.Context, e Enrollment) error {
	if err := checkNewEnrollment(e); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO enrollments (id, contact_id, journey_id, version, workflow_id, status, current_step, started_at, run_key)
		VALUES ($1, $2, $3, $4, $5, 'active', NULLIF($6, ''), COALESCE($7, now()), $8)
		ON CONFLICT (id) DO NOTHING`,
		e.ID, e.ContactID, e.JourneyID, e.Version, e.WorkflowID, e.CurrentStep, timeOrNow(e.StartedAt), e.RunKey)
	if c, fk := foreignKeyViolation(err); fk && c == "enrollments_contact_id_fkey" {
		if erased, lerr := contactErased(ctx, s.pool, e.ContactID); lerr != nil {
			return lerr
		} else if erased {
			return fmt.Errorf("enrollment %s: contact %s: %w", e.ID, e.ContactID, ErrErased)
		}
	}
	if err != nil {
		return enrollmentInsertError(e, err)
	}
	return nil
}

// FinishEnrollment ends an active enrollment with a final status and an
// optional reason code; see EndEnrollment.
func (s *Store) FinishEnrollment(ctx context.Context, id string, status model.RunStatus, reason string, endedAt time.Time) error {
	return s.EndEnrollment(ctx, id, EnrollmentEnd{Status: status, Reason: reason, EndedAt: endedAt})
}

// EnrollmentEnd is how a run ended.
type EnrollmentEnd struct {
	// Status is a final status: completed, converted, exited or failed.
	Status model.RunStatus
	// Reason is a reason code ("goal: purchase", "support_exit", "erased").
	Reason string
	// ExitRequestID names the exit request (support's, with its free-text
	// reason) that ended the run, if one did.
	ExitRequestID string
	// EndedAt is when; zero means now.
	EndedAt time.Time
	// Path is the ids of the steps the run took, in order; nil records
	// none (the column stays NULL). PathTruncated: its front was dropped.
	Path          []string
	PathTruncated bool
}

// EndEnrollment ends an active enrollment. It is idempotent: an enrollment
// that already ended keeps its first ending (a retried activity must not
// rewrite history), and one deleted by erasing its contact counts as ended,
// so a run told to end by the erasure can. An id that never existed is
// ErrNotFound. The path is written with the ending, so a retry writes
// nothing, and the path is always the one of the ending recorded.
func (s *Store) EndEnrollment(ctx context.Context, id string, end EnrollmentEnd) error {
	if !end.Status.Ended() {
		return fmt.Errorf("finish enrollment %s: %q is not a final status", id, end.Status)
	}
	var (
		tag pgconn.CommandTag
		err error
	)
	if end.ExitRequestID == "" {
		tag, err = s.pool.Exec(ctx, `
			UPDATE enrollments
			SET status = $2, exit_reason = NULLIF($3, ''), ended_at = COALESCE($4, now()),
			    path = $5, path_truncated = CASE WHEN $5::text[] IS NOT NULL THEN $6::boolean END
			WHERE id = $1 AND status = 'active'`,
			id, end.Status, end.Reason, timeOrNow(end.EndedAt), end.Path, end.PathTruncated)
	} else {
		// Only a request for this very enrollment is linked.
		tag, err = s.pool.Exec(ctx, `
			UPDATE enrollments
			SET status = $2, exit_reason = NULLIF($3, ''), ended_at = COALESCE($4, now()),
			    exit_request_id = (SELECT x.id FROM exit_requests x WHERE x.id = $5 AND x.enrollment_id = $1),
			    path = $6, path_truncated = CASE WHEN $6::text[] IS NOT NULL THEN $7::boolean END
			WHERE id = $1 AND status = 'active'`,
			id, end.Status, end.Reason, timeOrNow(end.EndedAt), end.ExitRequestID, end.Path, end.PathTruncated)
	}
	if err != nil {
		return fmt.Errorf("finish enrollment %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		// Already finished (fine), erased (fine) or never existed (not fine).
		return s.enrollmentExistedOrErased(ctx, "finish enrollment", id)
	}
	return nil
}

// enrollmentExistedOrErased is nil if enrollment id exists or was deleted by
// an erasure, and ErrNotFound otherwise.
func (s *Store) enrollmentExistedOrErased(ctx context.Context, op, id string) error {
	_, err := s.Enrollment(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return nil
	}
	erased, lerr := enrollmentErased(ctx, s.pool, id)
	switch {
	case lerr != nil:
		return fmt.Errorf("%s: %w", op, lerr)
	case erased:
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// SetEnrollmentStep records the step the run is at, for display. It is
// written whatever the status, so the step a run ended at stays visible. An
// enrollment deleted by an erasure has nothing to record it on: that is not
// an error.
func (s *Store) SetEnrollmentStep(ctx context.Context, id, step string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE enrollments SET current_step = NULLIF($2, '') WHERE id = $1`, id, step)
	if err != nil {
		return fmt.Errorf("set step of enrollment %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return s.enrollmentExistedOrErased(ctx, "set step of enrollment "+id, id)
	}
	return nil
}

// Enrollment returns the enrollment with this id, or ErrNotFound.
func (s *Store) Enrollment(ctx context.Context, id string) (Enrollment, error) {
	return queryOne(ctx, s.pool, "enrollment "+id, scanEnrollment, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id = $1`, id)
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
	return queryAll(ctx, s.pool, what, scanEnrollment, query, args...)
}

// ActiveEnrollment returns the contact's active run of a journey without
// a key (journey.Trigger.Key), or ErrNotFound if there is none.
func (s *Store) ActiveEnrollment(ctx context.Context, contactID, journeyID string) (Enrollment, error) {
	return s.ActiveRun(ctx, contactID, journeyID, "")
}

// ActiveRun returns the contact's active run of the journey for one key
// digest ("" for a journey without a key), or ErrNotFound.
func (s *Store) ActiveRun(ctx context.Context, contactID, journeyID, runKey string) (Enrollment, error) {
	return queryOne(ctx, s.pool, fmt.Sprintf("active enrollment of contact %s in journey %s", contactID, journeyID), scanEnrollment, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND journey_id = $2 AND run_key = $3 AND status = 'active'`, contactID, journeyID, runKey)
}

// ActiveRuns returns the contact's active runs of the journey, one per key
// value for a keyed journey, oldest first.
func (s *Store) ActiveRuns(ctx context.Context, contactID, journeyID string) ([]Enrollment, error) {
	return s.listEnrollments(ctx, fmt.Sprintf("active enrollments of contact %s in journey %s", contactID, journeyID), `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND journey_id = $2 AND status = 'active'
		ORDER BY started_at, id`, contactID, journeyID)
}

// LastEnrollment returns the contact's most recently started run of a
// journey without a key, active or not, or ErrNotFound.
func (s *Store) LastEnrollment(ctx context.Context, contactID, journeyID string) (Enrollment, error) {
	return s.LastRun(ctx, contactID, journeyID, "")
}

// LastRun returns the contact's most recently started run of the journey
// for one key digest ("" for a journey without a key), active or not
// (re-entry policies look at it: per key value), or ErrNotFound.
func (s *Store) LastRun(ctx context.Context, contactID, journeyID, runKey string) (Enrollment, error) {
	return queryOne(ctx, s.pool, fmt.Sprintf("last enrollment of contact %s in journey %s", contactID, journeyID), scanEnrollment, `
		SELECT `+enrollmentColumns+` FROM enrollments
		WHERE contact_id = $1 AND journey_id = $2 AND run_key = $3
		ORDER BY started_at DESC, id DESC
		LIMIT 1`, contactID, journeyID, runKey)
}
