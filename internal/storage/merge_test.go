package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func consentOf(t *testing.T, s *storage.Store, contactID string, ch journey.Channel, sub string) model.ConsentStatus {
	t.Helper()
	all, err := s.AllConsents(context.Background(), contactID)
	require.NoError(t, err)
	for _, c := range all {
		if c.Channel == ch && c.Subscription == sub {
			return c.Status
		}
	}
	return model.ConsentNone
}

func TestMergeContacts_FoldsTheAbsorbedContactIntoTheSurvivor(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	n := contactSeq.Add(1)
	sv, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: fmt.Sprintf("web-%d", n), Email: fmt.Sprintf("s%d@example.com", n),
		Attributes: map[string]any{"first_name": "Sam", "plan": "pro"}})
	require.NoError(t, err)
	abEmail, abPhone, abExt := fmt.Sprintf("a%d@example.com", n), fmt.Sprintf("+1415556%04d", n%10000), fmt.Sprintf("pos-%d", n)
	ab, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: abExt, Email: abEmail, Phone: abPhone, TimeZone: "Europe/Paris",
		Attributes: map[string]any{"first_name": "Samantha", "city": "Lyon"}})
	require.NoError(t, err)

	for _, c := range []storage.ConsentChange{
		{ContactID: sv.ID, Channel: journey.ChannelEmail, Status: model.ConsentGranted},
		{ContactID: ab.ID, Channel: journey.ChannelEmail, Status: model.ConsentGranted},
		{ContactID: sv.ID, Channel: journey.ChannelEmail, Subscription: "newsletter", Status: model.ConsentGranted},
		{ContactID: ab.ID, Channel: journey.ChannelEmail, Subscription: "newsletter", Status: model.ConsentRevoked},
		{ContactID: ab.ID, Channel: journey.ChannelSMS, Status: model.ConsentGranted},
		{ContactID: sv.ID, Channel: journey.ChannelAds, Status: model.ConsentGranted},
		{ContactID: ab.ID, Channel: journey.ChannelAds, Status: model.ConsentPending},
	} {
		c.Source = "form"
		_, _, err := s.RecordConsentChange(ctx, c)
		require.NoError(t, err)
	}
	_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: "ev-a-" + ab.ID, ContactID: ab.ID, Name: "purchase"})
	require.NoError(t, err)
	week := time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second)
	month := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	for _, sp := range []storage.Suppression{
		{ContactID: sv.ID, Reason: model.SuppressInOpportunity, Source: "crm", ExpiresAt: &week},
		{ContactID: ab.ID, Reason: model.SuppressInOpportunity, Source: "crm", ExpiresAt: &month},
		{ContactID: ab.ID, Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail, Source: "sendgrid"},
	} {
		_, _, err := s.AddSuppression(ctx, sp)
		require.NoError(t, err)
	}
	// The absorbed contact's ledger, an ended run and an active one.
	gate, err := s.Gate(ctx, gateInput(ab, v.JourneyID, "key-"+ab.ID, journey.ChannelSMS), func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelSMS}
	})
	require.NoError(t, err)
	require.True(t, gate.Send())
	done := storage.Enrollment{ID: "en-done-" + ab.ID, ContactID: ab.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-done-" + ab.ID}
	require.NoError(t, s.CreateEnrollment(ctx, done, nil))
	require.NoError(t, s.FinishEnrollment(ctx, done.ID, model.RunCompleted, "", time.Time{}))
	active := storage.Enrollment{ID: "en-active-" + ab.ID, ContactID: ab.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-active-" + ab.ID}
	require.NoError(t, s.CreateEnrollment(ctx, active, nil))
	// The survivor runs the same journey: both active runs can exist.
	svRun := storage.Enrollment{ID: "en-active-" + sv.ID, ContactID: sv.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-active-" + sv.ID}
	require.NoError(t, s.CreateEnrollment(ctx, svRun, nil))

	m, err := s.MergeContacts(ctx, storage.MergeInput{SurvivorID: sv.ID, AbsorbedID: ab.ID})
	require.NoError(t, err)
	require.False(t, m.Already)

	// Identifiers: the survivor keeps its own and takes the phone it lacked.
	require.Equal(t, sv.ExternalID, m.Survivor.ExternalID)
	require.Equal(t, sv.Email, m.Survivor.Email)
	require.Equal(t, abPhone, m.Survivor.Phone)
	require.Equal(t, []contact.IdentifierKind{contact.IdentifierPhone}, m.IdentifiersTaken)
	require.Equal(t, []contact.IdentifierKind{contact.IdentifierEmail, contact.IdentifierExternalID}, m.Aliases)
	// Attributes: the survivor's win, the absorbed contact's fill gaps.
	require.Equal(t, map[string]any{"first_name": "Sam", "plan": "pro", "city": "Lyon"}, m.Survivor.Attributes)
	require.Equal(t, []string{"city"}, m.AttributesAdded)
	require.Equal(t, "Europe/Paris", m.Survivor.TimeZone)

	// The aliases find the survivor, wherever a contact is looked up.
	for _, get := range []func() (storage.Contact, error){
		func() (storage.Contact, error) { return s.ContactByEmail(ctx, abEmail) },
		func() (storage.Contact, error) { return s.ContactByExternalID(ctx, abExt) },
		func() (storage.Contact, error) { return s.ContactByPhone(ctx, abPhone) },
	} {
		c, err := get()
		require.NoError(t, err)
		require.Equal(t, sv.ID, c.ID)
	}
	up, created, err := s.UpsertContact(ctx, storage.ContactInput{Email: abEmail, Attributes: map[string]any{"vip": true}})
	require.NoError(t, err)
	require.False(t, created, "an alias identifies the survivor, not a new contact")
	require.Equal(t, sv.ID, up.ID)
	require.Equal(t, sv.Email, up.Email, "the survivor keeps its own email")
	up, created, err = s.UpsertContact(ctx, storage.ContactInput{ID: ab.ID, ExternalID: abExt})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, sv.ID, up.ID, "the absorbed id identifies the survivor")
	tomb, err := s.Contact(ctx, ab.ID)
	require.NoError(t, err)
	require.Equal(t, sv.ID, tomb.MergedInto)
	require.NotNil(t, tomb.MergedAt)
	require.Empty(t, tomb.Phone, "the phone moved to the survivor")
	require.Equal(t, abEmail, tomb.Email, "kept as an alias")

	// History moved.
	require.Equal(t, storage.MergeCounts{Events: 1, Messages: 1, Decisions: 1, Suppressions: 2, Enrollments: 1}, m.Moved)
	events, err := s.EventsForContact(ctx, sv.ID, 10)
	require.NoError(t, err)
	require.Len(t, events, 1)
	msgs, err := s.MessagesForContact(ctx, sv.ID, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	moved, err := s.Enrollment(ctx, done.ID)
	require.NoError(t, err)
	require.Equal(t, sv.ID, moved.ContactID, "an ended run counts for the survivor's re-entry rules")

	// Suppressions: the union; one both had lasts as long as the longer.
	sups, err := s.Suppressions(ctx, sv.ID)
	require.NoError(t, err)
	active0 := map[model.SuppressionReason]storage.Suppression{}
	lifted := 0
	for _, sp := range sups {
		if sp.LiftedAt == nil {
			active0[sp.Reason] = sp
		} else {
			lifted++
			require.Equal(t, storage.MergeSource+sv.ID, sp.LiftedBy)
		}
	}
	require.Len(t, active0, 2)
	require.Equal(t, month, active0[model.SuppressInOpportunity].ExpiresAt.UTC())
	require.Equal(t, journey.ChannelEmail, active0[model.SuppressHardBounce].Channel)
	require.Equal(t, 1, lifted, "the absorbed copy is kept as history")

	// Consent: the most restrictive, as changes of the survivor's own.
	require.Equal(t, model.ConsentGranted, consentOf(t, s, sv.ID, journey.ChannelEmail, ""), "another address's grant changes nothing")
	require.Equal(t, model.ConsentRevoked, consentOf(t, s, sv.ID, journey.ChannelEmail, "newsletter"))
	require.Equal(t, model.ConsentGranted, consentOf(t, s, sv.ID, journey.ChannelSMS, ""), "the grant came with the phone")
	require.Equal(t, model.ConsentPending, consentOf(t, s, sv.ID, journey.ChannelAds, ""))
	require.Len(t, m.ConsentChanges, 3)
	hist, err := s.ConsentHistory(ctx, sv.ID)
	require.NoError(t, err)
	merges := 0
	for _, e := range hist {
		if e.Source == storage.MergeSource+ab.ID {
			merges++
		}
	}
	require.Equal(t, 3, merges, "each change to the survivor's consent is in its history")

	// Runs: the absorbed contact's active run is told to end (merged)
	// through the outbox; the survivor's carries on.
	require.Equal(t, []string{active.WorkflowID}, m.RunsExiting)
	require.Len(t, m.ExitRequests, 1)
	x, err := s.ExitRequest(ctx, m.ExitRequests[0])
	require.NoError(t, err)
	require.Equal(t, model.ExitMerged, x.Code)
	require.Equal(t, active.ID, x.EnrollmentID)
	var exits, consents int
	require.NoError(t, s.Pool().QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE kind = 'exit' AND contact_id = $1 AND workflow_id = $2 AND exit_request_id = $3),
		       count(*) FILTER (WHERE kind = 'consent' AND contact_id = $4)
		FROM deliveries WHERE done_at IS NULL`, ab.ID, active.WorkflowID, x.ID, sv.ID).Scan(&exits, &consents))
	require.Equal(t, 1, exits)
	require.Equal(t, 2, consents, "channel-level changes (sms, ads) reach the survivor's run")
	require.Equal(t, 3, m.PendingDeliveries)
	still, err := s.Enrollment(ctx, svRun.ID)
	require.NoError(t, err)
	require.Equal(t, model.RunActive, still.Status)

	// Nothing is sent to the absorbed contact while its run ends.
	res, err := s.Gate(ctx, gateInput(tomb, v.JourneyID, "key2-"+ab.ID, journey.ChannelEmail),
		decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
	require.NoError(t, err)
	require.False(t, res.Send())
	require.Equal(t, []string{policy.CodeSuppressedDoNotContact}, res.Decision.ReasonCodes())

	// A retry is answered with the merge; other merges are refused,
	// naming the contact.
	again, err := s.MergeContacts(ctx, storage.MergeInput{SurvivorID: sv.ID, AbsorbedExternalID: abExt})
	require.NoError(t, err)
	require.True(t, again.Already)
	require.Equal(t, m.MergedAt, again.MergedAt)
	other := newContact(t, s)
	var me *storage.MergeError
	for _, tc := range []struct {
		in   storage.MergeInput
		role string
		err  error
	}{
		{storage.MergeInput{SurvivorID: sv.ID, AbsorbedID: sv.ID}, storage.MergeAbsorbed, storage.ErrMergeSelf},
		{storage.MergeInput{SurvivorID: ab.ID, AbsorbedID: other.ID}, storage.MergeSurvivor, storage.ErrMerged},
		{storage.MergeInput{SurvivorID: other.ID, AbsorbedID: ab.ID}, storage.MergeAbsorbed, storage.ErrMerged},
		{storage.MergeInput{SurvivorID: other.ID, AbsorbedID: "c_nobody"}, storage.MergeAbsorbed, storage.ErrNotFound},
		{storage.MergeInput{SurvivorID: "c_nobody", AbsorbedID: other.ID}, storage.MergeSurvivor, storage.ErrNotFound},
		{storage.MergeInput{SurvivorID: other.ID, AbsorbedExternalID: "nobody"}, storage.MergeAbsorbed, storage.ErrNotFound},
	} {
		_, err := s.MergeContacts(ctx, tc.in)
		require.ErrorIs(t, err, tc.err, "%+v", tc.in)
		require.ErrorAs(t, err, &me)
		require.Equal(t, tc.role, me.Role, "%+v", tc.in)
		if errors.Is(err, storage.ErrMerged) {
			require.Equal(t, sv.ID, me.MergedInto)
		}
	}
	erased := newContact(t, s)
	_, _, err = s.EraseContact(ctx, erased.ID)
	require.NoError(t, err)
	_, err = s.MergeContacts(ctx, storage.MergeInput{SurvivorID: other.ID, AbsorbedID: erased.ID})
	require.ErrorIs(t, err, storage.ErrErased)
	require.ErrorAs(t, err, &me)
	require.Equal(t, storage.MergeAbsorbed, me.Role)
}

// Erasing the survivor erases the person wholly: what was merged into it,
// and the merged contact's own row with the aliases it held.
func TestMergeContacts_ErasingTheSurvivorErasesTheAbsorbed(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	jane, janeToo := newPerson("survivor"), newPerson("absorbed")
	sv, svRun := seedPerson(t, s, jane, v)
	ab, abRun := seedPerson(t, s, janeToo, v)

	_, err := s.MergeContacts(ctx, storage.MergeInput{SurvivorID: sv.ID, AbsorbedID: ab.ID})
	require.NoError(t, err)
	_, _, err = s.EraseContact(ctx, ab.ID)
	require.ErrorIs(t, err, storage.ErrMerged, "the merged contact alone is not erased: the survivor holds its data")

	e, created, err := s.EraseContact(ctx, sv.ID)
	require.NoError(t, err)
	require.True(t, created)
	require.ElementsMatch(t, []string{svRun, abRun}, e.ActiveRuns, "both contacts' runs are told to end")
	after, err := storagetest.FindText(ctx, s.Pool(), append(jane.needles(), janeToo.needles()...)...)
	require.NoError(t, err)
	require.Empty(t, after, storagetest.DescribeHits(after))
	var left int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM contacts WHERE id IN ($1, $2)`, sv.ID, ab.ID).Scan(&left))
	require.Zero(t, left)
	abErasure, err := s.ContactErasure(ctx, ab.ID)
	require.NoError(t, err, "the merged contact's id answers erased too")
	require.NotZero(t, abErasure.ProofsKept, "its opt-outs are kept under its aliases")
	// Its opt-out comes back with its alias identifier.
	back, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: janeToo.externalID})
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, consentOf(t, s, back.ID, journey.ChannelSMS, ""))
}

// A merge racing the send gate, consent changes, events and exit requests
// on the same contacts finishes, and so does everything else: no deadlock
// (PostgreSQL would abort one side with 40P01), whichever contact has the
// lower id.
func TestMergeContacts_ConcurrentWithTheGateDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	const pairs = 12
	type pair struct {
		sv, ab storage.Contact
		run    storage.Enrollment
	}
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i].sv, ps[i].ab = newEmailContact(t, s), newEmailContact(t, s)
		ps[i].run = storage.Enrollment{ID: fmt.Sprintf("en-%d-%s", i, ps[i].ab.ID), ContactID: ps[i].ab.ID, JourneyID: v.JourneyID,
			Version: v.Version, WorkflowID: "wf-" + ps[i].ab.ID}
		require.NoError(t, s.CreateEnrollment(ctx, ps[i].run, nil))
	}
	deadlock := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "40P01"
	}
	const jobs = 8
	errs := make([]error, pairs*jobs)
	concurrently(pairs*jobs, func(i int) {
		p, job := ps[i/jobs], i%jobs
		allow := func(storage.GateState) policy.Decision {
			return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail}
		}
		var err error
		switch job {
		case 0:
			_, err = s.MergeContacts(ctx, storage.MergeInput{SurvivorID: p.sv.ID, AbsorbedID: p.ab.ID})
		case 1:
			_, err = s.Gate(ctx, gateInput(p.ab, "j", fmt.Sprintf("k-ab-%d", i), journey.ChannelEmail), allow)
		case 2:
			_, err = s.Gate(ctx, gateInput(p.sv, "j", fmt.Sprintf("k-sv-%d", i), journey.ChannelEmail), allow)
		case 3:
			_, _, _, err = s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: p.ab.ID, Channel: journey.ChannelEmail,
				Status: model.ConsentRevoked, Source: "unsubscribe"})
		case 4:
			_, _, _, err = s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: p.sv.ID, Channel: journey.ChannelSMS,
				Status: model.ConsentGranted, Source: "form"})
		case 5:
			_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: fmt.Sprintf("ev-%d-%s", i, p.ab.ID), ContactID: p.ab.ID, Name: "page.viewed"})
		case 6:
			_, _, err = s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: p.run.ID, ContactID: p.ab.ID, Reason: "asked", RequestedBy: "api"})
		case 7:
			_, _, _, err = s.TrackEvent(ctx, storage.Event{ID: fmt.Sprintf("ev-%d-%s", i, p.sv.ID), ContactID: p.sv.ID, Name: "page.viewed"})
		}
		errs[i] = err
	})
	for i, err := range errs {
		require.False(t, deadlock(err), "job %d of pair %d: %v", i%jobs, i/jobs, err)
		require.NoError(t, err, "job %d of pair %d", i%jobs, i/jobs)
	}
	for _, p := range ps {
		c, err := s.Contact(ctx, p.ab.ID)
		require.NoError(t, err)
		require.Equal(t, p.sv.ID, c.MergedInto)
	}
}

// Both contacts within the attribute limits, but not together: nothing is
// merged, and the refusal names the attributes.
func TestMergeContacts_AttributeLimitsRefuseTheWholeMerge(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	attrs := func(prefix string, n int) map[string]any {
		out := map[string]any{}
		for i := range n {
			out[fmt.Sprintf("%s%d", prefix, i)] = i
		}
		return out
	}
	sv, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: fmt.Sprintf("lim-s-%d", contactSeq.Add(1)), Attributes: attrs("s", contact.MaxAttributes-10)})
	require.NoError(t, err)
	ab, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: fmt.Sprintf("lim-a-%d", contactSeq.Add(1)), Attributes: attrs("a", 20)})
	require.NoError(t, err)
	_, err = s.MergeContacts(ctx, storage.MergeInput{SurvivorID: sv.ID, AbsorbedID: ab.ID})
	var ce *contact.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "attributes", ce.Field)
	after, err := s.Contact(ctx, ab.ID)
	require.NoError(t, err)
	require.Empty(t, after.MergedInto, "rolled back")
	svAfter, err := s.Contact(ctx, sv.ID)
	require.NoError(t, err)
	require.Len(t, svAfter.Attributes, contact.MaxAttributes-10)
}

// Merges racing erasures of either contact and the gate: no deadlock,
// each side either goes first or is refused (erased, or merged: erase the
// survivor), and in every order both people are gone at the end.
func TestMergeContacts_ConcurrentWithErasure(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	const pairs, jobs = 12, 4
	type pair struct{ sv, ab storage.Contact }
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i] = pair{newEmailContact(t, s), newEmailContact(t, s)}
	}
	errs := make([]error, pairs*jobs)
	concurrently(pairs*jobs, func(i int) {
		p := ps[i/jobs]
		switch i % jobs {
		case 0:
			_, errs[i] = s.MergeContacts(ctx, storage.MergeInput{SurvivorID: p.sv.ID, AbsorbedID: p.ab.ID})
		case 1:
			_, _, errs[i] = s.EraseContact(ctx, p.sv.ID)
		case 2:
			_, _, errs[i] = s.EraseContact(ctx, p.ab.ID)
		case 3:
			_, errs[i] = s.Gate(ctx, gateInput(p.ab, "j", fmt.Sprintf("k-%d", i), journey.ChannelEmail), func(storage.GateState) policy.Decision {
				return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail}
			})
		}
	})
	for i, err := range errs {
		var pe *pgconn.PgError
		require.False(t, errors.As(err, &pe) && pe.Code == "40P01", "job %d of pair %d: %v", i%jobs, i/jobs, err)
		if err != nil && !errors.Is(err, storage.ErrErased) && !errors.Is(err, storage.ErrMerged) && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("job %d of pair %d: %v", i%jobs, i/jobs, err)
		}
	}
	for _, p := range ps {
		var left int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM contacts WHERE id IN ($1, $2)`, p.sv.ID, p.ab.ID).Scan(&left))
		require.Zero(t, left)
	}
}
