package storage_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

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
