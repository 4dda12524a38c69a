package e2e

import (
	"context"
	"testing"

	"github.com/tutti-dev/tutti/internal/score"
	"github.com/tutti-dev/tutti/internal/storage"
)

// BenchmarkTrackEventScored is BenchmarkTrackEvent with a lead scoring
// model whose intent rules read the benchmark's event (purchase), so every
// event also marks its contact in the scoring outbox: what a model costs
// the ingest path. Beside BenchmarkTrackEvent (no model: no scoring work).
//
//	go test ./internal/e2e -run '^$' -bench 'BenchmarkTrackEvent(Scored)?$' -benchtime 5s
func BenchmarkTrackEventScored(b *testing.B) {
	m, err := score.Parse([]byte(`
id: bench
intent:
  - {id: purchase, event: purchase, points: 50, half_life: 30d}
bands:
  intent: [{name: low, below: 40}, {name: high}]
`))
	if err != nil {
		b.Fatal(err)
	}
	// An option runs once the store has its pool: the model is stored
	// before the contacts and the clock.
	withModel := storage.Option(func(s *storage.Store) {
		if _, _, err := s.PutScoreModel(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	})
	benchmarkEvents(b, viaStore, withModel)
}
