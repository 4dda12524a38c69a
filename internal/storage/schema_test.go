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

// Erasing a contact removes everything about them in one statement: every
// table referencing contacts (directly or through consent_events and
// messages) cascades.
func TestDeleteContactCascades(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c, other := newContact(t, s), newContact(t, s)
	v := publish(t, s, "welcome")

	for _, id := range []string{c.ID, other.ID} {
		ev, _, err := s.RecordConsent(ctx, id, journey.ChannelEmail, model.ConsentGranted, "api", time.Now())
		require.NoError(t, err)
		_, _, err = s.InsertEvent(ctx, storage.Event{ID: "ev-" + id, ContactID: id, Name: "signed_up"})
		require.NoError(t, err)
		require.NoError(t, s.CreateEnrollment(ctx, storage.Enrollment{ID: "en-" + id, ContactID: id, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-" + id}, nil))
		m := message(storage.Contact{ID: id}, "key-"+id)
		m.ConsentEventID = &ev.ID
		claimed := storagetest.InFlight(t, s, m)
		require.NoError(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{MessageID: claimed.ID, Channel: journey.ChannelEmail, Recipient: "x", Payload: map[string]any{}}))
	}

	_, err := s.Pool().Exec(ctx, `DELETE FROM contacts WHERE id = $1`, c.ID)
	require.NoError(t, err)

	for _, table := range []string{"contacts", "consent_events", "consents", "events", "enrollments", "messages"} {
		var n int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
		require.Equal(t, 1, n, "%s keeps only the other contact's row", table)
	}
	sb, err := s.SandboxMessages(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, sb, 1)
	require.Equal(t, other.ID, sb[0].ContactID)
}
