package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Suppression is one suppression row. JourneyID "" means every journey and
// Channel "" every channel.
type Suppression struct {
	ID        string                  `json:"id"`
	ContactID string                  `json:"contact_id"`
	Reason    model.SuppressionReason `json:"reason"`
	JourneyID string                  `json:"journey_id,omitempty"`
	Channel   journey.Channel         `json:"channel,omitempty"`
	Source    string                  `json:"source"`
	Note      string                  `json:"note,omitempty"`
	CreatedAt time.Time               `json:"created_at"`
	ExpiresAt *time.Time              `json:"expires_at,omitempty"`
	LiftedAt  *time.Time              `json:"lifted_at,omitempty"`
	LiftedBy  string                  `json:"lifted_by,omitempty"`
}

// Active reports whether the suppression is in force at now.
func (sp Suppression) Active(now time.Time) bool {
	return sp.LiftedAt == nil && (sp.ExpiresAt == nil || sp.ExpiresAt.After(now))
}

const suppressionColumns = `id, contact_id, reason, COALESCE(journey_id, ''), COALESCE(channel, ''), source, COALESCE(note, ''),
	created_at, expires_at, lifted_at, COALESCE(lifted_by, '')`

func scanSuppression(r rowScanner) (Suppression, error) {
	var sp Suppression
	if err := r.Scan(&sp.ID, &sp.ContactID, &sp.Reason, &sp.JourneyID, &sp.Channel, &sp.Source, &sp.Note,
		&sp.CreatedAt, &sp.ExpiresAt, &sp.LiftedAt, &sp.LiftedBy); err != nil {
		return Suppression{}, err
	}
	sp.CreatedAt, sp.ExpiresAt, sp.LiftedAt = sp.CreatedAt.UTC(), utcPtr(sp.ExpiresAt), utcPtr(sp.LiftedAt)
	return sp, nil
}

// AddSuppression suppresses a contact. It is idempotent: if an active row
// with the same (reason, journey, channel) exists, that row is returned and
// created is false (a second hard bounce does not add a second row). An
// unknown contact is ErrNotFound.
func (s *Store) AddSuppression(ctx context.Context, sp Suppression) (Suppression, bool, error) {
	return addSuppression(ctx, s.pool, sp)
}

// addSuppression is AddSuppression on q: the pool, or a transaction that
// other writes commit with.
func addSuppression(ctx context.Context, q rowQuerier, sp Suppression) (Suppression, bool, error) {
	switch {
	case !sp.Reason.Valid():
		return Suppression{}, false, fmt.Errorf("add suppression: unknown reason %q", sp.Reason)
	case sp.Channel != "" && !validChannel(sp.Channel):
		return Suppression{}, false, fmt.Errorf("add suppression: unknown channel %q", sp.Channel)
	case sp.Source == "":
		return Suppression{}, false, errors.New("add suppression: source is required")
	}
	if sp.ID == "" {
		sp.ID = newID("sup_")
	}
	// A row that expired but was never lifted still holds the "one active
	// row" slot: close it as of its expiry, so the new suppression is added
	// rather than the expired one returned.
	if _, err := q.Exec(ctx, `
		UPDATE suppressions SET lifted_at = expires_at, lifted_by = 'expired'
		WHERE contact_id = $1 AND reason = $2 AND COALESCE(journey_id, '') = $3 AND COALESCE(channel, '') = $4
			AND lifted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= now()`,
		sp.ContactID, sp.Reason, sp.JourneyID, string(sp.Channel)); err != nil {
		return Suppression{}, false, fmt.Errorf("add suppression: closing an expired row: %w", err)
	}
	row, err := scanSuppression(q.QueryRow(ctx, `
		INSERT INTO suppressions (id, contact_id, reason, journey_id, channel, source, note, expires_at)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, NULLIF($7, ''), $8)
		ON CONFLICT (contact_id, reason, COALESCE(journey_id, ''), COALESCE(channel, '')) WHERE lifted_at IS NULL DO NOTHING
		RETURNING `+suppressionColumns,
		sp.ID, sp.ContactID, sp.Reason, sp.JourneyID, string(sp.Channel), sp.Source, sp.Note, sp.ExpiresAt))
	if _, fk := foreignKeyViolation(err); fk {
		return Suppression{}, false, fmt.Errorf("add suppression: contact %s: %w", sp.ContactID, ErrNotFound)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		existing, err := scanSuppression(q.QueryRow(ctx, `
			SELECT `+suppressionColumns+` FROM suppressions
			WHERE contact_id = $1 AND reason = $2 AND COALESCE(journey_id, '') = $3 AND COALESCE(channel, '') = $4
				AND lifted_at IS NULL`, sp.ContactID, sp.Reason, sp.JourneyID, string(sp.Channel)))
		if err != nil {
			return Suppression{}, false, fmt.Errorf("add suppression: reading the active row: %w", err)
		}
		return existing, false, nil
	}
	if err != nil {
		return Suppression{}, false, fmt.Errorf("add suppression for contact %s: %w", sp.ContactID, err)
	}
	return row, true, nil
}

// LiftSuppression ends a suppression, keeping the row as history. Lifting
// an already lifted row returns it unchanged. Unknown id is ErrNotFound.
func (s *Store) LiftSuppression(ctx context.Context, id, by string) (Suppression, error) {
	row, err := scanSuppression(s.pool.QueryRow(ctx, `
		UPDATE suppressions SET lifted_at = now(), lifted_by = NULLIF($2, '')
		WHERE id = $1 AND lifted_at IS NULL
		RETURNING `+suppressionColumns, id, by))
	if errors.Is(err, pgx.ErrNoRows) {
		row, err = scanSuppression(s.pool.QueryRow(ctx, `SELECT `+suppressionColumns+` FROM suppressions WHERE id = $1`, id))
		if err != nil {
			return Suppression{}, notFound(err, "suppression %s", id)
		}
		return row, nil
	}
	if err != nil {
		return Suppression{}, fmt.Errorf("lift suppression %s: %w", id, err)
	}
	return row, nil
}

// Suppressions lists the contact's suppressions, newest first, lifted and
// expired ones included (they are history).
func (s *Store) Suppressions(ctx context.Context, contactID string) ([]Suppression, error) {
	return queryAll(ctx, s.pool, "suppressions of contact "+contactID, scanSuppression, `
		SELECT `+suppressionColumns+` FROM suppressions WHERE contact_id = $1 ORDER BY created_at DESC, id DESC`, contactID)
}
