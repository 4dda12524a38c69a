package storage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// A preview decides from exactly what the gate reads for a send, and
// writes nothing: no decision, no ledger row, no decision id taken.
func TestPeekGateState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	_, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	_, _, err = s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressInOpportunity, Channel: journey.ChannelSMS, Source: "crm"})
	require.NoError(t, err)
	now := time.Now()
	first, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, now))
	require.NoError(t, err)
	require.True(t, first.Send())

	// What the gate reads for a second send...
	var seen storage.GateState
	in := gateInput(c, "j1", "k2", journey.ChannelEmail)
	_, err = s.Gate(ctx, in, func(st storage.GateState) policy.Decision {
		seen = st
		return decideWith(gateSettings(), journey.ChannelEmail, now)(st)
	})
	require.NoError(t, err)
	require.NotEmpty(t, seen.Contact.Consents)
	require.NotEmpty(t, seen.Contact.Suppressions)
	require.Len(t, seen.Contact.RecentSends, 1)

	// ... is what a peek with another key reads, and the peek writes nothing.
	before := peekRows(ctx, t, s, c.ID)
	peeked, err := s.PeekGateState(ctx, gateInput(c, "j1", "k3", journey.ChannelEmail))
	require.NoError(t, err)
	require.Len(t, peeked.Contact.RecentSends, 2, "both reserved sends count")
	slices.SortFunc(peeked.Contact.RecentSends, func(a, b policy.SentMessage) int { return a.At.Compare(b.At) })
	peeked.Contact.RecentSends = peeked.Contact.RecentSends[:1]
	require.Equal(t, seen, peeked)
	require.Equal(t, before, peekRows(ctx, t, s, c.ID))

	_, err = s.PeekGateState(ctx, gateInput(storage.Contact{ID: "c_nobody"}, "j1", "k4", journey.ChannelEmail))
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// peekRows counts the contact's decisions and ledger rows.
func peekRows(ctx context.Context, t *testing.T, s *storage.Store, contactID string) [2]int {
	t.Helper()
	ds, err := s.DecisionsFor(ctx, contactID, "", "", 1000)
	require.NoError(t, err)
	ms, err := s.MessagesForContact(ctx, contactID, 1000)
	require.NoError(t, err)
	return [2]int{len(ds), len(ms)}
}
