package activities

import (
	"context"
	"time"
)

// SweepScoresInput is one page of the lead-score sweep: at most Limit
// contacts whose next check has come, then at most Limit contacts not yet
// scored under the latest model. At is the moment scored; zero means now
// (the schedule's runs; tests pass one).
type SweepScoresInput struct {
	Limit int       `json:"limit"`
	At    time.Time `json:"at,omitzero"`
}

// SweepScoresResult counts what a page did: contacts rescored because time
// may have moved a band (Due), contacts scored under a new model
// (Backfilled), band changes stored (Changed); More says a limit was
// reached. Counts only: nothing about a contact goes into history.
type SweepScoresResult struct {
	Due        int  `json:"due"`
	Backfilled int  `json:"backfilled"`
	Changed    int  `json:"changed"`
	More       bool `json:"more"`
}

// SweepScores runs one page of the sweep (storage.SweepScores): each band
// that time alone, or a new model, moved is stored as a score.band_changed
// event in the rescoring's transaction, and delivered to journeys through
// the outbox like any tracked event. Safe to retry: bands are compared
// with the stored ones under the contact's locks, so a retried page stores
// no change twice.
func (a *Activities) SweepScores(ctx context.Context, in SweepScoresInput) (SweepScoresResult, error) {
	at := in.At
	if at.IsZero() {
		at = time.Now()
	}
	res, err := a.Store.SweepScores(ctx, at, max(in.Limit, 1))
	if err != nil {
		return SweepScoresResult{}, err
	}
	if res.Changed > 0 {
		a.logger().Info("score sweep: bands changed", "due", res.Due, "backfilled", res.Backfilled, "changed", res.Changed)
	}
	return SweepScoresResult{Due: res.Due, Backfilled: res.Backfilled, Changed: res.Changed, More: res.More}, nil
}
