package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// pendingKinds lists the kinds of the contact's pending deliveries, in order.
func pendingKinds(t *testing.T, s *storage.Store, contactID string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(),
		`SELECT kind || COALESCE(NULLIF(':' || journey_id, ':'), '') FROM deliveries WHERE contact_id = $1 AND done_at IS NULL ORDER BY id`, contactID)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		out = append(out, k)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestTrackEventStoresItsDeliveries(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)

	// No run and no trigger: nothing to deliver.
	_, inserted, pending, err := s.TrackEvent(ctx, storage.Event{ID: "v-1", ContactID: c.ID, Name: "page.viewed"})
	require.NoError(t, err)
	require.True(t, inserted)
	require.Zero(t, pending)

	// A trigger: one start, for the journey's latest version.
	ev, inserted, pending, err := s.TrackEvent(ctx, storage.Event{ID: "cart-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.NoError(t, err)
	require.True(t, inserted)
	require.Equal(t, 1, pending)
	require.Equal(t, []string{"start:cart"}, pendingKinds(t, s, c.ID))

	// A retry adds nothing and reports what is still pending.
	again, inserted, pending, err := s.TrackEvent(ctx, storage.Event{ID: "cart-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.NoError(t, err)
	require.False(t, inserted)
	require.Equal(t, 1, pending)
	require.Equal(t, ev, again)

	// The next event follows the pending start: the run it makes may need it.
	_, _, pending, err = s.TrackEvent(ctx, storage.Event{ID: "buy-1", ContactID: c.ID, Name: "purchase"})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	require.Equal(t, []string{"start:cart", "signal"}, pendingKinds(t, s, c.ID))

	// A conflicting id stores neither the event nor deliveries.
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "buy-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.ErrorIs(t, err, storage.ErrEventConflict)
	require.Equal(t, []string{"start:cart", "signal"}, pendingKinds(t, s, c.ID))
}

func TestClaimDeliveriesKeepsEachContactInOrder(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	alice, bob := newContact(t, s), newContact(t, s)
	for _, ev := range []storage.Event{
		{ID: "a-1", ContactID: alice.ID, Name: "cart.abandoned"},
		{ID: "a-2", ContactID: alice.ID, Name: "purchase"},
		{ID: "b-1", ContactID: bob.ID, Name: "cart.abandoned"},
	} {
		_, _, _, err := s.TrackEvent(ctx, ev)
		require.NoError(t, err)
	}

	// One dispatcher takes the head of each contact, never two of one contact.
	first, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, first, 2)
	require.Equal(t, "a-1", first[0].Event.ID)
	require.Equal(t, storage.DeliveryStart, first[0].Kind)
	require.Equal(t, "cart", first[0].JourneyID)
	require.Equal(t, "b-1", first[1].Event.ID)

	// Another dispatcher finds nothing while those heads are claimed:
	// alice's second delivery waits for her first.
	second, _, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Empty(t, second)

	_, err = s.DeliveryDone(ctx, first[0].ID, token, "enrolled", "e_x")
	require.NoError(t, err)
	require.NoError(t, s.DeliveryFailed(ctx, first[1].ID, token, "temporal unavailable", time.Hour))
	// An outcome is recorded once.
	_, err = s.DeliveryDone(ctx, first[0].ID, token, "enrolled", "e_x")
	require.ErrorIs(t, err, storage.ErrClaimLost)

	// Alice's next delivery is due; bob's failed one waits for its retry.
	third, _, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, third, 1)
	require.Equal(t, "a-2", third[0].Event.ID)
	require.Equal(t, storage.DeliverySignal, third[0].Kind)

	st, err := s.DeliveryStats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, st.Pending)
	require.EqualValues(t, 1, st.Failing)
	require.EqualValues(t, 1, st.DoneLastHour)
	require.NotNil(t, st.OldestPendingAt)
	require.Len(t, st.RecentFailures, 1)
	require.Equal(t, "b-1", st.RecentFailures[0].Event.ID)
	require.Equal(t, "temporal unavailable", st.RecentFailures[0].LastError)
	require.Equal(t, 1, st.RecentFailures[0].Attempts)
	n, err := s.PendingDeliveries(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

func TestDeliveryTargets(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	cart, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	before, later := publish(t, s, "before"), publish(t, s, "later")
	enroll := func(jv storage.JourneyVersion, at time.Time) storage.Enrollment {
		e := storage.Enrollment{ID: "e_" + jv.JourneyID, ContactID: c.ID, JourneyID: jv.JourneyID, Version: jv.Version,
			WorkflowID: "wf-" + jv.JourneyID, Status: model.RunActive, StartedAt: at}
		require.NoError(t, s.CreateEnrollment(ctx, e, nil))
		return e
	}
	enroll(before, time.Now().Add(-time.Hour))

	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "cart-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.NoError(t, err)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "buy-1", ContactID: c.ID, Name: "purchase"})
	require.NoError(t, err)

	// The signal for cart-1 goes first, then its start.
	claim, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claim, 1)
	require.Equal(t, storage.DeliverySignal, claim[0].Kind)
	_, err = s.DeliveryDone(ctx, claim[0].ID, token, "signalled 1", "")
	require.NoError(t, err)

	claim, token, err = s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.DeliveryStart, claim[0].Kind)
	started := enroll(cart, time.Now().Add(time.Hour))
	_, err = s.DeliveryDone(ctx, claim[0].ID, token, "enrolled", started.ID)
	require.NoError(t, err)
	// A run started after the events by other means.
	enroll(later, time.Now().Add(time.Hour))

	claim, _, err = s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claim, 1)
	require.Equal(t, "buy-1", claim[0].Event.ID)
	targets, err := s.DeliveryTargets(ctx, claim[0])
	require.NoError(t, err)
	var ids []string
	for _, e := range targets {
		ids = append(ids, e.JourneyID)
	}
	require.Equal(t, []string{"before", "cart"}, ids)
}

// A dispatcher that died leaves its claim to expire; another takes the
// delivery over, and the first one's late outcome is refused.
func TestExpiredClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	c := newContact(t, s)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "cart-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.NoError(t, err)

	dead, deadToken, err := s.ClaimDeliveries(ctx, 10, -time.Second) // a lease already over
	require.NoError(t, err)
	require.Len(t, dead, 1)
	live, liveToken, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, live, 1)
	require.Equal(t, dead[0].ID, live[0].ID)

	require.ErrorIs(t, s.DeliveryFailed(ctx, dead[0].ID, deadToken, "late", time.Hour), storage.ErrClaimLost)
	_, err = s.DeliveryDone(ctx, live[0].ID, liveToken, "enrolled", "e_1")
	require.NoError(t, err)
	n, err := s.PendingDeliveries(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

// Erasing a contact deletes its pending deliveries with its events, even one
// a dispatcher holds: the late outcome is refused, nothing is left to retry.
func TestErasureTakesPendingDeliveries(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	c := newContact(t, s)
	for _, id := range []string{"cart-1", "cart-2"} {
		_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: id, ContactID: c.ID, Name: "cart.abandoned"})
		require.NoError(t, err)
	}
	held, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, held, 1)

	_, _, err = s.EraseContact(ctx, c.ID)
	require.NoError(t, err)
	n, err := s.PendingDeliveries(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = s.DeliveryDone(ctx, held[0].ID, token, "enrolled", "e_1")
	require.ErrorIs(t, err, storage.ErrClaimLost)
}

// A provider event's behaviour event is stored with its deliveries, as
// TrackEvent stores them; a redelivered provider event adds none, and a
// provider event that fails stores neither.
func TestApplyProviderEventStoresItsDeliveries(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	_, err := s.PublishJourney(ctx, spec("replied", journey.Trigger{Type: journey.TriggerEvent, Event: "sms.replied"}))
	require.NoError(t, err)

	pe := storage.ProviderEvent{Provider: "twilio", EventID: "SM-1", Kind: "sms.inbound", ContactID: c.ID}
	fx := storage.ProviderEffects{Engaged: true, Event: &storage.Event{ID: "twilio:SM-1", Name: "sms.replied"}}
	res, err := s.ApplyProviderEvent(ctx, pe, fx)
	require.NoError(t, err)
	require.True(t, res.New)
	require.Equal(t, []string{"start:replied"}, pendingKinds(t, s, c.ID))

	res, err = s.ApplyProviderEvent(ctx, pe, fx)
	require.NoError(t, err)
	require.False(t, res.New)
	require.Equal(t, []string{"start:replied"}, pendingKinds(t, s, c.ID))

	// The next one follows the pending start, which may become a run.
	pe2 := storage.ProviderEvent{Provider: "twilio", EventID: "SM-2", Kind: "sms.inbound", ContactID: c.ID}
	_, err = s.ApplyProviderEvent(ctx, pe2, storage.ProviderEffects{Event: &storage.Event{ID: "twilio:SM-2", Name: "page.viewed"}})
	require.NoError(t, err)
	require.Equal(t, []string{"start:replied", "signal"}, pendingKinds(t, s, c.ID))

	// A conflicting event id fails the whole provider event: no row of it.
	pe3 := storage.ProviderEvent{Provider: "twilio", EventID: "SM-3", Kind: "sms.inbound", ContactID: c.ID}
	_, err = s.ApplyProviderEvent(ctx, pe3, storage.ProviderEffects{Event: &storage.Event{ID: "twilio:SM-1", Name: "other"}})
	require.ErrorIs(t, err, storage.ErrEventConflict)
	recorded, err := s.ProviderEventRecorded(ctx, "twilio", "SM-3")
	require.NoError(t, err)
	require.False(t, recorded)
	require.Equal(t, []string{"start:replied", "signal"}, pendingKinds(t, s, c.ID))
}

// A consent change is stored with a 'consent' delivery in its own
// transaction when the contact has a run (or a start pending), carrying the
// consent in force; a subscription-type change needs none. An exit request
// for an active run is stored with an 'exit' delivery. All of them wait
// behind the contact's earlier deliveries, whatever their kind.
func TestConsentAndExitDeliveriesFollowTheContactsOrder(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c, idle := newContact(t, s), newContact(t, s)
	v := publish(t, s, "welcome")

	// No run, no start pending: the gate reads consent, nothing to tell.
	_, _, pending, err := s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: idle.ID, Channel: journey.ChannelEmail,
		Status: model.ConsentRevoked, Source: "api"})
	require.NoError(t, err)
	require.Zero(t, pending)
	require.Empty(t, pendingKinds(t, s, idle.ID))

	run := storage.Enrollment{ID: "e_w", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-w", Status: model.RunActive}
	require.NoError(t, s.CreateEnrollment(ctx, run, nil))
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "ev-1", ContactID: c.ID, Name: "page.viewed"})
	require.NoError(t, err)
	// A grant dated later is in force; an opt-out dated earlier, recorded
	// after it, tells the runs the consent in force (granted).
	_, _, pending, err = s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
		Status: model.ConsentGranted, Source: "api", OccurredAt: time.Now().Add(-time.Minute)})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	late, _, pending, err := s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
		Status: model.ConsentRevoked, Source: "api", OccurredAt: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	_, _, pending, err = s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
		Subscription: "newsletter", Status: model.ConsentRevoked, Source: "api"})
	require.NoError(t, err)
	require.Zero(t, pending, "a subscription-type change is read by the gate, not tracked by runs")
	x, pending, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: run.ID, ContactID: c.ID, Reason: "asked to stop", RequestedBy: "api"})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	require.Equal(t, []string{"signal", "consent", "consent", "exit"}, pendingKinds(t, s, c.ID))

	st, err := s.DeliveryStats(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"signal": 1, "start": 0, "consent": 2, "exit": 1, "enroll": 0}, st.PendingByKind)

	// One at a time, in the order they were stored.
	var got []storage.Delivery
	for range 4 {
		claim, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, claim, 1, "one delivery of the contact at a time")
		got = append(got, claim[0])
		_, err = s.DeliveryDone(ctx, claim[0].ID, token, "signalled 1", "")
		require.NoError(t, err)
	}
	require.Equal(t, "ev-1", got[0].Event.ID)
	for _, d := range got {
		require.Equal(t, c.ID, d.ContactID)
	}
	require.Equal(t, storage.DeliveryConsent, got[1].Kind)
	require.Equal(t, model.ConsentGranted, got[1].ConsentStatus)
	require.Equal(t, storage.DeliveryConsent, got[2].Kind)
	require.Equal(t, journey.ChannelEmail, got[2].Channel)
	require.Equal(t, model.ConsentGranted, got[2].ConsentStatus, "the consent in force, not the late change's own status")
	require.Equal(t, late.ID, got[2].ConsentEventID)
	require.Zero(t, got[2].Event, "no event")
	require.Equal(t, storage.DeliveryExit, got[3].Kind)
	require.Equal(t, x.ID, got[3].ExitRequestID)
	require.Equal(t, run.WorkflowID, got[3].WorkflowID)

	// A consent delivery reaches the runs that were there, as a signal does.
	targets, err := s.DeliveryTargets(ctx, got[2])
	require.NoError(t, err)
	require.Len(t, targets, 1)
	require.Equal(t, run.ID, targets[0].ID)

	// An exit request for a run that has ended stores no delivery.
	require.NoError(t, s.EndEnrollment(ctx, run.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: x.ID}))
	_, pending, err = s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: run.ID, ContactID: c.ID, Reason: "again", RequestedBy: "api"})
	require.NoError(t, err)
	require.Zero(t, pending)
}

// A consent change waits for a pending start that may become a run, and
// reaches the run it made.
func TestConsentDeliveryFollowsAPendingStart(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	cart, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "cart-1", ContactID: c.ID, Name: "cart.abandoned"})
	require.NoError(t, err)
	_, _, pending, err := s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelSMS,
		Status: model.ConsentRevoked, Source: "sms:STOP"})
	require.NoError(t, err)
	require.Equal(t, 1, pending)
	require.Equal(t, []string{"start:cart", "consent"}, pendingKinds(t, s, c.ID))

	claim, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claim, 1)
	started := storage.Enrollment{ID: "e_cart", ContactID: c.ID, JourneyID: cart.JourneyID, Version: cart.Version, WorkflowID: "wf-cart",
		Status: model.RunActive, StartedAt: time.Now().Add(time.Hour)}
	require.NoError(t, s.CreateEnrollment(ctx, started, nil))
	_, err = s.DeliveryDone(ctx, claim[0].ID, token, "enrolled", started.ID)
	require.NoError(t, err)

	claim, _, err = s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, claim, 1)
	require.Equal(t, storage.DeliveryConsent, claim[0].Kind)
	targets, err := s.DeliveryTargets(ctx, claim[0])
	require.NoError(t, err)
	require.Len(t, targets, 1)
	require.Equal(t, started.ID, targets[0].ID)
}

// The CHECK constraints of migrations 00007 and 00024 keep each kind's columns
// coherent: a row of one kind cannot carry another's, nor lack its own.
func TestDeliveryKindsAreCoherent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	v := publish(t, s, "welcome")
	ce, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "api", time.Now())
	require.NoError(t, err)
	_, _, err = s.InsertEvent(ctx, storage.Event{ID: "ev-1", ContactID: c.ID, Name: "x"})
	require.NoError(t, err)
	run := storage.Enrollment{ID: "e_w", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-w", Status: model.RunActive}
	require.NoError(t, s.CreateEnrollment(ctx, run, nil))
	x, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: run.ID, ContactID: c.ID, Reason: "r", RequestedBy: "api"})
	require.NoError(t, err)

	insert := func(kind string, eventID any, channel, status any, consentEvent any, exitRequest any, workflowID string) error {
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO deliveries (contact_id, kind, event_id, channel, consent_status, consent_event_id, exit_request_id, workflow_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, kind, eventID, channel, status, consentEvent, exitRequest, workflowID)
		return err
	}
	insertEnroll := func(journeyID string, version int, enrollmentID string, eventID any) error {
		_, err := s.Pool().Exec(ctx, `
			INSERT INTO deliveries (contact_id, kind, journey_id, journey_version, enrollment_id, event_id)
			VALUES ($1, 'enroll', $2, $3, $4, $5)`, c.ID, journeyID, version, enrollmentID, eventID)
		return err
	}
	insertSignalWithJourney := func(journeyID string) error {
		_, err := s.Pool().Exec(ctx, `INSERT INTO deliveries (contact_id, kind, event_id, journey_id) VALUES ($1, 'signal', 'ev-1', $2)`, c.ID, journeyID)
		return err
	}
	for name, tc := range map[string]struct {
		ok  bool
		err error
	}{
		"signal":                    {true, insert("signal", "ev-1", nil, nil, nil, nil, "")},
		"signal without its event":  {false, insert("signal", nil, nil, nil, nil, nil, "")},
		"signal with a consent":     {false, insert("signal", "ev-1", "email", "granted", ce.ID, nil, "")},
		"consent":                   {true, insert("consent", nil, "email", "revoked", ce.ID, nil, "")},
		"consent without status":    {false, insert("consent", nil, "email", nil, ce.ID, nil, "")},
		"consent with an event":     {false, insert("consent", "ev-1", "email", "revoked", ce.ID, nil, "")},
		"consent with a workflow":   {false, insert("consent", nil, "email", "revoked", ce.ID, nil, "wf-w")},
		"consent, unknown status":   {false, insert("consent", nil, "email", "none", ce.ID, nil, "")},
		"exit":                      {true, insert("exit", nil, nil, nil, nil, x.ID, "wf-w")},
		"exit without workflow":     {false, insert("exit", nil, nil, nil, nil, x.ID, "")},
		"exit with a channel":       {false, insert("exit", nil, "email", nil, nil, x.ID, "wf-w")},
		"unknown kind":              {false, insert("erase", nil, nil, nil, nil, nil, "")},
		"enroll":                    {true, insertEnroll(v.JourneyID, v.Version, run.ID, nil)},
		"enroll without enrollment": {false, insertEnroll(v.JourneyID, v.Version, "", nil)},
		"enroll without journey":    {false, insertEnroll("", 0, run.ID, nil)},
		"enroll with an event":      {false, insertEnroll(v.JourneyID, v.Version, run.ID, "ev-1")},
		"signal with a journey":     {false, insertSignalWithJourney(v.JourneyID)},
	} {
		if tc.ok {
			require.NoError(t, tc.err, name)
		} else {
			require.Error(t, tc.err, name)
		}
	}
}

// A contact's consecutive 'signal' deliveries are claimed with their head,
// up to MaxSignalBatch, and never across a delivery of another kind; a
// batch is held and finished as one, and holding it is not a failure.
func TestClaimDeliveriesBatchesConsecutiveSignals(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	c := newContact(t, s)
	track := func(id, name string) {
		t.Helper()
		_, _, _, err := s.TrackEvent(ctx, storage.Event{ID: id, ContactID: c.ID, Name: name})
		require.NoError(t, err)
	}
	track("a-1", "cart.abandoned") // a start; the signals below follow it
	track("a-2", "page.viewed")
	track("a-3", "page.viewed")
	track("a-4", "cart.abandoned") // a signal, then a start
	track("a-5", "page.viewed")
	require.Equal(t, []string{"start:cart", "signal", "signal", "signal", "start:cart", "signal"}, pendingKinds(t, s, c.ID))
	ids := func(d storage.Delivery) []string {
		out := []string{d.Event.ID}
		for _, b := range d.Batched {
			out = append(out, b.Event.ID)
		}
		return out
	}
	claimOne := func() (storage.Delivery, string) {
		t.Helper()
		claim, token, err := s.ClaimDeliveries(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, claim, 1)
		return claim[0], token
	}

	start, token := claimOne()
	require.Equal(t, []string{"a-1"}, ids(start), "a start is claimed alone")
	_, err = s.DeliveryDone(ctx, start.ID, token, "enrolled", "e_1")
	require.NoError(t, err)

	batch, token := claimOne()
	require.Equal(t, []string{"a-2", "a-3", "a-4"}, ids(batch), "the signals up to the next start")
	require.NoError(t, s.DeliveryHeld(ctx, batch.ID, token, time.Hour))
	none, _, err := s.ClaimDeliveries(ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Empty(t, none, "held until its retry time")
	st, err := s.DeliveryStats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Failing, "held is not failing")
	_, err = s.Pool().Exec(ctx, `UPDATE deliveries SET next_attempt_at = now() WHERE contact_id = $1`, c.ID)
	require.NoError(t, err)

	batch, token = claimOne()
	require.Equal(t, []string{"a-2", "a-3", "a-4"}, ids(batch))
	require.Zero(t, batch.Attempts, "a hold is not an attempt")
	lags, err := s.DeliveryDone(ctx, batch.ID, token, "signalled 1", "")
	require.NoError(t, err)
	require.Len(t, lags, 3, "the batch is done as one")
	require.Equal(t, []string{"start:cart", "signal"}, pendingKinds(t, s, c.ID))

	start, token = claimOne()
	require.Equal(t, []string{"a-4"}, ids(start))
	require.NoError(t, s.DeliveryFailed(ctx, start.ID, token, "temporal unavailable", -time.Second))
	_, err = s.Pool().Exec(ctx, `UPDATE deliveries SET next_attempt_at = now() WHERE contact_id = $1`, c.ID)
	require.NoError(t, err)
	start, token = claimOne()
	_, err = s.DeliveryDone(ctx, start.ID, token, "not_enrolled already_active", "")
	require.NoError(t, err)

	batch, token = claimOne()
	require.Equal(t, []string{"a-5"}, ids(batch))
	_, err = s.DeliveryDone(ctx, batch.ID, token, "signalled 0", "")
	require.NoError(t, err)

	// A flood behind a pending start: at most MaxSignalBatch at a time, oldest first.
	track("f-start", "cart.abandoned")
	for i := range storage.MaxSignalBatch + 5 {
		track(fmt.Sprint("f-", i), "page.viewed")
	}
	start, token = claimOne()
	require.Equal(t, []string{"f-start"}, ids(start))
	_, err = s.DeliveryDone(ctx, start.ID, token, "enrolled", "e_2")
	require.NoError(t, err)
	batch, token = claimOne()
	require.Len(t, ids(batch), storage.MaxSignalBatch)
	require.Equal(t, "f-0", batch.Event.ID)
	require.Equal(t, fmt.Sprint("f-", storage.MaxSignalBatch-1), batch.Batched[len(batch.Batched)-1].Event.ID)
	_, err = s.DeliveryDone(ctx, batch.ID, token, "signalled 1", "")
	require.NoError(t, err)
	batch, _ = claimOne()
	require.Len(t, ids(batch), 5)
}
