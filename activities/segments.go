package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// SweepSegmentsInput is the sweep's page size (0: 500 contacts).
type SweepSegmentsInput struct {
	PageSize int `json:"page_size,omitempty"`
}

// SweepSegmentsResult counts what the sweep did: contacts evaluated and
// the entries and exits it recorded. Counts only: no contact goes into
// Temporal.
type SweepSegmentsResult struct {
	Evaluated int `json:"evaluated"`
	Entered   int `json:"entered"`
	Exited    int `json:"exited"`
}

// SweepSegments re-evaluates the time-dependent segments for every contact,
// a page at a time (storage.SweepSegments), recording entries and exits
// with their events. It heartbeats the last contact id it finished (an id,
// not the person), so a retry resumes there instead of starting over.
func (a *Activities) SweepSegments(ctx context.Context, in SweepSegmentsInput) (SweepSegmentsResult, error) {
	size := in.PageSize
	if size <= 0 {
		size = 500
	}
	var after string
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &after) // none readable: start over, which is safe
	}
	var out SweepSegmentsResult
	for {
		next, ch, err := a.Store.SweepSegments(ctx, after, size)
		out.Evaluated += ch.Evaluated
		out.Entered += ch.Entered
		out.Exited += ch.Exited
		if err != nil {
			return out, err
		}
		if next == "" {
			return out, nil
		}
		after = next
		activity.RecordHeartbeat(ctx, after)
	}
}
