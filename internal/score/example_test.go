package score

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's example model is valid.
func TestExampleModelParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../examples/scores/lead-score.yaml")
	require.NoError(t, err)
	m, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, []string{"demo.requested", "email.clicked", "page.viewed"}, m.IntentEvents())
	fit, unevaluated := m.Fit(FitInput{Contact: map[string]any{"employees": 500.0, "title": "VP Marketing", "email": "a@acme.test"}})
	require.Empty(t, unevaluated)
	require.Len(t, fit, 3)
}
