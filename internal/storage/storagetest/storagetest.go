// Package storagetest gives each test its own fresh, migrated PostgreSQL
// database, so tests run in parallel without seeing each other's rows.
//
// The first call in a test process builds a template database from the
// embedded migrations, named after their hash (tutti_tmpl_<hash8>), unless an
// earlier run already built it. Every test then gets CREATE DATABASE ...
// TEMPLATE <tmpl>, which copies files instead of re-running migrations, and
// the database is dropped when the test ends.
//
// The server is TEST_DATABASE_URL (default
// postgres://root@127.0.0.1:5432/postgres?sslmode=disable); its role must be
// allowed to create databases. `make test` starts a local server if needed.
package storagetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// DefaultURL is the server used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"

const (
	templatePrefix = "tutti_tmpl_"
	testDBPrefix   = "tutti_t_"
	// staleAfter is the age past which a test database left behind by a
	// killed test process is dropped. Far above any test timeout, so it never
	// pulls a database from under a running test, even one from another
	// checkout sharing the server.
	staleAfter = 6 * time.Hour
)

const howToStart = `start PostgreSQL with ` + "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`" + `,
or run the tests with ` + "`make test`" + `, which starts (or installs) it; set TEST_DATABASE_URL to use another server`

// shared is the per-process state: the admin pool on the server's
// maintenance database and the template's name.
var shared struct {
	once     sync.Once
	baseURL  string
	admin    *pgxpool.Pool
	template string
	err      error
}

// New returns a Store over a fresh, migrated database of its own, dropped
// when the test ends. It fails the test if PostgreSQL is unreachable.
func New(t testing.TB) *storage.Store {
	t.Helper()
	store, _ := NewWithDSN(t)
	return store
}

// NewWithDSN is New that also returns the database's DSN, for code under test
// that opens its own connections (a worker, the migrator).
func NewWithDSN(t testing.TB) (*storage.Store, string) {
	t.Helper()
	shared.once.Do(setup)
	if shared.err != nil {
		t.Fatalf("storagetest: %v", shared.err)
	}

	ctx := context.Background()
	name := testDBPrefix + strconv.FormatInt(time.Now().Unix(), 10) + "_" + randomHex(6)
	if _, err := shared.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(shared.template)); err != nil {
		t.Fatalf("storagetest: creating test database %s from template %s: %v", name, shared.template, err)
	}
	dsn, err := withDatabase(shared.baseURL, name)
	if err != nil {
		dropDatabase(shared.admin, name)
		t.Fatalf("storagetest: %v", err)
	}
	store, err := storage.Open(ctx, dsn)
	if err != nil {
		dropDatabase(shared.admin, name)
		t.Fatalf("storagetest: %v", err)
	}
	t.Cleanup(func() {
		store.Close()
		if err := dropDatabase(shared.admin, name); err != nil {
			t.Errorf("storagetest: dropping test database %s: %v", name, err)
		}
	})
	return store, dsn
}

// serverURL is the URL of the server's maintenance database that test
// databases are created on (TEST_DATABASE_URL or DefaultURL).
func serverURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	shared.baseURL = serverURL()

	cfg, err := pgxpool.ParseConfig(shared.baseURL)
	if err != nil {
		shared.err = fmt.Errorf("parsing TEST_DATABASE_URL: %w", err)
		return
	}
	// CREATE/DROP DATABASE only; a few connections are plenty for the
	// parallel tests of one package.
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		shared.err = fmt.Errorf("PostgreSQL at %s:%d is unreachable (%v);\n%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err, howToStart)
		return
	}
	shared.admin = admin

	hash, err := migrationsHash()
	if err != nil {
		shared.err = err
		return
	}
	shared.template = templatePrefix + hash
	if err := buildTemplate(ctx, admin, shared.baseURL, shared.template); err != nil {
		shared.err = fmt.Errorf("building template database %s: %w", shared.template, err)
		return
	}
	dropStale(ctx, admin)
}

// migrationsHash names the schema: a change to any migration gets a new
// template instead of reusing an outdated one.
func migrationsHash() (string, error) {
	fsys := storage.Migrations()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return "", fmt.Errorf("listing migrations: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", fmt.Errorf("reading migration %s: %w", n, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:8], nil
}

// buildTemplate creates and migrates the template database unless it exists.
// Test binaries of several packages run at once, so an advisory lock
// (session-level, on a dedicated connection) lets one build it while the
// others wait. It is built under a temporary name and renamed when complete,
// so a process killed mid-build never leaves a half-migrated template behind.
func buildTemplate(ctx context.Context, admin *pgxpool.Pool, baseURL, name string) error {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	h := fnv.New64a()
	h.Write([]byte("tutti storagetest " + name))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("taking advisory lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck // released with the session anyway

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(building)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping leftover %s: %w", building, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(building)); err != nil {
		return fmt.Errorf("creating %s: %w", building, err)
	}
	dsn, err := withDatabase(baseURL, building)
	if err != nil {
		return err
	}
	if err := storage.Migrate(ctx, dsn); err != nil {
		return err
	}
	// Migrate closed its connections; nobody else knows this name, so the
	// rename (which needs the database idle) cannot race.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(building)+" RENAME TO "+ident(name)); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", building, name, err)
	}
	return nil
}

// dropStale drops test databases whose creation time (in their name) is
// older than staleAfter: leftovers of test processes that were killed before
// their cleanup ran. Best effort.
func dropStale(ctx context.Context, admin *pgxpool.Pool) {
	rows, err := admin.Query(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, testDBPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		ts, _, ok := strings.Cut(strings.TrimPrefix(n, testDBPrefix), "_")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < staleAfter {
			continue
		}
		_ = dropDatabase(admin, n)
	}
}

func dropDatabase(admin *pgxpool.Pool, name string) error {
	// FORCE disconnects sessions the test leaked (an unclosed pool in code
	// under test) instead of failing the drop.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
	return err
}

// withDatabase returns dsn pointing at another database on the same server.
func withDatabase(dsn, database string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing TEST_DATABASE_URL: %w", err)
		}
		u.Path = "/" + database
		u.RawPath = ""
		q := u.Query()
		q.Del("dbname") // a dbname parameter would override the path
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// key=value DSN: a later keyword overrides an earlier one.
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return "", fmt.Errorf("parsing TEST_DATABASE_URL: %w", err)
	}
	return strings.TrimSpace(dsn) + " dbname=" + database, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b)
}

// InFlight writes m's ledger row as the send path leaves it just before a
// provider call: allowed by the gate (with a decision that names no rule)
// and in flight, with a flight deadline already past, as after a request
// that was written. Tests settle it with CompleteSend or FailSend. It does
// not re-check consent the way BeginFlight does: fixtures for webhooks and
// reports need rows for contacts without any.
func InFlight(t testing.TB, s *storage.Store, m storage.Message) storage.Message {
	t.Helper()
	ctx := context.Background()
	res, err := s.Gate(ctx, storage.GateInput{Message: m}, func(storage.GateState) policy.Decision {
		return policy.Decision{Outcome: policy.OutcomeAllow, Channel: m.Channel}
	})
	if err != nil {
		t.Fatalf("storagetest: reserving %s: %v", m.IdempotencyKey, err)
	}
	if !res.Send() {
		t.Fatalf("storagetest: key %s already has a row (%s)", m.IdempotencyKey, res.Message.Status)
	}
	row, err := s.Message(ctx, res.Message.ID)
	if err == nil {
		_, err = s.Pool().Exec(ctx, `UPDATE messages SET status = 'in_flight', attempts = attempts + 1,
			flight_deadline = now() WHERE id = $1`, row.ID)
	}
	if err == nil {
		row, err = s.Message(ctx, row.ID)
	}
	if err != nil {
		t.Fatalf("storagetest: putting %s in flight: %v", m.IdempotencyKey, err)
	}
	return row
}

// ScaleDatabase is the database the report benchmarks read (README
// "Reports at scale"): tutti_bench_reports on the test server, migrated and
// seeded by SeedScale with cfg. It is kept between runs, and seeded again
// only when cfg, the migrations or the generator changed (its COMMENT names them) or
// reseed is set: seeding the full size takes minutes. The Store is closed
// when tb ends; the database stays.
func ScaleDatabase(tb testing.TB, cfg ScaleConfig, reseed bool) *storage.Store {
	tb.Helper()
	shared.once.Do(setup)
	if shared.err != nil {
		tb.Fatalf("storagetest: %v", shared.err)
	}
	ctx := context.Background()
	const name = "tutti_bench_reports"
	stamp := fmt.Sprintf("%s %+v generator %d", shared.template, cfg, scaleGenerator)
	var have string
	err := shared.admin.QueryRow(ctx, `SELECT COALESCE(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`, name).Scan(&have)
	if err != nil && err != pgx.ErrNoRows {
		tb.Fatalf("storagetest: reading %s: %v", name, err)
	}
	dsn, err := withDatabase(shared.baseURL, name)
	if err != nil {
		tb.Fatalf("storagetest: %v", err)
	}
	if reseed || have != stamp {
		start := time.Now()
		if err := dropDatabase(shared.admin, name); err != nil {
			tb.Fatalf("storagetest: dropping %s: %v", name, err)
		}
		if _, err := shared.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(shared.template)); err != nil {
			tb.Fatalf("storagetest: creating %s: %v", name, err)
		}
		store, err := storage.Open(ctx, dsn)
		if err != nil {
			tb.Fatalf("storagetest: %v", err)
		}
		seed, err := SeedScale(ctx, store, cfg)
		store.Close()
		if err != nil {
			tb.Fatalf("storagetest: seeding %s: %v", name, err)
		}
		if _, err := shared.admin.Exec(ctx, "COMMENT ON DATABASE "+ident(name)+" IS "+quoteLiteral(stamp)); err != nil {
			tb.Fatalf("storagetest: marking %s seeded: %v", name, err)
		}
		tb.Logf("seeded %s in %s: %s", name, time.Since(start).Round(time.Second), seed.Summary())
	}
	store, err := storage.Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("storagetest: %v", err)
	}
	tb.Cleanup(store.Close)
	return store
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
