package storage_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestAssign_FirstRecordWins(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	first, created, err := s.Assign(ctx, storage.Assignment{JourneyID: "j", Experiment: "e", ContactID: c.ID, Variant: "a", EnrollmentID: "e_1", JourneyVersion: 1})
	require.NoError(t, err)
	require.True(t, created)
	again, created, err := s.Assign(ctx, storage.Assignment{JourneyID: "j", Experiment: "e", ContactID: c.ID, Variant: "b", EnrollmentID: "e_2", JourneyVersion: 2})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first, again, "the recorded variant, run and time win")

	// Another experiment, and the workspace-wide one (no journey), are separate.
	other, created, err := s.Assign(ctx, storage.Assignment{Experiment: "control_group", ContactID: c.ID, Variant: "treatment", EnrollmentID: "e_1", JourneyVersion: 1})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "", other.JourneyID)
	all, err := s.AssignmentsForContact(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, all, 2)

	_, _, err = s.Assign(ctx, storage.Assignment{JourneyID: "j", Experiment: "e", ContactID: "c_nobody", Variant: "a"})
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, _, err = s.Assign(ctx, storage.Assignment{JourneyID: "j", Experiment: "e", ContactID: c.ID})
	require.Error(t, err)
}

// Concurrent first assignments (two runs reaching the split at once, a
// retried activity) agree on one variant.
func TestAssign_ConcurrentCallsAgree(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	var created atomic.Int64
	got := make([]string, 16)
	concurrently(16, func(i int) {
		a, ok, err := s.Assign(ctx, storage.Assignment{JourneyID: "j", Experiment: "e", ContactID: c.ID,
			Variant: fmt.Sprint("v", i), EnrollmentID: fmt.Sprint("e_", i), JourneyVersion: 1})
		require.NoError(t, err)
		if ok {
			created.Add(1)
		}
		got[i] = a.Variant
	})
	require.Equal(t, int64(1), created.Load())
	for _, v := range got {
		require.Equal(t, got[0], v)
	}
}
