package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func message(c storage.Contact, key string) storage.Message {
	return storage.Message{
		IdempotencyKey: key,
		ContactID:      c.ID,
		JourneyID:      "welcome",
		JourneyVersion: 1,
		StepID:         "hello",
		Channel:        journey.ChannelEmail,
		Class:          string(journey.ClassMarketing),
		Provider:       "sendgrid",
	}
}

// reserve puts m through the gate with an allow decision: the ledger row
// the send path writes before it calls the provider.
func reserve(t *testing.T, s *storage.Store, m storage.Message) storage.GateResult {
	t.Helper()
	res, err := s.Gate(context.Background(), storage.GateInput{Message: m}, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: m.Channel}
	})
	require.NoError(t, err)
	return res
}

func TestSendStateMachine(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newEmailContact(t, s)

	// Reserved → in flight → sent; the same key again is done, unchanged.
	res := reserve(t, s, message(c, "en-1/hello/1"))
	require.Equal(t, storage.ClaimNew, res.Claim)
	m := res.Message
	require.Regexp(t, `^m_[0-9a-f]{32}$`, m.ID)
	require.Equal(t, model.MessageReserved, m.Status)
	require.Zero(t, m.Attempts, "no request written yet")

	m, out, err := s.BeginFlight(ctx, m.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.FlightGo, out)
	require.Equal(t, model.MessageInFlight, m.Status)
	require.Equal(t, 1, m.Attempts)
	require.NotNil(t, m.FlightDeadline)
	require.WithinDuration(t, time.Now().Add(time.Minute), *m.FlightDeadline, 30*time.Second)

	_, out, err = s.BeginFlight(ctx, m.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.FlightSettled, out, "a row in flight is not flown twice")

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sent, err := s.CompleteSend(ctx, m.ID, "sendgrid", "sg-123", at)
	require.NoError(t, err)
	require.Equal(t, model.MessageSent, sent.Status)
	require.Equal(t, "sg-123", sent.ProviderMessageID)
	require.Equal(t, at, *sent.SentAt)

	again := reserve(t, s, message(c, "en-1/hello/1"))
	require.Equal(t, storage.ClaimDone, again.Claim)
	require.False(t, again.Decided)
	require.Equal(t, sent, again.Message)

	// Settling a settled row changes nothing.
	same, err := s.CompleteSend(ctx, m.ID, "sendgrid", "sg-other", time.Now())
	require.NoError(t, err)
	require.Equal(t, sent, same)
	same, err = s.FailSend(ctx, m.ID, model.MessageFailed, "late", "")
	require.NoError(t, err)
	require.Equal(t, sent, same)

	byProvider, err := s.MessageByProviderID(ctx, "sendgrid", "sg-123")
	require.NoError(t, err)
	require.Equal(t, sent, byProvider)
	_, err = s.MessageByProviderID(ctx, "twilio", "sg-123")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// Retrying (the provider refused it) → decided and reserved again, then
	// flown again: attempts count the requests written.
	m2 := reserve(t, s, message(c, "en-1/hello/2")).Message
	_, _, err = s.BeginFlight(ctx, m2.ID, time.Minute)
	require.NoError(t, err)
	r, err := s.FailSend(ctx, m2.ID, model.MessageRetrying, "sendgrid:http_503", "Service Unavailable for a@b.c")
	require.NoError(t, err)
	require.Equal(t, model.MessageRetrying, r.Status)
	require.Equal(t, "sendgrid:http_503", r.StatusReason)
	require.Equal(t, "Service Unavailable for a@b.c", r.StatusDetail)
	retried := reserve(t, s, message(c, "en-1/hello/2"))
	require.Equal(t, storage.ClaimRetry, retried.Claim)
	require.True(t, retried.Decided, "a retry is decided again")
	require.Equal(t, m2.ID, retried.Message.ID)
	require.Equal(t, model.MessageReserved, retried.Message.Status)
	m2b, out, err := s.BeginFlight(ctx, m2.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.FlightGo, out)
	require.Equal(t, 2, m2b.Attempts)
	failed, err := s.FailSend(ctx, m2.ID, model.MessageFailed, "sendgrid:http_400", "invalid recipient")
	require.NoError(t, err)
	require.Equal(t, model.MessageFailed, failed.Status)
	require.Nil(t, failed.FlightDeadline)
	require.Equal(t, storage.ClaimDone, reserve(t, s, message(c, "en-1/hello/2")).Claim)

	// Reserved but never flown (the worker died before writing anything):
	// the next attempt decides again and sends.
	m3 := reserve(t, s, message(c, "en-1/hello/3")).Message
	re := reserve(t, s, message(c, "en-1/hello/3"))
	require.Equal(t, storage.ClaimRetry, re.Claim)
	require.Equal(t, m3.ID, re.Message.ID)

	// In flight (a request may have been written): the gate neither decides
	// nor sends; the caller finds out. Unknown is final.
	_, _, err = s.BeginFlight(ctx, m3.ID, time.Minute)
	require.NoError(t, err)
	inFlight := reserve(t, s, message(c, "en-1/hello/3"))
	require.Equal(t, storage.ClaimInFlight, inFlight.Claim)
	require.False(t, inFlight.Decided)
	require.False(t, inFlight.Send())
	released, err := s.ReleaseFlight(ctx, m3.ID)
	require.NoError(t, err)
	require.Equal(t, model.MessageInFlight, released.Status, "not released before its flight deadline")
	unknown, err := s.MarkUnknown(ctx, m3.ID, storage.ReasonAmbiguousCall)
	require.NoError(t, err)
	require.Equal(t, model.MessageUnknown, unknown.Status)
	require.Equal(t, storage.ClaimDone, reserve(t, s, message(c, "en-1/hello/3")).Claim)

	_, err = s.FailSend(ctx, m3.ID, model.MessageSent, "", "")
	require.Error(t, err)
	_, err = s.CompleteSend(ctx, "m_missing", "sendgrid", "x", time.Now())
	require.ErrorIs(t, err, storage.ErrNotFound)

	list, err := s.MessagesForContact(ctx, c.ID, 0)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, m3.ID, list[0].ID, "newest first")
}

func TestReleaseFlightAfterDeadline(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	m := storagetest.InFlight(t, s, message(c, "en-2/hello/1"))
	released, err := s.ReleaseFlight(ctx, m.ID)
	require.NoError(t, err)
	require.Equal(t, model.MessageRetrying, released.Status)
	require.Equal(t, "not_found_at_provider", released.StatusReason)
	require.Nil(t, released.FlightDeadline)
}

func TestUnknownMessages(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	a, b := newContact(t, s), newContact(t, s)
	var ids []string
	for i, c := range []storage.Contact{a, b, a} {
		m := storagetest.InFlight(t, s, message(c, fmt.Sprintf("unk/%d", i)))
		_, err := s.MarkUnknown(ctx, m.ID, storage.ReasonAmbiguousCall)
		require.NoError(t, err)
		ids = append(ids, m.ID)
	}
	sent := storagetest.InFlight(t, s, message(b, "unk/sent"))
	_, err := s.CompleteSend(ctx, sent.ID, "sendgrid", "x", time.Time{})
	require.NoError(t, err)

	page, err := s.UnknownMessages(ctx, 2, "")
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.Equal(t, []string{ids[2], ids[1]}, []string{page[0].ID, page[1].ID}, "across contacts, newest first")
	rest, err := s.UnknownMessages(ctx, 2, page[1].ID)
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Equal(t, ids[0], rest[0].ID)
}

func TestGateConcurrentSameKey(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newEmailContact(t, s)

	const n = 8
	results := make([]storage.GateResult, n)
	errs := make([]error, n)
	concurrently(n, func(i int) {
		results[i], errs[i] = s.Gate(ctx, storage.GateInput{Message: message(c, "en-race/hello/1")}, func(storage.GateState) policy.Decision {
			return policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelEmail}
		})
	})
	// Every attempt may reserve the row (reserving is not sending), but only
	// one of them can fly it.
	flights := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, results[0].Message.ID, results[i].Message.ID)
	}
	concurrently(n, func(i int) {
		_, out, err := s.BeginFlight(ctx, results[i].Message.ID, time.Minute)
		errs[i] = err
		if out == storage.FlightGo {
			results[i].Claim = storage.ClaimNew
		} else {
			results[i].Claim = storage.ClaimDone
		}
	})
	for i := range n {
		require.NoError(t, errs[i])
		if results[i].Claim == storage.ClaimNew {
			flights++
		}
	}
	require.Equal(t, 1, flights, "exactly one attempt may write the request")
}

func TestRecordSkip(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	m := message(c, "en-3/hello/1")
	m.StatusReason = "render_failed"
	m.StatusDetail = "template: x:1: executing"
	skipped, err := s.RecordSkip(ctx, m)
	require.NoError(t, err)
	require.Equal(t, model.MessageSkipped, skipped.Status)
	require.Equal(t, "render_failed", skipped.StatusReason)
	require.Equal(t, "template: x:1: executing", skipped.StatusDetail)
	require.Zero(t, skipped.Attempts)

	// The first decision for a key stands.
	m.StatusReason = "something else"
	again, err := s.RecordSkip(ctx, m)
	require.NoError(t, err)
	require.Equal(t, skipped, again)
	require.Equal(t, storage.ClaimDone, reserve(t, s, message(c, "en-3/hello/1")).Claim)

	byKey, err := s.MessageByKey(ctx, "en-3/hello/1")
	require.NoError(t, err)
	require.Equal(t, skipped, byKey)
	_, err = s.MessageByKey(ctx, "nope")
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.Message(ctx, "nope")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func TestSandboxMessages(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	alice, bob := newContact(t, s), newContact(t, s)

	for i, c := range []storage.Contact{alice, bob, alice} {
		m := storagetest.InFlight(t, s, message(c, fmt.Sprintf("k%d", i)))
		require.NoError(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{
			MessageID: m.ID,
			Channel:   journey.ChannelEmail,
			Recipient: c.Email,
			Payload:   map[string]any{"subject": fmt.Sprintf("Hi %d", i)},
			CreatedAt: time.Now().Add(time.Duration(i) * time.Second),
		}))
	}
	m := storagetest.InFlight(t, s, message(bob, "k-recorder"))
	require.NoError(t, s.RecordSandbox(ctx, m.ID, "sms", bob.Phone+"x", map[string]any{"body": "Hi"}))
	require.ErrorIs(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{MessageID: "m_missing", Channel: "email", Recipient: "x"}), storage.ErrNotFound)

	all, err := s.SandboxMessages(ctx, "", 0)
	require.NoError(t, err)
	require.Len(t, all, 4)
	require.Equal(t, "Hi 2", all[0].Payload["subject"], "newest first")
	var recorded []storage.SandboxMessage
	for _, sm := range all {
		if sm.Channel == journey.ChannelSMS {
			recorded = append(recorded, sm)
		}
	}
	require.Len(t, recorded, 1)
	require.Equal(t, map[string]any{"body": "Hi"}, recorded[0].Payload)
	require.Equal(t, m.ID, recorded[0].MessageID)

	mine, err := s.SandboxMessages(ctx, alice.ID, 10)
	require.NoError(t, err)
	require.Len(t, mine, 2)
	for _, sm := range mine {
		require.Regexp(t, `^sb_`, sm.ID)
		require.Equal(t, alice.ID, sm.ContactID)
		require.Equal(t, "welcome", sm.JourneyID)
		require.Equal(t, "hello", sm.StepID)
		require.Equal(t, alice.Email, sm.Recipient)
	}
}

// A webhook post rests on no channel consent: the fence lets it fly for a
// contact with none, and holds it back once a suppression for every
// channel is added between the gate and the fence.
func TestBeginFlightWebhook(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s) // no consent on any channel
	hook := func(key string) storage.Message {
		m := message(c, key)
		m.Channel, m.Provider, m.StepID = journey.ChannelWebhook, "webhook", "alert"
		return m
	}

	m := reserve(t, s, hook("en-1/alert/1")).Message
	flying, out, err := s.BeginFlight(ctx, m.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.FlightGo, out)
	require.Equal(t, model.MessageInFlight, flying.Status)

	m2 := reserve(t, s, hook("en-1/alert/2")).Message
	_, _, err = s.AddSuppression(ctx, storage.Suppression{ContactID: c.ID, Reason: model.SuppressDoNotContact, Source: "test"})
	require.NoError(t, err)
	held, out, err := s.BeginFlight(ctx, m2.ID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, storage.FlightBlocked, out)
	require.Equal(t, model.MessageSkipped, held.Status)
	require.Equal(t, storage.ReasonSuppressed, held.StatusReason)
}
