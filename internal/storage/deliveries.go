package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// Delivery kinds: what a pending delivery asks of Temporal (internal/model
// holds the vocabulary; Delivery.Kind is a plain string).
const (
	// DeliverySignal tells the contact's running journeys about the event.
	DeliverySignal = string(model.DeliverySignal)
	// DeliveryStart enrolls the contact in a journey the event triggers.
	DeliveryStart = string(model.DeliveryStart)
	// DeliveryConsent tells the contact's running journeys the consent in
	// force after a channel-level change (migration 00007).
	DeliveryConsent = string(model.DeliveryConsent)
	// DeliveryExit asks one run to end: support's exit request.
	DeliveryExit = string(model.DeliveryExit)
	// DeliveryEnroll starts the run of an enrollment recorded with it
	// (RecordEnrollmentToStart, migration 00024).
	DeliveryEnroll = string(model.DeliveryEnroll)
)

// Delivery is one row of the outbox (migrations 00006 and 00007): what an
// event, a consent change or an exit request must still do in Temporal.
// Each kind fills its own fields: signal and start have Event (and start
// JourneyID and JourneyVersion), consent has Channel, ConsentStatus and
// ConsentEventID, exit has ExitRequestID and WorkflowID, enroll has
// EnrollmentID, JourneyID and JourneyVersion.
type Delivery struct {
	ID        int64  `json:"id"`
	Kind      string `json:"kind"`
	ContactID string `json:"contact_id"`
	// Event is absent (zero) for a consent or exit delivery.
	Event          Event               `json:"event,omitzero"`
	JourneyID      string              `json:"journey_id,omitempty"`
	JourneyVersion int                 `json:"journey_version,omitempty"`
	Channel        journey.Channel     `json:"channel,omitempty"`
	ConsentStatus  model.ConsentStatus `json:"consent_status,omitempty"`
	ConsentEventID int64               `json:"consent_event_id,omitempty"`
	ExitRequestID  string              `json:"exit_request_id,omitempty"`
	WorkflowID     string              `json:"workflow_id,omitempty"`
	// EnrollmentID is the enrollment whose run an enroll delivery starts.
	EnrollmentID  string    `json:"enrollment_id,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
	// Batched are the contact's next pending 'signal' deliveries, claimed
	// with this one when it is a 'signal' too (ClaimDeliveries): delivered
	// with it, as one signal per run, and finished with it.
	Batched []Delivery `json:"-"`
}

// MaxSignalBatch bounds the 'signal' deliveries claimed together (a head
// and what is batched with it): one signal carries their events, so a
// flood of one contact's events reaches its runs as a hundredth of the
// signals, workflow tasks and history events.
const MaxSignalBatch = 100

// batchToken is the claim token of one claimed delivery and its batch.
func batchToken(token string, id int64) string { return fmt.Sprintf("%s/%d", token, id) }

// deliveryColumns read a delivery left-joined with its event (d, e): the
// event columns are NULL for a consent or exit delivery.
const deliveryColumns = `d.id, d.kind, d.journey_id, d.journey_version, d.created_at, d.attempts, d.next_attempt_at, d.last_error,
	e.id, e.contact_id, e.name, e.occurred_at, e.received_at,
	d.contact_id, d.channel, d.consent_status, d.consent_event_id, d.exit_request_id, d.workflow_id,
	CASE WHEN d.kind = 'enroll' THEN d.enrollment_id ELSE '' END,
	CASE WHEN e.name IN ('segment.entered', 'segment.exited') THEN e.properties->>'segment' END`

func scanDelivery(r rowScanner) (Delivery, error) {
	var (
		d                          Delivery
		eventID, eventContact, nam *string
		occurred, received         *time.Time
		channel, status, exitReq   *string
		consentEvent               *int64
		segmentID                  *string
	)
	err := r.Scan(&d.ID, &d.Kind, &d.JourneyID, &d.JourneyVersion, &d.CreatedAt, &d.Attempts, &d.NextAttemptAt, &d.LastError,
		&eventID, &eventContact, &nam, &occurred, &received,
		&d.ContactID, &channel, &status, &consentEvent, &exitReq, &d.WorkflowID, &d.EnrollmentID, &segmentID)
	if err != nil {
		return Delivery{}, err
	}
	d.CreatedAt, d.NextAttemptAt = d.CreatedAt.UTC(), d.NextAttemptAt.UTC()
	if eventID != nil {
		d.Event = Event{ID: *eventID, ContactID: *eventContact, Name: *nam, OccurredAt: occurred.UTC(), ReceivedAt: received.UTC(),
			Properties: map[string]any{}} // not read: a delivery carries ids and the name
		if segmentID != nil {
			// A segment's entry or exit: which segment is part of what
			// it means, and it is an id, not the person's data.
			d.Event.Properties["segment"] = *segmentID
		}
	}
	if channel != nil {
		d.Channel = journey.Channel(*channel)
	}
	if status != nil {
		d.ConsentStatus = model.ConsentStatus(*status)
	}
	if consentEvent != nil {
		d.ConsentEventID = *consentEvent
	}
	if exitReq != nil {
		d.ExitRequestID = *exitReq
	}
	return d, nil
}

func collectDeliveries(rows pgx.Rows) ([]Delivery, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
}

// insertEventWithDeliveries stores e in tx and, if it is new, its pending
// deliveries (see TrackEvent), under the contact's delivery lock; it
// returns what insertEvent returns. Every event that journeys may react to
// is stored through it or through trackTogether, which run the same
// statement (trackEventsStatement): TrackEvent's, and the behaviour events
// of provider webhooks (ApplyProviderEvent).
func (s *Store) insertEventWithDeliveries(ctx context.Context, tx pgx.Tx, e Event) (Event, bool, error) {
	if e.Name == "" {
		return Event{}, false, errors.New("insert event: name is required")
	}
	if e.ID == "" {
		e.ID = newID("ev_")
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	if err := lockContactDeliveries(ctx, tx, e.ContactID); err != nil {
		return Event{}, false, fmt.Errorf("event %s: %w", e.ID, err)
	}
	out, err := trackInTx(ctx, tx, s.trackStatement(ctx, tx), e)
	if err != nil {
		return Event{}, false, trackAloneError(e, err)
	}
	return out.stored, out.inserted, out.err
}

// lockContactDeliveries serialises, until tx ends, the transactions that
// store deliveries for one contact (events, consent changes, exit
// requests), so their deliveries' ids follow the order they commit in: the
// dispatcher's "oldest pending delivery of the contact" never skips one
// that commits later with a smaller id, and an opt-out stored after an
// event is delivered after it. A transaction-scoped advisory lock, not a
// lock on the contact row, which the send gate takes too. Every
// transaction takes one contact's, except a shared TrackEvent transaction,
// which takes several, all at once and in one order, before it writes
// anything (events_batch.go says why that adds no deadlock).
func lockContactDeliveries(ctx context.Context, tx pgx.Tx, contactID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('tutti.deliveries:' || $1, 0))`, contactID); err != nil {
		return fmt.Errorf("serialising the deliveries of contact %s: %w", contactID, err)
	}
	return nil
}

// insertConsentDelivery stores in tx the 'consent' delivery of a consent
// change ev, whose result is cur (the consent in force for its channel and
// subscription), and returns how many deliveries it stored (0 or 1). Only
// channel-level consent is part of a run's state, so a subscription-type
// change stores none (the send gate reads it from PostgreSQL before every
// send). As for an event's signal, the delivery is stored when the contact
// has a running journey or a start still pending that may become one; it
// carries the consent in force when the change commits, which a change
// dated before the current one does not replace. The caller holds the
// contact's row lock (as ApplyProviderEvent does, see there why that and
// the delivery lock cannot deadlock).
//
// Opt-out stays final without it: the send gate reads consent from
// PostgreSQL at send time, and the change is committed (and its sends in
// flight settled) before it is acknowledged; this delivery only lets the
// runs end or change course early.
func insertConsentDelivery(ctx context.Context, tx pgx.Tx, ev ConsentEvent, cur Consent) (int, error) {
	if cur.Subscription != "" {
		return 0, nil
	}
	if err := lockContactDeliveries(ctx, tx, ev.ContactID); err != nil {
		return 0, fmt.Errorf("consent event %d: %w", ev.ID, err)
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO deliveries (contact_id, kind, channel, consent_status, consent_event_id)
		SELECT $1, 'consent', $2, $3, $4
		WHERE EXISTS (SELECT 1 FROM enrollments WHERE contact_id = $1 AND status = 'active')
		   OR EXISTS (SELECT 1 FROM deliveries WHERE contact_id = $1 AND kind = 'start' AND done_at IS NULL)`,
		ev.ContactID, cur.Channel, cur.Status, ev.ID)
	if err != nil {
		return 0, fmt.Errorf("consent event %d: storing its delivery: %w", ev.ID, err)
	}
	return int(tag.RowsAffected()), nil
}

// ErrClaimLost is a claimed delivery's outcome arriving after its lease
// ended and another dispatcher took it over, or after its contact was erased.
var ErrClaimLost = errors.New("the delivery's claim was lost")

// ClaimDeliveries claims up to limit deliveries that are due, for lease, and
// returns them with the claim's token: at most one per contact, each
// contact's oldest pending delivery, and only if it is due (a contact whose
// oldest delivery waits for a retry waits entirely, which keeps its events
// in order).
//
// A 'signal' delivery comes with the contact's pending 'signal' deliveries
// that directly follow it (Batched: up to MaxSignalBatch in all, stopping
// at the first delivery of another kind, so a start still follows the
// events before it and precedes those after it). They were never due on
// their own: only a contact's oldest pending delivery is ever attempted,
// and a batch is retried, held and finished as one.
//
// Several dispatchers may claim at once (one per worker process). The
// claiming statement takes the rows with SELECT ... FOR UPDATE SKIP LOCKED,
// so two claims never take the same row, and sets a lease on them; since
// only a contact's oldest pending row is ever eligible, a contact's next
// delivery cannot be taken while its predecessor is claimed. The rows are
// locked only for that statement: a lease rather than a lock held while
// Temporal is called, because a transaction idle in the application while
// it holds row locks would block an erasure (deleting the contact's events
// deletes their deliveries) that the delivery itself may be waiting on,
// a deadlock PostgreSQL cannot see. A dispatcher that dies leaves its
// claims to expire; the caller must finish each delivery (Done or Failed)
// well within lease, or a second dispatcher may deliver it again (harmless:
// deliveries are idempotent) and out of order.
func (s *Store) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]Delivery, string, error) {
	token := newID("claim_")
	// The rows batched with a head need no lock of their own: no other
	// claim can take them while their head is pending.
	rows, err := s.pool.Query(ctx, `
		WITH heads AS (
			SELECT d.id, d.contact_id, d.kind FROM deliveries d
			WHERE d.done_at IS NULL AND d.next_attempt_at <= now()
			  AND (d.claimed_until IS NULL OR d.claimed_until < now())
			  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.contact_id = d.contact_id AND o.done_at IS NULL AND o.id < d.id)
			ORDER BY d.id
			LIMIT $1
			FOR UPDATE SKIP LOCKED),
		claimed AS (
			SELECT h.id AS head_id, h.id FROM heads h
			UNION ALL
			SELECT h.id, b.id FROM heads h CROSS JOIN LATERAL (
				SELECT n.id FROM (
					SELECT n.id, bool_and(n.kind = 'signal') OVER (ORDER BY n.id) AS signals_so_far
					FROM (SELECT id, kind FROM deliveries
					      WHERE contact_id = h.contact_id AND done_at IS NULL AND id > h.id
					      ORDER BY id LIMIT $4) n) n
				WHERE n.signals_so_far) b
			WHERE h.kind = 'signal')
		UPDATE deliveries d SET claim_token = $2 || '/' || c.head_id, claimed_until = now() + $3 * interval '1 millisecond'
		FROM claimed c LEFT JOIN deliveries cd ON cd.id = c.id
		     LEFT JOIN events e ON e.id = cd.event_id -- consent and exit rows have no event
		WHERE d.id = c.id
		RETURNING `+deliveryColumns, limit, token, lease.Milliseconds(), MaxSignalBatch-1)
	if err != nil {
		return nil, "", fmt.Errorf("claiming deliveries: %w", err)
	}
	all, err := collectDeliveries(rows)
	if err != nil {
		return nil, "", fmt.Errorf("claiming deliveries: %w", err)
	}
	// A contact's rows are its head (the oldest) and the head's batch.
	slices.SortFunc(all, func(a, b Delivery) int { return cmp.Compare(a.ID, b.ID) })
	var out []Delivery
	head := map[string]int{} // contact -> index in out
	for _, d := range all {
		if i, ok := head[d.ContactID]; ok {
			out[i].Batched = append(out[i].Batched, d)
			continue
		}
		head[d.ContactID] = len(out)
		out = append(out, d)
	}
	return out, token, nil
}

// DeliveryDone marks a delivery claimed with token finished, together with
// the deliveries batched with it (one statement), with its outcome (and,
// for a start, the enrollment it made or found), and returns their lags:
// from each event being stored to now. ErrClaimLost if the claim is no
// longer the delivery's.
func (s *Store) DeliveryDone(ctx context.Context, id int64, token, outcome, enrollmentID string) ([]time.Duration, error) {
	rows, err := s.pool.Query(ctx, `
		UPDATE deliveries SET done_at = clock_timestamp(), attempts = attempts + 1, outcome = $2, enrollment_id = $3,
		       last_error = '', claim_token = '', claimed_until = NULL
		WHERE claim_token = $1 AND done_at IS NULL
		RETURNING extract(epoch FROM done_at - created_at)::float8`, batchToken(token, id), outcome, enrollmentID)
	var lags []time.Duration
	if err == nil {
		lags, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (time.Duration, error) {
			var lag float64
			err := r.Scan(&lag)
			return time.Duration(lag * float64(time.Second)), err
		})
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("delivery %d: marking it done: %w", id, err)
	case len(lags) == 0:
		return nil, fmt.Errorf("delivery %d: %w", id, ErrClaimLost)
	}
	return lags, nil
}

// DeliveryFailed records a failed attempt of a delivery claimed with token
// (and of the deliveries batched with it) and releases it; it is due again
// after retryIn. ErrClaimLost as for DeliveryDone.
func (s *Store) DeliveryFailed(ctx context.Context, id int64, token, cause string, retryIn time.Duration) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET attempts = attempts + 1, last_error = $2, next_attempt_at = clock_timestamp() + $3 * interval '1 millisecond',
		       claim_token = '', claimed_until = NULL
		WHERE claim_token = $1 AND done_at IS NULL`, batchToken(token, id), cause, retryIn.Milliseconds())
	switch {
	case err != nil:
		return fmt.Errorf("delivery %d: recording a failed attempt: %w", id, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("delivery %d: %w", id, ErrClaimLost)
	}
	return nil
}

// DeliveryHeld releases a delivery claimed with token (and those batched
// with it) without attempting it: it is due again after retryIn. Not a
// failure: its attempts and last error stay as they were, so holding
// neither backs it off nor shows it as failing. The dispatcher holds a
// signal while a run it goes to is about to continue as new.
// ErrClaimLost as for DeliveryDone.
func (s *Store) DeliveryHeld(ctx context.Context, id int64, token string, retryIn time.Duration) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET next_attempt_at = clock_timestamp() + $2 * interval '1 millisecond', claim_token = '', claimed_until = NULL
		WHERE claim_token = $1 AND done_at IS NULL`, batchToken(token, id), retryIn.Milliseconds())
	switch {
	case err != nil:
		return fmt.Errorf("delivery %d: releasing it: %w", id, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("delivery %d: %w", id, ErrClaimLost)
	}
	return nil
}

// DeliveryTargets returns the running journeys a 'signal' or 'consent'
// delivery goes to: the contact's active enrollments that started no later
// than the delivery was stored (for a signal, when its event was received),
// and those that deliveries queued before this one started (an event or an
// opt-out posted right after the event that triggers a journey reaches the
// run it triggered, as it did when the API started runs before answering).
// A run started later by other means did not exist for the event or the
// change and does not see it.
//
// A run of a keyed journey (journey.Trigger.Key) is one key value's: an
// event that carries the key property goes only to the run of its value
// (a cart.recovered for cart X converts cart X's run, not cart Y's). An
// engagement event about a message of the journey (email.opened,
// email.clicked: the webhook adds the message's message_id and
// journey_id) goes only to the run that sent that message, so a click on
// cart X's reminder does not end cart Y's wait_for. Any other event goes
// to all of the contact's runs, as do consent changes. An exit delivery
// names its run and does not come here.
func (s *Store) DeliveryTargets(ctx context.Context, d Delivery) ([]Enrollment, error) {
	all, err := s.BatchTargets(ctx, []Delivery{d})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// BatchTargets is DeliveryTargets for each of one contact's deliveries (a
// claimed head and its batch), read in one query: the contact's active
// runs, each with the first start delivery that made it, from which every
// delivery's targets follow. Only when one of the runs is keyed are the
// events' properties read (one more query), so contacts without keyed runs
// pay nothing for keys.
func (s *Store) BatchTargets(ctx context.Context, ds []Delivery) ([][]Enrollment, error) {
	type run struct {
		e         Enrollment
		startedBy int64  // the 'start' delivery that made the run; 0: none
		keyProp   string // the journey's key property, for a keyed run
	}
	runs, err := queryAll(ctx, s.pool, fmt.Sprintf("targets of delivery %d", ds[0].ID), func(r rowScanner) (run, error) {
		var x run
		var err error
		x.e, err = scanEnrollment(scanAlso{r, []any{&x.startedBy, &x.keyProp}})
		return x, err
	}, `
		SELECT `+enrollmentColumns+`,
		       COALESCE((SELECT min(d.id) FROM deliveries d
		                 WHERE d.contact_id = $1 AND d.kind = 'start' AND d.enrollment_id = enrollments.id), 0),
		       CASE WHEN run_key = '' THEN '' ELSE COALESCE((SELECT v.spec->'trigger'->>'key' FROM journey_versions v
		                 WHERE v.journey_id = enrollments.journey_id AND v.version = enrollments.version), '') END
		FROM enrollments
		WHERE contact_id = $1 AND status = 'active'
		ORDER BY started_at, id`, ds[0].ContactID)
	if err != nil {
		return nil, err
	}
	var (
		props  map[string]map[string]any // event id -> properties, read only for keyed runs
		sentBy map[string]string         // event id -> the enrollment whose message it is about
	)
	for _, r := range runs {
		if r.keyProp != "" {
			if props, err = s.deliveryEventProperties(ctx, ds); err != nil {
				return nil, err
			}
			if sentBy, err = s.engagementSenders(ctx, props); err != nil {
				return nil, err
			}
			break
		}
	}
	out := make([][]Enrollment, len(ds))
	for i, d := range ds {
		for _, r := range runs {
			if r.e.StartedAt.After(d.CreatedAt) && (r.startedBy == 0 || r.startedBy >= d.ID) {
				continue
			}
			if r.keyProp != "" && d.Event.ID != "" {
				p := props[d.Event.ID]
				if value, ok := journey.RunKeyOf(p, r.keyProp); ok {
					digest, err := s.RunKeyDigest(ctx, r.keyProp, value)
					if err != nil {
						return nil, err
					}
					if digest != r.e.RunKey {
						continue // another key value's event
					}
				} else if sender, ok := sentBy[d.Event.ID]; ok && p["journey_id"] == r.e.JourneyID && sender != r.e.ID {
					continue // about another run's message
				}
			}
			out[i] = append(out[i], r.e)
		}
	}
	return out, nil
}

// engagementSenders maps each event about a message (its message_id
// property, which provider webhooks set) to the enrollment that sent the
// message, read from the message's idempotency key
// ("enrollment/<id>/<step>/<visit>", workflows' sendKey).
func (s *Store) engagementSenders(ctx context.Context, props map[string]map[string]any) (map[string]string, error) {
	byMessage := map[string][]string{}
	var ids []string
	for eventID, p := range props {
		if m, ok := p["message_id"].(string); ok && m != "" {
			if _, seen := byMessage[m]; !seen {
				ids = append(ids, m)
			}
			byMessage[m] = append(byMessage[m], eventID)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, idempotency_key FROM messages WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the messages of %d engagement events: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key string
		if err := rows.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("reading an engagement event's message: %w", err)
		}
		rest, ok := strings.CutPrefix(key, "enrollment/")
		if !ok {
			continue // not a journey's send (an opt-in prompt)
		}
		enrollment, _, _ := strings.Cut(rest, "/")
		for _, eventID := range byMessage[id] {
			out[eventID] = enrollment
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading engagement events' messages: %w", err)
	}
	return out, nil
}

// deliveryEventProperties reads the properties of the deliveries' events.
func (s *Store) deliveryEventProperties(ctx context.Context, ds []Delivery) (map[string]map[string]any, error) {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Event.ID != "" {
			ids = append(ids, d.Event.ID)
		}
	}
	out := make(map[string]map[string]any, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, properties FROM events WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the properties of %d events: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			p  map[string]any
		)
		if err := rows.Scan(&id, &p); err != nil {
			return nil, fmt.Errorf("reading event properties: %w", err)
		}
		out[id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading event properties: %w", err)
	}
	return out, nil
}

// scanAlso scans a row into a scanner's columns and then into extra ones.
type scanAlso struct {
	r     rowScanner
	extra []any
}

func (x scanAlso) Scan(dest ...any) error { return x.r.Scan(append(dest, x.extra...)...) }

// DeliveryStats is the state of the outbox, for ops.
type DeliveryStats struct {
	// Pending counts deliveries not yet taken by Temporal.
	Pending int64 `json:"pending"`
	// Failing counts pending deliveries that failed at least once.
	Failing int64 `json:"failing"`
	// PendingByKind counts pending deliveries by kind, every kind listed.
	PendingByKind map[string]int64 `json:"pending_by_kind"`
	// OldestPendingAt is when the oldest pending delivery was stored.
	OldestPendingAt *time.Time `json:"oldest_pending_at"`
	// DoneLastHour counts deliveries finished in the last hour.
	DoneLastHour int64 `json:"done_last_hour"`
	// RecentFailures are up to 10 failing deliveries, most attempted first.
	RecentFailures []Delivery `json:"recent_failures"`
}

// DeliveryStats reads the outbox's depth, age and failures.
func (s *Store) DeliveryStats(ctx context.Context) (DeliveryStats, error) {
	var st DeliveryStats
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE done_at IS NULL),
		       count(*) FILTER (WHERE done_at IS NULL AND attempts > 0),
		       min(created_at) FILTER (WHERE done_at IS NULL),
		       count(*) FILTER (WHERE done_at > now() - interval '1 hour')
		FROM deliveries`).Scan(&st.Pending, &st.Failing, &st.OldestPendingAt, &st.DoneLastHour)
	if err != nil {
		return DeliveryStats{}, fmt.Errorf("delivery stats: %w", err)
	}
	st.OldestPendingAt = utcPtr(st.OldestPendingAt)
	st.PendingByKind = map[string]int64{}
	for _, k := range model.DeliveryKinds {
		st.PendingByKind[string(k)] = 0
	}
	kinds, err := s.pool.Query(ctx, `SELECT kind, count(*) FROM deliveries WHERE done_at IS NULL GROUP BY kind`)
	if err == nil {
		var (
			kind string
			n    int64
		)
		_, err = pgx.ForEachRow(kinds, []any{&kind, &n}, func() error { st.PendingByKind[kind] = n; return nil })
	}
	if err != nil {
		return DeliveryStats{}, fmt.Errorf("delivery stats by kind: %w", err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+deliveryColumns+`
		FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
		WHERE d.done_at IS NULL AND d.attempts > 0
		ORDER BY d.attempts DESC, d.id
		LIMIT 10`)
	if err == nil {
		st.RecentFailures, err = collectDeliveries(rows)
	}
	if err != nil {
		return DeliveryStats{}, fmt.Errorf("delivery failures: %w", err)
	}
	if st.RecentFailures == nil {
		st.RecentFailures = []Delivery{}
	}
	return st, nil
}

// PendingDeliveries counts the outbox's pending deliveries (the depth gauge).
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE done_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("pending deliveries: %w", err)
	}
	return n, nil
}
