package benchjourney

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.temporal.io/sdk/worker"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/wiring"
	"github.com/tutti-dev/tutti/workflows"
)

// EnvTaskQueue names the task queue a benchmark worker polls (default
// workflows.TaskQueue, where the API starts journeys).
const EnvTaskQueue = "BENCHJOURNEY_TASK_QUEUE"

// WorkerMain is the benchmark's worker process: Tutti's worker (the
// configuration from the environment, wiring.WorkerOptions as worker/main.go
// has it, built by the same wiring.Open) with the hand-written workflow registered beside the journey
// workflow, so both sides run in one process; the main one (on
// workflows.TaskQueue) runs the outbox's dispatcher beside it, as Tutti's
// worker does. It returns the exit code.
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
	deps, err := wiring.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer deps.Close()
	queue := os.Getenv(EnvTaskQueue)
	if queue == "" {
		queue = workflows.TaskQueue
	}
	if queue == workflows.TaskQueue {
		// The main worker delivers the outbox as worker/main.go's does:
		// enrollments asked with Prefer: respond-async are started by it.
		d := api.NewDispatcher(api.Deps{Store: deps.Store, Temporal: deps.Temporal, Config: cfg, Logger: logger})
		dctx, stopDispatch := context.WithCancel(ctx)
		var dispatching sync.WaitGroup
		dispatching.Go(func() { d.Run(dctx) })
		defer func() {
			stopDispatch()
			dispatching.Wait()
		}()
	}
	w := worker.New(deps.Temporal, queue, wiring.WorkerOptions(cfg))
	workflows.Register(w)
	w.RegisterWorkflow(Handwritten)
	w.RegisterActivity(&activities.Activities{Store: deps.Store, Delivery: deps.Delivery, Logger: logger})
	return w.Run(worker.InterruptCh())
}
