package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// NextLocalTimeInput asks when a wait_until step that begins at After ends
// for the contact.
type NextLocalTimeInput struct {
	ContactID string            `json:"contact_id"`
	WaitUntil journey.WaitUntil `json:"wait_until"`
	// After is when the step began (workflow time): the answer is the first
	// matching instant strictly after it, so a loop through the step waits.
	After time.Time `json:"after"`
}

// NextLocalTimeResult is the instant the wait ends. Only the instant goes
// into workflow history: the contact's zone, and what it was guessed from
// (their own setting, their phone number), stay in PostgreSQL.
type NextLocalTimeResult struct {
	At time.Time `json:"at"`
}

// NextLocalTime resolves the contact's time zone the way the send gate's
// quiet hours do (policy.ResolveLocation: the contact's zone, else the
// phone number's, else TUTTI_DEFAULT_TIMEZONE) and returns the next local
// time the step names (policy.NextLocalTime). A contact that is gone
// (erased) gets the workspace's default zone: its run is being ended anyway.
func (a *Activities) NextLocalTime(ctx context.Context, in NextLocalTimeInput) (NextLocalTimeResult, error) {
	hour, minute, ok := in.WaitUntil.Clock()
	if !ok {
		// The spec was validated at publish time, so this is a real defect.
		return NextLocalTimeResult{}, temporal.NewNonRetryableApplicationError(
			"wait_until.time is not HH:MM", "BadWaitUntil", nil)
	}
	var state policy.ContactState
	c, err := a.Store.Contact(ctx, in.ContactID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return NextLocalTimeResult{}, err
	default:
		state = policy.ContactState{TimeZone: c.TimeZone, Phone: c.Phone}
	}
	var settings policy.Settings
	if a.Delivery != nil {
		settings = a.Delivery.Policy
	}
	loc, _ := policy.ResolveLocation(state, settings)
	// NextLocalTime answers at or after its argument, in whole seconds:
	// one nanosecond later makes it strictly after.
	at := policy.NextLocalTime(in.After.Add(time.Nanosecond), policy.Clock(hour, minute), in.WaitUntil.Weekdays(), loc)
	return NextLocalTimeResult{At: at.UTC()}, nil
}
