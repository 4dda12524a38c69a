// Command tutti-worker runs Tutti's Temporal worker: the journey workflow and
// its activities, with SendGrid and Twilio (live mode) or the sandbox
// provider that records messages in Postgres (sandbox mode, the default),
// and the dispatcher that hands stored events' deliveries to Temporal.
//
//	tutti-worker                    run the worker (settings from the environment; see README)
//	tutti-worker search-attributes  print Tutti's search attributes, one Name=Type a line
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/searchattr"
	"github.com/tutti-dev/tutti/internal/wiring"
	"github.com/tutti-dev/tutti/workflows"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(logger, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	var stopped *workerError
	switch {
	case err == nil:
	case errors.As(err, &stopped):
		logger.Error("worker stopped", "error", stopped.err)
		os.Exit(1)
	default:
		// A wrong command line.
		fmt.Fprintf(os.Stderr, "tutti-worker: %v\n", err)
		os.Exit(2)
	}
}

// workerError is the worker failing to start or stopping on an error, as
// opposed to a wrong command line.
type workerError struct{ err error }

func (e *workerError) Error() string { return e.err.Error() }

func newRoot(logger *slog.Logger, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tutti-worker",
		Short: "Run Tutti's Temporal worker (settings from the environment; see README)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := run(cmd.Context(), logger); err != nil {
				return &workerError{err}
			}
			return nil
		},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:   "search-attributes",
		Short: "Print Tutti's custom search attributes, one Name=Type a line",
		Long: `Print Tutti's custom Temporal search attributes, one Name=Type a line, as
` + "`temporal server start-dev --search-attribute`" + ` takes them (Name and Type split
at "=" give ` + "`temporal operator search-attribute create --name N --type T`" + `).
scripts/lib.sh registers them from this list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range searchattr.Flags() {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	})
	return root
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	deps, err := wiring.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer deps.Close()
	if cfg.MetricsAddr != "" {
		if err := metrics.Serve(ctx, cfg.MetricsAddr, logger); err != nil {
			return err
		}
	}

	if cfg.ProviderMode != config.ModeLive {
		logger.Warn("sandbox provider mode: messages are recorded in Postgres, not sent (TUTTI_PROVIDER_MODE=live sends)")
	}
	platforms, err := wiring.AudiencesFromConfig(ctx, cfg)
	if err != nil {
		return err
	}
	acts := &activities.Activities{Store: deps.Store, Delivery: deps.Delivery, Logger: logger, Audiences: platforms,
		ControlGroupShare: cfg.ControlGroupShare}

	// The delivery outbox's dispatcher runs beside the worker, in every
	// worker process (its claims are safe to share: internal/api/dispatch.go),
	// and stops before the store and client close.
	dispatcher := api.NewDispatcher(api.Deps{Store: deps.Store, Temporal: deps.Temporal, Config: cfg, Logger: logger})
	dctx, stopDispatch := context.WithCancel(ctx)
	var dispatching sync.WaitGroup
	dispatching.Go(func() { dispatcher.Run(dctx) })
	// The scoring outbox's scorer runs beside it (internal/api/scorer.go).
	scorer := api.NewScorer(deps.Store, logger)
	dispatching.Go(func() { scorer.Run(dctx) })
	// So does the sweep that ends the enrollments of runs closed without an
	// ending (terminated by ops, failed): internal/api/closed_runs.go.
	closedRuns := api.NewClosedRuns(api.Deps{Store: deps.Store, Temporal: deps.Temporal, Config: cfg, Logger: logger})
	dispatching.Go(func() { closedRuns.Run(dctx) })
	defer func() {
		stopDispatch()
		dispatching.Wait()
	}()

	// The lead-score sweep's schedule, created by the first worker to start.
	if err := workflows.EnsureScoreSweepSchedule(ctx, deps.Temporal); err != nil {
		return err
	}
	// The sweep of time-dependent segments: a Temporal Schedule, created
	// once whichever worker starts first.
	if err := workflows.EnsureSegmentSweepSchedule(ctx, deps.Temporal, cfg.SegmentSweepEvery); err != nil {
		return fmt.Errorf("creating the segment sweep schedule: %w", err)
	}

	w := worker.New(deps.Temporal, workflows.TaskQueue, wiring.WorkerOptions(cfg))
	workflows.Register(w)
	w.RegisterActivity(acts)
	logger.Info("worker starting", "task_queue", workflows.TaskQueue, "provider_mode", cfg.ProviderMode)
	ensureAudienceSyncs(ctx, deps, cfg, logger)
	return w.Run(workerInterrupt(ctx))
}

// ensureAudienceSyncs makes sure every audience's sync workflow runs (the
// API starts one when an audience is defined, but Temporal may have been
// unreachable then). A failure is logged: the worker serves journeys anyway.
func ensureAudienceSyncs(ctx context.Context, deps *wiring.Deps, cfg config.Config, logger *slog.Logger) {
	as, err := deps.Store.Audiences(ctx)
	if err != nil {
		logger.Error("audience syncs: listing audiences", "error", err)
		return
	}
	for _, a := range as {
		if err := api.EnsureAudienceSync(ctx, deps.Temporal, a.ID, cfg.AudienceSyncInterval, cfg.AudienceFullSyncEvery); err != nil {
			logger.Error("audience sync not started", "audience_id", a.ID, "error", err)
		}
	}
}

// workerInterrupt adapts a context to the channel worker.Run stops on.
func workerInterrupt(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
