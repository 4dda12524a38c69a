package storage_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// sentMessage claims and completes a send, returning the sent row.
func sentMessage(t *testing.T, s *storage.Store, c storage.Contact, key string) storage.Message {
	t.Helper()
	ctx := context.Background()
	m := storagetest.InFlight(t, s, message(c, key))
	m, err := s.CompleteSend(ctx, m.ID, "sendgrid", "sg-"+key, time.Time{})
	require.NoError(t, err)
	return m
}

func setStatus(t *testing.T, s *storage.Store, id string, status model.MessageStatus) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `UPDATE messages SET status = $2 WHERE id = $1`, id, status)
	require.NoError(t, err)
}

func countRows(t *testing.T, s *storage.Store, table string) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

func TestRecordProviderEventDedupes(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	ev := storage.ProviderEvent{Provider: "sendgrid", EventID: "sg-ev-1", Kind: "email.delivered",
		OccurredAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), Payload: map[string]any{"event": "delivered"}}

	ok, err := s.ProviderEventRecorded(ctx, "sendgrid", "sg-ev-1")
	require.NoError(t, err)
	require.False(t, ok)

	isNew, err := s.RecordProviderEvent(ctx, ev)
	require.NoError(t, err)
	require.True(t, isNew)
	isNew, err = s.RecordProviderEvent(ctx, ev)
	require.NoError(t, err)
	require.False(t, isNew, "the same provider event id is a duplicate")

	// The id is per provider.
	isNew, err = s.RecordProviderEvent(ctx, storage.ProviderEvent{Provider: "twilio", EventID: "sg-ev-1", Kind: "sms.inbound"})
	require.NoError(t, err)
	require.True(t, isNew)

	ok, err = s.ProviderEventRecorded(ctx, "sendgrid", "sg-ev-1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, countRows(t, s, "provider_events"))

	_, err = s.RecordProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", Kind: "email.open"})
	require.Error(t, err, "an event id is required")
}

func TestAdvanceMessageStatusNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	cases := []struct {
		from, to model.MessageStatus
		changes  bool
	}{
		{model.MessageSent, model.MessageDelivered, true},
		{model.MessageSent, model.MessageClicked, true},
		{model.MessageDelivered, model.MessageOpened, true},
		{model.MessageOpened, model.MessageClicked, true},
		{model.MessageClicked, model.MessageOpened, false},
		{model.MessageOpened, model.MessageDelivered, false},
		{model.MessageDelivered, model.MessageSent, false},
		{model.MessageDelivered, model.MessageDelivered, false},
		{model.MessageUnknown, model.MessageDelivered, true},
		{model.MessageUnknown, model.MessageDropped, true},

		{model.MessageSent, model.MessageBounced, true},
		{model.MessageDelivered, model.MessageBounced, true},
		{model.MessageOpened, model.MessageBounced, false},
		{model.MessageBounced, model.MessageDelivered, false},
		{model.MessageBounced, model.MessageOpened, false},
		{model.MessageSent, model.MessageFailed, true},
		{model.MessageFailed, model.MessageDelivered, false},
		{model.MessageSent, model.MessageDropped, true},
		{model.MessageDelivered, model.MessageDropped, false},
		{model.MessageDropped, model.MessageDelivered, false},

		{model.MessageClicked, model.MessageComplained, true},
		{model.MessageBounced, model.MessageComplained, true},
		{model.MessageComplained, model.MessageClicked, false},
		{model.MessageComplained, model.MessageBounced, false},

		// Rows the send activity still owns, or that were never sent.
		{model.MessageReserved, model.MessageDelivered, false},
		{model.MessageRetrying, model.MessageDelivered, false},
		// A request written, its answer not recorded (the database blinked):
		// the provider's webhook proves it has the message.
		{model.MessageInFlight, model.MessageDelivered, true},
		{model.MessageInFlight, model.MessageBounced, true},
		{model.MessageSkipped, model.MessageDelivered, false},
		{model.MessageSkipped, model.MessageComplained, false},
	}
	for i, tc := range cases {
		m := sentMessage(t, s, c, fmt.Sprintf("adv/%d", i))
		setStatus(t, s, m.ID, tc.from)
		got, changed, err := s.AdvanceMessageStatus(ctx, m.ID, tc.to, "reason "+string(tc.to))
		require.NoError(t, err, "%s → %s", tc.from, tc.to)
		require.Equal(t, tc.changes, changed, "%s → %s", tc.from, tc.to)
		if tc.changes {
			require.Equal(t, tc.to, got.Status)
			require.Equal(t, "reason "+string(tc.to), got.StatusReason)
		} else {
			require.Equal(t, tc.from, got.Status, "%s → %s must leave the row as it was", tc.from, tc.to)
		}
	}

	m := sentMessage(t, s, c, "adv/invalid")
	for _, st := range []model.MessageStatus{model.MessageReserved, model.MessageInFlight, model.MessageRetrying, model.MessageSkipped, model.MessageUnknown, "nonsense"} {
		_, _, err := s.AdvanceMessageStatus(ctx, m.ID, st, "")
		require.Error(t, err, "webhooks cannot set %s", st)
	}
	_, _, err := s.AdvanceMessageStatus(ctx, "m_missing", model.MessageDelivered, "")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func TestMarkEngaged(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	m := sentMessage(t, s, c, "eng/1")
	other := newContact(t, s)

	lastEngaged := func() *time.Time {
		var at *time.Time
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT last_engaged_at FROM contacts WHERE id = $1`, c.ID).Scan(&at))
		return at
	}
	messageEngaged := func() *time.Time {
		var at *time.Time
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT engaged_at FROM messages WHERE id = $1`, m.ID).Scan(&at))
		return at
	}
	t1 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)

	require.Nil(t, lastEngaged())
	require.NoError(t, s.MarkEngaged(ctx, c.ID, m.ID, t2))
	require.True(t, lastEngaged().Equal(t2))
	require.True(t, messageEngaged().Equal(t2))

	// An earlier engagement arriving late: the contact keeps the latest, the
	// message gets the first.
	require.NoError(t, s.MarkEngaged(ctx, c.ID, m.ID, t1))
	require.True(t, lastEngaged().Equal(t2))
	require.True(t, messageEngaged().Equal(t1))

	// Without a message only the contact moves.
	t3 := t2.Add(time.Hour)
	require.NoError(t, s.MarkEngaged(ctx, c.ID, "", t3))
	require.True(t, lastEngaged().Equal(t3))
	require.True(t, messageEngaged().Equal(t1))

	require.ErrorIs(t, s.MarkEngaged(ctx, "c_missing", "", t1), storage.ErrNotFound)
	require.ErrorIs(t, s.MarkEngaged(ctx, other.ID, m.ID, t1), storage.ErrNotFound, "the message is not the other contact's")
	require.Error(t, s.MarkEngaged(ctx, c.ID, "", time.Time{}))
}

func TestApplyProviderEventOnceAndAtomically(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	m := sentMessage(t, s, c, "apply/1")
	_, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "signup", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := storage.ProviderEvent{Provider: "sendgrid", EventID: "sg-spam-1", Kind: "email.spam_reported",
		MessageID: m.ID, ContactID: c.ID, OccurredAt: at}
	fx := storage.ProviderEffects{
		MessageStatus: model.MessageComplained,
		StatusReason:  "spam report",
		Suppression:   &storage.Suppression{Reason: model.SuppressSpamComplaint, Channel: journey.ChannelEmail, Source: "sendgrid:spamreport"},
		Consents:      []storage.ConsentChange{{Channel: journey.ChannelEmail, Status: model.ConsentRevoked, Source: "sendgrid:spamreport", OccurredAt: at}},
	}

	// A failing effect rolls everything back, the event row included, so a
	// retry applies it again.
	bad := fx
	bad.Suppression = &storage.Suppression{Reason: "no-such-reason", Source: "x"}
	_, err = s.ApplyProviderEvent(ctx, ev, bad)
	require.Error(t, err)
	recorded, err := s.ProviderEventRecorded(ctx, "sendgrid", "sg-spam-1")
	require.NoError(t, err)
	require.False(t, recorded)
	got, err := s.Message(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, got.Status)
	require.Equal(t, 1, countRows(t, s, "consent_events"))

	res, err := s.ApplyProviderEvent(ctx, ev, fx)
	require.NoError(t, err)
	require.True(t, res.New)
	require.True(t, res.StatusChanged)
	require.Equal(t, model.MessageComplained, res.Message.Status)
	require.True(t, res.SuppressionCreated)
	require.Equal(t, model.SuppressSpamComplaint, res.Suppression.Reason)
	require.Len(t, res.Consents, 1)
	require.Equal(t, model.ConsentRevoked, res.Consents[0].Status)

	snapshot := func() [4]int {
		return [4]int{countRows(t, s, "provider_events"), countRows(t, s, "consent_events"),
			countRows(t, s, "suppressions"), countRows(t, s, "events")}
	}
	before := snapshot()
	again, err := s.ApplyProviderEvent(ctx, ev, fx)
	require.NoError(t, err)
	require.Equal(t, storage.ProviderEventResult{}, again, "a duplicate changes and returns nothing")
	require.Equal(t, before, snapshot())

	// An engagement event: status, engagement and a behaviour event together.
	m2 := sentMessage(t, s, c, "apply/2")
	res, err = s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: "sg-open-1", Kind: "email.opened",
		MessageID: m2.ID, ContactID: c.ID, OccurredAt: at},
		storage.ProviderEffects{MessageStatus: model.MessageOpened, Engaged: true,
			Event: &storage.Event{ID: "sendgrid:sg-open-1", Name: "email.opened", Properties: map[string]any{"message_id": m2.ID}}})
	require.NoError(t, err)
	require.True(t, res.New)
	require.Equal(t, model.MessageOpened, res.Message.Status)
	require.Equal(t, "sendgrid:sg-open-1", res.Event.ID)
	require.True(t, res.Event.OccurredAt.Equal(at), "the behaviour event happened when the provider says")
	stored, err := s.Event(ctx, "sendgrid:sg-open-1")
	require.NoError(t, err)
	require.Equal(t, c.ID, stored.ContactID)

	// Effects need their subject.
	_, err = s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: "x", Kind: "email.opened"},
		storage.ProviderEffects{Engaged: true})
	require.Error(t, err)
	_, err = s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: "x", Kind: "email.opened", ContactID: c.ID},
		storage.ProviderEffects{MessageStatus: model.MessageOpened})
	require.Error(t, err)
	_, err = s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: "x", Kind: "email.opened", ContactID: "c_missing"},
		storage.ProviderEffects{Engaged: true})
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func TestApplyProviderEventConcurrentRedelivery(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	var fresh atomic.Int64
	concurrently(8, func(int) {
		res, err := s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "twilio", EventID: "SM-stop", Kind: "sms.opt_out", ContactID: c.ID},
			storage.ProviderEffects{Consents: []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: model.ConsentRevoked, Source: "sms:STOP"}}})
		if err == nil && res.New {
			fresh.Add(1)
		}
	})
	require.EqualValues(t, 1, fresh.Load())
	hist, err := s.ConsentHistory(ctx, c.ID)
	require.NoError(t, err)
	require.Len(t, hist, 1, "one opt-out recorded, however many deliveries raced")
}
