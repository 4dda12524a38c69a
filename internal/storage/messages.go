package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

const messageColumns = `id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
	provider, provider_message_id, status, status_reason, consent_event_id, attempts, created_at, updated_at, sent_at,
	abandonment_event_id, decision_id, subscription, status_detail, flight_deadline`

// qualifiedMessageColumns is messageColumns for an UPDATE ... FROM, where
// the other relation could shadow a name.
var qualifiedMessageColumns = "messages." + strings.Join(strings.Split(strings.Join(strings.Fields(messageColumns), " "), ", "), ", messages.")

func scanMessage(r rowScanner) (Message, error) {
	var (
		m                                       Message
		providerID, reason, abandonment, detail *string
	)
	if err := r.Scan(&m.ID, &m.IdempotencyKey, &m.ContactID, &m.JourneyID, &m.JourneyVersion, &m.StepID, &m.Channel, &m.Class,
		&m.Provider, &providerID, &m.Status, &reason, &m.ConsentEventID, &m.Attempts, &m.CreatedAt, &m.UpdatedAt, &m.SentAt,
		&abandonment, &m.DecisionID, &m.Subscription, &detail, &m.FlightDeadline); err != nil {
		return Message{}, err
	}
	m.ProviderMessageID, m.StatusReason, m.AbandonmentEventID, m.StatusDetail = deref(providerID), deref(reason), deref(abandonment), deref(detail)
	m.CreatedAt, m.UpdatedAt, m.SentAt, m.FlightDeadline = m.CreatedAt.UTC(), m.UpdatedAt.UTC(), utcPtr(m.SentAt), utcPtr(m.FlightDeadline)
	return m, nil
}

// Reason codes the ledger itself writes.
const (
	// ReasonConsentRevoked: consent was withdrawn between the gate's decision
	// and the moment the request would have been written.
	ReasonConsentRevoked = "consent_revoked"
	// ReasonSuppressed: a suppression came into force in that same window.
	ReasonSuppressed = "suppressed"
	// ReasonAmbiguousCall: the request was written and never answered, and
	// the provider cannot be asked whether it has the message.
	ReasonAmbiguousCall = "ambiguous_provider_call"
)

func checkNewMessage(m Message) error {
	switch {
	case m.IdempotencyKey == "":
		return errors.New("message: idempotency key is required")
	case m.ContactID == "" || m.JourneyID == "" || m.StepID == "":
		return fmt.Errorf("message %s: contact, journey and step are required", m.IdempotencyKey)
	case !validChannel(m.Channel) && m.Channel != journey.ChannelWebhook:
		// A webhook post has a ledger row but no consent or suppression of its own.
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
}, m Message, status model.MessageStatus, attempts int) (Message, bool, error) {
	if m.ID == "" {
		m.ID = newID("m_")
	}
	row, err := scanMessage(q.QueryRow(ctx, `
		INSERT INTO messages (id, idempotency_key, contact_id, journey_id, journey_version, step_id, channel, class,
			provider, status, status_reason, consent_event_id, attempts, subscription, status_detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULLIF($11, ''), $12, $13, $14, NULLIF($15, ''))
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING `+messageColumns,
		m.ID, m.IdempotencyKey, m.ContactID, m.JourneyID, m.JourneyVersion, m.StepID, m.Channel, m.Class,
		m.Provider, status, m.StatusReason, m.ConsentEventID, attempts, m.Subscription, m.StatusDetail))
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

// FlightOutcome is what BeginFlight found.
type FlightOutcome int

const (
	// FlightGo: the row is in flight; write the request before its deadline.
	FlightGo FlightOutcome = iota
	// FlightBlocked: consent was revoked (or a suppression began) since the
	// gate's decision; the row is now skipped and nothing may be sent.
	FlightBlocked
	// FlightSettled: the row is no longer reserved (another attempt settled
	// or took it); do not send, return it.
	FlightSettled
)

// BeginFlight moves a reserved (or retrying) row to in flight, the last
// step before its request is written. It is the fence that makes an
// acknowledged opt-out final: under the contact's lock it re-checks what
// the gate decided on for a marketing message (channel consent granted,
// the subscription not revoked, no suppression for the channel), so a send
// that lost the race to an opt-out is skipped (consent_revoked) instead of
// sent. An opt-out takes the same lock and then waits for the sends this
// let through (WaitForFlights), which are written before window ends or
// never: the caller's provider call must end by then.
func (s *Store) BeginFlight(ctx context.Context, id string, window time.Duration) (Message, FlightOutcome, error) {
	b := &pgx.Batch{}
	b.Queue("begin")
	// FOR SHARE: fences of one contact do not wait for each other, but an
	// opt-out (FOR NO KEY UPDATE) waits for them, and they for it.
	b.Queue(`SELECT 1 FROM contacts WHERE id = (SELECT contact_id FROM messages WHERE id = $1) FOR SHARE`, id)
	// A separate statement after the lock: it sees whatever the opt-out
	// that held the lock committed.
	b.Queue(beginFlight, id, window.Microseconds())
	b.Queue("commit")
	var (
		m       Message
		outcome FlightOutcome
	)
	err := func() error {
		br := s.pool.SendBatch(ctx, b)
		defer br.Close()
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var fenced string
		var err error
		m, err = scanMessage(prefixScanner{r: br.QueryRow(), first: &fenced})
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = FlightSettled
		} else if err != nil {
			return err
		}
		if fenced != "" {
			outcome = FlightBlocked
		}
		_, err = br.Exec()
		return err
	}()
	if err != nil {
		return Message{}, 0, fmt.Errorf("begin flight %s: %w", id, err)
	}
	if outcome == FlightSettled {
		m, err = s.Message(ctx, id)
		if err != nil {
			return Message{}, 0, fmt.Errorf("begin flight: %w", err)
		}
	}
	return m, outcome, nil
}

// beginFlight ($1 message id, $2 window in microseconds) moves a reserved or
// retrying row to in_flight, or to skipped when what the marketing send
// rested on is gone (a webhook post rests on no consent: only its
// suppressions are checked again). It returns the row and the skip reason (” when sent on).
var beginFlight = `
	WITH m AS (
		SELECT id, CASE
			WHEN class <> 'marketing' THEN ''
			WHEN msg.channel <> '` + string(journey.ChannelWebhook) + `' AND (NOT EXISTS (SELECT 1 FROM consents c WHERE c.contact_id = msg.contact_id AND c.channel = msg.channel
					AND c.subscription = '' AND c.status = 'granted')
				OR EXISTS (SELECT 1 FROM consents c WHERE c.contact_id = msg.contact_id AND c.channel = msg.channel
					AND msg.subscription <> '' AND c.subscription = msg.subscription AND c.status <> 'granted'))
				THEN '` + ReasonConsentRevoked + `'
			WHEN EXISTS (SELECT 1 FROM suppressions s WHERE s.contact_id = msg.contact_id AND s.lifted_at IS NULL
					AND (s.expires_at IS NULL OR s.expires_at > now())
					AND (s.channel IS NULL OR s.channel = msg.channel)
					AND (s.journey_id IS NULL OR s.journey_id = msg.journey_id))
				THEN '` + ReasonSuppressed + `'
			ELSE '' END AS fenced
		FROM messages msg
		WHERE id = $1 AND status IN ('reserved', 'retrying')
		FOR UPDATE
	)
	UPDATE messages SET
		status = CASE WHEN m.fenced = '' THEN 'in_flight' ELSE 'skipped' END,
		status_reason = NULLIF(m.fenced, ''),
		flight_deadline = CASE WHEN m.fenced = '' THEN now() + make_interval(secs => $2::float8 / 1e6) END,
		attempts = attempts + CASE WHEN m.fenced = '' THEN 1 ELSE 0 END,
		updated_at = now()
	FROM m WHERE messages.id = m.id
	RETURNING m.fenced, ` + qualifiedMessageColumns

// WaitForFlights waits until none of the contact's sends on channel is in
// flight with a request that may still be written: each settles, or its
// flight deadline passes (after which its request is never written). An
// opt-out calls it after committing, so that once it answers no message it
// did not stop can still reach a provider. It returns at once in the common
// case, with nothing in flight; the wait is bounded by the longest flight
// window, and by ctx.
func (s *Store) WaitForFlights(ctx context.Context, contactID string, channel journey.Channel) error {
	delay := 5 * time.Millisecond
	for {
		var until *time.Time
		err := s.pool.QueryRow(ctx, `
			SELECT max(flight_deadline) FROM messages
			WHERE contact_id = $1 AND channel = $2 AND status = 'in_flight' AND flight_deadline > now()`,
			contactID, channel).Scan(&until)
		if err != nil {
			return fmt.Errorf("waiting for in-flight sends of contact %s: %w", contactID, err)
		}
		if until == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for in-flight sends of contact %s: %w", contactID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// CompleteSend records that the provider accepted the message: status sent,
// with the provider's message id (which webhooks later find it by). A zero
// sentAt means now. It applies to a row still open (reserved, in flight,
// retrying) or unknown — the provider's answer settles that ambiguity. A row
// already past sent (delivered, say, or sent by an earlier call) is
// returned unchanged, so a repeated call is harmless and never moves a
// status backwards. Unknown id is ErrNotFound.
func (s *Store) CompleteSend(ctx context.Context, id, provider, providerMessageID string, sentAt time.Time) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = 'sent', provider = COALESCE(NULLIF($2, ''), provider),
			provider_message_id = NULLIF($3, ''), status_reason = NULL, status_detail = NULL,
			sent_at = COALESCE($4, now()), updated_at = now()
		WHERE id = $1 AND status IN ('reserved', 'in_flight', 'retrying', 'unknown')
		RETURNING `+messageColumns, id, provider, providerMessageID, timeOrNow(sentAt)))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "complete send", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("complete send %s: %w", id, err)
	}
	return m, nil
}

// FailSend records that a send did not happen: retrying (the provider did
// not take it and a retry may succeed), failed (permanent) or skipped
// (decided not to send after all), with a reason code and, for failures,
// the provider's own words (detail, kept in Postgres only). Like
// CompleteSend it only changes an open or unknown row and otherwise returns
// the row unchanged.
func (s *Store) FailSend(ctx context.Context, id string, status model.MessageStatus, reason, detail string) (Message, error) {
	switch status {
	case model.MessageRetrying, model.MessageFailed, model.MessageSkipped:
	default:
		return Message{}, fmt.Errorf("fail send %s: status must be retrying, failed or skipped, not %q", id, status)
	}
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = $2, status_reason = NULLIF($3, ''), status_detail = NULLIF($4, ''),
			flight_deadline = NULL, updated_at = now()
		WHERE id = $1 AND status IN ('reserved', 'in_flight', 'retrying', 'unknown')
		RETURNING `+messageColumns, id, status, reason, detail))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "fail send", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("fail send %s: %w", id, err)
	}
	return m, nil
}

// MarkUnknown settles an in-flight row whose request was written, never
// answered, and cannot be read back: unknown, never resent. Any other row
// is returned unchanged.
func (s *Store) MarkUnknown(ctx context.Context, id, reason string) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = 'unknown', status_reason = $2, updated_at = now()
		WHERE id = $1 AND status = 'in_flight'
		RETURNING `+messageColumns, id, reason))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "mark unknown", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("mark unknown %s: %w", id, err)
	}
	return m, nil
}

// ReleaseFlight returns an in-flight row to retrying once it is known that
// the provider does not have the message (a read-back found nothing), so
// the next attempt is decided and fenced again like any retry. Its flight
// deadline must have passed: until then the attempt that wrote it may
// still be writing. Any other row is returned unchanged.
func (s *Store) ReleaseFlight(ctx context.Context, id string) (Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `
		UPDATE messages SET status = 'retrying', status_reason = 'not_found_at_provider', flight_deadline = NULL,
			updated_at = now()
		WHERE id = $1 AND status = 'in_flight' AND (flight_deadline IS NULL OR flight_deadline <= now())
		RETURNING `+messageColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.settledMessage(ctx, "release flight", id)
	}
	if err != nil {
		return Message{}, fmt.Errorf("release flight %s: %w", id, err)
	}
	return m, nil
}

// UnknownMessages lists ledger rows in status unknown across contacts, most
// recently settled first: the sends ops must account for. before, if
// non-empty, is the last id of the previous page.
func (s *Store) UnknownMessages(ctx context.Context, limit int, before string) ([]Message, error) {
	return queryAll(ctx, s.pool, "unknown messages", scanMessage, `
		SELECT `+messageColumns+` FROM messages
		WHERE status = 'unknown' AND ($2 = '' OR (updated_at, id) < (SELECT updated_at, id FROM messages WHERE id = $2))
		ORDER BY updated_at DESC, id DESC
		LIMIT $1`, listLimit(limit), before)
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
// consent, no address...), with m.StatusReason as the reason code (and
// m.StatusDetail, if any, as the words behind it). If the
// idempotency key already has a row, that row is returned unchanged: the
// first decision for a key stands, and a caller finding it retrying settles
// it with FailSend.
func (s *Store) RecordSkip(ctx context.Context, m Message) (Message, error) {
	if err := checkNewMessage(m); err != nil {
		return Message{}, fmt.Errorf("record skip: %w", err)
	}
	row, inserted, err := insertMessage(ctx, s.pool, m, model.MessageSkipped, 0)
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
	return queryOne(ctx, s.pool, "message "+id, scanMessage, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id)
}

// MessageByKey returns the ledger row for an idempotency key, or ErrNotFound.
func (s *Store) MessageByKey(ctx context.Context, key string) (Message, error) {
	return queryOne(ctx, s.pool, "message with key "+key, scanMessage, `SELECT `+messageColumns+` FROM messages WHERE idempotency_key = $1`, key)
}

// MessageByProviderID finds the message a provider webhook is about, or
// ErrNotFound. Should a provider ever reuse an id, the newest row wins.
func (s *Store) MessageByProviderID(ctx context.Context, provider, providerMessageID string) (Message, error) {
	return queryOne(ctx, s.pool, fmt.Sprintf("message %s from %s", providerMessageID, provider), scanMessage, `
		SELECT `+messageColumns+` FROM messages
		WHERE provider = $1 AND provider_message_id = $2
		ORDER BY created_at DESC
		LIMIT 1`, provider, providerMessageID)
}

// MessagesForContact returns the contact's most recent ledger rows, newest
// first. limit <= 0 means a default page of 100.
func (s *Store) MessagesForContact(ctx context.Context, contactID string, limit int) ([]Message, error) {
	return queryAll(ctx, s.pool, "messages of contact "+contactID, scanMessage, `
		SELECT `+messageColumns+` FROM messages
		WHERE contact_id = $1
		ORDER BY created_at DESC, id DESC
		LIMIT $2`, contactID, listLimit(limit))
}
