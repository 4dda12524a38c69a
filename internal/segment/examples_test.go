package segment

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

// Every example in examples/segments parses; lapsed_buyers does what its
// comment says.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../examples/segments/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	byID := map[string]*Segment{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		s, err := Parse(data)
		require.NoError(t, err, f)
		byID[s.ID] = s
	}
	lapsed := byID["lapsed_buyers"]
	require.NotNil(t, lapsed)
	purchase := func(ago time.Duration) journey.StoredEvent {
		return journey.StoredEvent{Name: "purchase", OccurredAt: now.Add(-ago)}
	}
	for _, tt := range []struct {
		name   string
		events []journey.StoredEvent
		member bool
	}{
		{"never bought", nil, false},
		{"bought last week", []journey.StoredEvent{purchase(7 * 24 * time.Hour)}, false},
		{"bought 40 days ago", []journey.StoredEvent{purchase(40 * 24 * time.Hour)}, true},
	} {
		r := lapsed.Evaluate(Input{Behaviour: journey.Behaviour{Now: now, Events: tt.events}})
		require.Equal(t, tt.member, r.Member, "%s: %+v", tt.name, r)
	}
}
