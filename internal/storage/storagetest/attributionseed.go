package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// AttributionSeed is five contacts' purchases and every kind of
// touchpoint before them, written through the store as the webhooks and
// the audience sync write them. The attribution tests work the expected
// credits out by hand from the times below (see storage's
// TestAttribution).
type AttributionSeed struct {
	Event    string
	From, To time.Time
	// A, B1, B2, C, D, E are the conversions' times.
	A, B1, B2, C, D, E time.Time
}

// SeedAttribution writes the seed; every time is relative to From
// (2026-02-02 UTC), the period is [From, From+14d).
//
//   - Alice converts at A = From+3d12h after: email welcome/hello sent
//     48h before (clicked), opened 30h and 20h before, clicked 19h
//     before; SMS promo/nudge written 6h before (no sent_at). Not
//     touchpoints: a machine open 5h before, a bounced email 4h before,
//     a skipped message 3h before, an email 8 days before, an email an
//     hour after.
//   - Bob converts at B1 = From+5d: SMS promo/nudge sent 30h before, his
//     reply 10h before, in the Meta audience since 100h before (asked by
//     journey promo's step retarget), removed at B2-2d; and again at
//     B2 = From+12d.
//   - Carol converts at C = From+6d with an email 10 days before and a
//     reply an hour after only: unattributed.
//   - Dave converts at D = From+8d: his reply 2h before (no SMS was sent
//     to him), in the audience from D-20d to D-10d, an add rejected at
//     D-5d, in again from D-1d (asked by segment vip).
//   - Erin converts at E = From exactly, with an email welcome/hello sent
//     at that very moment; a webhook step's post an hour before, an email
//     exactly 7 days before (out: the window is open at its start), a
//     purchase the day before From, a browse in the period, and a
//     purchase at To (out: the period is open at its end).
func SeedAttribution(t *testing.T, s *storage.Store) AttributionSeed {
	t.Helper()
	ctx := context.Background()
	h, d := time.Hour, 24*time.Hour
	from := time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	seed := AttributionSeed{Event: "purchase", From: from, To: from.Add(14 * d),
		A: from.Add(3*d + 12*h), B1: from.Add(5 * d), B2: from.Add(12 * d), C: from.Add(6 * d), D: from.Add(8 * d), E: from}

	contact := func(name string) string {
		c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: "attr-" + name + "@example.com"})
		require.NoError(t, err)
		return c.ID
	}
	n := 0
	event := func(contactID, name string, at time.Time) {
		n++
		_, _, err := s.InsertEvent(ctx, storage.Event{ID: fmt.Sprintf("ev_attr_%d", n), ContactID: contactID, Name: name, OccurredAt: at})
		require.NoError(t, err)
	}
	message := func(id, contactID, journeyID, step string, ch journey.Channel, status model.MessageStatus, created time.Time, sent *time.Time) {
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class, provider,
			                      status, created_at, updated_at, sent_at)
			VALUES ($1, $1, $2, $3, 1, $4, $5, 'marketing', 'sandbox', $6, $7, $7, $8)`,
			id, contactID, journeyID, step, ch, status, created, sent)
		require.NoError(t, err)
	}
	providerEvent := func(provider, id, kind, messageID, contactID string, at time.Time) {
		_, err := s.RecordProviderEvent(ctx, storage.ProviderEvent{Provider: provider, EventID: id, Kind: kind,
			MessageID: messageID, ContactID: contactID, OccurredAt: at})
		require.NoError(t, err)
	}
	_, _, err := s.DefineAudience(ctx, storage.Audience{ID: "attr_meta", Name: "Retarget", Destination: audience.Meta, ExternalID: "act_1"})
	require.NoError(t, err)
	// audienceChange asks for a change and records the platform's answer
	// to it at the given time (the ledger is stamped now(); tests move it).
	audienceChange := func(contactID string, action audience.Action, by, result string, at time.Time) {
		got, err := s.RequestAudienceChange(ctx, "attr_meta", contactID, action, by)
		require.NoError(t, err)
		require.Equal(t, "queued", got)
		require.NoError(t, s.RecordAudienceBatch(ctx, "attr_meta", "batch", action, []storage.AudienceOutcome{{ContactID: contactID, Result: result}}))
		_, err = s.Pool().Exec(ctx, `UPDATE audience_ledger SET at = $2 WHERE id = (SELECT max(id) FROM audience_ledger WHERE contact_id = $1)`, contactID, at)
		require.NoError(t, err)
	}
	adsConsent := func(contactID string) {
		_, _, err := s.RecordConsent(ctx, contactID, journey.ChannelAds, model.ConsentGranted, "seed", from.Add(-60*d))
		require.NoError(t, err)
	}
	ptr := func(t time.Time) *time.Time { return &t }

	alice := contact("alice")
	a := seed.A
	event(alice, "purchase", a)
	message("m_attr_a_hello", alice, "welcome", "hello", journey.ChannelEmail, model.MessageClicked, a.Add(-48*h-time.Minute), ptr(a.Add(-48*h)))
	providerEvent("sendgrid", "sg_a_open1", "email.opened", "m_attr_a_hello", alice, a.Add(-30*h))
	providerEvent("sendgrid", "sg_a_open2", "email.opened", "m_attr_a_hello", alice, a.Add(-20*h))
	providerEvent("sendgrid", "sg_a_click", "email.clicked", "m_attr_a_hello", alice, a.Add(-19*h))
	message("m_attr_a_nudge", alice, "promo", "nudge", journey.ChannelSMS, model.MessageDelivered, a.Add(-6*h), nil)
	providerEvent("sendgrid", "sg_a_machine", "email.opened.machine", "m_attr_a_hello", alice, a.Add(-5*h))
	message("m_attr_a_bounced", alice, "promo", "mail", journey.ChannelEmail, model.MessageBounced, a.Add(-4*h), ptr(a.Add(-4*h)))
	message("m_attr_a_skipped", alice, "promo", "mail2", journey.ChannelEmail, model.MessageSkipped, a.Add(-3*h), nil)
	message("m_attr_a_old", alice, "welcome", "hello", journey.ChannelEmail, model.MessageSent, a.Add(-8*d), ptr(a.Add(-8*d)))
	message("m_attr_a_after", alice, "welcome", "hello", journey.ChannelEmail, model.MessageSent, a.Add(h), ptr(a.Add(h)))

	bob := contact("bob")
	adsConsent(bob)
	event(bob, "purchase", seed.B1)
	event(bob, "purchase", seed.B2)
	message("m_attr_b_nudge", bob, "promo", "nudge", journey.ChannelSMS, model.MessageSent, seed.B1.Add(-30*h-time.Minute), ptr(seed.B1.Add(-30*h)))
	providerEvent("twilio", "SM_b_reply", "sms.replied", "", bob, seed.B1.Add(-10*h))
	audienceChange(bob, audience.Add, "journey:promo/retarget", "applied", seed.B1.Add(-100*h))
	audienceChange(bob, audience.Remove, "journey:promo/forget", "applied", seed.B2.Add(-2*d))

	carol := contact("carol")
	event(carol, "purchase", seed.C)
	message("m_attr_c_old", carol, "welcome", "hello", journey.ChannelEmail, model.MessageSent, seed.C.Add(-10*d), ptr(seed.C.Add(-10*d)))
	providerEvent("twilio", "SM_c_reply", "sms.replied", "", carol, seed.C.Add(h))

	dave := contact("dave")
	adsConsent(dave)
	event(dave, "purchase", seed.D)
	providerEvent("twilio", "SM_d_reply", "sms.replied", "", dave, seed.D.Add(-2*h))
	audienceChange(dave, audience.Add, "segment:vip", "applied", seed.D.Add(-20*d))
	audienceChange(dave, audience.Remove, "left_segment:vip", "applied", seed.D.Add(-10*d))
	audienceChange(dave, audience.Add, "segment:vip", "rejected:no_match", seed.D.Add(-5*d))
	audienceChange(dave, audience.Add, "segment:vip", "applied", seed.D.Add(-d))

	erin := contact("erin")
	event(erin, "purchase", seed.E)
	event(erin, "purchase", from.Add(-d))
	event(erin, "browse", from.Add(2*d))
	event(erin, "purchase", seed.To)
	message("m_attr_e_hello", erin, "welcome", "hello", journey.ChannelEmail, model.MessageSent, seed.E.Add(-time.Minute), ptr(seed.E))
	message("m_attr_e_post", erin, "crm", "post", journey.ChannelWebhook, model.MessageSent, seed.E.Add(-h), ptr(seed.E.Add(-h)))
	message("m_attr_e_edge", erin, "welcome", "hello", journey.ChannelEmail, model.MessageSent, seed.E.Add(-7*d), ptr(seed.E.Add(-7*d)))
	return seed
}
