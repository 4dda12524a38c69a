package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/tutti-dev/tutti/internal/storage"
)

// Scorer empties the scoring outbox (score_pending, storage scores.go): it
// rescores each contact whose events, attributes or consent changed in a
// way the scoring model reads, and stores each band change as a
// score.band_changed event, which the dispatcher then delivers like any
// tracked event. It runs beside the dispatcher in every worker process;
// scorers share the outbox safely (SKIP LOCKED, one contact per
// transaction). Build it with NewScorer.
type Scorer struct {
	store *storage.Store
	log   *slog.Logger
	poll  time.Duration
}

// scoreBatch is how many contacts one ScorePending call rescores before the
// scorer looks at ctx again.
const scoreBatch = 100

// NewScorer builds a scorer over the store; it polls as often as the
// dispatcher does (DispatchPoll).
func NewScorer(store *storage.Store, logger *slog.Logger) *Scorer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Scorer{store: store, log: logger, poll: DispatchPoll}
}

// Run rescores until ctx is done; errors (the database down) are logged
// and retried at the next poll. A contact whose rescoring fails keeps its
// mark and is taken again.
func (sc *Scorer) Run(ctx context.Context) {
	sc.log.Info("scorer: rescoring contacts marked by events and attribute changes", "poll", sc.poll.String())
	for {
		n, _, err := sc.store.ScorePending(ctx, time.Now(), scoreBatch)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			sc.log.Warn("scorer: rescoring failed; retrying", "error", err)
		}
		if err == nil && n == scoreBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sc.poll):
		}
	}
}
