package storage_test

import (
	"context"
	"regexp"
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

// The CHECK constraints spell the stored vocabulary a second time, in SQL:
// each column accepts exactly the values internal/model defines for it.
func TestSchemaAcceptsTheModelVocabulary(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	rows, err := s.Pool().Query(context.Background(), `
		SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'`)
	require.NoError(t, err)
	anyOf := regexp.MustCompile(`^CHECK \(\((\w+) = ANY \(ARRAY\[(.*)\]\)\)\)$`)
	quoted := regexp.MustCompile(`'([^']*)'::text`)
	allowed := map[string][]string{} // "table.column" -> values
	for rows.Next() {
		var table, def string
		require.NoError(t, rows.Scan(&table, &def))
		if m := anyOf.FindStringSubmatch(def); m != nil {
			for _, v := range quoted.FindAllStringSubmatch(m[2], -1) {
				allowed[table+"."+m[1]] = append(allowed[table+"."+m[1]], v[1])
			}
		}
	}
	require.NoError(t, rows.Err())

	consent := values(model.ConsentGranted, model.ConsentRevoked, model.ConsentPending)
	for col, want := range map[string][]string{
		"consent_events.status":     consent,
		"consents.status":           consent,
		"erasure_proofs.status":     consent,
		"deliveries.kind":           values(model.DeliveryKinds...),
		"deliveries.consent_status": consent,
		"enrollments.status":        values(model.RunActive, model.RunCompleted, model.RunConverted, model.RunExited, model.RunFailed),
		"suppressions.reason": values(model.SuppressConverted, model.SuppressInOpportunity, model.SuppressDoNotContact,
			model.SuppressHardBounce, model.SuppressSpamComplaint, model.SuppressUnengaged),
		"messages.channel": values(journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds, journey.ChannelWebhook),
		"messages.status": values(model.MessageReserved, model.MessageInFlight, model.MessageRetrying, model.MessageSent,
			model.MessageDelivered, model.MessageOpened, model.MessageClicked, model.MessageFailed, model.MessageBounced,
			model.MessageDropped, model.MessageComplained, model.MessageSkipped, model.MessageUnknown),
	} {
		require.ElementsMatch(t, want, allowed[col], col)
	}
	// And the model's own checks accept every stored value.
	for _, v := range allowed["consents.status"] {
		require.True(t, model.ConsentStatus(v).Recordable(), v)
	}
	for _, v := range allowed["suppressions.reason"] {
		require.True(t, model.SuppressionReason(v).Valid(), v)
	}
	for _, v := range allowed["deliveries.kind"] {
		require.True(t, model.DeliveryKind(v).Valid(), v)
	}
	for _, v := range allowed["messages.status"] {
		require.True(t, model.MessageStatus(v).Valid(), v)
	}
}

func values[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}
