package workflows

import "go.temporal.io/sdk/worker"

// Register registers every workflow of this package on a worker.
func Register(w worker.Registry) {
	w.RegisterWorkflow(Journey)
	w.RegisterWorkflow(AudienceSync)
	w.RegisterWorkflow(ScoreSweep)
	w.RegisterWorkflow(SegmentSweep)
}
