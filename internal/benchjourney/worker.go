package benchjourney

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
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/temporalclient"
	"github.com/tutti-dev/tutti/workflows"
)

// EnvTaskQueue names the task queue a benchmark worker polls (default
// workflows.TaskQueue, where the API starts journeys).
const EnvTaskQueue = "BENCHJOURNEY_TASK_QUEUE"

// WorkerMain is the benchmark's worker process: Tutti's worker (the
// configuration from the environment, worker.Options{} as worker/main.go
// has it) with the hand-written workflow registered beside the journey
// workflow, so both sides run in one process. It returns the exit code.
func WorkerMain() int {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := runWorker(logger); err != nil {
		logger.Error("benchmark worker stopped", "error", err)
		return 1
	}
	return 0
}

func runWorker(logger *slog.Logger) error {
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
	tc, err := temporalclient.Dial(ctx, logger, temporalclient.WithCodec(cfg.Codec))
	if err != nil {
		return err
	}
	defer tc.Close()
	send, err := delivery.FromConfig(cfg, store, logger)
	if err != nil {
		return err
	}
	queue := os.Getenv(EnvTaskQueue)
	if queue == "" {
		queue = workflows.TaskQueue
	}
	w := worker.New(tc, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterWorkflow(Handwritten)
	w.RegisterActivity(&activities.Activities{Store: store, Delivery: send, Logger: logger})
	done := make(chan any)
	go func() {
		<-ctx.Done()
		close(done)
	}()
	return w.Run(done)
}
