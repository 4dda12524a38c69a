package model

// Exit reason codes: what a run told to end (the exit signal) ends with,
// and what its enrollment records as exit_reason. A code, never free text:
// it is kept in the run's Temporal history; the words (support's note, the
// merge's survivor) stay in PostgreSQL, in the exit request the signal names.
const (
	// ExitSupport: support asked the run to end.
	ExitSupport = "support_exit"
	// ExitErased: the contact was erased (DELETE /v1/contacts/{id}).
	ExitErased = "erased"
	// ExitMerged: the contact was merged into another one
	// (POST /v1/contacts/{id}/merge); the survivor carries on with its own
	// runs, and the absorbed contact's runs end.
	ExitMerged = "merged"
)

// Reason codes of a run that closed in Temporal without recording its own
// ending (status failed): the workflow failed (an error it returned, an
// activity out of time), ops terminated or cancelled it (the Temporal UI,
// `temporal workflow terminate`), or it timed out. Found by the worker's
// sweep of closed runs (within about a minute), or earlier by a signal for
// the contact that finds the run gone or the contact's next enrollment in
// the journey.
const (
	RunClosedFailed     = "run_failed"
	RunClosedTerminated = "run_terminated"
	RunClosedCanceled   = "run_canceled"
	RunClosedTimedOut   = "run_timed_out"
	// RunVanished: Temporal no longer knows the run (it removes closed
	// runs after the namespace's retention) while Tutti's rows show it ran
	// and its enrollment is still active.
	RunVanished = "run_missing"
)
