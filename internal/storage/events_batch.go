package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Grouped event ingest: TrackEvent calls that arrive together share one
// transaction, as Gate calls do (GateBatching, gate_batch.go). An event's
// transaction is small (a lock, two inserts, a count), so most of its cost
// is the fixed part: BEGIN, the round trip and COMMIT with its WAL flush,
// which pgbench pays as well. A group pays that once for all its events.
//
// What each event gets is unchanged: it is stored with its deliveries or
// not at all, a duplicate adds nothing, and every contact's deliveries are
// stored under that contact's delivery lock (lockContactDeliveries), held
// from before the group writes anything until it commits, so a contact's
// deliveries still take ids in the order they commit in. Events of one
// contact may share a group: they have no order of their own (their
// callers are concurrent), and are stored in event id order.
//
// Lock order. The group takes the delivery locks of all its contacts in
// one statement, in the order of the locks' keys, before it writes
// anything; every other transaction that takes a delivery lock (TrackEvent
// alone, a webhook's behaviour event, a consent change, an exit request)
// takes exactly one and no delivery lock after it, and groups take theirs
// in the same order, so no cycle forms among delivery locks. While it
// waits for them a group holds nothing else (no row locks, no rows
// written), so nothing can wait for it in a cycle through other locks
// either. Afterwards it takes only what TrackEvent alone takes after its
// delivery lock: a key-share lock on each contact row (the events' foreign
// key), which conflicts only with an erasure's FOR UPDATE (an erasure takes
// no delivery lock; a lead-score rescoring, scores.go, holds the contact's
// row FOR SHARE before it takes the delivery lock, which key-share does
// not conflict with), and the event ids' unique index entries, inserted in
// event id order so that two groups reusing each other's ids (a client's
// mistake, ErrEventConflict) wait in the same order rather than on each
// other.
//
// A group that fails (a lock wait longer than LockTimeout, a contact
// erased between the read and the insert, anything else) writes nothing,
// and each of its calls is retried in a transaction of its own, so one bad
// event cannot fail the others.

// WithEventBatching sets how TrackEvent groups concurrent calls, with the
// knobs of GateBatching: MaxBatch events per transaction (1 or less: every
// call takes its own), MaxInFlight shared transactions at once, Timeout
// for one, and LockTimeout for the wait for the group's delivery locks.
// New and Open use DefaultGateBatching.
func WithEventBatching(b GateBatching) Option {
	return func(s *Store) { s.events = newEventBatcher(b) }
}

func newEventBatcher(b GateBatching) *eventBatcher {
	q := newGroupQueue[*eventCall](b)
	if q == nil {
		return nil
	}
	return &eventBatcher{groupQueue: q}
}

// eventBatcher queues TrackEvent calls for runner goroutines that store
// them in groups; it works as gateBatcher does (runners exist only while
// there is work, one forms a group at a time), except that calls for one
// contact may share a group.
type eventBatcher struct {
	*groupQueue[*eventCall]
}

// EventGroupStats reports how many shared TrackEvent transactions have run
// and how many calls they carried; zeros when grouping is off.
func (s *Store) EventGroupStats() (transactions, calls int64) {
	if s.events == nil {
		return 0, 0
	}
	return s.events.stats()
}

// eventCall is one TrackEvent call on its way through a transaction.
type eventCall struct {
	ctx  context.Context // the caller's: an event whose caller has gone is not stored
	in   Event           // ID and Properties filled in
	done chan eventReply // buffered; set when the call is queued

	// Filled in by trackTogether when it returns nil.
	out eventOutcome
}

// eventOutcome is what storing one event did: the stored event, whether
// it was new and how many of its deliveries are pending, or the event's
// own failure (unknown contact, reused id), for which nothing was written.
type eventOutcome struct {
	stored   Event
	inserted bool
	pending  int
	err      error
}

// eventReply is a queued call's outcome, or alone when its shared
// transaction failed and the caller must store the event by itself.
type eventReply struct {
	out   eventOutcome
	alone bool
}

// TrackEvent stores an event together with its pending deliveries, in one
// transaction: the event is never stored without what it must do in
// Temporal, and its deliveries never exist without it. A duplicate (the same
// id, contact and name: a retry) adds nothing; its deliveries were stored
// with the first attempt. It returns the stored event, whether it was new,
// and how many deliveries are still pending for it. Errors are InsertEvent's.
//
// A 'signal' row is stored when the contact has a running journey, or a
// start still pending that may become one (DeliveryTargets resolves the runs
// when it is delivered); a 'start' row for each journey whose latest version
// the event triggers (for a segment.entered event, each journey triggered
// by that segment). The signal row comes first, so the dispatcher's
// per-contact order signals the runs that were there before starting new ones.
//
// Concurrent calls may share one transaction (WithEventBatching, see the
// top of this file). If ctx ends while the call waits for a shared
// transaction, TrackEvent returns the context's error, but the event may
// still be stored: a retry with the same id finds it (duplicate).
func (s *Store) TrackEvent(ctx context.Context, e Event) (Event, bool, int, error) {
	if e.Name == "" {
		return Event{}, false, 0, errors.New("insert event: name is required")
	}
	if e.ID == "" {
		e.ID = newID("ev_")
	}
	if e.Properties == nil {
		e.Properties = map[string]any{}
	}
	c := &eventCall{ctx: ctx, in: e}
	if s.events != nil {
		rep, err := s.events.submit(s, c)
		if err != nil {
			return Event{}, false, 0, fmt.Errorf("event %s: %w", e.ID, err)
		}
		if !rep.alone {
			return rep.out.stored, rep.out.inserted, rep.out.pending, rep.out.err
		}
		// The shared transaction failed and wrote nothing: store the event
		// alone, so the error, if any, is this event's own.
	}
	if err := s.trackTogether(ctx, []*eventCall{c}, 0, nil); err != nil {
		if _, fk := foreignKeyViolation(err); fk {
			// The contact was erased between the statement's read and its
			// insert.
			return Event{}, false, 0, fmt.Errorf("insert event %s: contact %s: %w", e.ID, e.ContactID, ErrNotFound)
		}
		return Event{}, false, 0, err
	}
	return c.out.stored, c.out.inserted, c.out.pending, c.out.err
}

// submit queues c and waits for its reply, or for c.ctx to end.
func (b *eventBatcher) submit(s *Store, c *eventCall) (eventReply, error) {
	c.done = make(chan eventReply, 1)
	return submit(b.groupQueue, c.ctx, c, c.done, s.runEventGroups, "waiting to be stored")
}

// runEventGroups is one runner: it stores groups of queued calls until
// there are none left.
func (s *Store) runEventGroups() { s.events.runGroups(s.events.take, s.runEventGroup) }

// take forms the next group from what is queued, up to MaxBatch calls;
// calls whose caller has gone are dropped.
func (b *eventBatcher) take() []*eventCall {
	var group []*eventCall
	for len(group) < b.cfg.MaxBatch {
		select {
		case c := <-b.queue:
			if c.ctx.Err() == nil {
				group = append(group, c)
			}
			continue
		default:
		}
		break
	}
	return group
}

// runEventGroup stores a group in one transaction and replies to each call.
// It gives the forming token back as soon as the group's statements are
// sent, or when it fails before that.
func (s *Store) runEventGroup(group []*eventCall) {
	s.events.groups.Add(1)
	s.events.grouped.Add(int64(len(group)))
	ctx, cancel := context.WithTimeout(context.Background(), s.events.cfg.Timeout)
	defer cancel()
	formed := sync.OnceFunc(func() { <-s.events.forming })
	defer formed()
	err := s.trackTogether(ctx, group, s.events.cfg.LockTimeout, formed)
	for _, c := range group {
		if err != nil {
			c.done <- eventReply{alone: true}
			continue
		}
		c.done <- eventReply{out: c.out}
	}
}

// trackEventStatement stores one event and its deliveries ($1-$5: id,
// contact, name, properties, occurred_at or NULL for now) in one
// statement, for a transaction that holds the contact's delivery lock.
// The lock must be taken by an earlier statement, never inside this one:
// a READ COMMITTED statement reads from a snapshot taken when it starts,
// so only a statement that starts once the lock is granted sees what the
// lock's previous holder committed (a pending start, a run). An
// unknown contact inserts nothing (rather than failing the transaction on
// the foreign key), so it fails its own event only.
//
// It answers one row: whether the contact exists; then, if the event was
// inserted, true, the event and how many deliveries were stored (all
// pending); if the id was already stored (a duplicate or a reused id),
// false, that event and its pending deliveries; and NULLs if neither (no
// contact, or an id committed by another transaction after this
// statement's snapshot was taken: read it again, see readExistingEvent).
//
// While a segment exists, a new event also queues its contact's segments
// for evaluation (segment_eval.go); a segment's own entry and exit events
// do not. With no segment, that costs a probe of an empty table, inside
// this statement.
//
// The deliveries are one INSERT, whose rows take their ids in its ORDER
// BY: the signal first, then the starts by journey. Both look at what the
// transaction stored before, as insertEventWithDeliveries' statements did
// one after the other: the signal's condition does not see this event's
// own starts, and does see a start stored by an earlier event of the same
// transaction.
const trackEventStatement = `
WITH c AS (SELECT id FROM contacts WHERE id = $2::text),
ins AS (
	INSERT INTO events (id, contact_id, name, properties, occurred_at)
	SELECT $1::text, c.id, $3::text, $4::jsonb, COALESCE($5::timestamptz, now()) FROM c
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + eventColumns + `),
dl AS (
	INSERT INTO deliveries (event_id, contact_id, kind, journey_id, journey_version, created_at)
	SELECT ins.id, ins.contact_id, d.kind, d.journey_id, d.journey_version, ins.received_at
	FROM ins CROSS JOIN LATERAL (
		SELECT 0 AS ord, 'signal'::text AS kind, ''::text AS journey_id, 0 AS journey_version
		WHERE EXISTS (SELECT 1 FROM enrollments WHERE contact_id = ins.contact_id AND status = 'active')
		   OR EXISTS (SELECT 1 FROM deliveries WHERE contact_id = ins.contact_id AND kind = 'start' AND done_at IS NULL)
		UNION ALL
		SELECT 1, 'start', v.journey_id, v.version FROM journey_versions v
		WHERE v.trigger_event = ins.name
		  AND (v.trigger_segment IS NULL OR v.trigger_segment = ins.properties->>'segment')
		  AND v.version = (SELECT MAX(version) FROM journey_versions WHERE journey_id = v.journey_id)) AS d
	ORDER BY d.ord, d.journey_id
	RETURNING 1),
seg AS (
	INSERT INTO segment_evaluations (contact_id)
	SELECT ins.contact_id FROM ins
	WHERE ins.name NOT IN ('segment.entered', 'segment.exited') AND EXISTS (SELECT 1 FROM segments))
SELECT EXISTS (SELECT 1 FROM c), x.inserted, x.id, x.contact_id, x.name, x.properties, x.occurred_at, x.received_at, x.pending
FROM (SELECT 1) AS one LEFT JOIN (
	SELECT true AS inserted, ins.id, ins.contact_id, ins.name, ins.properties, ins.occurred_at, ins.received_at,
	       (SELECT count(*) FROM dl) AS pending
	FROM ins
	UNION ALL
	SELECT false, e.id, e.contact_id, e.name, e.properties, e.occurred_at, e.received_at,
	       (SELECT count(*) FROM deliveries WHERE event_id = e.id AND done_at IS NULL)
	FROM events e WHERE e.id = $1::text AND NOT EXISTS (SELECT 1 FROM ins)) AS x ON true`

// lockContactsDeliveries takes the delivery locks (lockContactDeliveries)
// of an array of contacts, each once, in the order of their keys.
const lockContactsDeliveries = `SELECT pg_advisory_xact_lock(k) FROM (
	SELECT DISTINCT hashtextextended('tutti.deliveries:' || c, 0) AS k FROM unnest($1::text[]) AS c
	ORDER BY k) AS keys`

// trackEventArgs are trackEventStatement's arguments for e.
func trackEventArgs(e Event) []any {
	return []any{e.ID, e.ContactID, e.Name, e.Properties, timeOrNow(e.OccurredAt)}
}

// scanTrackedEvent reads trackEventStatement's row for e. reread says that
// the id exists but was committed after the statement's snapshot: the
// caller reads it again (readExistingEvent).
func scanTrackedEvent(row pgx.Row, e Event) (out eventOutcome, reread bool, err error) {
	var (
		found              bool
		inserted           *bool
		id, contact, name  *string
		props              map[string]any
		occurred, received *time.Time
		pending            *int64
	)
	if err := row.Scan(&found, &inserted, &id, &contact, &name, &props, &occurred, &received, &pending); err != nil {
		return eventOutcome{}, false, fmt.Errorf("insert event %s: %w", e.ID, err)
	}
	switch {
	case inserted == nil && !found:
		return eventOutcome{err: fmt.Errorf("insert event %s: contact %s: %w", e.ID, e.ContactID, ErrNotFound)}, false, nil
	case inserted == nil:
		return eventOutcome{}, true, nil
	}
	out.stored = Event{ID: *id, ContactID: *contact, Name: *name, Properties: nonNilMap(props),
		OccurredAt: occurred.UTC(), ReceivedAt: received.UTC()}
	out.inserted, out.pending = *inserted, int(*pending)
	out.err = checkDuplicate(e, out.stored, out.inserted)
	if out.err != nil {
		return eventOutcome{err: out.err}, false, nil
	}
	return out, false, nil
}

// checkDuplicate returns ErrEventConflict when e's id was already stored
// for another contact or name.
func checkDuplicate(e, stored Event, inserted bool) error {
	if inserted || (stored.ContactID == e.ContactID && stored.Name == e.Name) {
		return nil
	}
	return fmt.Errorf("insert event %s: stored as %q for contact %s, got %q for contact %s: %w",
		e.ID, stored.Name, stored.ContactID, e.Name, e.ContactID, ErrEventConflict)
}

// readExistingEvent reads, on q, the event with e's id that another
// transaction stored (see scanTrackedEvent), with its pending deliveries.
func readExistingEvent(ctx context.Context, q rowQuerier, e Event) eventOutcome {
	var (
		out eventOutcome
		n   int64
	)
	stored, err := scanEvent(prefixScanner{q.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM deliveries WHERE event_id = e.id AND done_at IS NULL), `+eventColumns+`
		FROM events e WHERE id = $1`, e.ID), &n})
	if err != nil {
		return eventOutcome{err: notFound(err, "insert event %s: reading the existing event", e.ID)}
	}
	out.stored, out.pending = stored, int(n)
	if err := checkDuplicate(e, stored, false); err != nil {
		return eventOutcome{err: err}
	}
	return out
}

// trackTogether stores the events of calls in one transaction of one round
// trip: BEGIN, the contacts' delivery locks, one trackEventStatement per
// event (in event id order) and COMMIT. An event's own failure (unknown
// contact, reused id) is its call's (out.err) and writes nothing of it;
// any other error rolls the whole transaction back and is returned.
//
// lockTimeout, if positive, bounds the wait for the locks; sent, if set,
// is called once the statements are on their way.
func (s *Store) trackTogether(ctx context.Context, calls []*eventCall, lockTimeout time.Duration, sent func()) error {
	what := fmt.Sprintf("storing %d events", len(calls))
	if len(calls) == 1 {
		what = "event " + calls[0].in.ID
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: acquiring a connection: %w", what, err)
	}
	defer func() {
		// Any return before COMMIT leaves the transaction open: roll it
		// back; if that fails, Release closes the connection.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(ctx, "rollback")
		}
		conn.Release()
	}()

	calls = slices.Clone(calls)
	slices.SortStableFunc(calls, func(a, b *eventCall) int { return cmp.Compare(a.in.ID, b.in.ID) })
	contacts := make([]string, len(calls))
	for i, c := range calls {
		contacts[i] = c.in.ContactID
		c.out = eventOutcome{}
	}
	b := &pgx.Batch{}
	b.Queue("begin")
	if lockTimeout > 0 {
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(max(1, lockTimeout.Milliseconds()), 10)+"ms")
	}
	b.Queue(lockContactsDeliveries, contacts)
	stmt := s.trackStatement(ctx, conn)
	for _, c := range calls {
		b.Queue(stmt, trackEventArgs(c.in)...)
	}
	b.Queue("commit")
	br := conn.SendBatch(ctx, b)
	if sent != nil {
		sent()
	}
	var reread []*eventCall
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: beginning transaction: %w", what, err)
		}
		if lockTimeout > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("%s: configuring the transaction: %w", what, err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: serialising the contacts' deliveries: %w", what, err)
		}
		for _, c := range calls {
			out, again, err := scanTrackedEvent(br.QueryRow(), c.in)
			if err != nil {
				return err
			}
			c.out = out
			if again {
				reread = append(reread, c)
			}
		}
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = pgx.ErrTxCommitRollback
		}
		if err != nil {
			return fmt.Errorf("%s: committing transaction: %w", what, err)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: after commit: %w", what, cerr)
	}
	if err != nil {
		return err
	}
	// Ids another transaction committed while this one waited for them:
	// read them as they are now (events are deleted only with their
	// contact, which is then a not-found).
	for _, c := range reread {
		c.out = readExistingEvent(ctx, conn, c.in)
	}
	return nil
}
