package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// The gate pipelines its write with COMMIT. A write that fails must leave
// nothing behind (no decision row without its ledger row), release the
// contact lock, and leave the connection usable: on a one-connection pool
// the next gate call would otherwise block or fail.
func TestGate_FailedWriteRollsBackEverything(t *testing.T) {
	ctx := context.Background()
	_, dsn := storagetest.NewWithDSN(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := storage.New(pool)

	c := newEmailContact(t, s)
	settings := gateSettings()
	now := time.Now()
	first, err := s.Gate(ctx, gateInput(c, "j1", "k1", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now))
	require.NoError(t, err)
	require.True(t, first.Send())

	// The same message id again under a new key: the ledger insert fails
	// (primary key) after the decision row was inserted in the same statement.
	in := gateInput(c, "j2", "k2", journey.ChannelEmail)
	in.Message.ID = first.Message.ID
	_, err = s.Gate(ctx, in, decideWith(settings, journey.ChannelEmail, now))
	require.Error(t, err)
	require.Contains(t, err.Error(), "gate k2: recording decision and ledger row")

	var decisions int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM decisions WHERE contact_id = $1`, c.ID).Scan(&decisions))
	require.Equal(t, 1, decisions, "the failed gate call left no decision row")
	_, err = s.MessageByKey(ctx, "k2")
	require.ErrorIs(t, err, storage.ErrNotFound)

	// The connection is back in the pool, outside any transaction, and the
	// contact is not locked.
	next, err := s.Gate(ctx, gateInput(c, "j3", "k3", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now.Add(17*time.Hour)))
	require.NoError(t, err)
	require.True(t, next.Send())

	// A panicking decide rolls back too.
	require.Panics(t, func() {
		_, _ = s.Gate(ctx, gateInput(c, "j4", "k4", journey.ChannelEmail), func(storage.GateState) policy.Decision { panic("boom") })
	})
	again, err := s.Gate(ctx, gateInput(c, "j4", "k4", journey.ChannelEmail), decideWith(settings, journey.ChannelEmail, now.Add(34*time.Hour)))
	require.NoError(t, err)
	require.True(t, again.Send())
}
