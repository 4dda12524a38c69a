// Package wiring builds what the worker (tutti-worker) and the API (tutti
// serve) start with, from configuration: the PostgreSQL store and its pool,
// the Temporal client, and the send path (providers, sender identity, send
// gate settings). Both binaries call Open, so start-up wiring exists once;
// the *FromConfig helpers are its parts.
package wiring

import (
	"context"
	"log/slog"

	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/temporalclient"
)

// Deps is what a Tutti process works with once started.
type Deps struct {
	Store    *storage.Store
	Temporal client.Client
	// Delivery is the send path the worker sends with and the API texts the
	// SMS double opt-in prompt through.
	Delivery *delivery.Service
}

// Open opens the store (StoreOptions), reports its send gate groups and its
// delivery outbox depth in the metrics, dials Temporal with the configured payload codec and builds the
// send path (DeliveryFromConfig). On error nothing is left open; otherwise
// Close releases what Open opened.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *Deps, err error) {
	opts, err := StoreOptions(cfg)
	if err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, cfg.DatabaseURL, opts...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	metrics.WatchGateGroups(store.GateGroupStats)
	metrics.WatchOutbox(store.PendingDeliveries)
	metrics.WatchScoreOutbox(store.PendingScores)
	metrics.WatchSegmentQueue(store.QueuedSegmentEvaluations)
	tc, err := temporalclient.Dial(ctx, logger, temporalclient.WithCodec(cfg.Codec))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tc.Close()
		}
	}()
	send, err := DeliveryFromConfig(cfg, store, logger)
	if err != nil {
		return nil, err
	}
	return &Deps{Store: store, Temporal: tc, Delivery: send}, nil
}

// Close closes the Temporal client, then the store.
func (d *Deps) Close() {
	d.Temporal.Close()
	d.Store.Close()
}
