package audience

import "context"

// Sandbox is a Platform for sandbox mode (`make dev`, tests of everything
// but the wire): it accepts every request and keeps nothing, so audiences
// sync end to end locally and their ledger shows what a platform would
// have been sent.
type Sandbox struct{ To Destination }

// Destination is the platform the sandbox stands in for.
func (s Sandbox) Destination() Destination { return s.To }

// Apply accepts the batch.
func (s Sandbox) Apply(_ context.Context, _ string, _ Action, members []Member) (Result, error) {
	return Result{RequestID: "sandbox", Received: len(members)}, nil
}
