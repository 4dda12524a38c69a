package storagetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/storage"
)

func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsnA := NewWithDSN(t)
	b, dsnB := NewWithDSN(t)
	require.NotEqual(t, dsnA, dsnB)

	_, _, err := a.UpsertContact(ctx, storage.ContactInput{Email: "only-in-a@example.com"})
	require.NoError(t, err)
	_, err = b.ContactByEmail(ctx, "only-in-a@example.com")
	require.ErrorIs(t, err, storage.ErrNotFound)

	var name string
	require.NoError(t, a.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&name))
	require.Regexp(t, `^tutti_t_\d+_[0-9a-f]{12}$`, name)
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://root@127.0.0.1:5432/postgres?sslmode=disable", "postgres://root@127.0.0.1:5432/x?sslmode=disable"},
		{"postgresql://u:p%40ss@h/db?dbname=other&sslmode=disable", "postgresql://u:p%40ss@h/x?sslmode=disable"},
		{"postgres://root@localhost", "postgres://root@localhost/x"},
		{"host=127.0.0.1 user=root dbname=postgres", "host=127.0.0.1 user=root dbname=postgres dbname=x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "x")
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
		cfg, err := pgconn.ParseConfig(got)
		require.NoError(t, err)
		require.Equal(t, "x", cfg.Database)
	}
}

func TestBuildTemplateConcurrent(t *testing.T) {
	t.Parallel()
	New(t) // sets up the shared admin pool
	ctx := context.Background()
	name := templatePrefix + "selftest_" + randomHex(4)
	t.Cleanup(func() { require.NoError(t, dropDatabase(shared.admin, name)) })

	// Several builders at once (as several test binaries would): one builds,
	// the others wait on the advisory lock and then find it built.
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- buildTemplate(ctx, shared.admin, shared.baseURL, name) }()
	}
	for range 3 {
		require.NoError(t, <-errs)
	}
	var n int
	require.NoError(t, shared.admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname IN ($1, $2)`, name, name+"_building").Scan(&n))
	require.Equal(t, 1, n, "the template exists and the temporary build database is gone")

	dsn, err := withDatabase(shared.baseURL, name)
	require.NoError(t, err)
	status, err := storage.MigrationStatus(ctx, dsn)
	require.NoError(t, err)
	for _, m := range status {
		require.True(t, m.Applied, m.Name)
	}
}
