package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Peeking at what the gate would read, for a preview (internal/preview):
// the same reads as Gate's (gate.go), in a read-only transaction, without
// the contact's lock, without a decision id and without writing anything.
// The statements are Gate's own with their locking clauses taken out, so
// a preview decides from exactly what a send would (TestPeekGateState
// checks both against one contact).
var (
	peekContacts = strings.NewReplacer(
		"nextval('decisions_id_seq')", "0::bigint",
		" FOR NO KEY UPDATE", "").Replace(gateLockContacts)
	peekLedgerRows = strings.Replace(gateReadLedgerRows, " FOR UPDATE", "", 1)
)

// PeekGateState reads what the send gate would read for in (the contact's
// state at in.Now, with its sends within in.Lookback), and writes nothing.
// An unknown contact is ErrNotFound.
func (s *Store) PeekGateState(ctx context.Context, in GateInput) (GateState, error) {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	id, key := in.Message.ContactID, in.Message.IdempotencyKey
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return GateState{}, fmt.Errorf("peek gate state of contact %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	b := &pgx.Batch{}
	ids := []string{id}
	b.Queue(peekContacts, ids)
	b.Queue(peekLedgerRows, []string{key})
	b.Queue(gateReadConsents, ids)
	b.Queue(gateReadSuppressions, ids, []time.Time{now})
	b.Queue(gateReadRecentSends, ids, []time.Time{now.Add(-in.Lookback)}, []string{key})
	br := tx.SendBatch(ctx, b)
	states := make([]gateRead, 1)
	err = readGateStates(br, states, false)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return GateState{}, fmt.Errorf("peek gate state of contact %s: %w", id, err)
	}
	if !states[0].locked {
		return GateState{}, fmt.Errorf("peek gate state of contact %s: %w", id, ErrNotFound)
	}
	return states[0].GateState, nil
}
