package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func enrollment(id string, c storage.Contact, v storage.JourneyVersion) storage.Enrollment {
	return storage.Enrollment{ID: id, ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-" + id}
}

// RecordEnrollment commits the row before its run starts; the API drops it
// again when Temporal refused the start.
func TestRecordEnrollmentAndDropUnstarted(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")

	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e1", c, v)))
	e1, err := s.Enrollment(ctx, "e1")
	require.NoError(t, err)
	require.Equal(t, model.RunActive, e1.Status)
	require.ErrorIs(t, s.RecordEnrollment(ctx, enrollment("e2", c, v)), storage.ErrAlreadyActive)
	require.ErrorIs(t, s.RecordEnrollment(ctx, enrollment("e1", c, v)), storage.ErrEnrollmentExists)

	dropped, err := s.DropUnstartedEnrollment(ctx, "e1")
	require.NoError(t, err)
	require.True(t, dropped)
	_, err = s.Enrollment(ctx, "e1")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// An enrollment that ended had a run: it is kept.
	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e3", c, v)))
	require.NoError(t, s.FinishEnrollment(ctx, "e3", model.RunCompleted, "", time.Time{}))
	dropped, err = s.DropUnstartedEnrollment(ctx, "e3")
	require.NoError(t, err)
	require.False(t, dropped)
	_, err = s.Enrollment(ctx, "e3")
	require.NoError(t, err)
}

// An active enrollment whose run Temporal does not know: dropped if
// nothing shows the run ran (a start that never happened), ended as failed
// (run_missing) and kept if it left a trace (here a split assignment: the
// run existed, and Temporal removed it after its retention); an ended one
// is left alone.
func TestSettleVanishedEnrollment(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")

	never := newContact(t, s)
	require.NoError(t, s.RecordEnrollment(ctx, enrollment("never", never, v)))
	settled, err := s.SettleVanishedEnrollment(ctx, "never")
	require.NoError(t, err)
	require.True(t, settled)
	_, err = s.Enrollment(ctx, "never")
	require.ErrorIs(t, err, storage.ErrNotFound)

	ran := newContact(t, s)
	require.NoError(t, s.RecordEnrollment(ctx, enrollment("ran", ran, v)))
	_, _, err = s.Assign(ctx, storage.Assignment{JourneyID: v.JourneyID, Experiment: "subject", ContactID: ran.ID,
		Variant: "a", EnrollmentID: "ran", JourneyVersion: v.Version})
	require.NoError(t, err)
	settled, err = s.SettleVanishedEnrollment(ctx, "ran")
	require.NoError(t, err)
	require.True(t, settled)
	e, err := s.Enrollment(ctx, "ran")
	require.NoError(t, err)
	require.Equal(t, model.RunFailed, e.Status)
	require.Equal(t, model.RunVanished, e.ExitReason)
	require.NotNil(t, e.EndedAt)

	settled, err = s.SettleVanishedEnrollment(ctx, "ran")
	require.NoError(t, err)
	require.False(t, settled, "already ended")
	e2, err := s.Enrollment(ctx, "ran")
	require.NoError(t, err)
	require.Equal(t, e, e2)
}

// An enrollment recorded with its start in the outbox is active, with one
// 'enroll' delivery naming it, ordered after the contact's earlier
// deliveries; while that start is pending the row is never settled as a
// run that vanished, and a second active enrollment of the pair is refused
// with nothing written.
func TestRecordEnrollmentToStart(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	c := newContact(t, s)

	stored, err := s.RecordEnrollmentToStart(ctx, enrollment("queued", c, v))
	require.NoError(t, err)
	e, err := s.Enrollment(ctx, "queued")
	require.NoError(t, err)
	require.Equal(t, model.RunActive, e.Status)
	require.Equal(t, e, stored, "the answer is the row as stored")
	pending, err := s.EnrollmentStartPending(ctx, "queued")
	require.NoError(t, err)
	require.True(t, pending)

	ds, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	id := ds[0].ID
	require.Equal(t, storage.DeliveryEnroll, ds[0].Kind)
	require.Equal(t, "queued", ds[0].EnrollmentID)
	require.Equal(t, v.JourneyID, ds[0].JourneyID)
	require.Equal(t, v.Version, ds[0].JourneyVersion)
	require.Zero(t, ds[0].Event)

	settled, err := s.SettleVanishedEnrollment(ctx, "queued")
	require.NoError(t, err)
	require.False(t, settled, "its start is still pending")
	_, err = s.Enrollment(ctx, "queued")
	require.NoError(t, err)

	_, err = s.RecordEnrollmentToStart(ctx, enrollment("second", c, v))
	require.ErrorIs(t, err, storage.ErrAlreadyActive)
	var n int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&n))
	require.Equal(t, 1, n, "the refused enrollment left no delivery")

	_, err = s.DeliveryDone(ctx, id, token, "enrolled", "queued")
	require.NoError(t, err)
	pending, err = s.EnrollmentStartPending(ctx, "queued")
	require.NoError(t, err)
	require.False(t, pending)
	var kept string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT enrollment_id FROM deliveries WHERE id = $1`, id).Scan(&kept))
	require.Equal(t, "queued", kept)
	// Started and done: a run Temporal does not know is settled again.
	settled, err = s.SettleVanishedEnrollment(ctx, "queued")
	require.NoError(t, err)
	require.True(t, settled)
}

func TestCreateEnrollment(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")

	// start fails: nothing is written and start's error comes back.
	boom := errors.New("temporal unavailable")
	err := s.CreateEnrollment(ctx, enrollment("e1", c, v), func(ctx context.Context) error { return boom })
	require.ErrorIs(t, err, boom)
	_, err = s.Enrollment(ctx, "e1")
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.ActiveEnrollment(ctx, c.ID, "welcome")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// start sees the row inside the transaction, and it commits.
	started := false
	err = s.CreateEnrollment(ctx, enrollment("e2", c, v), func(ctx context.Context) error {
		started = true
		return nil
	})
	require.NoError(t, err)
	require.True(t, started)
	e2, err := s.Enrollment(ctx, "e2")
	require.NoError(t, err)
	require.Equal(t, model.RunActive, e2.Status)
	require.Equal(t, "wf-e2", e2.WorkflowID)
	require.Nil(t, e2.EndedAt)
	require.WithinDuration(t, time.Now(), e2.StartedAt, time.Minute)

	// A second active run is refused before start is called.
	err = s.CreateEnrollment(ctx, enrollment("e3", c, v), func(ctx context.Context) error {
		t.Error("start called for a refused enrollment")
		return nil
	})
	require.ErrorIs(t, err, storage.ErrAlreadyActive)
	require.ErrorIs(t, s.EnsureEnrollment(ctx, enrollment("e3", c, v)), storage.ErrAlreadyActive)

	// Unknown contact or journey version.
	err = s.CreateEnrollment(ctx, storage.Enrollment{ID: "e4", ContactID: "c_missing", JourneyID: "welcome", Version: 1, WorkflowID: "wf"}, nil)
	require.ErrorIs(t, err, storage.ErrNotFound)
	err = s.CreateEnrollment(ctx, storage.Enrollment{ID: "e4", ContactID: newContact(t, s).ID, JourneyID: "welcome", Version: 9, WorkflowID: "wf"}, nil)
	require.ErrorIs(t, err, storage.ErrNotFound)

	active, err := s.ActiveEnrollment(ctx, c.ID, "welcome")
	require.NoError(t, err)
	require.Equal(t, e2, active)

	// Finish: only the first finish counts; later ones are no-ops.
	end := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	require.NoError(t, s.SetEnrollmentStep(ctx, "e2", "hello"))
	require.NoError(t, s.FinishEnrollment(ctx, "e2", model.RunConverted, "goal: purchase", end))
	require.NoError(t, s.FinishEnrollment(ctx, "e2", model.RunFailed, "late retry", time.Now()))
	e2, err = s.Enrollment(ctx, "e2")
	require.NoError(t, err)
	require.Equal(t, model.RunConverted, e2.Status)
	require.Equal(t, "goal: purchase", e2.ExitReason)
	require.Equal(t, "hello", e2.CurrentStep)
	require.Equal(t, end, *e2.EndedAt)
	require.ErrorIs(t, s.FinishEnrollment(ctx, "nope", model.RunCompleted, "", time.Now()), storage.ErrNotFound)
	require.Error(t, s.FinishEnrollment(ctx, "e2", model.RunActive, "", time.Now()))
	require.ErrorIs(t, s.SetEnrollmentStep(ctx, "nope", "x"), storage.ErrNotFound)

	_, err = s.ActiveEnrollment(ctx, c.ID, "welcome")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// Once the first run ended, a new one may start.
	e5 := enrollment("e5", c, v)
	e5.StartedAt = time.Now().Add(time.Second)
	require.NoError(t, s.CreateEnrollment(ctx, e5, nil))
	last, err := s.LastEnrollment(ctx, c.ID, "welcome")
	require.NoError(t, err)
	require.Equal(t, "e5", last.ID)
	_, err = s.LastEnrollment(ctx, c.ID, "other")
	require.ErrorIs(t, err, storage.ErrNotFound)

	all, err := s.EnrollmentsForContact(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"e5", "e2"}, []string{all[0].ID, all[1].ID})
	act, err := s.ActiveEnrollments(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, act, 1)
	require.Equal(t, "e5", act[0].ID)
}

func TestEnsureEnrollment(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")

	// The commit was lost: the workflow's first activity writes the row.
	require.NoError(t, s.EnsureEnrollment(ctx, enrollment("e1", c, v)))
	// Retried: a no-op, also after the run finished.
	require.NoError(t, s.EnsureEnrollment(ctx, enrollment("e1", c, v)))
	require.NoError(t, s.FinishEnrollment(ctx, "e1", model.RunCompleted, "", time.Time{}))
	require.NoError(t, s.EnsureEnrollment(ctx, enrollment("e1", c, v)))
	e, err := s.Enrollment(ctx, "e1")
	require.NoError(t, err)
	require.Equal(t, model.RunCompleted, e.Status)

	// The workflow started by CreateEnrollment runs EnsureEnrollment while
	// the transaction is still open: it waits for the commit, then finds the row.
	done := make(chan error, 1)
	err = s.CreateEnrollment(ctx, enrollment("e2", c, v), func(ctx context.Context) error {
		go func() { done <- s.EnsureEnrollment(ctx, enrollment("e2", c, v)) }()
		select {
		case err := <-done:
			return fmt.Errorf("EnsureEnrollment returned before the commit: %v", err)
		case <-time.After(200 * time.Millisecond):
			return nil
		}
	})
	require.NoError(t, err)
	require.NoError(t, <-done)
}

func TestCreateEnrollmentConcurrent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")

	const n = 6
	var starts atomic.Int32
	errs := make([]error, n)
	concurrently(n, func(i int) {
		errs[i] = s.CreateEnrollment(ctx, enrollment(fmt.Sprintf("e%d", i), c, v), func(context.Context) error {
			starts.Add(1)
			time.Sleep(50 * time.Millisecond) // a slow StartWorkflow keeps the others waiting
			return nil
		})
	})
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			require.ErrorIs(t, err, storage.ErrAlreadyActive)
		}
	}
	require.Equal(t, 1, won)
	require.EqualValues(t, 1, starts.Load(), "exactly one workflow started")
	act, err := s.ActiveEnrollments(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, act, 1)
}

// The path is written with the ending: a retry (or any later ending)
// leaves the first one's path; an ending without one leaves it NULL.
func TestEndEnrollment_RecordsThePathOnce(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")
	pathOf := func(id string) ([]string, *bool) {
		var (
			path      []string
			truncated *bool
		)
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT path, path_truncated FROM enrollments WHERE id = $1`, id).Scan(&path, &truncated))
		return path, truncated
	}

	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e1", c, v)))
	path, truncated := pathOf("e1")
	require.Nil(t, path, "no path while the run is active")
	require.Nil(t, truncated)
	require.NoError(t, s.EndEnrollment(ctx, "e1", storage.EnrollmentEnd{Status: model.RunConverted, Reason: "goal: purchase",
		Path: []string{"hello", "pause", "hello"}, PathTruncated: true}))
	require.NoError(t, s.EndEnrollment(ctx, "e1", storage.EnrollmentEnd{Status: model.RunConverted, Reason: "goal: purchase",
		Path: []string{"hello"}}))
	path, truncated = pathOf("e1")
	require.Equal(t, []string{"hello", "pause", "hello"}, path)
	require.True(t, *truncated)

	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e2", c, v)))
	require.NoError(t, s.EndEnrollment(ctx, "e2", storage.EnrollmentEnd{Status: model.RunExited, Reason: "erased", Path: []string{}}))
	path, truncated = pathOf("e2")
	require.Equal(t, []string{}, path, "a run that took no step has an empty path, not none")
	require.False(t, *truncated)

	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e3", c, v)))
	require.NoError(t, s.EndEnrollment(ctx, "e3", storage.EnrollmentEnd{Status: model.RunCompleted}))
	path, truncated = pathOf("e3")
	require.Nil(t, path)
	require.Nil(t, truncated)

	// Ended by support's exit request: the same.
	require.NoError(t, s.RecordEnrollment(ctx, enrollment("e4", c, v)))
	x, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: "e4", ContactID: c.ID, Reason: "asked", RequestedBy: "api"})
	require.NoError(t, err)
	require.NoError(t, s.EndEnrollment(ctx, "e4", storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: x.ID,
		Path: []string{"hello", "pause"}}))
	path, truncated = pathOf("e4")
	require.Equal(t, []string{"hello", "pause"}, path)
	require.False(t, *truncated)
	e4, err := s.Enrollment(ctx, "e4")
	require.NoError(t, err)
	require.Equal(t, x.ID, e4.ExitRequestID)
}
