package searchattr

import (
	"slices"
	"testing"
)

// The Name=Type form is what `temporal server start-dev --search-attribute`,
// `temporal operator search-attribute create` (via scripts/lib.sh) and
// docker-compose.yml's temporal-setup read: Temporal's own type names.
func TestFlags(t *testing.T) {
	want := []string{"ContactId=Keyword", "JourneyId=Keyword", "JourneyVersion=Int", "JourneyStep=Keyword"}
	if got := Flags(); !slices.Equal(got, want) {
		t.Errorf("Flags() = %q, want %q", got, want)
	}
}
