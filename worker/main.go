// Command tutti-worker runs Tutti's Temporal worker: the journey workflow and
// its activities, with SendGrid and Twilio (live mode) or the sandbox
// provider that records messages in Postgres (sandbox mode, the default).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/temporalclient"
	"github.com/tutti-dev/tutti/workflows"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(logger); err != nil {
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts, err := delivery.StoreOptions(cfg)
	if err != nil {
		return err
	}
	store, err := storage.Open(ctx, cfg.DatabaseURL, opts...)
	if err != nil {
		return err
	}
	defer store.Close()
	metrics.WatchGateGroups(store.GateGroupStats)
	tc, err := temporalclient.Dial(ctx, logger, temporalclient.WithCodec(cfg.Codec))
	if err != nil {
		return err
	}
	defer tc.Close()
	if cfg.MetricsAddr != "" {
		if err := metrics.Serve(ctx, cfg.MetricsAddr, logger); err != nil {
			return err
		}
	}

	send, err := delivery.FromConfig(cfg, store, logger)
	if err != nil {
		return err
	}
	if cfg.ProviderMode != config.ModeLive {
		logger.Warn("sandbox provider mode: messages are recorded in Postgres, not sent (TUTTI_PROVIDER_MODE=live sends)")
	}
	acts := &activities.Activities{Store: store, Delivery: send, Logger: logger}

	w := worker.New(tc, workflows.TaskQueue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(acts)
	logger.Info("worker starting", "task_queue", workflows.TaskQueue, "provider_mode", cfg.ProviderMode)
	return w.Run(workerInterrupt(ctx))
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
