package journey

import "time"

// LastRun is what the re-entry rule needs to know about a contact's most
// recent run of a journey that is no longer active.
type LastRun struct {
	StartedAt time.Time
	// EndedAt is nil when the run's end was not recorded; the cooldown then
	// counts from its start.
	EndedAt *time.Time
}

// ReentryDecision is the re-entry policy's answer for a contact who went
// through the journey before.
type ReentryDecision struct {
	Allowed bool
	// EligibleAt is when the contact may enter again, set only when the
	// cooldown policy refuses: a once refusal never lifts.
	EligibleAt time.Time
}

// Admits decides whether a contact whose last run of the journey is last
// may start a new run at now: never under once, always under always, and
// under cooldown once the cooldown has passed since last ended. A contact
// with no earlier run is always admitted and needs no decision; a contact
// with an active run is never admitted, whatever the policy (that is
// enforced where runs start, not here).
func (r Reentry) Admits(last LastRun, now time.Time) ReentryDecision {
	switch r.Policy {
	case ReentryOnce:
		return ReentryDecision{}
	case ReentryCooldown:
		ended := last.StartedAt
		if last.EndedAt != nil {
			ended = *last.EndedAt
		}
		eligible := ended.Add(r.Cooldown.Std()).UTC()
		if now.Before(eligible) {
			return ReentryDecision{EligibleAt: eligible}
		}
	}
	return ReentryDecision{Allowed: true}
}
