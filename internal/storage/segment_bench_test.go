package storage_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// BenchmarkSweepSegments measures one sweep of a time-dependent segment
// over every contact (Store.SweepSegments, 500 contacts a page) beside a
// plain SQL scan of the rows it reads: each contact, its consents,
// suppressions and events. Contacts (TUTTI_BENCH_SWEEP_CONTACTS, 20,000;
// the figure is 100,000) have two page views each, one in the
// last week, one older; half of them a view inside the window, so half are
// members. The sweep runs once before the clock starts, recording those
// entries; the measured sweeps find nothing changed, the steady state.
//
// Metrics: sweep-ms and scan-ms per pass, and sweep/scan, the ratio.
//
//	go test ./internal/storage -run '^$' -bench BenchmarkSweepSegments -benchtime 3x
func BenchmarkSweepSegments(b *testing.B) {
	n, sweepPage := 20000, 500
	if v := os.Getenv("TUTTI_BENCH_SWEEP_PAGE"); v != "" {
		var err error
		if sweepPage, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	if v := os.Getenv("TUTTI_BENCH_SWEEP_CONTACTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	s := storagetest.New(b)
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO contacts (id, external_id, attributes)
		SELECT 'c_bench_' || lpad(i::text, 7, '0'), 'ext-' || i, jsonb_build_object('plan', CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END)
		FROM generate_series(1, $1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO events (id, contact_id, name, properties, occurred_at)
		SELECT 'ev_bench_' || i || '_' || k, 'c_bench_' || lpad(i::text, 7, '0'), 'page.viewed', '{"path": "/pricing"}',
		       now() - CASE WHEN k = 1 AND i % 2 = 0 THEN interval '2 days' ELSE interval '20 days' END
		FROM generate_series(1, $1) AS i, generate_series(1, 2) AS k`, n); err != nil {
		b.Fatal(err)
	}
	defineSegment(b, s, "pricing_readers", `events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 1`)
	if _, err := s.Pool().Exec(ctx, `DELETE FROM segment_evaluations; ANALYZE`); err != nil {
		b.Fatal(err)
	}
	sweep := func() (entered int) {
		after := ""
		for {
			next, ch, err := s.SweepSegments(ctx, after, sweepPage)
			if err != nil {
				b.Fatal(err)
			}
			entered += ch.Entered
			if next == "" {
				return entered
			}
			after = next
		}
	}
	if got := sweep(); got != n/2 {
		b.Fatalf("first sweep: %d entered, want %d", got, n/2)
	}
	// The first sweep wrote n/2 memberships and as many segment.entered
	// events; a steady-state sweep runs on tables whose statistics
	// autovacuum has caught up with, so analyze them as it would.
	if _, err := s.Pool().Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	scan := func() {
		for _, q := range []string{
			`SELECT id, external_id, email, phone, time_zone, country, attributes FROM contacts`,
			`SELECT contact_id, channel, status FROM consents WHERE subscription = ''`,
			`SELECT contact_id, reason FROM suppressions WHERE lifted_at IS NULL`,
			`SELECT contact_id, name, occurred_at, properties FROM events`,
			`SELECT contact_id, segment_id FROM segment_memberships WHERE exited_at IS NULL`,
		} {
			rows, err := s.Pool().Query(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				if _, err := rows.Values(); err != nil {
					b.Fatal(err)
				}
			}
			if rows.Err() != nil {
				b.Fatal(rows.Err())
			}
		}
	}
	var sweeping, scanning time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if got := sweep(); got != 0 {
			b.Fatalf("a steady-state sweep entered %d", got)
		}
		t1 := time.Now()
		scan()
		sweeping += t1.Sub(t0)
		scanning += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(sweeping.Milliseconds())/float64(b.N), "sweep-ms")
	b.ReportMetric(float64(scanning.Milliseconds())/float64(b.N), "scan-ms")
	b.ReportMetric(float64(sweeping)/float64(scanning), "sweep/scan")
}

// BenchmarkSegmentUpdate measures incremental membership: 16 clients track
// events (TrackEvent, each a first pricing view of a contact that is not
// yet in the segment) while one evaluator (one worker's dispatcher: 64
// contacts a call, segmentParallel at a time) records the entries. Each
// event makes one entry; its lag is the entry's time minus the event's
// arrival (both stamped on this machine).
//
// Metrics: events/s (clients, wall clock), entries/s (until the last entry),
// lag-p50-ms and lag-p99-ms. With the clients at full speed the lag is the
// queue's: it says whether one evaluator keeps up with this ingest rate.
//
//	go test ./internal/storage -run '^$' -bench BenchmarkSegmentUpdate -benchtime 4000x
func BenchmarkSegmentUpdate(b *testing.B) {
	ctx := context.Background()
	_, dsn := storagetest.NewWithDSN(b)
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = benchWorkers + 8
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s := storage.New(pool)
	if _, err := pool.Exec(ctx, `
		INSERT INTO contacts (id, external_id) SELECT 'c_upd_' || lpad(i::text, 7, '0'), 'upd-' || i FROM generate_series(1, $1) AS i`, b.N); err != nil {
		b.Fatal(err)
	}
	defineSegment(b, s, "pricing_readers", `events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 1`)
	if _, err := pool.Exec(ctx, `DELETE FROM segment_evaluations; ANALYZE`); err != nil {
		b.Fatal(err)
	}

	var (
		clients sync.WaitGroup
		done    atomic.Bool
		evalErr atomic.Pointer[error]
		evals   sync.WaitGroup
	)
	evals.Go(func() {
		for {
			ch, err := s.EvaluateQueuedSegments(ctx, 64)
			if err != nil {
				evalErr.CompareAndSwap(nil, &err)
				return
			}
			if ch.Evaluated == 0 {
				if done.Load() {
					var n int
					if err := pool.QueryRow(ctx, `SELECT count(*) FROM segment_evaluations`).Scan(&n); err == nil && n == 0 {
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	start := time.Now()
	b.ResetTimer()
	for w := range benchWorkers {
		clients.Go(func() {
			for i := w; i < b.N; i += benchWorkers {
				_, _, _, err := s.TrackEvent(ctx, storage.Event{ContactID: fmt.Sprintf("c_upd_%07d", i+1), Name: "page.viewed",
					Properties: map[string]any{"path": "/pricing"}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	clients.Wait()
	ingest := time.Since(start)
	done.Store(true)
	evals.Wait()
	b.StopTimer()
	if err := evalErr.Load(); err != nil {
		b.Fatal(*err)
	}
	var (
		entries            int
		p50, p99, lastSecs float64
	)
	if err := pool.QueryRow(ctx, `
		SELECT count(*),
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM m.entered_at - e.received_at)),
		       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM m.entered_at - e.received_at)),
		       extract(epoch FROM max(m.entered_at) - min(e.received_at))
		FROM segment_memberships m JOIN events e ON e.contact_id = m.contact_id AND e.name = 'page.viewed'`).Scan(&entries, &p50, &p99, &lastSecs); err != nil {
		b.Fatal(err)
	}
	if entries != b.N {
		b.Fatalf("%d entries for %d events", entries, b.N)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(b.N)/ingest.Seconds(), "events/s")
	b.ReportMetric(float64(entries)/lastSecs, "entries/s")
	b.ReportMetric(p50*1000, "lag-p50-ms")
	b.ReportMetric(p99*1000, "lag-p99-ms")
}
