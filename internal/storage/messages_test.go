package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
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

func TestClaimSendStateMachine(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	// New → sent → claimed again: done, unchanged.
	m, out, err := s.ClaimSend(ctx, message(c, "wf-1/hello/1"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimNew, out)
	require.Regexp(t, `^m_[0-9a-f]{32}$`, m.ID)
	require.Equal(t, storage.MessageSending, m.Status)
	require.Equal(t, 1, m.Attempts)

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sent, err := s.CompleteSend(ctx, m.ID, "sendgrid", "sg-123", at)
	require.NoError(t, err)
	require.Equal(t, storage.MessageSent, sent.Status)
	require.Equal(t, "sg-123", sent.ProviderMessageID)
	require.Equal(t, at, *sent.SentAt)

	again, out, err := s.ClaimSend(ctx, message(c, "wf-1/hello/1"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimDone, out)
	require.Equal(t, sent, again)

	// Settling a settled row changes nothing.
	same, err := s.CompleteSend(ctx, m.ID, "sendgrid", "sg-other", time.Now())
	require.NoError(t, err)
	require.Equal(t, sent, same)
	same, err = s.FailSend(ctx, m.ID, storage.MessageFailed, "late")
	require.NoError(t, err)
	require.Equal(t, sent, same)

	byProvider, err := s.MessageByProviderID(ctx, "sendgrid", "sg-123")
	require.NoError(t, err)
	require.Equal(t, sent, byProvider)
	_, err = s.MessageByProviderID(ctx, "twilio", "sg-123")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// Retrying → claimed again: sent again, attempts counted.
	m2, _, err := s.ClaimSend(ctx, message(c, "wf-1/hello/2"))
	require.NoError(t, err)
	r, err := s.FailSend(ctx, m2.ID, storage.MessageRetrying, "503 from provider")
	require.NoError(t, err)
	require.Equal(t, storage.MessageRetrying, r.Status)
	require.Equal(t, "503 from provider", r.StatusReason)
	m2b, out, err := s.ClaimSend(ctx, message(c, "wf-1/hello/2"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimRetry, out)
	require.Equal(t, m2.ID, m2b.ID)
	require.Equal(t, storage.MessageSending, m2b.Status)
	require.Equal(t, 2, m2b.Attempts)
	failed, err := s.FailSend(ctx, m2.ID, storage.MessageFailed, "invalid recipient")
	require.NoError(t, err)
	require.Equal(t, storage.MessageFailed, failed.Status)
	_, out, err = s.ClaimSend(ctx, message(c, "wf-1/hello/2"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimDone, out)

	// Sending (the worker died mid-call) → ambiguous, never resent.
	m3, _, err := s.ClaimSend(ctx, message(c, "wf-1/hello/3"))
	require.NoError(t, err)
	amb, out, err := s.ClaimSend(ctx, message(c, "wf-1/hello/3"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimAmbiguous, out)
	require.Equal(t, m3.ID, amb.ID)
	require.Equal(t, storage.MessageUnknown, amb.Status)
	require.Equal(t, storage.ReasonInterrupted, amb.StatusReason)
	require.Equal(t, 1, amb.Attempts)
	_, out, err = s.ClaimSend(ctx, message(c, "wf-1/hello/3"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimDone, out, "unknown is final for claims")

	_, err = s.FailSend(ctx, m3.ID, storage.MessageSent, "")
	require.Error(t, err)
	_, err = s.CompleteSend(ctx, "m_missing", "sendgrid", "x", time.Now())
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, _, err = s.ClaimSend(ctx, message(storage.Contact{ID: "c_missing"}, "k"))
	require.ErrorIs(t, err, storage.ErrNotFound)

	list, err := s.MessagesForContact(ctx, c.ID, 0)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, m3.ID, list[0].ID, "newest first")
}

func TestClaimSendConcurrent(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)

	const n = 8
	outcomes := make([]storage.ClaimOutcome, n)
	ids := make([]string, n)
	errs := make([]error, n)
	concurrently(n, func(i int) {
		m, out, err := s.ClaimSend(ctx, message(c, "wf-race/hello/1"))
		outcomes[i], ids[i], errs[i] = out, m.ID, err
	})
	counts := map[storage.ClaimOutcome]int{}
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
		counts[outcomes[i]]++
	}
	require.Equal(t, 1, counts[storage.ClaimNew], "exactly one claim may send: %v", counts)
	require.Zero(t, counts[storage.ClaimRetry])
	require.Equal(t, n, counts[storage.ClaimNew]+counts[storage.ClaimAmbiguous]+counts[storage.ClaimDone])
}

func TestRecordSkip(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	ctx := context.Background()
	c := newContact(t, s)
	ev, _, err := s.RecordConsent(ctx, c.ID, journey.ChannelEmail, storage.ConsentGranted, "api", time.Now())
	require.NoError(t, err)

	m := message(c, "wf-2/hello/1")
	m.StatusReason = "no_consent"
	skipped, err := s.RecordSkip(ctx, m)
	require.NoError(t, err)
	require.Equal(t, storage.MessageSkipped, skipped.Status)
	require.Equal(t, "no_consent", skipped.StatusReason)
	require.Zero(t, skipped.Attempts)

	// The first decision for a key stands.
	m.StatusReason = "something else"
	again, err := s.RecordSkip(ctx, m)
	require.NoError(t, err)
	require.Equal(t, skipped, again)
	_, out, err := s.ClaimSend(ctx, message(c, "wf-2/hello/1"))
	require.NoError(t, err)
	require.Equal(t, storage.ClaimDone, out)

	// A retrying row is returned as is, for the caller to settle.
	m2 := message(c, "wf-2/hello/2")
	m2.ConsentEventID = &ev.ID
	claimed, _, err := s.ClaimSend(ctx, m2)
	require.NoError(t, err)
	require.Equal(t, ev.ID, *claimed.ConsentEventID)
	_, err = s.FailSend(ctx, claimed.ID, storage.MessageRetrying, "timeout")
	require.NoError(t, err)
	m2.StatusReason = "consent_revoked"
	got, err := s.RecordSkip(ctx, m2)
	require.NoError(t, err)
	require.Equal(t, storage.MessageRetrying, got.Status)
	got, err = s.FailSend(ctx, got.ID, storage.MessageSkipped, "consent_revoked")
	require.NoError(t, err)
	require.Equal(t, storage.MessageSkipped, got.Status)

	byKey, err := s.MessageByKey(ctx, "wf-2/hello/2")
	require.NoError(t, err)
	require.Equal(t, got, byKey)
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
		m, _, err := s.ClaimSend(ctx, message(c, fmt.Sprintf("k%d", i)))
		require.NoError(t, err)
		require.NoError(t, s.InsertSandboxMessage(ctx, storage.SandboxMessage{
			MessageID: m.ID,
			Channel:   journey.ChannelEmail,
			Recipient: c.Email,
			Payload:   map[string]any{"subject": fmt.Sprintf("Hi %d", i)},
			CreatedAt: time.Now().Add(time.Duration(i) * time.Second),
		}))
	}
	m, _, err := s.ClaimSend(ctx, message(bob, "k-recorder"))
	require.NoError(t, err)
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
