package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

func validChannel(ch journey.Channel) bool {
	switch ch {
	case journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds:
		return true
	}
	return false
}

const consentEventColumns = `id, contact_id, channel, subscription, status, source, occurred_at, recorded_at`

func scanConsentEvent(r rowScanner) (ConsentEvent, error) {
	var e ConsentEvent
	if err := r.Scan(&e.ID, &e.ContactID, &e.Channel, &e.Subscription, &e.Status, &e.Source, &e.OccurredAt, &e.RecordedAt); err != nil {
		return ConsentEvent{}, err
	}
	e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
	return e, nil
}

const consentColumns = `contact_id, channel, subscription, status, source, occurred_at, consent_event_id`

func scanConsent(r rowScanner) (Consent, error) {
	var c Consent
	if err := r.Scan(&c.ContactID, &c.Channel, &c.Subscription, &c.Status, &c.Source, &c.OccurredAt, &c.ConsentEventID); err != nil {
		return Consent{}, err
	}
	c.OccurredAt = c.OccurredAt.UTC()
	return c, nil
}

// ConsentChange is one consent change to record.
type ConsentChange struct {
	ContactID string
	Channel   journey.Channel
	// Subscription is "" for the channel-level consent, or a subscription
	// type ("newsletter", "product", "promotions"...).
	Subscription string
	Status       model.ConsentStatus
	Source       string
	// OccurredAt is when the contact decided; zero means now.
	OccurredAt time.Time
}

// RecordConsent records a channel-level consent change; see RecordConsentChange.
func (s *Store) RecordConsent(ctx context.Context, contactID string, channel journey.Channel, status model.ConsentStatus, source string, occurredAt time.Time) (ConsentEvent, Consent, error) {
	return s.RecordConsentChange(ctx, ConsentChange{ContactID: contactID, Channel: channel, Status: status, Source: source, OccurredAt: occurredAt})
}

// RecordConsentChange records a consent change for one channel (and
// subscription type): it is appended to the history, and becomes the current
// consent unless the current one occurred later. Changes can arrive out of
// order (a provider webhook delayed behind a newer opt-in from the API);
// ordering by occurredAt rather than by arrival keeps the newest decision in
// force, and the late one still lands in the history. On a tie the
// later-recorded change wins. It returns the new history row and the
// resulting current consent; an unknown contact is ErrNotFound. The change's
// delivery to running journeys is stored with it (see TrackConsentChange).
func (s *Store) RecordConsentChange(ctx context.Context, c ConsentChange) (ConsentEvent, Consent, error) {
	ev, cur, _, err := s.TrackConsentChange(ctx, c)
	return ev, cur, err
}

// TrackConsentChange is RecordConsentChange, also returning how many
// deliveries it stored (0 or 1): a channel-level change stores, in the same
// transaction, a 'consent' delivery for the contact's running journeys
// (insertConsentDelivery), which the dispatcher hands to Temporal after
// every delivery stored before it for the contact. The change is final when
// this returns, delivered or not: opt-outs are settled here (settleOptOut)
// and the send gate reads consent from PostgreSQL, so the delivery only
// ends or updates the runs early.
func (s *Store) TrackConsentChange(ctx context.Context, c ConsentChange) (ConsentEvent, Consent, int, error) {
	if err := checkConsentChange(c); err != nil {
		return ConsentEvent{}, Consent{}, 0, err
	}
	var (
		ev      ConsentEvent
		cur     Consent
		pending int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The contact's lock, as the gate and BeginFlight take it: a send
		// past the gate either wrote its request before this commits (and
		// WaitForFlights below waits for it) or sees this change and stops.
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR NO KEY UPDATE`, c.ContactID).Scan(&one); err != nil {
			return notFound(err, "record consent: contact %s", c.ContactID)
		}
		var err error
		if ev, cur, err = recordConsentChange(ctx, tx, c); err != nil {
			return err
		}
		if pending, err = insertConsentDelivery(ctx, tx, ev, cur); err != nil {
			return err
		}
		return s.markFitChanged(ctx, tx, c.ContactID)
	})
	if err != nil {
		return ConsentEvent{}, Consent{}, 0, err
	}
	if err := s.settleOptOut(ctx, c.ContactID, []ConsentChange{c}); err != nil {
		return ConsentEvent{}, Consent{}, 0, err
	}
	return ev, cur, pending, nil
}

// settleOptOut makes an opt-out final before it is acknowledged: for each
// change that withdraws consent, it waits for the contact's sends on that
// channel already in flight (WaitForFlights). Every send not yet in flight
// re-checks consent under the contact's lock (BeginFlight) and is skipped.
func (s *Store) settleOptOut(ctx context.Context, contactID string, changes []ConsentChange) error {
	waited := map[journey.Channel]bool{}
	for _, c := range changes {
		if c.Status == model.ConsentGranted || waited[c.Channel] {
			continue
		}
		waited[c.Channel] = true
		if err := s.WaitForFlights(ctx, contactID, c.Channel); err != nil {
			return err
		}
	}
	return nil
}

func checkConsentChange(c ConsentChange) error {
	switch {
	case !validChannel(c.Channel):
		return fmt.Errorf("record consent: unknown channel %q", c.Channel)
	case !c.Status.Recordable():
		return fmt.Errorf("record consent: unknown status %q (want granted, revoked or pending)", c.Status)
	case c.Source == "":
		return fmt.Errorf("record consent: source is required")
	}
	return nil
}

// recordConsentChange is RecordConsentChange inside the caller's
// transaction (c already checked), so other writes can commit with it.
func recordConsentChange(ctx context.Context, tx pgx.Tx, c ConsentChange) (ConsentEvent, Consent, error) {
	contactID, channel := c.ContactID, c.Channel
	ev, err := scanConsentEvent(tx.QueryRow(ctx, `
		INSERT INTO consent_events (contact_id, channel, subscription, status, source, occurred_at)
		VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))
		RETURNING `+consentEventColumns,
		contactID, channel, c.Subscription, c.Status, c.Source, timeOrNow(c.OccurredAt)))
	if _, fk := foreignKeyViolation(err); fk {
		return ConsentEvent{}, Consent{}, fmt.Errorf("record consent: contact %s: %w", contactID, ErrNotFound)
	}
	if err != nil {
		return ConsentEvent{}, Consent{}, fmt.Errorf("record consent for contact %s: appending history: %w", contactID, err)
	}
	// The WHERE clause sees the locked, latest version of the row, so two
	// concurrent changes cannot both win. A revoke also wins over a record
	// dated less than a second after it: providers stamp opt-outs in whole
	// seconds (SendGrid's timestamp), so a STOP or an unsubscribe in the
	// same second as a grant may well be the later decision, and when in
	// doubt consent is not assumed. It then keeps the later date, so the
	// order of what follows is unchanged.
	if _, err := tx.Exec(ctx, `
		INSERT INTO consents (contact_id, channel, subscription, status, source, occurred_at, consent_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (contact_id, channel, subscription) DO UPDATE SET
			status = EXCLUDED.status,
			source = EXCLUDED.source,
			occurred_at = GREATEST(consents.occurred_at, EXCLUDED.occurred_at),
			consent_event_id = EXCLUDED.consent_event_id
		WHERE consents.occurred_at <= EXCLUDED.occurred_at
			OR (EXCLUDED.status = 'revoked' AND consents.occurred_at < EXCLUDED.occurred_at + interval '1 second')`,
		ev.ContactID, ev.Channel, ev.Subscription, ev.Status, ev.Source, ev.OccurredAt, ev.ID); err != nil {
		return ConsentEvent{}, Consent{}, fmt.Errorf("record consent for contact %s: updating current consent: %w", contactID, err)
	}
	cur, err := scanConsent(tx.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents WHERE contact_id = $1 AND channel = $2 AND subscription = $3`,
		contactID, channel, c.Subscription))
	if err != nil {
		return ConsentEvent{}, Consent{}, fmt.Errorf("record consent for contact %s: reading current consent: %w", contactID, err)
	}
	return ev, cur, nil
}

// Consents returns the contact's current channel-level consent per channel. A
// channel missing from the map has never had a consent recorded, which
// callers must treat as "no consent". An unknown contact yields an empty map.
func (s *Store) Consents(ctx context.Context, contactID string) (map[journey.Channel]Consent, error) {
	list, err := queryAll(ctx, s.pool, "consents of contact "+contactID, scanConsent,
		`SELECT `+consentColumns+` FROM consents WHERE contact_id = $1 AND subscription = ''`, contactID)
	if err != nil {
		return nil, err
	}
	out := make(map[journey.Channel]Consent, len(list))
	for _, c := range list {
		out[c.Channel] = c
	}
	return out, nil
}

// ConsentHistory returns every consent change of the contact, newest first
// (by when it occurred, then by when it was recorded).
func (s *Store) ConsentHistory(ctx context.Context, contactID string) ([]ConsentEvent, error) {
	return queryAll(ctx, s.pool, "consent history of contact "+contactID, scanConsentEvent, `
		SELECT `+consentEventColumns+` FROM consent_events
		WHERE contact_id = $1
		ORDER BY occurred_at DESC, id DESC`, contactID)
}

// AllConsents returns every current consent of the contact: channel-level
// records and subscription-type records, ordered by channel and subscription.
func (s *Store) AllConsents(ctx context.Context, contactID string) ([]Consent, error) {
	return queryAll(ctx, s.pool, "consents of contact "+contactID, scanConsent,
		`SELECT `+consentColumns+` FROM consents WHERE contact_id = $1 ORDER BY channel, subscription`, contactID)
}
