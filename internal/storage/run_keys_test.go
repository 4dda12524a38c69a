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

// The secret is made by the migration, is the same on every read, and the
// digests it makes are journey.RunKeyDigest's with it.
func TestRunKeySecret(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	secret, err := s.RunKeySecret(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(secret), 30)
	var stored []byte
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT secret FROM run_key_secret`).Scan(&stored))
	require.Equal(t, stored, secret)
	d, err := s.RunKeyDigest(ctx, "cart_id", "cart-A")
	require.NoError(t, err)
	require.Equal(t, journey.RunKeyDigest(secret, "cart_id", "cart-A"), d)
}

// Two carts make two start deliveries and may have two active runs; the
// same cart cannot have two. Re-entry looks at the key value's own runs.
func TestKeyedRunsOnePerKeyValue(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	jv, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned", Key: "cart_id"}))
	require.NoError(t, err)

	_, _, pending, err := s.TrackEvent(ctx, storage.Event{ID: "ab-A", ContactID: c.ID, Name: "cart.abandoned", Properties: map[string]any{"cart_id": "A"}})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	// The second cart's event has a start of its own, after a signal for
	// the run the first start may make (which, being cart A's, it will not
	// reach: TestDeliveryTargetsOfKeyedRuns).
	_, _, pending, err = s.TrackEvent(ctx, storage.Event{ID: "ab-B", ContactID: c.ID, Name: "cart.abandoned", Properties: map[string]any{"cart_id": "B"}})
	require.NoError(t, err)
	require.Equal(t, 2, pending)
	require.Equal(t, []string{"start:cart", "signal", "start:cart"}, pendingKinds(t, s, c.ID))

	keyA, err := s.RunKeyDigest(ctx, "cart_id", "A")
	require.NoError(t, err)
	keyB, err := s.RunKeyDigest(ctx, "cart_id", "B")
	require.NoError(t, err)
	run := func(id, key string) storage.Enrollment {
		return storage.Enrollment{ID: id, ContactID: c.ID, JourneyID: jv.JourneyID, Version: jv.Version,
			WorkflowID: "journey/cart/contact/" + c.ID + "/key/" + key, RunKey: key}
	}
	require.NoError(t, s.RecordEnrollment(ctx, run("e_A", keyA)))
	require.NoError(t, s.RecordEnrollment(ctx, run("e_B", keyB)), "a second cart while the first runs")
	require.ErrorIs(t, s.RecordEnrollment(ctx, run("e_A2", keyA)), storage.ErrAlreadyActive, "the same cart twice")
	// The activity that writes a missing row keeps the rule too.
	require.ErrorIs(t, s.EnsureEnrollment(ctx, run("e_A3", keyA)), storage.ErrAlreadyActive)

	runs, err := s.ActiveRuns(ctx, c.ID, jv.JourneyID)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	require.ElementsMatch(t, []string{keyA, keyB}, []string{runs[0].RunKey, runs[1].RunKey})
	a, err := s.ActiveRun(ctx, c.ID, jv.JourneyID, keyA)
	require.NoError(t, err)
	require.Equal(t, "e_A", a.ID)
	_, err = s.ActiveEnrollment(ctx, c.ID, jv.JourneyID)
	require.ErrorIs(t, err, storage.ErrNotFound, "no unkeyed run")

	// Once A ended, its last run is A's, whatever B does.
	require.NoError(t, s.FinishEnrollment(ctx, "e_A", model.RunConverted, "goal: cart.recovered", time.Now()))
	last, err := s.LastRun(ctx, c.ID, jv.JourneyID, keyA)
	require.NoError(t, err)
	require.Equal(t, "e_A", last.ID)
	require.Equal(t, model.RunConverted, last.Status)
	last, err = s.LastRun(ctx, c.ID, jv.JourneyID, keyB)
	require.NoError(t, err)
	require.Equal(t, "e_B", last.ID)
	require.NoError(t, s.RecordEnrollment(ctx, run("e_A4", keyA)), "A may run again once its run ended")
}

// An event carrying the key property goes only to the run of its value;
// one without it, and a consent change, go to every run.
func TestDeliveryTargetsOfKeyedRuns(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	jv, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned", Key: "cart_id"}))
	require.NoError(t, err)
	other := publish(t, s, "welcome")
	past := time.Now().Add(-time.Hour)
	for _, e := range []storage.Enrollment{
		{ID: "e_welcome", JourneyID: other.JourneyID, Version: other.Version, WorkflowID: "wf-welcome"},
		{ID: "e_A", JourneyID: jv.JourneyID, Version: jv.Version, WorkflowID: "wf-A", RunKey: mustDigest(t, s, "A")},
		{ID: "e_B", JourneyID: jv.JourneyID, Version: jv.Version, WorkflowID: "wf-B", RunKey: mustDigest(t, s, "B")},
	} {
		e.ContactID, e.StartedAt = c.ID, past
		require.NoError(t, s.RecordEnrollment(ctx, e))
	}

	targets := func(ev storage.Event) []string {
		t.Helper()
		_, _, _, err := s.TrackEvent(ctx, ev)
		require.NoError(t, err)
		claim, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, claim, 1)
		ds := append([]storage.Delivery{claim[0]}, claim[0].Batched...)
		all, err := s.BatchTargets(ctx, ds)
		require.NoError(t, err)
		var ids []string
		for _, e := range all[0] {
			ids = append(ids, e.ID)
		}
		for _, d := range ds {
			_, err = s.DeliveryDone(ctx, d.ID, token, "signalled", "")
			if err != nil {
				break // finished with its head
			}
		}
		return ids
	}
	require.ElementsMatch(t, []string{"e_welcome", "e_A"}, targets(storage.Event{ID: "rec-A", ContactID: c.ID, Name: "cart.recovered", Properties: map[string]any{"cart_id": "A"}}))
	require.ElementsMatch(t, []string{"e_welcome", "e_B"}, targets(storage.Event{ID: "open-B", ContactID: c.ID, Name: "email.opened", Properties: map[string]any{"cart_id": " B "}}))
	require.ElementsMatch(t, []string{"e_welcome"}, targets(storage.Event{ID: "rec-C", ContactID: c.ID, Name: "cart.recovered", Properties: map[string]any{"cart_id": "C"}}))
	require.ElementsMatch(t, []string{"e_welcome", "e_A", "e_B"}, targets(storage.Event{ID: "buy", ContactID: c.ID, Name: "purchase", Properties: map[string]any{"order_id": "o-1"}}))

	// A click on cart A's reminder (the webhook names the message and its
	// journey) is cart A's run's; one on another journey's message reaches
	// every run.
	mA := message(c, "enrollment/e_A/reminder/1")
	mA.JourneyID = jv.JourneyID
	sentA := reserve(t, s, mA).Message
	mW := message(c, "enrollment/e_welcome/hello/1")
	sentW := reserve(t, s, mW).Message
	require.ElementsMatch(t, []string{"e_welcome", "e_A"}, targets(storage.Event{ID: "click-A", ContactID: c.ID, Name: "email.clicked",
		Properties: map[string]any{"message_id": sentA.ID, "journey_id": jv.JourneyID, "step_id": "reminder"}}))
	require.ElementsMatch(t, []string{"e_welcome", "e_A", "e_B"}, targets(storage.Event{ID: "click-W", ContactID: c.ID, Name: "email.clicked",
		Properties: map[string]any{"message_id": sentW.ID, "journey_id": "welcome", "step_id": "hello"}}))

	_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentRevoked, "api", time.Now())
	require.NoError(t, err)
	claim, _, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claim, 1)
	require.Equal(t, storage.DeliveryConsent, claim[0].Kind)
	consent, err := s.DeliveryTargets(ctx, claim[0])
	require.NoError(t, err)
	require.Len(t, consent, 3, "an opt-out reaches every run")
}

func mustDigest(t *testing.T, s *storage.Store, value string) string {
	t.Helper()
	d, err := s.RunKeyDigest(context.Background(), "cart_id", value)
	require.NoError(t, err)
	return d
}
