package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// groupedEventStore is a store whose TrackEvent runs one shared
// transaction at a time and waits for delivery locks as long as a test
// needs (lockTimeout), so a test can hold it up and line calls up behind it.
func groupedEventStore(t *testing.T, lockTimeout time.Duration) *storage.Store {
	t.Helper()
	s := storagetest.New(t)
	return storage.New(s.Pool(), storage.WithEventBatching(storage.GateBatching{MaxBatch: 32, MaxInFlight: 1, LockTimeout: lockTimeout}))
}

// lockDeliveries takes contactID's delivery lock in a transaction of its
// own, as a consent change or an exit request holds it; release ends it.
func lockDeliveries(t *testing.T, s *storage.Store, contactID string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('tutti.deliveries:' || $1, 0))`, contactID)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	return func() { require.NoError(t, tx.Rollback(ctx)) }
}

// trackCall is one TrackEvent call made in the background.
type trackCall struct {
	ev       storage.Event
	inserted bool
	pending  int
	err      error
}

func startTrack(ctx context.Context, s *storage.Store, e storage.Event) (wait func() trackCall) {
	var (
		call trackCall
		wg   sync.WaitGroup
	)
	wg.Go(func() { call.ev, call.inserted, call.pending, call.err = s.TrackEvent(ctx, e) })
	return func() trackCall { wg.Wait(); return call }
}

// holdEvents makes the event runner wait: it holds a contact's delivery
// lock and sends one TrackEvent call for it, which blocks on that lock
// inside the runner's transaction. Calls made meanwhile queue up and go
// together once release is called.
func holdEvents(t *testing.T, s *storage.Store) (release func()) {
	t.Helper()
	ctx := context.Background()
	c := newContact(t, s)
	unlock := lockDeliveries(t, s, c.ID)
	wait := startTrack(ctx, s, storage.Event{ID: "held-" + c.ID, ContactID: c.ID, Name: "page.viewed"})
	waitFor(t, func() bool {
		var waiting bool
		err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		return err == nil && waiting && storage.QueuedEventCalls(s) == 0
	})
	return func() {
		unlock()
		call := wait()
		require.NoError(t, call.err)
		require.True(t, call.inserted)
	}
}

func deliveriesOf(t *testing.T, s *storage.Store, eventID string) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE event_id = $1`, eventID).Scan(&n))
	return n
}

// Calls queued behind a running transaction go together in the next one.
// Inside it, a duplicate of an event stored by the same transaction is a
// duplicate (with the first's deliveries), an id reused for another contact
// is that call's conflict, and an unknown contact is that call's
// not-found: none of them fails the others.
func TestEventGroup_QueuedCallsShareOneTransaction(t *testing.T) {
	ctx := context.Background()
	s := groupedEventStore(t, time.Minute)
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	a, b, other := newContact(t, s), newContact(t, s), newContact(t, s)

	release := holdEvents(t, s)
	tx0, calls0 := s.EventGroupStats()
	events := []storage.Event{
		{ID: "cart-1", ContactID: a.ID, Name: "cart.abandoned"},
		{ID: "cart-1", ContactID: a.ID, Name: "cart.abandoned"},                                    // a retry, in the same group
		{ID: "view-1", ContactID: b.ID, Name: "page.viewed", Properties: map[string]any{"p": "x"}}, // nothing to deliver
		{ID: "cart-1", ContactID: other.ID, Name: "cart.abandoned"},                                // the id reused for another contact
		{ID: "ghost-1", ContactID: "c_missing", Name: "page.viewed"},
	}
	waits := make([]func() trackCall, len(events))
	for i, e := range events {
		waits[i] = startTrack(ctx, s, e)
		waitFor(t, func() bool { return storage.QueuedEventCalls(s) == i+1 })
	}
	release()
	calls := make([]trackCall, len(events))
	for i, wait := range waits {
		calls[i] = wait()
	}
	tx1, calls1 := s.EventGroupStats()
	require.Equal(t, int64(1), tx1-tx0, "one transaction for all the queued calls")
	require.Equal(t, int64(len(events)), calls1-calls0)

	// Exactly one of the two cart-1 calls stored it; both answer the same
	// event and its one pending start.
	require.NoError(t, calls[0].err)
	require.NoError(t, calls[1].err)
	require.NotEqual(t, calls[0].inserted, calls[1].inserted, "one insert, one duplicate")
	require.Equal(t, calls[0].ev, calls[1].ev)
	require.Equal(t, 1, calls[0].pending)
	require.Equal(t, 1, calls[1].pending)
	require.Equal(t, []string{"start:cart"}, pendingKinds(t, s, a.ID))
	require.Equal(t, 1, deliveriesOf(t, s, "cart-1"))

	require.NoError(t, calls[2].err)
	require.True(t, calls[2].inserted)
	require.Zero(t, calls[2].pending)
	require.Equal(t, map[string]any{"p": "x"}, calls[2].ev.Properties)
	require.Equal(t, b.ID, calls[2].ev.ContactID)

	require.ErrorIs(t, calls[3].err, storage.ErrEventConflict)
	require.Empty(t, pendingKinds(t, s, other.ID), "the conflicting call stored nothing")
	require.ErrorIs(t, calls[4].err, storage.ErrNotFound)
	_, err = s.Event(ctx, "ghost-1")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// Events of one contact in one group are stored as if one after the other,
// in event id order: an event sees the start an earlier one stored (so it
// gets a signal for the run that start may become) and not its own or a
// later one's, and the deliveries take their ids in that order.
func TestEventGroup_EventsSeeEarlierStartsOfTheGroup(t *testing.T) {
	ctx := context.Background()
	s := groupedEventStore(t, time.Minute)
	_, err := s.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	a, b := newContact(t, s), newContact(t, s)

	release := holdEvents(t, s)
	tx0, _ := s.EventGroupStats()
	events := []storage.Event{
		{ID: "g-2", ContactID: a.ID, Name: "page.viewed"},    // after a's start: signalled
		{ID: "g-1", ContactID: a.ID, Name: "cart.abandoned"}, // a's start
		{ID: "g-3", ContactID: a.ID, Name: "cart.abandoned"}, // a second start, and a signal for the first
		{ID: "g-1b", ContactID: b.ID, Name: "page.viewed"},   // before b's start: nothing
		{ID: "g-2b", ContactID: b.ID, Name: "cart.abandoned"},
	}
	waits := make([]func() trackCall, len(events))
	for i, e := range events {
		waits[i] = startTrack(ctx, s, e)
		waitFor(t, func() bool { return storage.QueuedEventCalls(s) == i+1 })
	}
	release()
	pending := map[string]int{}
	for i, wait := range waits {
		call := wait()
		require.NoError(t, call.err, events[i].ID)
		require.True(t, call.inserted, events[i].ID)
		pending[events[i].ID] = call.pending
	}
	tx1, _ := s.EventGroupStats()
	require.Equal(t, int64(1), tx1-tx0, "one transaction for all")
	require.Equal(t, map[string]int{"g-1": 1, "g-2": 1, "g-3": 2, "g-1b": 0, "g-2b": 1}, pending)

	order := func(contactID string) []string {
		rows, err := s.Pool().Query(ctx, `SELECT event_id || ':' || kind FROM deliveries WHERE contact_id = $1 ORDER BY id`, contactID)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []string{"g-1:start", "g-2:signal", "g-3:signal", "g-3:start"}, order(a.ID))
	require.Equal(t, []string{"g-2b:start"}, order(b.ID))
}

// An event that fails its shared transaction (here PostgreSQL refuses its
// name) does not fail the others: the transaction rolls back whole and
// each call is stored again alone, where only the bad one fails.
func TestEventGroup_FailingEventDoesNotFailTheOthers(t *testing.T) {
	ctx := context.Background()
	s := groupedEventStore(t, time.Minute)
	var cs []storage.Contact
	for range 4 {
		cs = append(cs, newContact(t, s))
	}
	release := holdEvents(t, s)
	tx0, _ := s.EventGroupStats()
	waits := make([]func() trackCall, len(cs))
	for i, c := range cs {
		name := "page.viewed"
		if i == 1 {
			name = "bad\x00name" // text cannot hold a NUL byte: the statement fails
		}
		waits[i] = startTrack(ctx, s, storage.Event{ID: fmt.Sprintf("f-%d", i), ContactID: c.ID, Name: name})
	}
	waitFor(t, func() bool { return storage.QueuedEventCalls(s) == len(cs) })
	release()
	for i, wait := range waits {
		call := wait()
		if i == 1 {
			require.Error(t, call.err)
			require.Contains(t, call.err.Error(), "f-1")
			_, err := s.Event(ctx, "f-1")
			require.ErrorIs(t, err, storage.ErrNotFound)
			continue
		}
		require.NoError(t, call.err, "call %d", i)
		require.True(t, call.inserted, "call %d", i)
	}
	tx1, _ := s.EventGroupStats()
	require.Equal(t, int64(1), tx1-tx0, "one shared transaction, which failed; the retries went alone")
}

// A contact whose delivery lock some long transaction holds does not hold
// up the other contacts' events: the group gives up on the lock after
// LockTimeout and falls apart, and only that contact's event waits.
func TestEventGroup_LockedContactDoesNotHoldUpOthers(t *testing.T) {
	ctx := context.Background()
	s := groupedEventStore(t, 50*time.Millisecond)
	var cs []storage.Contact
	for range 3 {
		cs = append(cs, newContact(t, s))
	}
	release := lockDeliveries(t, s, cs[0].ID)
	waits := make([]func() trackCall, len(cs))
	for i, c := range cs {
		waits[i] = startTrack(ctx, s, storage.Event{ID: fmt.Sprintf("l-%d", i), ContactID: c.ID, Name: "page.viewed"})
	}
	for i := 1; i < len(cs); i++ {
		call := waits[i]()
		require.NoError(t, call.err)
		require.True(t, call.inserted, "call %d went through while contact 0 is locked", i)
	}
	_, err := s.Event(ctx, "l-0")
	require.ErrorIs(t, err, storage.ErrNotFound, "the locked contact's event waits for its lock")
	release()
	call := waits[0]()
	require.NoError(t, call.err)
	require.True(t, call.inserted)
}

// A group gives up forming the next one while it waits for a contact's
// lock: with two transactions in flight, an event of another contact is
// stored while the first group still waits (up to its LockTimeout, here
// far longer than the test lets the second call wait).
func TestEventGroup_WaitingGroupLetsTheNextForm(t *testing.T) {
	ctx := context.Background()
	base := storagetest.New(t)
	s := storage.New(base.Pool(), storage.WithEventBatching(storage.GateBatching{MaxBatch: 32, MaxInFlight: 2, LockTimeout: time.Hour}))
	locked, other := newContact(t, s), newContact(t, s)
	release := lockDeliveries(t, s, locked.ID)
	wait := startTrack(ctx, s, storage.Event{ID: "w-locked", ContactID: locked.ID, Name: "page.viewed"})
	waitFor(t, func() bool {
		var waiting bool
		err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		return err == nil && waiting
	})

	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, inserted, _, err := s.TrackEvent(octx, storage.Event{ID: "w-other", ContactID: other.ID, Name: "page.viewed"})
	require.NoError(t, err, "the second group formed while the first waits for its lock")
	require.True(t, inserted)
	_, err = s.Event(ctx, "w-locked")
	require.ErrorIs(t, err, storage.ErrNotFound, "the first group still waits")

	release()
	call := wait()
	require.NoError(t, call.err)
	require.True(t, call.inserted)
}

// A lone call takes a transaction of its own (a group of one), with or
// without grouping, and answers as TrackEvent always has.
func TestEventGroup_LoneCall(t *testing.T) {
	ctx := context.Background()
	base := storagetest.New(t)
	_, err := base.PublishJourney(ctx, spec("cart", journey.Trigger{Type: journey.TriggerEvent, Event: "cart.abandoned"}))
	require.NoError(t, err)
	for _, grouped := range []bool{true, false} {
		b := storage.DefaultGateBatching()
		if !grouped {
			b.MaxBatch = 1
		}
		s := storage.New(base.Pool(), storage.WithEventBatching(b))
		c := newContact(t, s)
		tx0, calls0 := s.EventGroupStats()
		ev, inserted, pending, err := s.TrackEvent(ctx, storage.Event{ContactID: c.ID, Name: "cart.abandoned"})
		require.NoError(t, err)
		require.True(t, inserted)
		require.Equal(t, 1, pending)
		require.NotEmpty(t, ev.ID, "an empty id gets a generated one")
		require.Equal(t, map[string]any{}, ev.Properties)
		require.False(t, ev.ReceivedAt.IsZero())
		require.Equal(t, ev.ReceivedAt, ev.OccurredAt, "no occurred_at means when it was received")
		tx1, calls1 := s.EventGroupStats()
		if grouped {
			require.Equal(t, [2]int64{1, 1}, [2]int64{tx1 - tx0, calls1 - calls0})
		} else {
			require.Equal(t, [2]int64{0, 0}, [2]int64{tx1, calls1})
		}
		again, inserted, pending, err := s.TrackEvent(ctx, ev)
		require.NoError(t, err)
		require.False(t, inserted)
		require.Equal(t, 1, pending)
		require.Equal(t, ev, again)
	}
}

// Under concurrency, each contact's deliveries become visible in id order:
// a reader never finds a new delivery with a smaller id than one it saw
// before, which is what the dispatcher's "oldest pending delivery of the
// contact" relies on. Many clients track events for a few contacts (each
// with a run, so every event stores a signal), several events of one
// contact often in one group, while a reader watches.
func TestEventGroup_ContactsDeliveriesCommitInIDOrder(t *testing.T) {
	ctx := context.Background()
	base := storagetest.New(t)
	s := storage.New(base.Pool(), storage.WithEventBatching(storage.GateBatching{MaxBatch: 8, MaxInFlight: 2}))
	v := publish(t, s, "parked")
	const contacts, clients, perClient = 4, 12, 25
	ids := make([]string, contacts)
	for i := range ids {
		c := newContact(t, s)
		ids[i] = c.ID
		require.NoError(t, s.CreateEnrollment(ctx, storage.Enrollment{ID: "e_" + c.ID, ContactID: c.ID, JourneyID: v.JourneyID,
			Version: v.Version, WorkflowID: "wf-" + c.ID, Status: model.RunActive, StartedAt: time.Now()}, nil))
	}

	stop := make(chan struct{})
	var (
		wg         sync.WaitGroup
		violations []string
	)
	wg.Go(func() {
		seen := make([]map[int64]bool, contacts)
		top := make([]int64, contacts)
		for i := range seen {
			seen[i] = map[int64]bool{}
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i, id := range ids {
				rows, err := s.Pool().Query(ctx, `SELECT id FROM deliveries WHERE contact_id = $1 ORDER BY id`, id)
				if err != nil {
					violations = append(violations, err.Error())
					return
				}
				var got []int64
				for rows.Next() {
					var d int64
					if err := rows.Scan(&d); err != nil {
						violations = append(violations, err.Error())
					}
					got = append(got, d)
				}
				rows.Close()
				for _, d := range got {
					if !seen[i][d] && d < top[i] {
						violations = append(violations, fmt.Sprintf("contact %d: delivery %d appeared after %d", i, d, top[i]))
					}
					seen[i][d] = true
					top[i] = max(top[i], d)
				}
			}
		}
	})
	errs := make([]error, clients)
	concurrently(clients, func(w int) {
		for i := range perClient {
			_, _, _, err := s.TrackEvent(ctx, storage.Event{ID: fmt.Sprintf("o-%d-%d", w, i), ContactID: ids[(w+i)%contacts], Name: "purchase"})
			if err != nil && errs[w] == nil {
				errs[w] = err
			}
		}
	})
	close(stop)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, violations)
	var n int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE kind = 'signal'`).Scan(&n))
	require.Equal(t, clients*perClient, n, "every event stored its signal")
	txs, calls := s.EventGroupStats()
	t.Logf("%d calls in %d shared transactions", calls, txs)
}

// One id posted at once for different contacts (a client's mistake), in
// separate transactions: whichever commits first stores it, every other
// call answers ErrEventConflict, including those whose statement started
// before the first committed and read the id again afterwards; nothing
// else fails and nothing is stored twice.
func TestEventGroup_IDRacedAcrossTransactions(t *testing.T) {
	ctx := context.Background()
	base := storagetest.New(t)
	for _, b := range []storage.GateBatching{{MaxBatch: 1}, {MaxBatch: 4, MaxInFlight: 4}} {
		s := storage.New(base.Pool(), storage.WithEventBatching(b))
		const n = 12
		cs := make([]storage.Contact, n)
		for i := range cs {
			cs[i] = newContact(t, s)
		}
		id := fmt.Sprintf("raced-%d", b.MaxBatch)
		calls := make([]trackCall, n)
		concurrently(n, func(i int) {
			calls[i].ev, calls[i].inserted, calls[i].pending, calls[i].err = s.TrackEvent(ctx, storage.Event{ID: id, ContactID: cs[i].ID, Name: "purchase"})
		})
		winners := 0
		for i, c := range calls {
			if c.err == nil {
				require.True(t, c.inserted, "call %d", i)
				require.Equal(t, cs[i].ID, c.ev.ContactID)
				winners++
				continue
			}
			require.ErrorIs(t, c.err, storage.ErrEventConflict, "call %d", i)
		}
		require.Equal(t, 1, winners, "batching %+v", b)
		var stored int
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE id = $1`, id).Scan(&stored))
		require.Equal(t, 1, stored)
	}
}

// The event statement's reads must stay index probes per event whatever
// plan it settles on: its transactions use generic plans (made once per
// connection, possibly while the tables are empty), costed for a hundred
// events where a group has a few. Joins written plainly were planned as
// scans of contacts, enrollments and events.
func TestTrackEvents_PlanIndexLookupsOnEmptyTables(t *testing.T) {
	s := storagetest.New(t)
	plans := genericPlans(t, s, []string{"text[]", "text[]", "text[]", "jsonb[]", "timestamptz[]"}, storage.TrackEventStatements)
	for name, plan := range plans {
		for _, table := range []string{"contacts", "enrollments", "events", "deliveries"} {
			require.NotContains(t, plan+"\n", "Seq Scan on "+table+" ", "%s:\n%s", name, plan)
			require.NotContains(t, plan+"\n", "Seq Scan on "+table+"\n", "%s:\n%s", name, plan)
		}
		for _, index := range []string{"contacts_pkey", "enrollments_one_active", "deliveries_pending_start", "events_pkey", "deliveries_event"} {
			require.Contains(t, plan, index, "%s:\n%s", name, plan)
		}
	}
}

// An event stored inside another transaction (a webhook's) runs with
// generic plans and gives the transaction its own plan_cache_mode back.
func TestTrackInTx_RestoresPlanCacheMode(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)
	c := newContact(t, s)
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // read-only check; rolled back
	_, err = tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`)
	require.NoError(t, err)
	_, inserted, err := storage.TrackInTx(ctx, tx, storage.Event{ID: "in-tx-1", ContactID: c.ID, Name: "email.opened", Properties: map[string]any{}})
	require.NoError(t, err)
	require.True(t, inserted)
	var mode string
	require.NoError(t, tx.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode))
	require.Equal(t, "force_custom_plan", mode)
}
