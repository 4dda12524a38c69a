package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tutti-dev/tutti/activities"
)

// AudienceSync keeps one ad audience in step with what Tutti wants of it:
// one long-running workflow per audience (AudienceSyncWorkflowID), which
// runs a SyncAudience pass (revoke the ineligible, then send pending
// removals and adds in batches) every Interval, or at once when signalled
// SignalAudienceSync; every FullEvery a pass is also a full sync (the
// members sent whole again, repairing drift on the platform's side). Its
// history holds the audience id and counts only.
// It continues as new every AudienceSyncPassesPerRun passes.
func AudienceSync(ctx workflow.Context, in AudienceSyncInput) error {
	interval := in.Interval
	if interval <= 0 {
		interval = DefaultAudienceSyncInterval
	}
	wake := workflow.GetSignalChannel(ctx, SignalAudienceSync)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    5 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
			// Then the pass gives up; the members stay pending for the next.
			MaximumAttempts: 8,
		},
	})
	var a *activities.Activities
	for pass := 0; pass < AudienceSyncPassesPerRun; pass++ {
		now := workflow.Now(ctx)
		req := activities.SyncAudienceInput{AudienceID: in.AudienceID}
		if in.FullEvery > 0 && now.Sub(in.LastFull) >= in.FullEvery {
			req.Full, req.Session = true, now.UnixMilli()
		}
		var res activities.SyncAudienceResult
		err := workflow.ExecuteActivity(actx, a.SyncAudience, req).Get(ctx, &res)
		if err == nil && req.Full {
			in.LastFull = now
		}
		if err != nil {
			var appErr *temporal.ApplicationError
			if temporal.IsCanceledError(err) {
				return err
			}
			if errors.As(err, &appErr) && appErr.Type() == "UnknownAudience" {
				return nil // the audience was deleted: nothing left to sync
			}
			workflow.GetLogger(ctx).Warn("audience sync pass failed; members stay pending", "audience_id", in.AudienceID, "error", err)
		}
		// Wait for the interval or a signal; drain signals so that many
		// wake the loop once.
		timerCtx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, interval), func(workflow.Future) {})
		sel.AddReceive(wake, func(c workflow.ReceiveChannel, more bool) { c.Receive(ctx, nil) })
		sel.Select(ctx)
		cancel()
		for wake.ReceiveAsync(nil) {
		}
	}
	return workflow.NewContinueAsNewError(ctx, AudienceSync, in)
}
