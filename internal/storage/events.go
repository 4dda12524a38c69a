package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
)

const eventColumns = `id, contact_id, name, properties, occurred_at, received_at`

func scanEvent(r rowScanner) (Event, error) {
	var e Event
	if err := r.Scan(&e.ID, &e.ContactID, &e.Name, &e.Properties, &e.OccurredAt, &e.ReceivedAt); err != nil {
		return Event{}, err
	}
	e.Properties = nonNilMap(e.Properties)
	e.OccurredAt, e.ReceivedAt = e.OccurredAt.UTC(), e.ReceivedAt.UTC()
	return e, nil
}

// InsertEvent stores a tracked event. The id is the client's idempotency key:
// if an event with this id exists for the same contact and name, the stored
// event is returned with inserted false (a retried POST is a no-op, and the
// caller must not trigger journeys again); if it exists for another contact
// or name the id was reused by mistake, which is ErrEventConflict. An empty
// id gets a generated one, a zero OccurredAt means now, and an unknown
// contact is ErrNotFound.
func (s *Store) InsertEvent(ctx context.Context, e Event) (Event, bool, error) {
	return insertEvent(ctx, s.pool, e)
}

// insertEvent is InsertEvent on q: the pool, or a transaction that other
// writes commit with.
func insertEvent(ctx context.Context, q rowQuerier, e Event) (Event, bool, error) {
	if e.Name == "" {
		return Event{}, false, errors.New("insert event: name is required")
	}
	if e.ID == "" {
		e.ID = newID("ev_")
	}
	props := e.Properties
	if props == nil {
		props = map[string]any{}
	}
	stored, err := scanEvent(q.QueryRow(ctx, `
		INSERT INTO events (id, contact_id, name, properties, occurred_at)
		VALUES ($1, $2, $3, $4, COALESCE($5, now()))
		ON CONFLICT (id) DO NOTHING
		RETURNING `+eventColumns,
		e.ID, e.ContactID, e.Name, props, timeOrNow(e.OccurredAt)))
	if err == nil {
		return stored, true, nil
	}
	if _, fk := foreignKeyViolation(err); fk {
		return Event{}, false, fmt.Errorf("insert event %s: contact %s: %w", e.ID, e.ContactID, ErrNotFound)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Event{}, false, fmt.Errorf("insert event %s: %w", e.ID, err)
	}

	// DO NOTHING returned no row: the id exists. Events are never deleted
	// except with their contact, so the row is there to read.
	stored, err = scanEvent(q.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1`, e.ID))
	if err != nil {
		return Event{}, false, fmt.Errorf("insert event %s: reading the existing event: %w", e.ID, err)
	}
	if stored.ContactID != e.ContactID || stored.Name != e.Name {
		return Event{}, false, fmt.Errorf("insert event %s: stored as %q for contact %s, got %q for contact %s: %w",
			e.ID, stored.Name, stored.ContactID, e.Name, e.ContactID, ErrEventConflict)
	}
	return stored, false, nil
}

// Event returns the event with this id, or ErrNotFound.
func (s *Store) Event(ctx context.Context, id string) (Event, error) {
	return queryOne(ctx, s.pool, "event "+id, scanEvent, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id)
}

// EventsForContact returns the contact's most recent events, newest first
// (by occurrence). limit <= 0 means a default page of 100.
func (s *Store) EventsForContact(ctx context.Context, contactID string, limit int) ([]Event, error) {
	return queryAll(ctx, s.pool, "events of contact "+contactID, scanEvent, `
		SELECT `+eventColumns+` FROM events
		WHERE contact_id = $1
		ORDER BY occurred_at DESC, received_at DESC, id DESC
		LIMIT $2`, contactID, listLimit(limit))
}

// BehaviourEvents returns what a behaviour condition reads of a contact's
// stored events (journey.Behaviour): those with one of names (every name
// when all), newest first, at most limit of them; truncated says the
// contact has more. The events_contact index serves it in that order.
func (s *Store) BehaviourEvents(ctx context.Context, contactID string, names []string, all bool, limit int) (events []journey.StoredEvent, truncated bool, err error) {
	if !all && len(names) == 0 {
		return nil, false, nil
	}
	var filter []string
	if !all {
		filter = names
	}
	rows, err := s.pool.Query(ctx, `
		SELECT name, occurred_at, properties FROM events
		WHERE contact_id = $1 AND ($2::text[] IS NULL OR name = ANY($2::text[]))
		ORDER BY occurred_at DESC
		LIMIT $3`, contactID, filter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("behaviour events of contact %s: %w", contactID, err)
	}
	events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (journey.StoredEvent, error) {
		var e journey.StoredEvent
		err := r.Scan(&e.Name, &e.OccurredAt, &e.Properties)
		e.OccurredAt = e.OccurredAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("behaviour events of contact %s: %w", contactID, err)
	}
	if len(events) > limit {
		return events[:limit], true, nil
	}
	return events, false, nil
}
