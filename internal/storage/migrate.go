package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the embedded SQL migrations (goose format, one file per
// version). Tests hash them to name a template database per schema.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		// fs.Sub only fails on an invalid path, and this one is a constant.
		panic(fmt.Sprintf("storage: embedded migrations: %v", err))
	}
	return sub
}

// Migrate applies every pending migration to the database at dsn. Each
// migration runs in its own transaction together with its goose version row,
// so a failure leaves the schema at the last complete version. Running it
// again is a no-op. A PostgreSQL advisory lock serialises concurrent Migrate
// calls (several replicas starting at once): the others wait, then find
// nothing to do.
func Migrate(ctx context.Context, dsn string) error {
	return withProvider(ctx, dsn, true, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("storage: migrating: %w", err)
		}
		return nil
	})
}

// MigrationState is one migration and whether the database has it.
type MigrationState struct {
	Version   int64     `json:"version"`
	Name      string    `json:"name"` // file name, e.g. "00001_init.sql"
	Applied   bool      `json:"applied"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// MigrationStatus lists every known migration in version order with whether
// it has been applied to the database at dsn.
func MigrationStatus(ctx context.Context, dsn string) ([]MigrationState, error) {
	var out []MigrationState
	err := withProvider(ctx, dsn, false, func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("storage: migration status: %w", err)
		}
		for _, s := range st {
			ms := MigrationState{
				Version: s.Source.Version,
				Name:    path.Base(s.Source.Path),
				Applied: s.State == goose.StateApplied,
			}
			if ms.Applied {
				ms.AppliedAt = s.AppliedAt.UTC()
			}
			out = append(out, ms)
		}
		return nil
	})
	return out, err
}

// withProvider opens a database/sql handle on dsn (goose works on
// database/sql; pgx's stdlib adapter provides it) and runs fn with a goose
// provider over the embedded migrations.
func withProvider(ctx context.Context, dsn string, locked bool, fn func(*goose.Provider) error) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("storage: parsing database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	// The session lock holds one connection for the whole run; the
	// migrations need another.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: connecting to %s: %w", describe(cfg.Config), err)
	}

	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if locked {
		// Retry every second for up to 10 minutes: long enough for another
		// replica's migration to finish, without the default 5 s polling delay.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
		if err != nil {
			return fmt.Errorf("storage: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, Migrations(), opts...)
	if err != nil {
		return fmt.Errorf("storage: loading migrations: %w", err)
	}
	return fn(p)
}

// EnsureDatabase creates the database named in dsn if it does not exist yet,
// connecting to the "postgres" maintenance database on the same server (or
// "template1" where there is none) with the same credentials. Dev and test
// scripts call it before Migrate; production databases are provisioned
// outside Tutti.
func EnsureDatabase(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("storage: parsing database URL: %w", err)
	}
	name := cfg.Database
	if name == "" {
		return errors.New("storage: database URL names no database")
	}

	var conn *pgx.Conn
	var connErr error
	for _, maint := range []string{"postgres", "template1"} {
		if maint == name {
			return nil // connecting to a maintenance database proves it exists
		}
		c := cfg.Copy()
		c.Database = maint
		conn, connErr = pgx.ConnectConfig(ctx, c)
		if connErr == nil {
			break
		}
		// Only fall back when the maintenance database itself is missing.
		var pe *pgconn.PgError
		if !errors.As(connErr, &pe) || pe.Code != "3D000" { // invalid_catalog_name
			break
		}
	}
	if connErr != nil {
		return fmt.Errorf("storage: connecting to the maintenance database on %s:%d: %w", cfg.Host, cfg.Port, connErr)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("storage: looking up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !isDuplicateDatabase(err) {
		return fmt.Errorf("storage: creating database %q: %w", name, err)
	}
	return nil
}

// isDuplicateDatabase reports whether CREATE DATABASE failed because the
// database exists: either it was already there (42P04), or another session
// created it at the same moment and the catalog's unique index caught it.
func isDuplicateDatabase(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "42P04" || (pe.Code == codeUniqueViolation && pe.ConstraintName == "pg_database_datname_index")
}
