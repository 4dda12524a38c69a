package model

// RunStatus is the status of one journey run for a contact: the status
// column of enrollments, the workflow's result and what its state query
// returns.
type RunStatus string

const (
	RunActive    RunStatus = "active"
	RunCompleted RunStatus = "completed" // reached the end of the journey
	RunConverted RunStatus = "converted" // the contact reached the journey's goal
	RunExited    RunStatus = "exited"    // an exit event, an opt-out, support or an erasure ended it
	// RunFailed: the run closed in Temporal without recording an ending
	// (it failed, ops terminated or cancelled it, it timed out; reason
	// codes RunClosed* in exit.go). The workflow never returns it; the
	// worker's sweep of closed runs records it (internal/api/closed_runs.go),
	// or, first, a signal for the contact that finds the run gone, or the
	// contact's next enrollment in the journey.
	RunFailed RunStatus = "failed"
)

// Ended reports whether s is a final status: every known status but active.
func (s RunStatus) Ended() bool {
	switch s {
	case RunCompleted, RunConverted, RunExited, RunFailed:
		return true
	}
	return false
}
