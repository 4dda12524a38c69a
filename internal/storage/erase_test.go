package storage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// person is one contact's identifying values, scattered over every table
// by seedPerson.
type person struct {
	email, phone, externalID, firstName, attr string
}

func (p person) needles() []string {
	return []string{p.email, p.phone, p.externalID, p.firstName, p.attr}
}

func newPerson(tag string) person {
	n := contactSeq.Add(1)
	return person{
		email:      fmt.Sprintf("jane.%s%d@example.com", tag, n),
		phone:      fmt.Sprintf("+1415555%04d", n%10000),
		externalID: fmt.Sprintf("crm-%s-%d", tag, n),
		firstName:  fmt.Sprintf("Zelda%s%d", tag, n),
		attr:       fmt.Sprintf("fav-colour-%s-%d", tag, n),
	}
}

// seedPerson creates the contact and puts its identifying values wherever
// Tutti stores text about a contact: attributes, consent sources, event
// properties, a suppression note, a support exit request, the ledger and
// the sandbox outbox, a gate decision's trace, provider webhook payloads
// (one tied to the contact, one only to a message). It returns the contact
// and the workflow id of its active run.
func seedPerson(t *testing.T, s *storage.Store, p person, v storage.JourneyVersion) (storage.Contact, string) {
	t.Helper()
	ctx := context.Background()
	c, _, err := s.UpsertContact(ctx, storage.ContactInput{
		ExternalID: p.externalID, Email: p.email, Phone: p.phone,
		Attributes: map[string]any{"first_name": p.firstName, "colour": p.attr},
	})
	require.NoError(t, err)
	for _, ch := range []storage.ConsentChange{
		{Channel: journey.ChannelEmail, Status: model.ConsentGranted, Source: "signup form, typed " + p.email},
		{Channel: journey.ChannelSMS, Status: model.ConsentRevoked, Source: "sms:STOP"},
		{Channel: journey.ChannelEmail, Subscription: "newsletter", Status: model.ConsentRevoked, Source: "preference-center"},
	} {
		ch.ContactID = c.ID
		_, _, err := s.RecordConsentChange(ctx, ch)
		require.NoError(t, err)
	}
	_, _, err = s.InsertEvent(ctx, storage.Event{ID: "ev-" + c.ID, ContactID: c.ID, Name: "form.submitted",
		Properties: map[string]any{"email": p.email, "answers": []any{p.attr, p.firstName}}})
	require.NoError(t, err)
	_, _, err = s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressInOpportunity,
		Source: "crm", Note: "sales call with " + p.phone})
	require.NoError(t, err)

	done := storage.Enrollment{ID: "en-done-" + c.ID, ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-done-" + c.ID}
	require.NoError(t, s.CreateEnrollment(ctx, done, nil))
	x, stored, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: done.ID, ContactID: c.ID, RequestedBy: "api",
		Reason: p.firstName + " called from " + p.phone + ", asked to stop"})
	require.NoError(t, err)
	require.Equal(t, 1, stored, "an exit delivery for the run")
	require.NoError(t, s.EndEnrollment(ctx, done.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: x.ID}))
	active := storage.Enrollment{ID: "en-active-" + c.ID, ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-active-" + c.ID}
	require.NoError(t, s.CreateEnrollment(ctx, active, nil))
	// A STOP again, now that a run is active: a consent delivery.
	_, _, pending, err := s.TrackConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelSMS,
		Status: model.ConsentRevoked, Source: "sms:STOP"})
	require.NoError(t, err)
	require.Equal(t, 1, pending)

	in := gateInput(c, v.JourneyID, "key-"+c.ID, journey.ChannelEmail)
	gate, err := s.Gate(ctx, in, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail,
			Checks: []policy.Check{{Channel: journey.ChannelEmail, Rule: policy.RuleConsent, Passed: true, Detail: "address " + p.email}}}
	})
	require.NoError(t, err)
	require.True(t, gate.Send())
	require.NoError(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{MessageID: gate.Message.ID, Channel: journey.ChannelEmail,
		Recipient: p.email, Payload: map[string]any{"subject": "Hi " + p.firstName, "text": "Your colour: " + p.attr}}))
	_, err = s.ApplyProviderEvent(ctx, storage.ProviderEvent{Provider: "sendgrid", EventID: "sg-" + c.ID, Kind: "email.bounced",
		MessageID: gate.Message.ID, ContactID: c.ID, Payload: map[string]any{"reason": "550 <" + p.email + ">: unknown user"}},
		storage.ProviderEffects{})
	require.NoError(t, err)
	_, err = s.RecordProviderEvent(ctx, storage.ProviderEvent{Provider: "twilio", EventID: "tw-" + c.ID, Kind: "sms.failed",
		MessageID: gate.Message.ID, Payload: map[string]any{"to": p.phone}})
	require.NoError(t, err)
	return c, active.WorkflowID
}

func TestEraseContact_LeavesNoTraceOfThePerson(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	jane, other := newPerson("erase"), newPerson("keep")
	c, activeRun := seedPerson(t, s, jane, v)
	o, _ := seedPerson(t, s, other, v)

	// The search works: before the erasure it finds Jane everywhere she was put.
	before, err := storagetest.FindText(ctx, s.Pool(), jane.needles()...)
	require.NoError(t, err)
	require.Subset(t, storagetest.Tables(before), []string{"consent_events", "consents", "contacts", "decisions", "events",
		"exit_requests", "provider_events", "sandbox_messages", "suppressions"}, storagetest.DescribeHits(before))
	otherBefore, err := storagetest.FindText(ctx, s.Pool(), other.needles()...)
	require.NoError(t, err)

	deliveries := func(contactID string) (withoutEvent int) {
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE contact_id = $1 AND event_id IS NULL`, contactID).Scan(&withoutEvent))
		return withoutEvent
	}
	require.Equal(t, 2, deliveries(c.ID), "an exit and a consent delivery, without an event")

	e, created, err := s.EraseContact(ctx, c.ID)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, c.ID, e.ContactID)
	require.Equal(t, []string{activeRun}, e.ActiveRuns, "the run to tell")
	var left int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE contact_id = $1`, c.ID).Scan(&left))
	require.Zero(t, left, "the contact's deliveries go with it, with an event or not")
	require.Equal(t, 2, deliveries(o.ID), "the other contact's stay")

	// Nothing of Jane is left in any column of any table, nor a plain
	// (unkeyed) hash of her email or phone.
	plain := func(v string) string { sum := sha256.Sum256([]byte(v)); return hex.EncodeToString(sum[:]) }
	after, err := storagetest.FindText(ctx, s.Pool(), append(jane.needles(), plain(jane.email), plain(jane.phone))...)
	require.NoError(t, err)
	require.Empty(t, after, storagetest.DescribeHits(after))
	// The other contact is untouched.
	otherAfter, err := storagetest.FindText(ctx, s.Pool(), other.needles()...)
	require.NoError(t, err)
	require.Equal(t, otherBefore, otherAfter)
	_, err = s.Contact(ctx, o.ID)
	require.NoError(t, err)

	// What is kept: the consent at erasure under keyed hashes of each
	// identifier that reaches the channel, the source without her address.
	proofs, err := s.ErasureProofs(ctx, e.ID)
	require.NoError(t, err)
	require.Len(t, proofs, e.ProofsKept)
	h := contact.DevHasher()
	hash := func(k contact.IdentifierKind, v string) []byte {
		b, err := h.Hash(k, v)
		require.NoError(t, err)
		return b
	}
	type kept struct {
		kind         contact.IdentifierKind
		hash         []byte
		channel      journey.Channel
		subscription string
		status       model.ConsentStatus
		source       string
	}
	var got []kept
	for _, p := range proofs {
		got = append(got, kept{p.IdentifierKind, p.IdentifierHash, p.Channel, p.Subscription, p.Status, p.Source})
	}
	require.ElementsMatch(t, []kept{
		{contact.IdentifierEmail, hash(contact.IdentifierEmail, jane.email), journey.ChannelEmail, "", "granted", "signup form, typed [erased]"},
		{contact.IdentifierExternalID, hash(contact.IdentifierExternalID, jane.externalID), journey.ChannelEmail, "", "granted", "signup form, typed [erased]"},
		{contact.IdentifierEmail, hash(contact.IdentifierEmail, jane.email), journey.ChannelEmail, "newsletter", "revoked", "preference-center"},
		{contact.IdentifierExternalID, hash(contact.IdentifierExternalID, jane.externalID), journey.ChannelEmail, "newsletter", "revoked", "preference-center"},
		{contact.IdentifierPhone, hash(contact.IdentifierPhone, jane.phone), journey.ChannelSMS, "", "revoked", "sms:STOP"},
		{contact.IdentifierExternalID, hash(contact.IdentifierExternalID, jane.externalID), journey.ChannelSMS, "", "revoked", "sms:STOP"},
	}, got)

	// Erasing again finds the record (a retry), not a new erasure.
	again, created, err := s.EraseContact(ctx, c.ID)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, e, again)
	_, _, err = s.EraseContact(ctx, "c_never")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// A run told to end by the erasure can finish although its enrollment row is
// gone, and one that starts just after the erasure learns the contact was
// erased; an enrollment that never existed is still an error.
func TestEraseContact_RunsCanEndAfterwards(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	c := newContact(t, s)
	en := storage.Enrollment{ID: "en-1", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-1"}
	require.NoError(t, s.CreateEnrollment(ctx, en, nil))
	_, _, err := s.EraseContact(ctx, c.ID)
	require.NoError(t, err)

	require.NoError(t, s.SetEnrollmentStep(ctx, en.ID, "hello"))
	require.NoError(t, s.EndEnrollment(ctx, en.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "erased"}))
	require.ErrorIs(t, s.EnsureEnrollment(ctx, en), storage.ErrErased)
	require.ErrorIs(t, s.FinishEnrollment(ctx, "en-never", model.RunExited, "erased", time.Time{}), storage.ErrNotFound)
	require.ErrorIs(t, s.SetEnrollmentStep(ctx, "en-never", "hello"), storage.ErrNotFound)
	require.ErrorIs(t, s.EnsureEnrollment(ctx, storage.Enrollment{ID: "en-2", ContactID: "c_never", JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-2"}),
		storage.ErrNotFound)
}

func currentConsent(t *testing.T, s *storage.Store, contactID string, ch journey.Channel, subscription string) (storage.Consent, bool) {
	t.Helper()
	all, err := s.AllConsents(context.Background(), contactID)
	require.NoError(t, err)
	for _, c := range all {
		if c.Channel == ch && c.Subscription == subscription {
			return c, true
		}
	}
	return storage.Consent{}, false
}

// An erased person who had opted out and comes back (an import, a signup,
// a CRM sync) under any identifier they were known by starts opted out
// again, with the proof as the source; a consent they had granted is not
// assumed back.
func TestUpsertContact_ErasedOptOutsComeBack(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	jane := newPerson("back")
	c, _ := seedPerson(t, s, jane, v)
	e, _, err := s.EraseContact(ctx, c.ID)
	require.NoError(t, err)
	proofs, err := s.ErasureProofs(ctx, e.ID)
	require.NoError(t, err)
	proofSources := map[string]bool{}
	for _, p := range proofs {
		proofSources[fmt.Sprintf("%s%d", storage.ErasureProofSource, p.ID)] = true
	}

	// Back by email: the newsletter opt-out applies, dated at the erasure;
	// the email consent she had granted is not assumed.
	byEmail, created, err := s.UpsertContact(ctx, storage.ContactInput{Email: jane.email})
	require.NoError(t, err)
	require.True(t, created)
	news, ok := currentConsent(t, s, byEmail.ID, journey.ChannelEmail, "newsletter")
	require.True(t, ok)
	require.Equal(t, model.ConsentRevoked, news.Status)
	require.True(t, proofSources[news.Source], "source %q names a proof", news.Source)
	require.True(t, news.OccurredAt.Equal(e.ErasedAt))
	_, ok = currentConsent(t, s, byEmail.ID, journey.ChannelEmail, "")
	require.False(t, ok, "consent is never assumed, not even from a proof")
	_, ok = currentConsent(t, s, byEmail.ID, journey.ChannelSMS, "")
	require.False(t, ok, "the email says nothing about SMS")

	// A stale import dated before the erasure does not undo the opt-out;
	// the person opting in again afterwards does.
	_, cur, err := s.RecordConsentChange(ctx, storage.ConsentChange{ContactID: byEmail.ID, Channel: journey.ChannelEmail, Subscription: "newsletter",
		Status: model.ConsentGranted, Source: "old-crm-import", OccurredAt: e.ErasedAt.Add(-time.Hour)})
	require.NoError(t, err)
	require.Equal(t, model.ConsentRevoked, cur.Status)
	_, cur, err = s.RecordConsentChange(ctx, storage.ConsentChange{ContactID: byEmail.ID, Channel: journey.ChannelEmail, Subscription: "newsletter",
		Status: model.ConsentGranted, Source: "preference-center", OccurredAt: time.Now()})
	require.NoError(t, err)
	require.Equal(t, model.ConsentGranted, cur.Status)

	// The same contact gaining her old phone number gets the SMS opt-out
	// now: what it agreed to before was not given for this number.
	beforeAdd := time.Now()
	withPhone, created, err := s.UpsertContact(ctx, storage.ContactInput{ID: byEmail.ID, Phone: jane.phone})
	require.NoError(t, err)
	require.False(t, created)
	sms, ok := currentConsent(t, s, withPhone.ID, journey.ChannelSMS, "")
	require.True(t, ok)
	require.Equal(t, model.ConsentRevoked, sms.Status)
	require.True(t, proofSources[sms.Source])
	require.False(t, sms.OccurredAt.Before(beforeAdd.Add(-time.Second)), "dated now, not at the erasure")
	// An update that changes nothing about identifiers records nothing more.
	hist, err := s.ConsentHistory(ctx, withPhone.ID)
	require.NoError(t, err)
	_, _, err = s.UpsertContact(ctx, storage.ContactInput{ID: byEmail.ID, Attributes: map[string]any{"plan": "pro"}})
	require.NoError(t, err)
	histAfter, err := s.ConsentHistory(ctx, withPhone.ID)
	require.NoError(t, err)
	require.Len(t, histAfter, len(hist))

	// Back by the customer's own user id: every channel's opt-out applies.
	byExt, _, err := s.UpsertContact(ctx, storage.ContactInput{ExternalID: jane.externalID})
	require.NoError(t, err)
	sms, ok = currentConsent(t, s, byExt.ID, journey.ChannelSMS, "")
	require.True(t, ok)
	require.Equal(t, model.ConsentRevoked, sms.Status)
	news, ok = currentConsent(t, s, byExt.ID, journey.ChannelEmail, "newsletter")
	require.True(t, ok)
	require.Equal(t, model.ConsentRevoked, news.Status)

	// Someone else entirely gets nothing.
	stranger := newContact(t, s)
	all, err := s.AllConsents(ctx, stranger.ID)
	require.NoError(t, err)
	require.Empty(t, all)
}

// The latest erasure of an identifier decides: a person who opted back in
// before being erased a second time is not held to the first opt-out.
func TestUpsertContact_LatestErasureCounts(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	email := fmt.Sprintf("twice%d@example.com", contactSeq.Add(1))
	erase := func(status model.ConsentStatus) {
		c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: email})
		require.NoError(t, err)
		_, _, err = s.RecordConsentChange(ctx, storage.ConsentChange{ContactID: c.ID, Channel: journey.ChannelEmail,
			Status: status, Source: "test", OccurredAt: time.Now()})
		require.NoError(t, err)
		_, _, err = s.EraseContact(ctx, c.ID)
		require.NoError(t, err)
	}
	erase(model.ConsentRevoked)
	erase(model.ConsentGranted)
	c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: email})
	require.NoError(t, err)
	_, ok := currentConsent(t, s, c.ID, journey.ChannelEmail, "")
	require.False(t, ok)

	// With a different key the proofs are not recognised at all: the key
	// is part of the identifier's hash.
	other, err := contact.NewHasher([]byte("another key, thirty-two bytes long!!"))
	require.NoError(t, err)
	s2 := storage.New(s.Pool(), storage.WithErasureHasher(other))
	erase(model.ConsentRevoked)
	c2, _, err := s2.UpsertContact(ctx, storage.ContactInput{Email: email})
	require.NoError(t, err)
	_, ok = currentConsent(t, s, c2.ID, journey.ChannelEmail, "")
	require.False(t, ok)
}

func TestExitRequest_NoteShownOnTheEnrollmentItEnded(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	c, stranger := newContact(t, s), newContact(t, s)
	en := storage.Enrollment{ID: "en-x", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-x"}
	require.NoError(t, s.CreateEnrollment(ctx, en, nil))

	_, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: en.ID, ContactID: stranger.ID, Reason: "x", RequestedBy: "api"})
	require.ErrorIs(t, err, storage.ErrNotFound, "the enrollment must be the contact's")
	_, _, err = s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: en.ID, ContactID: c.ID, RequestedBy: "api"})
	require.Error(t, err)

	first, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: en.ID, ContactID: c.ID, Reason: "asked support to stop", RequestedBy: "api"})
	require.NoError(t, err)
	require.NotEmpty(t, first.ID)
	second, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: en.ID, ContactID: c.ID, Reason: "asked again", RequestedBy: "api"})
	require.NoError(t, err)
	got, err := s.ExitRequest(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, second, got)

	require.NoError(t, s.EndEnrollment(ctx, en.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: first.ID}))
	// A retry with the other request keeps the first ending.
	require.NoError(t, s.EndEnrollment(ctx, en.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: second.ID}))
	e, err := s.Enrollment(ctx, en.ID)
	require.NoError(t, err)
	require.Equal(t, "support_exit", e.ExitReason)
	require.Equal(t, first.ID, e.ExitRequestID)
	require.Equal(t, "asked support to stop", e.ExitNote)

	// A request id of another enrollment is not linked.
	en2 := storage.Enrollment{ID: "en-y", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-y"}
	require.NoError(t, s.CreateEnrollment(ctx, en2, nil))
	require.NoError(t, s.EndEnrollment(ctx, en2.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: "support_exit", ExitRequestID: first.ID}))
	e2, err := s.Enrollment(ctx, en2.ID)
	require.NoError(t, err)
	require.Empty(t, e2.ExitRequestID)
	require.Empty(t, e2.ExitNote)
}

// An exit asked while the contact is being erased finds nothing to exit:
// a not-found, never a foreign-key failure (a 500 at the API).
func TestExitRequest_RacingAnErasureIsNotFound(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	v := publish(t, s, "welcome")
	c := newContact(t, s)
	en := storage.Enrollment{ID: "en-race", ContactID: c.ID, JourneyID: v.JourneyID, Version: v.Version, WorkflowID: "wf-race"}
	require.NoError(t, s.CreateEnrollment(ctx, en, nil))

	// The erasure's transaction holds the contact's row, as EraseContact does.
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE`, c.ID)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, _, err := s.RecordExitRequest(ctx, storage.ExitRequest{EnrollmentID: en.ID, ContactID: c.ID, Reason: "stop", RequestedBy: "api"})
		done <- err
	}()
	// Wait until the exit request waits on the contact's row.
	require.Eventually(t, func() bool {
		var waiting bool
		err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%FROM contacts WHERE id = $1 FOR KEY SHARE%')`).Scan(&waiting)
		return err == nil && waiting
	}, 30*time.Second, 10*time.Millisecond)
	_, err = tx.Exec(ctx, `DELETE FROM contacts WHERE id = $1`, c.ID)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	require.ErrorIs(t, <-done, storage.ErrNotFound)
}
