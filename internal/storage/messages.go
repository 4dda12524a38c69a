package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const messageColumns = `id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
	provider, provider_message_id, status, status_reason, consent_event_id, attempts, created_at, updated_at, sent_at,
	abandonment_event_id, decision_id`

func scanMessage(r rowScanner) (Message, error) {
	var (
		m                               Message
		providerID, reason, abandonment *string
	)
	if err := r.Scan(&m.ID, &m.IdempotencyKey, &m.ContactID, &m.JourneyID, &m.JourneyVersion, &m.StepID, &m.Channel, &m.Class,
		&m.Provider, &providerID, &m.Status, &reason, &m.ConsentEventID, &m.Attempts, &m.CreatedAt, &m.UpdatedAt, &m.SentAt,
		&abandonment, &m.DecisionID); err != nil {
		return Message{}, err
	}
	m.ProviderMessageID, m.StatusReason, m.AbandonmentEventID = deref(providerID), deref(reason), deref(abandonment)
	m.CreatedAt, m.UpdatedAt, m.SentAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC(), utcPtr(m.SentAt)
	return m, nil
}

// ReasonInterrupted is the status_reason ClaimSend writes when it finds a
// previous attempt that never settled.
const ReasonInterrupted = "previous attempt interrupted during provider call; not resent"

func checkNewMessage(m Message) error {
	switch {
	case m.IdempotencyKey == "":
		return errors.New("message: idempotency key is required")
	case m.ContactID == "" || m.JourneyID == "" || m.StepID == "":
		return fmt.Errorf("message %s: contact, journey and step are required", m.IdempotencyKey)
	case !validChannel(m.Channel):
		return fmt.Errorf("message %s: unknown channel %q", m.IdempotencyKey, m.Channel)
	case m.Class == "" || m.Provider == "":
		return fmt.Errorf("message %s: class and provider are required", m.IdempotencyKey)
	}
	return nil
}

// insertMessage inserts m with the given status and attempt count unless its
// idempotency key exists, returning the row and whether it was inserted.
func insertMessage(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, m Message, status string, attempts int) (Message, bool, error) {
	if m.ID == "" {
		m.ID = newID("m_")
	}
	row, err := scanMessage(q.QueryRow(ctx, `
		INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
			provider, status, status_reason, consent_event_id, attempts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), $12, $13)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING `+messageColumns,
		m.ID, m.IdempotencyKey, m.ContactID, m.JourneyID, m.JourneyVersion, m.StepID, m.Channel, m.Class,
		m.Provider, status, m.StatusReason, m.ConsentEventID, attempts))
	switch {
	case err == nil:
		return row, true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return Message{}, false, nil
	}
	if c, ok := foreignKeyViolation(err); ok {
		what := "contact " + m.ContactID
		if c == "messages_consent_event_id_fkey" {
			what = "consent event"
		}
		return Message{}, false, fmt.Errorf("message %s: %s: %w", m.IdempotencyKey, what, ErrNotFound)
	}
	return Message{}, false, fmt.Errorf("message %s: inserting: %w", m.IdempotencyKey, err)
}

// ClaimSend claims the ledger row for m.IdempotencyKey before a provider
// call, and says whether to make the call:
//
//   - no row: m is inserted as sending with attempts 1 (and an id if it has
//     none) → ClaimNew, send;
//   - retrying (the last attempt failed and the provider did not take the
//     message): the row goes back to sending, attempts+1 → ClaimRetry, send;
//   - sending: a previous attempt died between claim and settle, so the
//     provider may have the message. The row becomes unknown → ClaimAmbiguous,
//     do not send: a possible duplicate is worse than a possible miss;
//   - anything else is settled → ClaimDone, do not send, row unchanged.
//
// Concurrent claims of one key are serialised on the row: exactly one gets
// ClaimNew (or ClaimRetry); the others see it sending and get ClaimAmbiguous,
// or ClaimDone once it settled.
func (s *Store) ClaimSend(ctx context.Context, m Message) (Message, ClaimOutcome, error) {
	if err := checkNewMessage(m); err != nil {
		return Message{}, 0, fmt.Errorf("claim send: %w", err)
	}
	var (
		out     Message
		outcome ClaimOutcome
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// A concurrent inserter's uncommitted row makes DO NOTHING wait for
		// it, so after this statement the row is committed either way.
		row, inserted, err := insertMessage(ctx, tx, m, MessageSending, 1)
		if err != nil {
			return fmt.Errorf("claim send: %w", err)
		}
		if inserted {
			out, outcome = row, ClaimNew
			return nil
		}
		cur, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE idempotency_key = $1 FOR UPDATE`, m.IdempotencyKey))
		if err != nil {
			return fmt.Errorf("claim send %s: locking existing row: %w", m.IdempotencyKey, err)
		}
		switch cur.Status {
		case MessageRetrying:
			// This attempt may use another provider or rest on a newer
			// consent than the failed one; record what it actually uses.
			out, err = scanMessage(tx.QueryRow(ctx, `
				UPDATE messages SET status = 'sending', attempts = attempts + 1,
					provider = $2, consent_event_id = COALESCE($3, consent_event_id), updated_at = now()
				WHERE id = $1
				RETURNING `+messageColumns, cur.ID, m.Provider, m.ConsentEventID))
			outcome = ClaimRetry
		case MessageSending:
			out, err = scanMessage(tx.QueryRow(ctx, `
				UPDATE messages SET status = 'unknown', status_reason = $2, updated_at = now()
				WHERE id = $1
				RETURNING `+messageColumns, cur.ID, ReasonInterrupted))
			outcome = ClaimAmbiguous
		default:
			out, outcome = cur, ClaimDone
		}
		if err != nil {
			return fmt.Errorf("claim send %s: updating row %s: %w", m.IdempotencyKey, cur.ID, err)
		}
		return nil
	})
	if err != nil {
		return Message{}, 0, err
	}
	return out, outcome, nil
}

// CompleteSend records that the provider accepted the message: status sent,
// with the provider's message id (which webhooks later find it by). A zero
// sentAt means now. It applies to a row still in flight (sending or
// retrying) or marked unknown by a concurrent claim — the provider's answer
// settles that ambiguity. A row already past sent (delivered, say, or sent by
// an earlier call) is returned unchanged, so a repeated call is harmless and
// never moves a status backwards. Unknown id is ErrNotFound.
func (s *Store) CompleteSend(ctx context.Context, id, provider, providerMessageID string, sentAt time.Time) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = 'sent', provider = COALESCE(NULLIF($2, ''), provider),
			provider_message_id = NULLIF($3, ''), status_reason = NULL,
			sent_at = COALESCE($4, now()), updated_at = now()
		WHERE id = $1 AND status IN ('sending', 'retrying', 'unknown')
		RETURNING `+messageColumns, id, provider, providerMessageID, timeOrNow(sentAt)))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "complete send", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("complete send %s: %w", id, err)
	}
	return m, nil
}

// FailSend records that a send did not happen: retrying (a retryable
// provider error; the next ClaimSend sends again), failed (permanent) or
// skipped (decided not to send after all). Like CompleteSend it only changes
// a row still in flight or unknown and otherwise returns the row unchanged.
func (s *Store) FailSend(ctx context.Context, id, status, reason string) (Message, error) {
	switch status {
	case MessageRetrying, MessageFailed, MessageSkipped:
	default:
		return Message{}, fmt.Errorf("fail send %s: status must be retrying, failed or skipped, not %q", id, status)
	}
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = $2, status_reason = NULLIF($3, ''), updated_at = now()
		WHERE id = $1 AND status IN ('sending', 'retrying', 'unknown')
		RETURNING `+messageColumns, id, status, reason))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "fail send", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("fail send %s: %w", id, err)
	}
	return m, nil
}

// settledMessage returns the row an update skipped because it had already
// settled, or ErrNotFound if there is no such row.
func (s *Store) settledMessage(ctx context.Context, op, id string) (Message, error) {
	m, err := s.Message(ctx, id)
	if err != nil {
		return Message{}, fmt.Errorf("%s: %w", op, err)
	}
	return m, nil
}

// RecordSkip writes a ledger row for a send that was decided against (no
// consent, no address...), with m.StatusReason as the reason. If the
// idempotency key already has a row, that row is returned unchanged: the
// first decision for a key stands, and a caller finding it retrying settles
// it with FailSend.
func (s *Store) RecordSkip(ctx context.Context, m Message) (Message, error) {
	if err := checkNewMessage(m); err != nil {
		return Message{}, fmt.Errorf("record skip: %w", err)
	}
	row, inserted, err := insertMessage(ctx, s.pool, m, MessageSkipped, 0)
	if err != nil {
		return Message{}, fmt.Errorf("record skip: %w", err)
	}
	if inserted {
		return row, nil
	}
	return s.MessageByKey(ctx, m.IdempotencyKey)
}

// Message returns the ledger row with this id, or ErrNotFound.
func (s *Store) Message(ctx context.Context, id string) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
	if err != nil {
		return Message{}, notFound(err, "message %s", id)
	}
	return m, nil
}

// MessageByKey returns the ledger row for an idempotency key, or ErrNotFound.
func (s *Store) MessageByKey(ctx context.Context, key string) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE idempotency_key = $1`, key))
	if err != nil {
		return Message{}, notFound(err, "message with key %s", key)
	}
	return m, nil
}

// MessageByProviderID finds the message a provider webhook is about, or
// ErrNotFound. Should a provider ever reuse an id, the newest row wins.
func (s *Store) MessageByProviderID(ctx context.Context, provider, providerMessageID string) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		SELECT `+messageColumns+` FROM messages
		WHERE provider = $1 AND provider_message_id = $2
		ORDER BY created_at DESC
		LIMIT 1`, provider, providerMessageID))
	if err != nil {
		return Message{}, notFound(err, "message %s from %s", providerMessageID, provider)
	}
	return m, nil
}

// MessagesForContact returns the contact's most recent ledger rows, newest
// first. limit <= 0 means a default page of 100.
func (s *Store) MessagesForContact(ctx context.Context, contactID string, limit int) ([]Message, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+messageColumns+` FROM messages
		WHERE contact_id = $1
		ORDER BY created_at DESC, id DESC
		LIMIT $2`, contactID, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("messages of contact %s: %w", contactID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("messages of contact %s: %w", contactID, err)
	}
	return out, nil
}
