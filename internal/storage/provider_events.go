package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tutti-dev/tutti/internal/model"
)

// rowQuerier is the pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// ProviderEvent is one delivery-provider webhook event (a SendGrid event, a
// Twilio inbound message or status callback), kept in provider_events so a
// redelivered webhook is recognised and changes nothing.
type ProviderEvent struct {
	// Provider is "sendgrid" or "twilio".
	Provider string
	// EventID is the provider's own id for the event: SendGrid's
	// sg_event_id, a Twilio inbound MessageSid, or MessageSid:status for a
	// Twilio status callback.
	EventID string
	// Kind is Tutti's name for it: email.delivered, sms.inbound, ...
	Kind string
	// MessageID is the ledger row it is about; "" if none.
	MessageID string
	// ContactID is the contact it is about; "" if none.
	ContactID string
	// OccurredAt is when the provider says it happened; zero means now.
	OccurredAt time.Time
	// Payload is kept for support; no PII beyond what the ledger has.
	Payload map[string]any
}

func checkProviderEvent(e ProviderEvent) error {
	switch {
	case e.Provider == "" || e.EventID == "":
		return errors.New("provider event: provider and event id are required")
	case e.Kind == "":
		return fmt.Errorf("provider event %s/%s: kind is required", e.Provider, e.EventID)
	}
	return nil
}

// insertProviderEvent inserts e unless (provider, event_id) exists and
// reports whether it did. Inside a transaction, a concurrent insert of the
// same id makes this wait for that transaction: after it commits, the event
// is a duplicate; after it rolls back, this insert goes ahead.
func insertProviderEvent(ctx context.Context, q rowQuerier, e ProviderEvent) (bool, error) {
	payload := e.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	var one int
	err := q.QueryRow(ctx, `
		INSERT INTO provider_events (provider, event_id, kind, message_id, contact_id, occurred_at, payload)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), COALESCE($6, now()), $7)
		ON CONFLICT (provider, event_id) DO NOTHING
		RETURNING 1`,
		e.Provider, e.EventID, e.Kind, e.MessageID, e.ContactID, timeOrNow(e.OccurredAt), payload).Scan(&one)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	}
	return false, fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
}

// RecordProviderEvent stores a provider event unless one with the same
// (provider, event id) is already stored, and reports whether it is new. It
// records the event only; ApplyProviderEvent records it together with what it
// changes.
func (s *Store) RecordProviderEvent(ctx context.Context, e ProviderEvent) (bool, error) {
	if err := checkProviderEvent(e); err != nil {
		return false, err
	}
	return insertProviderEvent(ctx, s.pool, e)
}

// ProviderEventRecorded reports whether (provider, eventID) is stored.
func (s *Store) ProviderEventRecorded(ctx context.Context, provider, eventID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM provider_events WHERE provider = $1 AND event_id = $2)`,
		provider, eventID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("provider event %s/%s: %w", provider, eventID, err)
	}
	return ok, nil
}

// Ledger status updates from provider webhooks.
//
// Provider callbacks arrive late, twice and out of order, so an update never
// moves a message backwards. The rules, for the status a webhook reports:
//
//   - sent < delivered < opened < clicked is a progression: each replaces
//     only a lower one (an open arriving after the click leaves clicked).
//   - bounced and failed (the provider could not deliver) replace sent and
//     delivered — a bounce can follow an accepted delivery — but not an open
//     or a click, which prove the message arrived.
//   - dropped (the provider never tried) replaces only sent.
//   - complained (a spam report) replaces every status above, failures
//     included: the recipient saw the message and objected, the strongest
//     signal there is. Nothing replaces complained.
//   - bounced, dropped and failed are otherwise final: a late "delivered"
//     or "opened" does not revive them.
//   - unknown and in_flight (a request was written and its answer not yet
//     recorded) are replaced by any of these: the webhook proves the
//     provider has the message.
//   - reserved and retrying belong to the send path (no request of theirs
//     was accepted), and skipped messages were never sent: webhooks never
//     change them.
var webhookStatusRank = map[model.MessageStatus]int{
	model.MessageSent:      1,
	model.MessageDelivered: 2,
	model.MessageOpened:    3,
	model.MessageClicked:   4,
}

// statusesReplacedBy returns the statuses a webhook reporting next may
// replace, or nil if next is not a status webhooks report.
func statusesReplacedBy(next model.MessageStatus) []model.MessageStatus {
	switch next {
	case model.MessageSent, model.MessageDelivered, model.MessageOpened, model.MessageClicked:
		out := []model.MessageStatus{model.MessageUnknown, model.MessageInFlight}
		for st, rank := range webhookStatusRank {
			if rank < webhookStatusRank[next] {
				out = append(out, st)
			}
		}
		slices.Sort(out)
		return out
	case model.MessageBounced, model.MessageFailed:
		return []model.MessageStatus{model.MessageUnknown, model.MessageInFlight, model.MessageSent, model.MessageDelivered}
	case model.MessageDropped:
		return []model.MessageStatus{model.MessageUnknown, model.MessageInFlight, model.MessageSent}
	case model.MessageComplained:
		return []model.MessageStatus{model.MessageUnknown, model.MessageInFlight, model.MessageSent, model.MessageDelivered, model.MessageOpened, model.MessageClicked,
			model.MessageBounced, model.MessageDropped, model.MessageFailed}
	}
	return nil
}

// advanceMessageStatus applies the rules above to message id on q and
// returns the row (changed or not) and whether it changed.
func advanceMessageStatus(ctx context.Context, q rowQuerier, id string, status model.MessageStatus, reason string) (Message, bool, error) {
	from := statusesReplacedBy(status)
	if from == nil {
		return Message{}, false, fmt.Errorf("message %s: a provider webhook cannot set status %q", id, status)
	}
	m, err := scanMessage(q.QueryRow(ctx, `
		UPDATE messages SET status = $2, status_reason = NULLIF($3, ''), updated_at = now()
		WHERE id = $1 AND status = ANY($4)
		RETURNING `+messageColumns, id, status, reason, from))
	if err == nil {
		return m, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Message{}, false, fmt.Errorf("message %s: setting status %s: %w", id, status, err)
	}
	m, err = scanMessage(q.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
	if err != nil {
		return Message{}, false, notFound(err, "message %s", id)
	}
	return m, false, nil
}

// AdvanceMessageStatus moves a message to the status a provider webhook
// reported, if the rules above allow it, with reason as its status_reason.
// It returns the row, changed or not, and whether it changed. Unknown id is
// ErrNotFound.
func (s *Store) AdvanceMessageStatus(ctx context.Context, id string, status model.MessageStatus, reason string) (Message, bool, error) {
	return advanceMessageStatus(ctx, s.pool, id, status, reason)
}

// markEngaged is MarkEngaged on q.
func markEngaged(ctx context.Context, q rowQuerier, contactID, messageID string, at time.Time) error {
	var one int
	err := q.QueryRow(ctx, `
		UPDATE contacts SET last_engaged_at = GREATEST(COALESCE(last_engaged_at, $2), $2)
		WHERE id = $1 RETURNING 1`, contactID, at).Scan(&one)
	if err != nil {
		return notFound(err, "mark contact %s engaged", contactID)
	}
	if messageID == "" {
		return nil
	}
	err = q.QueryRow(ctx, `
		UPDATE messages SET engaged_at = LEAST(COALESCE(engaged_at, $3), $3)
		WHERE id = $1 AND contact_id = $2 RETURNING 1`, messageID, contactID, at).Scan(&one)
	if err != nil {
		return notFound(err, "mark message %s of contact %s engaged", messageID, contactID)
	}
	return nil
}

// MarkEngaged records an engagement (an open, a click, a reply) at at: the
// contact's last_engaged_at becomes the later of its value and at, which is
// what the "unengaged" rule reads, and, when messageID is set, the message's
// engaged_at becomes the earlier of its value and at (when the message was
// first engaged with). Both only move in one direction, so a late or repeated
// webhook changes nothing. An unknown contact, or a message that is not the
// contact's, is ErrNotFound.
func (s *Store) MarkEngaged(ctx context.Context, contactID, messageID string, at time.Time) error {
	if at.IsZero() {
		return errors.New("mark engaged: time is required")
	}
	return markEngaged(ctx, s.pool, contactID, messageID, at)
}

// ProviderEffects is what a provider event changes. Every field is optional.
type ProviderEffects struct {
	// MessageStatus moves the event's message (ProviderEvent.MessageID) to
	// this status under AdvanceMessageStatus's rules, with StatusReason.
	MessageStatus model.MessageStatus
	StatusReason  string
	// Engaged marks the event's contact (and message) engaged at OccurredAt.
	Engaged bool
	// Suppression is added (idempotently) for the event's contact.
	Suppression *Suppression
	// Consents are recorded for the event's contact, in order.
	Consents []ConsentChange
	// Event is stored as a behaviour event of the event's contact
	// (idempotent by its id), for journeys to wait for.
	Event *Event
}

// ProviderEventResult is what ApplyProviderEvent did.
type ProviderEventResult struct {
	// New is false when the event was already stored: nothing was changed
	// and the other fields are zero.
	New bool
	// Message is the event's ledger row after the update (when MessageID
	// was set), and StatusChanged whether the update applied.
	Message       *Message
	StatusChanged bool
	// Suppression is the active suppression row, and SuppressionCreated
	// whether this event added it.
	Suppression        *Suppression
	SuppressionCreated bool
	// Consents holds, per recorded change, the resulting current consent.
	Consents []Consent
	// Event is the stored behaviour event.
	Event *Event
	// Deliveries counts the deliveries stored with the event: a consent
	// delivery per channel-level consent change (when the contact has
	// running journeys) and the behaviour event's own.
	Deliveries int
}

// ApplyProviderEvent records a provider event and its effects in one
// transaction: if (provider, event id) is already stored, nothing changes
// and New is false; otherwise the event row, the ledger status, the
// engagement times, the suppression, the consent changes with their
// pending deliveries (as TrackConsentChange stores them: the consent in
// force, for the contact's running journeys) and the behaviour event with
// its pending deliveries (as TrackEvent stores them: a signal to the
// contact's running journeys, a start of each journey it triggers) all
// commit together or not at all, so a webhook that fails halfway is
// retried from scratch and a redelivered one changes nothing (its
// deliveries were stored with the first).
//
// The contact row is locked first, as the send gate does, so a send decision
// for the contact waits for an opt-out or bounce being applied (and the other
// way round), and the two cannot deadlock. The behaviour event then takes
// the contact's delivery lock (insertEventWithDeliveries); TrackEvent takes
// that lock first (with other contacts' in a shared transaction, before
// any row) and only a key-share lock on the contact row after it,
// which the row lock taken here does not block, so no cycle forms. A
// consent change takes the same delivery lock after the same row lock.
func (s *Store) ApplyProviderEvent(ctx context.Context, e ProviderEvent, fx ProviderEffects) (ProviderEventResult, error) {
	if err := checkProviderEvent(e); err != nil {
		return ProviderEventResult{}, err
	}
	needsContact := fx.Engaged || fx.Suppression != nil || len(fx.Consents) > 0 || fx.Event != nil
	if needsContact && e.ContactID == "" {
		return ProviderEventResult{}, fmt.Errorf("provider event %s/%s: its effects need a contact", e.Provider, e.EventID)
	}
	if fx.MessageStatus != "" && e.MessageID == "" {
		return ProviderEventResult{}, fmt.Errorf("provider event %s/%s: a status update needs a message", e.Provider, e.EventID)
	}
	for _, c := range fx.Consents {
		if c.ContactID != "" && c.ContactID != e.ContactID {
			return ProviderEventResult{}, fmt.Errorf("provider event %s/%s: consent change for another contact", e.Provider, e.EventID)
		}
		c.ContactID = e.ContactID
		if err := checkConsentChange(c); err != nil {
			return ProviderEventResult{}, err
		}
	}
	at := e.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}

	var res ProviderEventResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = ProviderEventResult{}
		if e.ContactID != "" {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR NO KEY UPDATE`, e.ContactID).Scan(&one)
			if err != nil {
				return notFound(err, "provider event %s/%s: contact %s", e.Provider, e.EventID, e.ContactID)
			}
		}
		inserted, err := insertProviderEvent(ctx, tx, e)
		if err != nil || !inserted {
			return err
		}
		res.New = true

		if e.MessageID != "" {
			var m Message
			if fx.MessageStatus != "" {
				m, res.StatusChanged, err = advanceMessageStatus(ctx, tx, e.MessageID, fx.MessageStatus, fx.StatusReason)
			} else {
				m, err = scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, e.MessageID))
				if err != nil {
					err = notFound(err, "message %s", e.MessageID)
				}
			}
			if err != nil {
				return fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
			}
			res.Message = &m
		}
		if fx.Engaged {
			if err := markEngaged(ctx, tx, e.ContactID, e.MessageID, at); err != nil {
				return fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
			}
		}
		if fx.Suppression != nil {
			sp := *fx.Suppression
			sp.ContactID = e.ContactID
			row, created, err := addSuppression(ctx, tx, sp)
			if err != nil {
				return fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
			}
			res.Suppression, res.SuppressionCreated = &row, created
		}
		for _, c := range fx.Consents {
			c.ContactID = e.ContactID
			ev, cur, err := recordConsentChange(ctx, tx, c)
			if err == nil {
				var n int
				n, err = insertConsentDelivery(ctx, tx, ev, cur)
				res.Deliveries += n
			}
			if err == nil {
				err = s.markFitChanged(ctx, tx, e.ContactID)
			}
			if err != nil {
				return fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
			}
			res.Consents = append(res.Consents, cur)
		}
		if fx.Event != nil {
			ev := *fx.Event
			ev.ContactID = e.ContactID
			if ev.OccurredAt.IsZero() {
				ev.OccurredAt = at
			}
			stored, inserted, err := s.insertEventWithDeliveries(ctx, tx, ev)
			if err == nil && inserted {
				var n int
				err = tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE event_id = $1`, stored.ID).Scan(&n)
				res.Deliveries += n
			}
			if err != nil {
				return fmt.Errorf("provider event %s/%s: %w", e.Provider, e.EventID, err)
			}
			res.Event = &stored
		}
		return nil
	})
	if err != nil {
		return ProviderEventResult{}, err
	}
	// Also for a redelivered event: the first delivery's answer may not
	// have reached the provider.
	if err := s.settleOptOut(ctx, e.ContactID, fx.Consents); err != nil {
		return ProviderEventResult{}, err
	}
	return res, nil
}
