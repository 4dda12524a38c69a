package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
)

// InsertSandboxMessage stores what the sandbox provider would have sent, in
// full, for a ledger row. An empty id gets a generated one; an unknown
// message id is ErrNotFound.
func (s *Store) InsertSandboxMessage(ctx context.Context, sm SandboxMessage) error {
	if sm.ID == "" {
		sm.ID = newID("sb_")
	}
	payload := sm.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO sandbox_messages (id, message_id, channel, recipient, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))`,
		sm.ID, sm.MessageID, sm.Channel, sm.Recipient, payload, timeOrNow(sm.CreatedAt))
	if _, fk := foreignKeyViolation(err); fk {
		return fmt.Errorf("insert sandbox message %s: message %s: %w", sm.ID, sm.MessageID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("insert sandbox message %s: %w", sm.ID, err)
	}
	return nil
}

// RecordSandbox is InsertSandboxMessage in the shape of provider.Recorder, so
// the sandbox provider can record straight into the Store.
func (s *Store) RecordSandbox(ctx context.Context, messageID, channel, recipient string, payload map[string]any) error {
	return s.InsertSandboxMessage(ctx, SandboxMessage{
		MessageID: messageID,
		Channel:   journey.Channel(channel),
		Recipient: recipient,
		Payload:   payload,
	})
}

// SandboxMessageByID reports whether the sandbox recorded a message for
// messageID, and when (the earliest recording, should there be several). It
// is provider.Recorder's read-back: the sandbox's answer to "did an ambiguous
// send go out?" is exact.
func (s *Store) SandboxMessageByID(ctx context.Context, messageID string) (time.Time, bool, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT created_at FROM sandbox_messages
		WHERE message_id = $1
		ORDER BY created_at, id
		LIMIT 1`, messageID).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sandbox message for %s: %w", messageID, err)
	}
	return at.UTC(), true, nil
}

// SandboxMessages returns the sandbox outbox, newest first: the contact's
// messages, or everyone's when contactID is "". limit <= 0 means a default
// page of 100.
func (s *Store) SandboxMessages(ctx context.Context, contactID string, limit int) ([]SandboxMessage, error) {
	return queryAll(ctx, s.pool, "sandbox messages", scanSandboxMessage, `
		SELECT sb.id, sb.message_id, m.contact_id, m.journey_id, m.step_id, sb.channel, sb.recipient, sb.payload, sb.created_at
		FROM sandbox_messages sb
		JOIN messages m ON m.id = sb.message_id
		WHERE $1 = '' OR m.contact_id = $1
		ORDER BY sb.created_at DESC, sb.id DESC
		LIMIT $2`, contactID, listLimit(limit))
}

func scanSandboxMessage(r rowScanner) (SandboxMessage, error) {
	var sm SandboxMessage
	if err := r.Scan(&sm.ID, &sm.MessageID, &sm.ContactID, &sm.JourneyID, &sm.StepID, &sm.Channel, &sm.Recipient, &sm.Payload, &sm.CreatedAt); err != nil {
		return SandboxMessage{}, err
	}
	sm.Payload = nonNilMap(sm.Payload)
	sm.CreatedAt = sm.CreatedAt.UTC()
	return sm, nil
}
