package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestInsertEvent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	alice, bob := newContact(t, s), newContact(t, s)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	in := storage.Event{ID: "evt-1", ContactID: alice.ID, Name: "cart.abandoned", Properties: map[string]any{"total": 42.5}, OccurredAt: at}
	e, inserted, err := s.InsertEvent(ctx, in)
	require.NoError(t, err)
	require.True(t, inserted)
	require.Equal(t, "evt-1", e.ID)
	require.Equal(t, at, e.OccurredAt)
	require.Equal(t, map[string]any{"total": 42.5}, e.Properties)
	require.False(t, e.ReceivedAt.IsZero())

	// A retry with the same id is a no-op returning the stored event, even if
	// the properties differ.
	retry := in
	retry.Properties = map[string]any{"total": 1}
	again, inserted, err := s.InsertEvent(ctx, retry)
	require.NoError(t, err)
	require.False(t, inserted)
	require.Equal(t, e, again)

	// The id reused for another name or contact is a conflict.
	other := in
	other.Name = "purchase"
	_, _, err = s.InsertEvent(ctx, other)
	require.ErrorIs(t, err, storage.ErrEventConflict)
	other = in
	other.ContactID = bob.ID
	_, _, err = s.InsertEvent(ctx, other)
	require.ErrorIs(t, err, storage.ErrEventConflict)

	_, _, err = s.InsertEvent(ctx, storage.Event{ID: "evt-2", ContactID: "c_missing", Name: "x"})
	require.ErrorIs(t, err, storage.ErrNotFound)

	// Generated id, default time and properties.
	gen, inserted, err := s.InsertEvent(ctx, storage.Event{ContactID: alice.ID, Name: "page.viewed"})
	require.NoError(t, err)
	require.True(t, inserted)
	require.NotEmpty(t, gen.ID)
	require.Equal(t, map[string]any{}, gen.Properties)

	got, err := s.Event(ctx, "evt-1")
	require.NoError(t, err)
	require.Equal(t, e, got)
	_, err = s.Event(ctx, "evt-2")
	require.ErrorIs(t, err, storage.ErrNotFound)

	list, err := s.EventsForContact(ctx, alice.ID, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, gen.ID, list[0].ID, "newest first")
	list, err = s.EventsForContact(ctx, alice.ID, 1)
	require.NoError(t, err)
	require.Len(t, list, 1)
	list, err = s.EventsForContact(ctx, bob.ID, 0)
	require.NoError(t, err)
	require.Empty(t, list)
}
