package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/attribution"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Attribution reads conversions and the touchpoints before them for
// internal/attribution, in one statement over all of a period's
// conversions (no query per conversion or per contact).
//
// A conversion is an event with the given name that occurred in [From,
// To): each such event is one conversion, so a contact who buys twice
// converts twice. Its contact's touchpoints are, with the timestamps
// used:
//
//   - send: a ledger row a provider accepted and that was not bounced
//     (sent, delivered, opened, clicked, complained), at its sent_at, or
//     created_at when the row has none (a row is written just before the
//     provider call); channel, journey and step are the row's. A webhook
//     step's post is not a touchpoint: it reaches a system, not the
//     contact.
//   - open, click: a SendGrid open or click stored by the webhook
//     (provider_events email.opened, email.clicked; machine opens are
//     stored as email.opened.machine and do not count), at the time
//     SendGrid gives for it, credited to the message's journey and step.
//     Repeated opens (clicks) of one message are one touchpoint
//     (attribution.Attribute keeps the latest in the window).
//   - reply: an inbound SMS that is not a keyword (provider_events
//     sms.replied), at when the webhook received it, credited to the
//     journey and step of the latest SMS accepted for the contact at or
//     before it within the lookback, else to no journey.
//   - audience: a membership period of an ad audience, from an add the
//     platform applied (audience_ledger, result applied) to the next
//     applied remove, at the ledger's times (when the batch was
//     answered); credited to the journey step that asked for the add
//     (desired_by "journey:<journey>/<step>", recorded from migration
//     00020), else to no journey. Channel ads.
//
// A touchpoint counts for a conversion if it happened in the lookback
// before it, (at - lookback, at]; a period if it overlapped that window.
const attributionTouches = `
	WITH conv AS MATERIALIZED (
		SELECT id, contact_id, occurred_at AS at FROM events
		WHERE name = $1 AND occurred_at >= $2 AND occurred_at < $3
	),
	who AS MATERIALIZED (SELECT DISTINCT contact_id FROM conv),
	ledger AS (
		SELECT l.id, l.audience_id, l.contact_id, l.action, l.at, l.desired_by,
		       lag(l.action) OVER w AS prev,
		       min(l.at) FILTER (WHERE l.action = 'remove')
		           OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS removed_at
		FROM audience_ledger l
		WHERE l.result = 'applied' AND l.contact_id IN (SELECT contact_id FROM who)
		WINDOW w AS (PARTITION BY l.audience_id, l.contact_id ORDER BY l.at, l.id)
	),
	touches AS (
		SELECT m.contact_id, 'send' AS kind, 'send:' || m.id AS id, m.channel, m.journey_id, m.step_id,
		       COALESCE(m.sent_at, m.created_at) AS at, COALESCE(m.sent_at, m.created_at) AS upto, NULL::timestamptz AS until
		FROM messages m
		WHERE m.contact_id IN (SELECT contact_id FROM who) AND m.status = ANY($5) AND m.channel <> 'webhook'
		  AND COALESCE(m.sent_at, m.created_at) > $2 - $4::interval AND COALESCE(m.sent_at, m.created_at) < $3
		UNION ALL
		SELECT m.contact_id, CASE pe.kind WHEN 'email.opened' THEN 'open' ELSE 'click' END,
		       CASE pe.kind WHEN 'email.opened' THEN 'open:' ELSE 'click:' END || m.id,
		       m.channel, m.journey_id, m.step_id, pe.occurred_at, pe.occurred_at, NULL
		FROM provider_events pe JOIN messages m ON m.id = pe.message_id
		WHERE pe.contact_id IN (SELECT contact_id FROM who) AND pe.kind IN ('email.opened', 'email.clicked')
		  AND pe.occurred_at > $2 - $4::interval AND pe.occurred_at < $3
		UNION ALL
		SELECT pe.contact_id, 'reply', 'reply:' || pe.provider || ':' || pe.event_id, 'sms',
		       COALESCE(sms.journey_id, ''), COALESCE(sms.step_id, ''), pe.occurred_at, pe.occurred_at, NULL
		FROM provider_events pe
		LEFT JOIN LATERAL (
		    SELECT m.journey_id, m.step_id FROM messages m
		    WHERE m.contact_id = pe.contact_id AND m.channel = 'sms' AND m.status = ANY($5)
		      AND COALESCE(m.sent_at, m.created_at) <= pe.occurred_at
		      AND COALESCE(m.sent_at, m.created_at) > pe.occurred_at - $4::interval
		    ORDER BY COALESCE(m.sent_at, m.created_at) DESC, m.id DESC LIMIT 1
		) sms ON true
		WHERE pe.contact_id IN (SELECT contact_id FROM who) AND pe.kind = 'sms.replied'
		  AND pe.occurred_at > $2 - $4::interval AND pe.occurred_at < $3
		UNION ALL
		SELECT l.contact_id, 'audience', 'audience:' || l.audience_id || ':' || l.id, 'ads',
		       COALESCE(substring(l.desired_by FROM '^journey:([^/]*)/'), ''),
		       COALESCE(substring(l.desired_by FROM '^journey:[^/]*/(.*)$'), ''),
		       l.at, COALESCE(l.removed_at, 'infinity'), l.removed_at
		FROM ledger l
		WHERE l.action = 'add' AND l.prev IS DISTINCT FROM 'add'
		  AND l.at < $3 AND (l.removed_at IS NULL OR l.removed_at > $2 - $4::interval)
	)
	SELECT c.id, c.contact_id, c.at, t.kind, t.id, t.channel, t.journey_id, t.step_id, t.at, t.until
	FROM conv c
	LEFT JOIN touches t ON t.contact_id = c.contact_id AND t.at <= c.at AND t.upto > c.at - $4::interval
	ORDER BY c.contact_id, c.at, c.id`

// AttributionQuery names the conversions of a report.
type AttributionQuery struct {
	// Event is the conversion event's name; From and To bound when it
	// occurred, [From, To).
	Event    string
	From, To time.Time
	// Lookback is how long before a conversion a touchpoint counts
	// (attribution.DefaultLookback if zero).
	Lookback time.Duration
}

// touchStatuses are the ledger statuses that mean the message reached
// the contact as far as Tutti knows: accepted and not bounced.
func touchStatuses() []string {
	var out []string
	for _, st := range sentStatuses() {
		if st != string(model.MessageBounced) {
			out = append(out, st)
		}
	}
	return out
}

// AttributionConversions calls fn with each conversion of q and the
// touchpoints of its contact in its lookback window (none: unattributed),
// in order of contact, then time. It streams: only one conversion's
// touchpoints are held at a time. An error from fn stops it and is
// returned.
func (s *Store) AttributionConversions(ctx context.Context, q AttributionQuery, fn func(attribution.Conversion) error) error {
	if q.Event == "" {
		return errors.New("attribution: the conversion event is required")
	}
	if !q.From.Before(q.To) {
		return fmt.Errorf("attribution: from %s is not before to %s", q.From, q.To)
	}
	if q.Lookback <= 0 {
		q.Lookback = attribution.DefaultLookback
	}
	what := fmt.Sprintf("attribution of %s", q.Event)
	var cur attribution.Conversion
	flush := func() error {
		if cur.ID == "" {
			return nil
		}
		err := fn(cur)
		cur = attribution.Conversion{}
		return err
	}
	err := reportRows(ctx, s.pool, what, func(r pgx.Rows) error {
		var (
			id, contactID                 string
			at                            time.Time
			kind, tid, channel, jid, step *string
			tat, until                    *time.Time
		)
		if err := r.Scan(&id, &contactID, &at, &kind, &tid, &channel, &jid, &step, &tat, &until); err != nil {
			return err
		}
		if id != cur.ID {
			if err := flush(); err != nil {
				return err
			}
			cur = attribution.Conversion{ID: id, ContactID: contactID, At: at}
		}
		if kind == nil {
			return nil
		}
		t := attribution.Touch{ID: *tid, Kind: *kind, Channel: journey.Channel(*channel), Journey: *jid, Step: *step, At: *tat}
		if until != nil {
			t.Until = *until
		}
		cur.Touches = append(cur.Touches, t)
		return nil
	}, attributionTouches, q.Event, q.From, q.To, q.Lookback, touchStatuses())
	if err != nil {
		return err
	}
	return flush()
}

// AttributionTotals are a period's conversions attributed by every model
// asked for.
type AttributionTotals struct {
	*attribution.Tally
	// Contacts counts the distinct contacts who converted.
	Contacts int
}

// Attribution attributes q's conversions by models (all if none) with
// opts (whose lookback is q's) and sums the credit by channel, journey
// and step.
func (s *Store) Attribution(ctx context.Context, q AttributionQuery, models []attribution.Model, halfLife time.Duration) (AttributionTotals, error) {
	if q.Lookback <= 0 {
		q.Lookback = attribution.DefaultLookback
	}
	tally, err := attribution.NewTally(models, attribution.Options{Lookback: q.Lookback, HalfLife: halfLife})
	if err != nil {
		return AttributionTotals{}, err
	}
	out := AttributionTotals{Tally: tally}
	last := ""
	err = s.AttributionConversions(ctx, q, func(c attribution.Conversion) error {
		if c.ContactID != last {
			out.Contacts++
			last = c.ContactID
		}
		return tally.Add(c.At, c.Touches)
	})
	if err != nil {
		return AttributionTotals{}, err
	}
	return out, nil
}
