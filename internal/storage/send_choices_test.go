package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// A send's choice is stored once: a retry gets the first answer back. It
// is listed under its step, and erasing the contact erases it.
func TestSendChoices(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	at := time.Date(2026, 3, 3, 13, 0, 0, 0, time.UTC)
	first, err := s.RecordSendChoice(ctx, storage.SendChoice{IdempotencyKey: "k1", ContactID: c.ID, JourneyID: "j", StepID: "offer",
		Channel: journey.ChannelSMS, SendAt: &at, Evidence: engagement.Evidence{Time: &engagement.TimeEvidence{CellName: "Tue 08:00", Engagements: 5}}})
	require.NoError(t, err)
	require.Equal(t, "Tue 08:00", first.Evidence.Time.CellName)
	later := at.Add(time.Hour)
	again, err := s.RecordSendChoice(ctx, storage.SendChoice{IdempotencyKey: "k1", ContactID: c.ID, JourneyID: "j", StepID: "offer",
		Channel: journey.ChannelEmail, SendAt: &later})
	require.NoError(t, err)
	require.Equal(t, first, again, "the first choice stands")

	_, err = s.RecordSendChoice(ctx, storage.SendChoice{IdempotencyKey: "k2", ContactID: "c_nobody", JourneyID: "j", StepID: "offer", Channel: journey.ChannelEmail})
	require.ErrorIs(t, err, storage.ErrNotFound)

	list, err := s.SendChoicesForStep(ctx, c.ID, "j", "offer", 10)
	require.NoError(t, err)
	require.Equal(t, []storage.SendChoice{first}, list)

	_, err = s.Pool().Exec(ctx, `DELETE FROM contacts WHERE id = $1`, c.ID)
	require.NoError(t, err)
	_, err = s.SendChoice(ctx, "k1")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// Engagement reads: an email opened twice and clicked is one engaged
// message; the workspace counts every contact's; events are put in the
// hour of the clock with their contact's time zone setting.
func TestEngagementReads(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	a, b := newContact(t, s), newContact(t, s)
	_, _, err := s.UpsertContact(ctx, storage.ContactInput{ID: a.ID, TimeZone: "Europe/Paris"})
	require.NoError(t, err)
	at := time.Date(2026, 3, 3, 9, 15, 0, 0, time.UTC)
	for i, ev := range []storage.Event{
		{ContactID: a.ID, Name: "email.opened", Properties: map[string]any{"message_id": "m1"}},
		{ContactID: a.ID, Name: "email.opened", Properties: map[string]any{"message_id": "m1"}},
		{ContactID: a.ID, Name: "email.clicked", Properties: map[string]any{"message_id": "m1"}},
		{ContactID: a.ID, Name: "sms.replied"},
		{ContactID: b.ID, Name: "email.opened", Properties: map[string]any{"message_id": "m2"}},
		{ContactID: a.ID, Name: "purchase"},
	} {
		ev.ID, ev.OccurredAt = "ev"+string(rune('a'+i)), at.Add(time.Duration(i)*time.Minute)
		_, _, err := s.InsertEvent(ctx, ev)
		require.NoError(t, err)
	}
	since := at.Add(-time.Hour)
	email := engagement.ChannelEvents[journey.ChannelEmail]
	n, err := s.EngagedMessages(ctx, a.ID, email, since)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = s.EngagedMessages(ctx, "", email, since)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = s.EngagedMessages(ctx, a.ID, email, at.Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "older than since")

	times, err := s.EngagementTimes(ctx, a.ID, engagement.EventNames(), since, 10)
	require.NoError(t, err)
	require.Len(t, times, 4, "engagement only, not the purchase")
	require.True(t, times[0].After(times[3]), "newest first")

	hours, err := s.WorkspaceEngagementHours(ctx, engagement.EventNames(), since)
	require.NoError(t, err)
	require.ElementsMatch(t, []storage.ZoneHour{
		{TimeZone: "Europe/Paris", Hour: at.Truncate(time.Hour), Count: 4},
		{TimeZone: "", Hour: at.Truncate(time.Hour), Count: 1},
	}, hours)
}
