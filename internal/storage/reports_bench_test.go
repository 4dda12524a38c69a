package storage_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// The report benchmarks (README "Reports at scale"; scripts/bench-reports.sh,
// `make bench-reports`) time Store.Funnel and Store.Experiment over the
// big journey of storagetest.DefaultScale's data set: 100,000 contacts,
// 1,000,000 ledger rows. The data set lives in its own database,
// tutti_bench_reports, seeded on the first run (minutes) and reused after.
//
//	go test ./internal/storage -run '^$' -bench BenchmarkReport -benchtime 5x -count 5
//
// Settings (environment):
//
//	TUTTI_BENCH_REPORTS_RESEED=1   seed the database again
//	TUTTI_BENCH_REPORTS_SMALL=1    10,000 contacts, 100,000 ledger rows (a quick look)
//	TUTTI_BENCH_REPORTS_PLANS=FILE also write EXPLAIN (ANALYZE, BUFFERS) of
//	                               every query each report makes to FILE
//
// Metrics: p50-ms and max-ms of one report call (ns/op is their mean).

func benchScaleStore(b *testing.B) *storage.Store {
	// Seeding takes minutes and leaves a database behind: only on a
	// server named on purpose (scripts/bench-reports.sh names one).
	if os.Getenv("TEST_DATABASE_URL") == "" {
		b.Skip("TEST_DATABASE_URL is unset: the report benchmarks seed tutti_bench_reports on that server")
	}
	cfg := storagetest.DefaultScale()
	if os.Getenv("TUTTI_BENCH_REPORTS_SMALL") == "1" {
		cfg = storagetest.ScaleConfig{Contacts: 10_000, Messages: 100_000, NoiseEvents: 200_000, Seed: 1}
	}
	// Seeded again at most once per process (-count runs this again).
	reseed := os.Getenv("TUTTI_BENCH_REPORTS_RESEED") == "1" && !benchReseeded
	benchReseeded = true
	return storagetest.ScaleDatabase(b, cfg, reseed)
}

var benchReseeded bool

// scaleReports are the measured reports, by benchmark name.
var scaleReports = []struct {
	name string
	run  func(ctx context.Context, s *storage.Store) error
}{
	{"Funnel", func(ctx context.Context, s *storage.Store) error {
		_, err := s.Funnel(ctx, storage.FunnelQuery{JourneyID: storagetest.ScaleJourney, Version: 2,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		return err
	}},
	{"Experiment", func(ctx context.Context, s *storage.Store) error {
		_, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: storagetest.ScaleJourney, Experiment: storagetest.ScaleExperiment,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		return err
	}},
	{"Attribution", func(ctx context.Context, s *storage.Store) error {
		// Every model over every purchase of the data set's 90 days.
		from, to := storagetest.ScaleSpan()
		_, err := s.Attribution(ctx, storage.AttributionQuery{Event: storagetest.ScaleGoal, From: from, To: to}, nil, 0)
		return err
	}},
	{"Holdout", func(ctx context.Context, s *storage.Store) error {
		_, err := s.Experiment(ctx, storage.ExperimentQuery{JourneyID: storagetest.ScaleJourney, Experiment: journey.GroupHoldout,
			Goal: storagetest.ScaleGoal, Window: storagetest.ScaleWindow})
		return err
	}},
}

// BenchmarkReport times each report over the big journey: Funnel of its
// version 2 (the larger), Experiment of its split and of its holdout.
func BenchmarkReport(b *testing.B) {
	s := benchScaleStore(b)
	ctx := context.Background()
	if path := os.Getenv("TUTTI_BENCH_REPORTS_PLANS"); path != "" {
		if err := writeReportPlans(ctx, s, path); err != nil {
			b.Fatal(err)
		}
	}
	for _, r := range scaleReports {
		b.Run(r.name, func(b *testing.B) {
			if err := r.run(ctx, s); err != nil { // warm the cache, as a report page reloaded
				b.Fatal(err)
			}
			var took []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := r.run(ctx, s); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[(len(took)-1)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// queryLog records the statements a Store sends (a pgx tracer).
type queryLog struct {
	mu      sync.Mutex
	queries []loggedQuery
}

type loggedQuery struct {
	sql  string
	args []any
	took time.Duration
}

type queryStartKey struct{}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStartKey{}, loggedQuery{sql: d.SQL, args: d.Args, took: time.Duration(time.Now().UnixNano())})
}

func (l *queryLog) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	q, ok := ctx.Value(queryStartKey{}).(loggedQuery)
	if !ok {
		return
	}
	q.took = time.Duration(time.Now().UnixNano()) - q.took
	l.mu.Lock()
	l.queries = append(l.queries, q)
	l.mu.Unlock()
}

// writeReportPlans runs each report once through a pool that records its
// statements, then writes each statement's EXPLAIN (ANALYZE, BUFFERS).
func writeReportPlans(ctx context.Context, s *storage.Store, path string) error {
	cfg := s.Pool().Config().Copy()
	log := &queryLog{}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	traced := storage.New(pool)
	var out strings.Builder
	for _, r := range scaleReports {
		log.queries = nil
		if err := r.run(ctx, traced); err != nil {
			return err
		}
		// The report's own queries, explained with its transaction's
		// settings (set_config) in force.
		var queries, settings []loggedQuery
		for _, q := range log.queries {
			switch sql := strings.ToUpper(strings.TrimSpace(q.sql)); {
			case strings.Contains(sql, "SET_CONFIG"):
				settings = append(settings, q)
			case strings.HasPrefix(sql, "WITH") || strings.HasPrefix(sql, "SELECT"):
				queries = append(queries, q)
			}
		}
		for i, q := range queries {
			fmt.Fprintf(&out, "==== %s, query %d of %d (%s when traced)\n%s\n\n", r.name, i+1, len(queries), q.took.Round(time.Millisecond), strings.TrimSpace(q.sql))
			lines, err := explain(ctx, pool, settings, q)
			if err != nil {
				return fmt.Errorf("explaining %s query %d: %w", r.name, i+1, err)
			}
			out.WriteString(strings.Join(lines, "\n") + "\n\n")
		}
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// explain is EXPLAIN (ANALYZE, BUFFERS) of q in a transaction of its own
// (rolled back) after settings.
func explain(ctx context.Context, pool *pgxpool.Pool, settings []loggedQuery, q loggedQuery) ([]string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // nothing written
	for _, st := range settings {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, q.args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
