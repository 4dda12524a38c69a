package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/tutti-dev/tutti/internal/engagement"
	"github.com/tutti-dev/tutti/internal/journey"
)

// SendChoice is what a send step chose before it sent (send_time: best,
// channel: best), keyed like its ledger row.
type SendChoice struct {
	IdempotencyKey string          `json:"idempotency_key"`
	ContactID      string          `json:"contact_id"`
	JourneyID      string          `json:"journey_id"`
	StepID         string          `json:"step_id"`
	Channel        journey.Channel `json:"channel"`
	// SendAt is the chosen instant (send_time: best), else nil.
	SendAt   *time.Time          `json:"send_at,omitempty"`
	Evidence engagement.Evidence `json:"evidence"`
	ChosenAt time.Time           `json:"chosen_at"`
}

const sendChoiceColumns = `idempotency_key, contact_id, journey_id, step_id, channel, send_at, evidence, chosen_at`

func scanSendChoice(r rowScanner) (SendChoice, error) {
	var c SendChoice
	if err := r.Scan(&c.IdempotencyKey, &c.ContactID, &c.JourneyID, &c.StepID, &c.Channel, &c.SendAt, &c.Evidence, &c.ChosenAt); err != nil {
		return SendChoice{}, err
	}
	c.SendAt, c.ChosenAt = utcPtr(c.SendAt), c.ChosenAt.UTC()
	return c, nil
}

// RecordSendChoice stores c unless its key already has a choice, and
// returns the stored one: a retried choice keeps its first answer.
func (s *Store) RecordSendChoice(ctx context.Context, c SendChoice) (SendChoice, error) {
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO send_choices (idempotency_key, contact_id, journey_id, step_id, channel, send_at, evidence)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (idempotency_key) DO NOTHING`,
		c.IdempotencyKey, c.ContactID, c.JourneyID, c.StepID, c.Channel, c.SendAt, c.Evidence); err != nil {
		if _, fk := foreignKeyViolation(err); fk {
			return SendChoice{}, fmt.Errorf("record send choice %s: contact %s: %w", c.IdempotencyKey, c.ContactID, ErrNotFound)
		}
		return SendChoice{}, fmt.Errorf("record send choice %s: %w", c.IdempotencyKey, err)
	}
	return s.SendChoice(ctx, c.IdempotencyKey)
}

// SendChoice is the choice stored for a send's idempotency key.
func (s *Store) SendChoice(ctx context.Context, key string) (SendChoice, error) {
	return queryOne(ctx, s.pool, "send choice "+key, scanSendChoice,
		`SELECT `+sendChoiceColumns+` FROM send_choices WHERE idempotency_key = $1`, key)
}

// SendChoicesForStep lists the choices made for a contact's step of a
// journey, newest first.
func (s *Store) SendChoicesForStep(ctx context.Context, contactID, journeyID, stepID string, limit int) ([]SendChoice, error) {
	return queryAll(ctx, s.pool, "send choices of "+contactID, scanSendChoice, `
		SELECT `+sendChoiceColumns+` FROM send_choices
		WHERE contact_id = $1 AND journey_id = $2 AND step_id = $3
		ORDER BY chosen_at DESC, idempotency_key DESC LIMIT $4`,
		contactID, journeyID, stepID, listLimit(limit))
}

// EngagementTimes lists when the contact's engagement events (names) since
// since occurred, newest first, at most limit of them.
func (s *Store) EngagementTimes(ctx context.Context, contactID string, names []string, since time.Time, limit int) ([]time.Time, error) {
	return queryAll(ctx, s.pool, "engagement of "+contactID, func(r rowScanner) (time.Time, error) {
		var t time.Time
		err := r.Scan(&t)
		return t.UTC(), err
	}, `
		SELECT occurred_at FROM events
		WHERE contact_id = $1 AND name = ANY($2) AND occurred_at >= $3
		ORDER BY occurred_at DESC LIMIT $4`,
		contactID, names, since, limit)
}

// ZoneHour counts engagement events of contacts with one time zone
// setting ("" for none) in one hour of the clock.
type ZoneHour struct {
	TimeZone string
	Hour     time.Time
	Count    int
}

// WorkspaceEngagementHours counts every contact's engagement events
// (names) since since by the contact's time zone setting and hour of the
// clock: enough to put each in its local hour-of-week cell exactly, DST
// included, in far fewer rows than the events.
func (s *Store) WorkspaceEngagementHours(ctx context.Context, names []string, since time.Time) ([]ZoneHour, error) {
	return queryAll(ctx, s.pool, "workspace engagement hours", func(r rowScanner) (ZoneHour, error) {
		var z ZoneHour
		err := r.Scan(&z.TimeZone, &z.Hour, &z.Count)
		z.Hour = z.Hour.UTC()
		return z, err
	}, `
		SELECT coalesce(c.time_zone, ''), date_trunc('hour', e.occurred_at, 'UTC'), count(*)
		FROM events e JOIN contacts c ON c.id = e.contact_id
		WHERE e.name = ANY($1) AND e.occurred_at >= $2
		GROUP BY 1, 2`, names, since)
}

// EngagedMessages counts the engagement events (names) since since: the
// contact's, or the workspace's when contactID is "". Events that name
// their message (email opens and clicks) count once per message, so an
// email opened three times and clicked is one engaged message.
func (s *Store) EngagedMessages(ctx context.Context, contactID string, names []string, since time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		SELECT count(DISTINCT coalesce(properties->>'message_id', id)) FROM events
		WHERE ($1 = '' OR contact_id = $1) AND name = ANY($2) AND occurred_at >= $3`,
		contactID, names, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("engaged messages of %q: %w", contactID, err)
	}
	return n, nil
}

// SentCounts counts the messages that reached a provider since since, by
// channel: the contact's, or the workspace's when contactID is "".
func (s *Store) SentCounts(ctx context.Context, contactID string, since time.Time) (map[journey.Channel]int, error) {
	rows, err := queryAll(ctx, s.pool, "sent counts", func(r rowScanner) (struct {
		ch journey.Channel
		n  int
	}, error) {
		var v struct {
			ch journey.Channel
			n  int
		}
		err := r.Scan(&v.ch, &v.n)
		return v, err
	}, `
		SELECT channel, count(*) FROM messages
		WHERE ($1 = '' OR contact_id = $1) AND created_at >= $2
		  AND status IN ('sent', 'delivered', 'opened', 'clicked', 'complained')
		GROUP BY channel`, contactID, since)
	if err != nil {
		return nil, err
	}
	out := map[journey.Channel]int{}
	for _, r := range rows {
		out[r.ch] = r.n
	}
	return out, nil
}
