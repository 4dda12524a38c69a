package storage_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	s, dsn := storagetest.NewWithDSN(t)
	ctx := context.Background()

	before, err := storage.MigrationStatus(ctx, dsn)
	require.NoError(t, err)
	require.NotEmpty(t, before)
	for _, m := range before {
		require.True(t, m.Applied, "%s applied by the template", m.Name)
	}
	require.Equal(t, "00001_init.sql", before[0].Name)

	// Twice, and concurrently: the advisory lock serialises them, and
	// there is nothing left to do.
	errs := make([]error, 2)
	concurrently(2, func(i int) { errs[i] = storage.Migrate(ctx, dsn) })
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])

	after, err := storage.MigrationStatus(ctx, dsn)
	require.NoError(t, err)
	require.Equal(t, before, after)
	var rows int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&rows))
	require.Equal(t, len(before), rows)
}

func TestEnsureDatabaseAndMigrateFromScratch(t *testing.T) {
	t.Parallel()
	// Borrow a test database's server and credentials for a database of our own.
	s, dsn := storagetest.NewWithDSN(t)
	ctx := context.Background()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	name := fmt.Sprintf("tutti_t_%d_ensure%d", time.Now().Unix(), time.Now().UnixNano()%1e6)
	u.Path = "/" + name
	fresh := u.String()
	t.Cleanup(func() {
		_, err := s.Pool().Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
		require.NoError(t, err)
	})

	require.NoError(t, storage.EnsureDatabase(ctx, fresh))
	require.NoError(t, storage.EnsureDatabase(ctx, fresh), "existing database is fine")

	status, err := storage.MigrationStatus(ctx, fresh)
	require.NoError(t, err)
	for _, m := range status {
		require.False(t, m.Applied)
	}
	require.NoError(t, storage.Migrate(ctx, fresh))
	require.NoError(t, storage.Migrate(ctx, fresh))
	status, err = storage.MigrationStatus(ctx, fresh)
	require.NoError(t, err)
	for _, m := range status {
		require.True(t, m.Applied)
		require.False(t, m.AppliedAt.IsZero())
	}

	fs, err := storage.Open(ctx, fresh)
	require.NoError(t, err)
	defer fs.Close()
	_, _, err = fs.UpsertContact(ctx, storage.ContactInput{Email: "a@example.com"})
	require.NoError(t, err)
}
