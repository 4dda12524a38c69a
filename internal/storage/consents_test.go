package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestRecordConsent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	cs, err := s.Consents(ctx, c.ID)
	require.NoError(t, err)
	require.Empty(t, cs)

	ev1, cur, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "signup_form", t0)
	require.NoError(t, err)
	require.NotZero(t, ev1.ID)
	require.Equal(t, t0, ev1.OccurredAt)
	require.Equal(t, storage.Consent{ContactID: c.ID, Channel: journey.ChannelEmail, Status: model.ConsentGranted, Source: "signup_form", OccurredAt: t0, ConsentEventID: ev1.ID}, cur)

	// A newer revocation takes over.
	ev2, cur, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentRevoked, "unsubscribe_link", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, cur.Status)
	require.Equal(t, ev2.ID, cur.ConsentEventID)

	// A late-arriving older grant goes into the history only.
	ev3, cur, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "crm_sync", t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, cur.Status)
	require.Equal(t, ev2.ID, cur.ConsentEventID)

	// Another channel is independent.
	ev4, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentPending, "double_opt_in", t0.Add(30*time.Minute))
	require.NoError(t, err)

	cs, err = s.Consents(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, model.ConsentRevoked, cs[journey.ChannelEmail].Status)
	require.Equal(t, model.ConsentPending, cs[journey.ChannelSMS].Status)

	hist, err := s.ConsentHistory(ctx, c.ID)
	require.NoError(t, err)
	var ids []int64
	for _, e := range hist {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []int64{ev2.ID, ev3.ID, ev4.ID, ev1.ID}, ids, "newest occurrence first")

	// An equal timestamp: the later-recorded change wins.
	ev5, cur, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "support", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, ev5.ID, cur.ConsentEventID)

	// A revoke stamped in whole seconds (SendGrid) in the same second as a
	// grant: it may be the later decision, so it wins, keeping the later
	// date. One dated a full second earlier does not.
	grantAt := t0.Add(3*time.Hour + 700*time.Millisecond)
	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", grantAt)
	require.NoError(t, err)
	ev7, cur, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentRevoked, "sendgrid:unsubscribe", t0.Add(3*time.Hour))
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, cur.Status)
	require.Equal(t, ev7.ID, cur.ConsentEventID)
	require.Equal(t, grantAt, cur.OccurredAt)
	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", t0.Add(4*time.Hour))
	require.NoError(t, err)
	_, cur, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentRevoked, "late", t0.Add(4*time.Hour-time.Second))
	require.NoError(t, err)
	require.Equal(t, model.ConsentGranted, cur.Status, "a revoke a whole second older stays in the history only")

	// Zero time means now.
	before := time.Now().Add(-time.Minute)
	ev6, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelAds, model.ConsentGranted, "api", time.Time{})
	require.NoError(t, err)
	require.True(t, ev6.OccurredAt.After(before))
}

func TestRecordConsentErrors(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	_, _, err := s.RecordConsent(ctx, "c_missing", journey.ChannelEmail, model.ConsentGranted, "api", time.Now())
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, _, err = s.RecordConsent(ctx, c.ID, "fax", model.ConsentGranted, "api", time.Now())
	require.ErrorContains(t, err, "unknown channel")
	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, "maybe", "api", time.Now())
	require.ErrorContains(t, err, "unknown status")

	hist, err := s.ConsentHistory(ctx, c.ID)
	require.NoError(t, err)
	require.Empty(t, hist)
}
