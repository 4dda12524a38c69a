package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
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
		return Event{}, false, 0, trackAloneError(e, err)
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
// It gives the forming token back once the group's results are in, or
// after maxFormingHold, or when it fails; but as soon as its statements are
// sent when a full group is already queued behind it. PostgreSQL sends a
// pipeline's results when the pipeline ends, so "the results are in" is
// after the COMMIT: a group's statement and commit run while the next
// group gathers its calls.
//
// Why then, and not as soon as the statements are sent (as the gate's
// groups do): an event's transaction is largely the statement's fixed cost
// (starting a plan over a dozen relations, the commit), paid once per
// group. The calls that arrive while a group
// is in flight go together in the next one, rather than in a group of
// their own beside it: groups come out about twice as large and an event
// costs the machine about a quarter less CPU, and single events come in
// faster (BenchmarkTrackEvent's events/tx and machine-cpu-µs/event;
// BenchmarkPostEventsWrk side by side). Committing in a second round trip,
// so that the next group could form before the commit, made groups smaller
// again and was slower. A next group that is full already cannot grow by
// waiting: it runs beside this one (batches of events,
// BenchmarkPostEventBatches). The bound keeps a group that waits for a
// contact's lock (up to LockTimeout) from holding up the others.
//
// Once it gives the token back, the runner yields its thread before it
// answers its calls. The runner waiting for the token is then the next
// goroutine to run; otherwise the answers, each waking a caller's
// goroutine, would queue it behind them all, and PostgreSQL would sit
// idle between two groups for longer (about 240 µs rather than 145 µs
// under BenchmarkPostEventsWrk, whose rate rose 13-15%).
func (s *Store) runEventGroup(group []*eventCall) {
	s.events.groups.Add(1)
	s.events.grouped.Add(int64(len(group)))
	ctx, cancel := context.WithTimeout(context.Background(), s.events.cfg.Timeout)
	defer cancel()
	formed := sync.OnceFunc(func() { <-s.events.forming })
	defer formed()
	hold := time.AfterFunc(maxFormingHold, formed)
	defer hold.Stop()
	progress := &groupProgress{
		sent: func() {
			if len(s.events.queue) >= s.events.cfg.MaxBatch {
				formed()
			}
		},
		ran: func() {
			formed()
			runtime.Gosched() // see above
		},
	}
	err := s.trackTogether(ctx, group, s.events.cfg.LockTimeout, progress)
	for _, c := range group {
		if err != nil {
			c.done <- eventReply{alone: true}
			continue
		}
		c.done <- eventReply{out: c.out}
	}
}

// groupProgress is what a group's transaction tells its runner: that its
// statements are sent, and that its results are in.
type groupProgress struct {
	sent, ran func()
}

// maxFormingHold is the longest an event group keeps the next one from
// forming (runEventGroup): a few times a group's statement on an idle
// server.
const maxFormingHold = 5 * time.Millisecond

// trackEventsStatement stores events and their deliveries in one
// statement, for a transaction that holds their contacts' delivery locks.
// Its arguments are arrays, one element per event, in the order the events
// are stored in ($1-$5: ids, contacts, names, properties, occurred_at or
// NULL for now); the ids are distinct. One statement for a group, rather
// than one per event, because most of an event's cost is a statement's
// fixed part (its start, its locks on a dozen relations and their
// indexes, its end), which the group then pays once.
//
// The locks must be taken by an earlier statement, never inside this one:
// a READ COMMITTED statement reads from a snapshot taken when it starts,
// so only a statement that starts once the locks are granted sees what
// their previous holders committed (a pending start, a run). An unknown
// contact inserts nothing for its event (rather than failing the
// transaction on the foreign key), so it fails its own event only.
//
// It answers one row per event, in order: whether the contact exists;
// then, if the event was inserted, true, the event without its properties
// (they are the ones sent: decoding them again costs as much as the rest
// of the row) and how many deliveries were stored (all pending); if the id
// was already stored (a duplicate or a reused id), false, that event and
// its pending deliveries; and NULLs if
// neither (no contact, or an id committed by another transaction after
// this statement's snapshot was taken: read it again, see
// readExistingEvent).
//
// While a segment exists, a new event also queues its contact's segments
// for evaluation (segment_eval.go), once per contact; a segment's own entry
// and exit events do not. With no segment, that costs a probe of an empty
// table. With scored, the contact is also marked for rescoring when the
// latest model's intent rules read the event's name (scores.go): the
// statement TrackEvent runs once a model exists.
//
// The deliveries are one INSERT, whose rows take their ids in its ORDER
// BY: event by event, the signal first, then the starts by journey. An
// event gets a signal when its contact has a running journey or a start
// still pending that may become one, counting the starts of the events
// stored before it in the same statement (they were stored before it)
// but not its own, as if each event had its own statement.
func trackEventsStatement(scored bool) string {
	score := ""
	if scored {
		score = `,
sp AS (
	INSERT INTO score_pending (contact_id)
	SELECT DISTINCT ins.contact_id FROM ins
	WHERE EXISTS (SELECT 1 FROM (SELECT intent_events FROM score_models ORDER BY version DESC LIMIT 1) AS m
	              WHERE ins.name = ANY (m.intent_events))
	ON CONFLICT (contact_id) DO NOTHING)`
	}
	return `
WITH input AS (
	-- What the statement reads per contact, as scalar subqueries: each is
	-- an index probe per event, where a join or an EXISTS may be planned
	-- as a scan of the whole table (a hash join, a hashed subplan) when
	-- the planner guesses more events than a group holds.
	SELECT i.*,
	       (SELECT c.id FROM contacts c WHERE c.id = i.contact_id) AS known,
	       (SELECT true FROM enrollments WHERE contact_id = i.contact_id AND status = 'active' LIMIT 1) AS running,
	       (SELECT true FROM deliveries WHERE contact_id = i.contact_id AND kind = 'start' AND done_at IS NULL LIMIT 1) AS starting
	FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])
		WITH ORDINALITY AS i (id, contact_id, name, properties, occurred_at, n)),
ins AS (
	INSERT INTO events (id, contact_id, name, properties, occurred_at)
	SELECT i.id, i.known, i.name, i.properties, COALESCE(i.occurred_at, now())
	FROM input i WHERE i.known IS NOT NULL
	ORDER BY i.n
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + eventColumns + `),
new AS (SELECT ins.*, i.n, i.running, i.starting FROM ins JOIN input i ON i.id = ins.id),
starts AS (
	-- Per event, the versions its name triggers (journey_versions_trigger),
	-- kept if latest. LATERAL with OFFSET 0 so it stays a probe per event:
	-- flattened into a join, the plan reads every triggered version of
	-- every journey, and works out whether each is its journey's latest,
	-- at every statement (cost growing with the journeys published).
	SELECT new.n, new.id AS event_id, new.contact_id, new.received_at, v.journey_id, v.version
	FROM new CROSS JOIN LATERAL (
		SELECT v.journey_id, v.version FROM journey_versions v
		WHERE v.trigger_event = new.name
		  AND (v.trigger_segment IS NULL OR v.trigger_segment = new.properties->>'segment')
		  AND v.version = (SELECT MAX(version) FROM journey_versions WHERE journey_id = v.journey_id)
		OFFSET 0) AS v),
dl AS (
	INSERT INTO deliveries (event_id, contact_id, kind, journey_id, journey_version, created_at)
	SELECT d.event_id, d.contact_id, d.kind, d.journey_id, d.version, d.received_at FROM (
		SELECT new.n, new.id AS event_id, new.contact_id, new.received_at,
		       0 AS ord, 'signal'::text AS kind, ''::text AS journey_id, 0 AS version
		FROM new
		WHERE new.running OR new.starting
		   OR EXISTS (SELECT 1 FROM starts WHERE starts.contact_id = new.contact_id AND starts.n < new.n)
		UNION ALL
		SELECT n, event_id, contact_id, received_at, 1, 'start', journey_id, version FROM starts) AS d
	ORDER BY d.n, d.ord, d.journey_id
	RETURNING event_id),
seg AS (
	INSERT INTO segment_evaluations (contact_id)
	SELECT DISTINCT new.contact_id FROM new
	WHERE new.name NOT IN ('segment.entered', 'segment.exited') AND EXISTS (SELECT 1 FROM segments))` + score + `
SELECT i.known IS NOT NULL, CASE WHEN ins.id IS NOT NULL THEN true WHEN e.id IS NOT NULL THEN false END,
	COALESCE(ins.id, e.id), COALESCE(ins.contact_id, e.contact_id), COALESCE(ins.name, e.name),
	-- An inserted event's properties are the ones sent: not sent back.
	e.properties, COALESCE(ins.occurred_at, e.occurred_at),
	COALESCE(ins.received_at, e.received_at),
	CASE WHEN ins.id IS NOT NULL THEN (SELECT count(*) FROM dl WHERE dl.event_id = ins.id)
	     -- FILTER, not WHERE: a done_at IS NULL condition lets the planner
	     -- pick deliveries_pending, a walk over the whole outbox.
	     WHEN e.id IS NOT NULL THEN (SELECT count(*) FILTER (WHERE done_at IS NULL) FROM deliveries WHERE event_id = e.id) END
FROM input i
LEFT JOIN ins ON ins.id = i.id
LEFT JOIN LATERAL (SELECT * FROM events WHERE events.id = i.id AND ins.id IS NULL LIMIT 1) AS e ON true
ORDER BY i.n`
}

// trackSettings configures a transaction of trackGroup's: its lock
// timeout ($1, if not empty), and generic plans for its statements. The
// event statement's plan does not depend on its arguments (every read is an
// index probe per event, whatever the planner guesses), but with the
// default plan_cache_mode PostgreSQL plans it afresh at every execution:
// it compares its generic plan, costed for the hundred rows it assumes an
// unnest of a parameter gives, with custom plans costed for a group's few,
// and keeps the custom ones. Planning the statement costs about as much
// as running it for a group, so a plan is made once per connection
// instead (and again when the tables' statistics change).
const trackSettings = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	CASE WHEN $1::text <> '' THEN set_config('lock_timeout', $1::text, true) END`

// The statement TrackEvent runs, without and with a scoring model.
var (
	trackEventsPlain  = trackEventsStatement(false)
	trackEventsScored = trackEventsStatement(true)
)

// lockContactsDeliveries takes the delivery locks (lockContactDeliveries)
// of an array of contacts, each once, in the order of their keys.
const lockContactsDeliveries = `SELECT pg_advisory_xact_lock(k) FROM (
	SELECT DISTINCT hashtextextended('tutti.deliveries:' || c, 0) AS k FROM unnest($1::text[]) AS c
	ORDER BY k) AS keys`

// trackEventsArgs are trackEventsStatement's arguments for events.
func trackEventsArgs(events []Event) []any {
	var (
		ids      = make([]string, len(events))
		contacts = make([]string, len(events))
		names    = make([]string, len(events))
		props    = make([]map[string]any, len(events))
		occurred = make([]*time.Time, len(events))
	)
	for i, e := range events {
		ids[i], contacts[i], names[i], props[i], occurred[i] = e.ID, e.ContactID, e.Name, e.Properties, timeOrNow(e.OccurredAt)
	}
	return []any{ids, contacts, names, props, occurred}
}

// scanTrackedEvent reads trackEventsStatement's row for e. reread says
// that the id exists but was committed after the statement's snapshot: the
// caller reads it again (readExistingEvent).
func scanTrackedEvent(row rowScanner, e Event) (out eventOutcome, reread bool, err error) {
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
	if *inserted {
		// Not read back (see trackEventsStatement): what was stored.
		props = e.Properties
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

// scanTrackedEvents reads trackEventsStatement's rows for events into
// outs, and returns the indexes of the events to read again (see
// scanTrackedEvent). It closes rows.
func scanTrackedEvents(rows pgx.Rows, events []Event, outs []eventOutcome) (reread []int, err error) {
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		if i == len(events) {
			return nil, fmt.Errorf("storing %d events: more rows than events", len(events))
		}
		out, again, err := scanTrackedEvent(rows, events[i])
		if err != nil {
			return nil, err
		}
		outs[i] = out
		if again {
			reread = append(reread, i)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storing %d events: %w", len(events), err)
	}
	if i != len(events) {
		return nil, fmt.Errorf("storing %d events: %d rows", len(events), i)
	}
	return reread, nil
}

// trackInTx stores e with stmt (a trackEventsStatement) in tx, which holds
// e's contact's delivery lock: what storing it did, or the statement's
// error.
//
// The statement runs with generic plans (see trackSettings), and the
// transaction's plan_cache_mode is put back after it, all in one round
// trip: tx is the caller's, whose other statements keep their plans.
func trackInTx(ctx context.Context, tx pgx.Tx, stmt string, e Event) (eventOutcome, error) {
	events, outs := []Event{e}, make([]eventOutcome, 1)
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('tutti.plan_cache_mode', current_setting('plan_cache_mode'), true),
		set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(stmt, trackEventsArgs(events)...)
	b.Queue(`SELECT set_config('plan_cache_mode', current_setting('tutti.plan_cache_mode'), true)`)
	br := tx.SendBatch(ctx, b)
	reread, err := func() ([]int, error) {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("insert event %s: configuring the statement: %w", e.ID, err)
		}
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("insert event %s: %w", e.ID, err)
		}
		reread, err := scanTrackedEvents(rows, events, outs)
		if err != nil {
			return nil, err
		}
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("insert event %s: restoring the transaction's plans: %w", e.ID, err)
		}
		return reread, nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("insert event %s: %w", e.ID, cerr)
	}
	if err != nil {
		return eventOutcome{}, err
	}
	if len(reread) > 0 {
		outs[0] = readExistingEvent(ctx, tx, e)
	}
	return outs[0], nil
}

// trackTogether stores the events of calls in one transaction of one round
// trip: BEGIN, the contacts' delivery locks, one trackEventsStatement for
// all the events (in event id order) and COMMIT. An event's own failure
// (unknown contact, reused id) is its call's (out.err) and writes nothing
// of it; any other error rolls the whole transaction back and is returned.
//
// Calls that repeat an id of the group (a retry that raced its first
// attempt) are stored after the group commits, each in a transaction of
// its own, as if they had come later: they find the first attempt stored.
//
// lockTimeout, if positive, bounds the wait for the locks; progress, if
// set, is told when the group's statements are sent and when its results
// are in.
func (s *Store) trackTogether(ctx context.Context, calls []*eventCall, lockTimeout time.Duration, progress *groupProgress) error {
	calls = slices.Clone(calls)
	slices.SortStableFunc(calls, func(a, b *eventCall) int { return cmp.Compare(a.in.ID, b.in.ID) })
	for _, c := range calls {
		c.out = eventOutcome{}
	}
	var again []*eventCall
	for i := 1; i < len(calls); i++ {
		if calls[i].in.ID == calls[i-1].in.ID {
			again = append(again, calls[i])
			calls = slices.Delete(calls, i, i+1)
			i--
		}
	}
	if err := s.trackGroup(ctx, calls, lockTimeout, progress); err != nil {
		return err
	}
	for _, c := range again {
		if err := s.trackGroup(ctx, []*eventCall{c}, 0, nil); err != nil {
			c.out = eventOutcome{err: trackAloneError(c.in, err)}
		}
	}
	return nil
}

// trackAloneError is the error of an event stored in a transaction of its
// own that failed.
func trackAloneError(e Event, err error) error {
	if _, fk := foreignKeyViolation(err); fk {
		// The contact was erased between the statement's read and its
		// insert.
		return fmt.Errorf("insert event %s: contact %s: %w", e.ID, e.ContactID, ErrNotFound)
	}
	return err
}

// trackGroup is trackTogether for calls sorted by event id, with distinct
// ids.
func (s *Store) trackGroup(ctx context.Context, calls []*eventCall, lockTimeout time.Duration, progress *groupProgress) error {
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

	events := make([]Event, len(calls))
	contacts := make([]string, len(calls))
	for i, c := range calls {
		events[i], contacts[i] = c.in, c.in.ContactID
	}
	b := &pgx.Batch{}
	b.Queue("begin")
	timeout := ""
	if lockTimeout > 0 {
		timeout = strconv.FormatInt(max(1, lockTimeout.Milliseconds()), 10) + "ms"
	}
	b.Queue(trackSettings, timeout)
	b.Queue(lockContactsDeliveries, contacts)
	b.Queue(s.trackStatement(ctx, conn), trackEventsArgs(events)...)
	b.Queue("commit")
	br := conn.SendBatch(ctx, b)
	if progress != nil {
		progress.sent()
	}
	outs := make([]eventOutcome, len(calls))
	var reread []int
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: beginning transaction: %w", what, err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: configuring the transaction: %w", what, err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: serialising the contacts' deliveries: %w", what, err)
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if reread, err = scanTrackedEvents(rows, events, outs); err != nil {
			return err
		}
		if progress != nil {
			progress.ran()
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
	for i, c := range calls {
		c.out = outs[i]
	}
	// Ids another transaction committed while this one waited for them:
	// read them as they are now (events are deleted only with their
	// contact, which is then a not-found).
	for _, i := range reread {
		calls[i].out = readExistingEvent(ctx, conn, calls[i].in)
	}
	return nil
}
