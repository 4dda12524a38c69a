package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// groupedStore is a store whose gate runs one shared transaction at a
// time and waits for contact locks as long as a test needs, so a test can
// hold it up and line calls up behind it.
func groupedStore(t *testing.T) *storage.Store {
	t.Helper()
	s := storagetest.New(t)
	return storage.New(s.Pool(), storage.WithGateBatching(storage.GateBatching{MaxBatch: 32, MaxInFlight: 1, LockTimeout: time.Minute}))
}

// holdGate makes the gate's runner wait: it locks a contact in a
// transaction of its own and sends one Gate call for it, which blocks on
// that lock inside the runner's transaction. Calls made meanwhile queue up
// and go together, in one transaction, once release is called; release
// returns the held call's result.
func holdGate(t *testing.T, s *storage.Store) (release func() storage.GateResult) {
	t.Helper()
	ctx := context.Background()
	c := newEmailContact(t, s)
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE`, c.ID)
	require.NoError(t, err)

	done := make(chan storage.GateResult, 1)
	go func() {
		res, err := s.Gate(ctx, gateInput(c, "held", "held-"+c.ID, journey.ChannelEmail), decideWith(gateSettings(), journey.ChannelEmail, time.Now()))
		if err != nil {
			t.Errorf("held gate call: %v", err)
		}
		done <- res
	}()
	// The runner took the held call (the queue is empty again) and waits
	// for the lock.
	waitFor(t, func() bool {
		var waiting bool
		err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		return err == nil && waiting
	})
	return func() storage.GateResult {
		require.NoError(t, tx.Rollback(ctx))
		return <-done
	}
}

// waitFor polls cond until it holds (or fails the test after 10s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateCall is one Gate call made in the background.
type gateCall struct {
	res storage.GateResult
	err error
	pan any
}

// startGate makes a Gate call on its own goroutine; wait returns its
// outcome (a panic is caught and kept).
func startGate(ctx context.Context, s *storage.Store, in storage.GateInput, decide func(storage.GateState) policy.Decision) (wait func() gateCall) {
	var (
		call gateCall
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		defer func() { call.pan = recover() }()
		call.res, call.err = s.Gate(ctx, in, decide)
	})
	return func() gateCall { wg.Wait(); return call }
}

func decisionsFor(t *testing.T, s *storage.Store, key string) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM decisions WHERE idempotency_key = $1`, key).Scan(&n))
	return n
}

// Calls queued behind a running transaction go together in the next one,
// and each gets its own decision and ledger row.
func TestGateGroup_QueuedCallsShareOneTransaction(t *testing.T) {
	ctx := context.Background()
	s := groupedStore(t)
	settings := gateSettings()
	now := time.Now()
	const n = 6
	contacts := make([]storage.Contact, n)
	contacts[0] = newContact(t, s) // no consent: skipped, in the same group
	for i := 1; i < n; i++ {
		contacts[i] = newEmailContact(t, s)
	}
	release := holdGate(t, s)
	tx0, calls0 := s.GateGroupStats()
	waits := make([]func() gateCall, n)
	for i, c := range contacts {
		waits[i] = startGate(ctx, s, gateInput(c, "j", fmt.Sprintf("grouped-%d", i), journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	}
	waitFor(t, func() bool { return storage.QueuedGateCalls(s) == n })
	require.True(t, release().Send(), "the held call was allowed")

	for i, wait := range waits {
		call := wait()
		require.NoError(t, call.err, "call %d", i)
		require.True(t, call.res.Decided)
		require.NotZero(t, call.res.DecisionID)
		require.Equal(t, fmt.Sprintf("grouped-%d", i), call.res.Message.IdempotencyKey)
		require.Equal(t, contacts[i].ID, call.res.Message.ContactID)
		require.Equal(t, call.res.DecisionID, *call.res.Message.DecisionID, "the ledger row names its own decision")
		if i == 0 {
			require.False(t, call.res.Send())
			require.Equal(t, model.MessageSkipped, call.res.Message.Status)
			require.Equal(t, storage.ClaimDone, call.res.Claim)
			continue
		}
		require.True(t, call.res.Send(), "call %d", i)
		require.Equal(t, storage.ClaimNew, call.res.Claim)
		require.Equal(t, model.MessageReserved, call.res.Message.Status)
		require.NotNil(t, call.res.Message.ConsentEventID)
	}
	tx1, calls1 := s.GateGroupStats()
	require.Equal(t, int64(1), tx1-tx0, "after the held call's transaction, one for all the queued calls")
	require.Equal(t, int64(n), calls1-calls0)

	// Each decision is on record and explains itself.
	for i := range n {
		require.Equal(t, 1, decisionsFor(t, s, fmt.Sprintf("grouped-%d", i)))
	}
	why, err := s.DecisionsFor(ctx, contacts[0].ID, "j", "step", 10)
	require.NoError(t, err)
	require.Len(t, why, 1)
	require.Equal(t, policy.OutcomeSkip, why[0].Outcome)
}

// One bad call in a group does not fail the others: the shared transaction
// rolls back whole and every call is decided again in a transaction of its
// own, where only the bad one fails.
func TestGateGroup_OneFailingCallDoesNotFailTheOthers(t *testing.T) {
	ctx := context.Background()
	s := groupedStore(t)
	settings := gateSettings()
	now := time.Now()
	first := newEmailContact(t, s)
	taken, err := s.Gate(ctx, gateInput(first, "j", "taken", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	require.NoError(t, err)

	release := holdGate(t, s)
	var waits []func() gateCall
	var keys []string
	for i := range 4 {
		c := newEmailContact(t, s)
		in := gateInput(c, "j", fmt.Sprintf("k-%d", i), journey.ChannelEmail)
		if i == 2 {
			in.Message.ID = taken.Message.ID // the ledger insert breaks the primary key
		}
		keys = append(keys, in.Message.IdempotencyKey)
		waits = append(waits, startGate(ctx, s, in, decideWith(settings, journey.ChannelEmail, now)))
	}
	// A contact that does not exist fails its own call and nothing else,
	// without undoing the group.
	ghost := gateInput(storage.Contact{ID: "c_missing"}, "j", "k-ghost", journey.ChannelEmail)
	waits = append(waits, startGate(ctx, s, ghost, decideWith(settings, journey.ChannelEmail, now)))
	waitFor(t, func() bool { return storage.QueuedGateCalls(s) == 5 })
	release()

	for i, wait := range waits {
		call := wait()
		switch i {
		case 2:
			require.Error(t, call.err)
			require.Contains(t, call.err.Error(), "gate k-2: recording decision and ledger row")
			require.Zero(t, decisionsFor(t, s, "k-2"), "the failed call left no decision")
		case 4:
			require.ErrorIs(t, call.err, storage.ErrNotFound)
		default:
			require.NoError(t, call.err, "call %d", i)
			require.True(t, call.res.Send(), "call %d", i)
			require.Equal(t, 1, decisionsFor(t, s, keys[i]), "call %d decided once", i)
		}
	}
}

// A call whose caller gives up while it waits in the queue is never
// decided; a panic in one call's decide function is that call's, and the
// others in its group are decided as usual.
func TestGateGroup_CancelledAndPanickingCalls(t *testing.T) {
	ctx := context.Background()
	s := groupedStore(t)
	settings := gateSettings()
	now := time.Now()
	var cs []storage.Contact
	for range 3 {
		cs = append(cs, newEmailContact(t, s))
	}
	release := holdGate(t, s)
	cancelled, cancel := context.WithCancel(ctx)
	waitCancelled := startGate(cancelled, s, gateInput(cs[0], "j", "gave-up", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	waitPanic := startGate(ctx, s, gateInput(cs[1], "j", "panics", journey.ChannelEmail), func(storage.GateState) policy.Decision { panic("boom") })
	waitGood := startGate(ctx, s, gateInput(cs[2], "j", "good", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	waitFor(t, func() bool { return storage.QueuedGateCalls(s) == 3 })
	cancel()
	gaveUp := waitCancelled()
	require.ErrorIs(t, gaveUp.err, context.Canceled)
	release()

	require.Equal(t, "boom", waitPanic().pan)
	good := waitGood()
	require.NoError(t, good.err)
	require.True(t, good.res.Send())
	require.Zero(t, decisionsFor(t, s, "gave-up"), "a call dropped from the queue is not decided")
	require.Zero(t, decisionsFor(t, s, "panics"))
	require.Equal(t, 1, decisionsFor(t, s, "good"))
}

// Many journeys sending to many contacts at once, through shared
// transactions: each contact's cap holds exactly, and calls did share
// transactions.
func TestGateGroup_CapsHoldPerContactUnderLoad(t *testing.T) {
	ctx := context.Background()
	s := storagetest.New(t)    // the default grouping
	settings := gateSettings() // cap 3
	now := time.Now()
	const contacts, perContact = 12, 8
	cs := make([]storage.Contact, contacts)
	for i := range cs {
		cs[i] = newEmailContact(t, s)
	}
	tx0, calls0 := s.GateGroupStats()
	var (
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	concurrently(contacts*perContact, func(i int) {
		c := cs[i%contacts]
		res, err := s.Gate(ctx, gateInput(c, fmt.Sprintf("journey-%d", i), fmt.Sprintf("load-%d", i), journey.ChannelEmail),
			decideWith(settings, journey.ChannelEmail, now))
		require.NoError(t, err)
		if res.Send() {
			mu.Lock()
			allowed[c.ID]++
			mu.Unlock()
		}
	})
	for _, c := range cs {
		require.Equal(t, 3, allowed[c.ID], "contact %s", c.ID)
		msgs, err := s.MessagesForContact(ctx, c.ID, 100)
		require.NoError(t, err)
		require.Len(t, msgs, 3)
	}
	tx1, calls1 := s.GateGroupStats()
	require.Equal(t, int64(contacts*perContact), calls1-calls0)
	require.Less(t, tx1-tx0, calls1-calls0, "some calls shared a transaction")
}

// The gate's reads must stay index lookups per request whatever plan a
// prepared statement settles on. A generic plan made while the tables are
// empty (a new deployment) is the test: written as "id = ANY($1)", the
// ledger read was planned as a sequential scan of messages, and kept that
// plan as the table grew.
func TestGateReads_PlanIndexLookupsOnEmptyTables(t *testing.T) {
	s := storagetest.New(t)
	for name, q := range storage.GateReads {
		plan := genericPlans(t, s, q.Types, map[string]string{name: q.SQL})[name]
		for _, table := range []string{"contacts", "messages", "consents", "suppressions"} {
			require.NotContains(t, plan, "Seq Scan on "+table, "%s:\n%s", name, plan)
		}
		require.Contains(t, plan, "Index", "%s:\n%s", name, plan)
	}
}

// A contact locked by a long transaction elsewhere does not hold up the
// other contacts' decisions: the shared transaction gives up on the lock
// after LockTimeout, and only that contact's call goes on waiting, alone.
func TestGateGroup_LockedContactDoesNotHoldUpOthers(t *testing.T) {
	ctx := context.Background()
	base := storagetest.New(t)
	s := storage.New(base.Pool(), storage.WithGateBatching(storage.GateBatching{MaxBatch: 32, MaxInFlight: 1, LockTimeout: 50 * time.Millisecond}))
	settings := gateSettings()
	now := time.Now()
	var cs []storage.Contact
	for range 3 {
		cs = append(cs, newEmailContact(t, s))
	}
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // rolled back below; a no-op then
	_, err = tx.Exec(ctx, `SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE`, cs[0].ID)
	require.NoError(t, err)

	waits := make([]func() gateCall, len(cs))
	for i, c := range cs {
		waits[i] = startGate(ctx, s, gateInput(c, "j", fmt.Sprintf("locked-%d", i), journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	}
	for i := 1; i < len(cs); i++ {
		call := waits[i]()
		require.NoError(t, call.err)
		require.True(t, call.res.Send(), "call %d went through while contact 0 is locked", i)
	}
	require.Zero(t, decisionsFor(t, s, "locked-0"), "the locked contact's call waits for its lock")

	require.NoError(t, tx.Rollback(ctx))
	call := waits[0]()
	require.NoError(t, call.err)
	require.True(t, call.res.Send())
}

// In a shared transaction each call's abandonment check answers for its
// own contact and event.
func TestGateGroup_AbandonmentChecksMatchTheirCalls(t *testing.T) {
	ctx := context.Background()
	s := groupedStore(t)
	eventAt := time.Date(2026, 6, 1, 14, 0, 0, 0, time.UTC)
	now := eventAt.Add(time.Hour)
	decide := func(event string) func(storage.GateState) policy.Decision {
		return func(st storage.GateState) policy.Decision {
			return policy.Decide(gateSettings(), policy.Request{
				Contact: st.Contact, Channel: journey.ChannelSMS, Class: journey.ClassMarketing, Now: now,
				Journey:     policy.JourneySettings{Abandonment: true},
				Abandonment: &policy.AbandonmentContext{EventID: event, At: eventAt, SMSAlreadySent: st.AbandonmentSMSSent},
			})
		}
	}
	input := func(c storage.Contact, key, event string) storage.GateInput {
		in := gateInput(c, "abandoned_cart", key, journey.ChannelSMS)
		in.AbandonmentEventID = event
		return in
	}
	var cs []storage.Contact
	for i := range 4 {
		c := newContact(t, s)
		_, err := s.Pool().Exec(ctx, `UPDATE contacts SET phone = $2 WHERE id = $1`, c.ID, fmt.Sprintf("+1415555%04d", 300+i))
		require.NoError(t, err)
		_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelSMS, model.ConsentGranted, "form", time.Time{})
		require.NoError(t, err)
		cs = append(cs, c)
	}
	// Contacts 1 and 3 already had their event's SMS.
	for _, i := range []int{1, 3} {
		first, err := s.Gate(ctx, input(cs[i], fmt.Sprintf("first-%d", i), fmt.Sprintf("cart-%d", i)), decide(fmt.Sprintf("cart-%d", i)))
		require.NoError(t, err)
		require.True(t, first.Send())
	}

	release := holdGate(t, s)
	waits := make([]func() gateCall, len(cs))
	for i, c := range cs {
		event := fmt.Sprintf("cart-%d", i)
		waits[i] = startGate(ctx, s, input(c, fmt.Sprintf("second-%d", i), event), decide(event))
	}
	waitFor(t, func() bool { return storage.QueuedGateCalls(s) == len(cs) })
	tx0, _ := s.GateGroupStats()
	release()
	for i, wait := range waits {
		call := wait()
		require.NoError(t, call.err, "call %d", i)
		if i%2 == 1 {
			require.False(t, call.res.Send(), "call %d", i)
			require.Equal(t, []string{policy.CodeAbandonmentSMSAlreadySent}, call.res.Decision.ReasonCodes(), "call %d", i)
			continue
		}
		require.True(t, call.res.Send(), "call %d", i)
		require.Equal(t, fmt.Sprintf("cart-%d", i), call.res.Message.AbandonmentEventID)
	}
	tx1, _ := s.GateGroupStats()
	require.Equal(t, int64(1), tx1-tx0, "the four calls went together")
}
