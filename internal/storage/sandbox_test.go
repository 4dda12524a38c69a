package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// The Store is the sandbox provider's Recorder, read-back included.
var _ provider.Recorder = (*storage.Store)(nil)

func TestSandboxMessageByID(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	m := storagetest.InFlight(t, s, message(c, "k-lookup"))

	_, found, err := s.SandboxMessageByID(ctx, m.ID)
	require.NoError(t, err)
	require.False(t, found, "nothing recorded yet")

	first := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	for _, at := range []time.Time{first.Add(time.Minute), first} {
		require.NoError(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{
			MessageID: m.ID, Channel: journey.ChannelEmail, Recipient: c.Email, CreatedAt: at,
		}))
	}
	at, found, err := s.SandboxMessageByID(ctx, m.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.True(t, at.Equal(first), "the earliest recording: got %v, want %v", at, first)

	_, found, err = s.SandboxMessageByID(ctx, "m_missing")
	require.NoError(t, err)
	require.False(t, found)
}
