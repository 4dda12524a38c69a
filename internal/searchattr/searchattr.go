// Package searchattr declares Tutti's custom Temporal search attributes, once.
//
// Every other list is derived from this one: package workflows re-exports the
// keys, internal/temporaltest registers them on its dev servers, and
// `tutti-worker search-attributes` prints them for scripts/lib.sh. Only
// docker-compose.yml spells them out again (it cannot run a Go binary at
// setup time); internal/deploy's tests compare it with All.
//
// It is a leaf package so that internal/temporaltest can import it while
// package workflows' own tests import internal/temporaltest. No PII: ids only.
package searchattr

import "go.temporal.io/sdk/temporal"

var (
	// ContactID is the contact a journey run is for.
	ContactID = temporal.NewSearchAttributeKeyKeyword("ContactId")
	// JourneyID is the journey the run follows.
	JourneyID = temporal.NewSearchAttributeKeyKeyword("JourneyId")
	// JourneyVersion is the journey version the run started on.
	JourneyVersion = temporal.NewSearchAttributeKeyInt64("JourneyVersion")
	// JourneyStep is the step the run is at.
	JourneyStep = temporal.NewSearchAttributeKeyKeyword("JourneyStep")
)

// All is every attribute, in the order they are registered and printed.
var All = []temporal.SearchAttributeKey{ContactID, JourneyID, JourneyVersion, JourneyStep}

// Flags lists the attributes in the `Name=Type` form that
// `temporal server start-dev --search-attribute` takes, with Temporal's type
// names (Keyword, Int, ...).
func Flags() []string {
	out := make([]string, len(All))
	for i, k := range All {
		out[i] = k.GetName() + "=" + k.GetValueType().String()
	}
	return out
}
