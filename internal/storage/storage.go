// Package storage is Tutti's PostgreSQL state: contacts and their consent,
// tracked events, published journey versions, enrollments (journey runs) and
// the message ledger that keeps retried sends from going out twice.
//
// One Store wraps a pgx pool; each table has its own file of methods, with
// the SQL inline. Methods return the sentinel errors of models.go (wrapped
// with detail) for the cases callers branch on; test them with errors.Is.
//
// PII (email, phone, attributes) lives only here, never in Temporal history:
// workflows carry ids and read contacts through activities.
package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/contact"
)

// Store is the storage layer. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	batcher *gateBatcher  // nil: every Gate call takes its own transaction
	events  *eventBatcher // nil: every TrackEvent call takes its own transaction
	// hasher keys the identifier hashes of erasure proofs (erase.go).
	hasher *contact.Hasher
	// scoring caches the lead scoring model (scores.go).
	scoring scoreState
	// poolMaxConns sizes the pool Open creates (0: pgx's default).
	poolMaxConns int32
	// segmentCache holds compiled segment versions by "id/version".
	segmentCache sync.Map
	// runKeySecret caches RunKeySecret once read.
	runKeySecret atomic.Pointer[[]byte]
}

// WithPoolMaxConns sizes the pool Open creates, over the DSN's
// pool_max_conns. pgx's own default is max(4, CPUs): too few for an API
// whose requests each make several short queries while dozens of clients
// call at once (issue 10 measured enrollment at 32 clients).
func WithPoolMaxConns(n int32) Option {
	return func(s *Store) { s.poolMaxConns = n }
}

// New wraps an existing pool. The caller keeps ownership of the pool's
// lifetime unless it calls Close on the Store. Gate and TrackEvent group
// concurrent calls with DefaultGateBatching, and erasure proofs are hashed with
// contact.DevHashKey, unless an option says otherwise.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, batcher: newGateBatcher(DefaultGateBatching()),
		events: newEventBatcher(DefaultGateBatching()), hasher: contact.DevHasher()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects to the database at dsn (a postgres:// URL or key=value DSN)
// and checks that it answers. It does not migrate; see Migrate.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: parsing database URL: %w", err)
	}
	s := New(nil, opts...)
	if s.poolMaxConns > 0 {
		cfg.MaxConns = s.poolMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: creating pool for %s: %w", describe(cfg.ConnConfig.Config), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("storage: connecting to %s: %w", describe(cfg.ConnConfig.Config), err)
	}
	s.pool = pool
	return s, nil
}

// Pool returns the underlying pool, for callers that need a raw query (tests,
// health checks).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() { s.pool.Close() }

// describe names a database for error messages without its password.
func describe(cfg pgconn.Config) string {
	return fmt.Sprintf("database %q on %s:%d as %q", cfg.Database, cfg.Host, cfg.Port, cfg.User)
}

// inTx runs fn in a transaction, committing if it returns nil and rolling back
// otherwise (also on panic, through the deferred Rollback).
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit; the error that matters is already returned
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// newID returns prefix + a UUIDv7 without dashes: unique without
// coordination, short enough to read, and time-ordered so ids of new rows
// land at the end of the primary key index instead of all over it.
func newID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	const hex = "0123456789abcdef"
	b := make([]byte, len(prefix)+32)
	copy(b, prefix)
	for i, x := range u {
		b[len(prefix)+2*i] = hex[x>>4]
		b[len(prefix)+2*i+1] = hex[x&0x0f]
	}
	return string(b)
}

// PostgreSQL error codes this package maps to sentinel errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// constraintViolation returns the name of the constraint err violated, if err
// is a PostgreSQL error with the given SQLSTATE.
func constraintViolation(err error, code string) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == code {
		return pe.ConstraintName, true
	}
	return "", false
}

func uniqueViolation(err error) (string, bool) {
	return constraintViolation(err, codeUniqueViolation)
}

func foreignKeyViolation(err error) (string, bool) {
	return constraintViolation(err, codeForeignKeyViolation)
}

// notFound turns pgx.ErrNoRows into ErrNotFound with the given description.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// listLimit bounds list queries: a caller passing 0 (or less) gets a sane page
// rather than a whole table.
func listLimit(limit int) int {
	const defaultLimit, maxLimit = 100, 10000
	switch {
	case limit <= 0:
		return defaultLimit
	case limit > maxLimit:
		return maxLimit
	}
	return limit
}

// rowScanner is pgx.Row or pgx.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// queryOne runs query and scans the one row it returns with scan; no row is
// ErrNotFound. Errors are wrapped with what, which names the row sought.
func queryOne[T any](ctx context.Context, q rowQuerier, what string, scan func(rowScanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, query, args...))
	if err != nil {
		var zero T
		return zero, notFound(err, "%s", what)
	}
	return v, nil
}

// rowsQuerier is the pool or a transaction, for queries returning many rows.
type rowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryAll runs query and scans every row it returns with scan. Errors are
// wrapped with what, which names the list being read.
func queryAll[T any](ctx context.Context, q rowsQuerier, what string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// deref returns *p, or "" for nil (a NULL text column).
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// utcPtr normalises a nullable timestamp to UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// nonNilMap makes JSON objects read from the database encode as {} rather
// than null when empty.
func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// timeOrNow returns t, or nil so that SQL can COALESCE it to now(): the
// database clock is the one every other default uses.
func timeOrNow(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
