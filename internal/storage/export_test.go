package storage

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueuedGateCalls is how many Gate calls wait in s's queue for a shared
// transaction: tests use it to know a group is ready to form.
func QueuedGateCalls(s *Store) int {
	if s.batcher == nil {
		return 0
	}
	return len(s.batcher.queue)
}

// GateReads are the gate's read statements and the argument types of each,
// for the test that checks their plans.
var GateReads = map[string]struct {
	SQL   string
	Types []string
}{
	"lock contacts": {gateLockContacts, []string{"text[]"}},
	"ledger rows":   {gateReadLedgerRows, []string{"text[]"}},
	"consents":      {gateReadConsents, []string{"text[]"}},
	"suppressions":  {gateReadSuppressions, []string{"text[]", "timestamptz[]"}},
	"recent sends":  {gateReadRecentSends, []string{"text[]", "timestamptz[]", "text[]"}},
	"abandonment":   {gateReadAbandonmentSMS, []string{"text[]", "text[]", "text[]", "text[]", "bigint[]"}},
}

// QueuedEventCalls is how many TrackEvent calls wait in s's queue for a
// shared transaction.
func QueuedEventCalls(s *Store) int {
	if s.events == nil {
		return 0
	}
	return len(s.events.queue)
}

// TrackEventStatements are the event statements, without and with a
// scoring model, for the test that checks their plans.
var TrackEventStatements = map[string]string{"plain": trackEventsPlain, "scored": trackEventsScored}

// TrackInTx stores e in tx as a webhook's behaviour event is stored.
func TrackInTx(ctx context.Context, tx pgx.Tx, e Event) (Event, bool, error) {
	out, err := trackInTx(ctx, tx, trackEventsPlain, e)
	if err == nil {
		err = out.err
	}
	return out.stored, out.inserted, err
}
