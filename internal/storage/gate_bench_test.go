package storage_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// Benchmark shape. scripts/bench.sh runs BenchmarkGate and puts its numbers
// beside pgbench's tpcb-like rate in the README.
const (
	// benchWorkers: 16 goroutines, each deciding for its own contact, on a
	// pool of 16 connections: 16 gate transactions in flight at once, as
	// with `pgbench -c 16`.
	benchWorkers = 16
	// benchStep is how far a worker's simulated clock moves per decision.
	// With DefaultSettings (email cooldown 16h, cap 7 per 7 days) a 12h step
	// gives a steady mix of about half allows (a ledger row reserved) and
	// half defers (cooldown, then the weekly cap), and the contact's recent
	// sends read under the lock stay bounded by the cap: a send older than
	// the 7-day lookback is no longer read.
	benchStep = 12 * time.Hour
	// benchSkipEvery: one request in this many is an SMS to a contact with
	// no phone, which the gate skips (a skipped ledger row is written).
	benchSkipEvery = 10
	// benchDecisionsPerContact: a worker moves to a fresh contact after this
	// many decisions (150 simulated days), before DefaultSettings' 180-day
	// "unengaged" rule would turn every later decision into a skip.
	benchDecisionsPerContact = 300
)

// BenchmarkGate measures Store.Gate end to end against PostgreSQL: lock the
// contact, read consents, suppressions and recent sends, policy.Decide,
// write the decision and the ledger row, commit. Every call is a new
// idempotency key (a new send), decided with policy.DefaultSettings().
//
// Metrics: decisions/s (all workers together, wall clock), p50-ms and
// p99-ms (latency of one Gate call), and the outcome mix (allow-%, defer-%,
// skip-%) so a change that shifts the mix (defers write no ledger row) is
// visible. ns/op is dropped: with 16 workers it is wall time per decision,
// the inverse of decisions/s, not a latency.
//
// Store.Gate groups concurrent calls into shared transactions
// (storage.DefaultGateBatching); decisions/tx reports the mean group size.
// BenchmarkGateAlone is the same with grouping off: one transaction per
// decision.
//
//	go test ./internal/storage -run '^$' -bench BenchmarkGate -benchtime 20s
func BenchmarkGate(b *testing.B) {
	benchmarkGate(b, storage.DefaultGateBatching())
}

// BenchmarkGateAlone is BenchmarkGate with every decision in a transaction
// of its own.
func BenchmarkGateAlone(b *testing.B) {
	benchmarkGate(b, storage.GateBatching{MaxBatch: 1})
}

func benchmarkGate(b *testing.B, batching storage.GateBatching) {
	ctx := context.Background()
	_, dsn := storagetest.NewWithDSN(b)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	// storage.Open's default pool has max(4, NumCPU) connections; 16
	// concurrent transactions need 16.
	cfg.MaxConns, cfg.MinConns = benchWorkers, benchWorkers
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // before storagetest drops the database
	s := storage.New(pool, storage.WithGateBatching(batching))
	settings := policy.DefaultSettings()
	lookback := 7 * 24 * time.Hour // the longest cap window or cooldown

	// Contacts for every worker, created before the clock starts.
	perWorker := (b.N/benchWorkers+1)/benchDecisionsPerContact + 1
	contacts := make([][]storage.Contact, benchWorkers)
	var seq atomic.Int64
	var setupWG sync.WaitGroup
	setupErr := make(chan error, benchWorkers)
	for w := range benchWorkers {
		setupWG.Go(func() {
			for range perWorker {
				c, _, err := s.UpsertContact(ctx, storage.ContactInput{Email: fmt.Sprintf("bench%d@example.com", seq.Add(1))})
				if err == nil {
					_, _, err = s.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
				}
				if err != nil {
					setupErr <- err
					return
				}
				contacts[w] = append(contacts[w], c)
			}
		})
	}
	setupWG.Wait()
	close(setupErr)
	if err := <-setupErr; err != nil {
		b.Fatal(err)
	}

	// b.N decisions split evenly over the workers; each records the latency
	// of every call.
	var (
		latencies = make([][]time.Duration, benchWorkers)
		outcomes  [benchWorkers]map[policy.Outcome]int
		failed    atomic.Pointer[error]
		wg        sync.WaitGroup
	)
	start := time.Now()
	tx0, calls0 := s.GateGroupStats()
	cpu0, cpuOK := machineCPU()
	b.ResetTimer()
	for w := range benchWorkers {
		quota := b.N / benchWorkers
		if w < b.N%benchWorkers {
			quota++
		}
		lat := make([]time.Duration, 0, quota)
		outcomes[w] = map[policy.Outcome]int{}
		wg.Go(func() {
			var c storage.Contact
			var now time.Time
			for i := range quota {
				if i%benchDecisionsPerContact == 0 {
					c, now = contacts[w][i/benchDecisionsPerContact], start
				}
				now = now.Add(benchStep)
				ch := journey.ChannelEmail
				if i%benchSkipEvery == benchSkipEvery-1 {
					ch = journey.ChannelSMS
				}
				in := storage.GateInput{
					Message: storage.Message{
						IdempotencyKey: fmt.Sprintf("bench-%d-%d", w, i), ContactID: c.ID,
						JourneyID: fmt.Sprintf("journey-%d", i%4), JourneyVersion: 1, StepID: fmt.Sprintf("step-%d", i%5),
						Channel: ch, Class: string(journey.ClassMarketing), Provider: "sandbox",
					},
					Now:      now,
					Lookback: lookback,
				}
				t0 := time.Now()
				res, err := s.Gate(ctx, in, func(st storage.GateState) policy.Decision {
					return policy.Decide(settings, policy.Request{Contact: st.Contact, Channel: ch, Class: journey.ClassMarketing, Now: now})
				})
				lat = append(lat, time.Since(t0))
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				outcomes[w][res.Decision.Outcome]++
			}
			latencies[w] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, cpuOK1 := machineCPU()
	tx1, calls1 := s.GateGroupStats()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}

	all := slices.Concat(latencies...)
	slices.Sort(all)
	total := map[policy.Outcome]int{}
	for _, o := range outcomes {
		for k, v := range o {
			total[k] += v
		}
	}
	n := float64(len(all))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(n/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	b.ReportMetric(100*float64(total[policy.OutcomeAllow])/n, "allow-%")
	b.ReportMetric(100*float64(total[policy.OutcomeDefer])/n, "defer-%")
	b.ReportMetric(100*float64(total[policy.OutcomeSkip])/n, "skip-%")
	if tx1 > tx0 {
		// Calls per shared transaction (see storage.GateBatching).
		b.ReportMetric(float64(calls1-calls0)/float64(tx1-tx0), "decisions/tx")
	}
	if cpuOK && cpuOK1 {
		// CPU time of the whole machine (PostgreSQL and this process) per
		// decision while the workers ran: unlike decisions/s, it does not
		// depend on how much of the shared host this machine got.
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/n, "machine-cpu-µs/decision")
	}
}

// machineCPU is the CPU time used on this machine since boot (user, nice,
// system, irq and softirq in /proc/stat; not steal, which the hypervisor
// gave to others); false where there is none.
func machineCPU() (time.Duration, bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	// USER_HZ is 100 on every Linux the kernel ABI supports for /proc/stat.
	return time.Duration(ticks) * 10 * time.Millisecond, true
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
