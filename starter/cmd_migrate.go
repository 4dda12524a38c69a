package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage"
)

// newMigrateCmd is `tutti migrate`: it creates the database if needed and
// applies the migrations.
func (c *cli) newMigrateCmd() *cobra.Command {
	return c.leaf("migrate", "",
		"Create the database if missing and apply migrations to DATABASE_URL",
		0, func(ctx context.Context, inv *invocation) error {
			// Only DATABASE_URL matters here; the other settings are checked by
			// serve and the worker, and a provider key missing must not block a
			// schema upgrade. Load still supplies the default URL.
			cfg, _ := config.Load()
			dsn := cfg.DatabaseURL
			if err := storage.EnsureDatabase(ctx, dsn); err != nil {
				// Production databases are provisioned outside Tutti, often with a
				// role that cannot reach the maintenance database; Migrate below
				// reports clearly if the database is really missing.
				fmt.Fprintf(c.stderr, "tutti migrate: could not check or create the database (continuing): %v\n", err)
			}
			if err := storage.Migrate(ctx, dsn); err != nil {
				return err
			}
			states, err := storage.MigrationStatus(ctx, dsn)
			if err != nil {
				return err
			}
			var latest int64
			for _, s := range states {
				if s.Applied && s.Version > latest {
					latest = s.Version
				}
			}
			fmt.Fprintf(c.stdout, "database migrated (schema version %d)\n", latest)
			return nil
		})
}
