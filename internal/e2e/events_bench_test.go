package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// Benchmarks of the event outbox (README "Event delivery"). scripts/bench-events.sh
// (`make bench-events`) runs BenchmarkPostEvents beside pgbench inserting
// one row of an events row's width per transaction, and BenchmarkDeliveryLag
// once.

const (
	// eventClients: 16 concurrent HTTP clients, as `pgbench -c 16`.
	eventClients = 16
	// eventContacts the events are spread over; each has an active
	// enrollment, so every event also stores its signal delivery.
	eventContacts = 1024
	// eventProperties is every benchmark event's properties, and the
	// pgbench script's (scripts/bench-events.sql).
	eventProperties = `{"order_id": "o-1001", "total": 42.5}`
)

const benchParked = `
id: bench-parked
name: Parked until a purchase
trigger: {type: api}
reentry: {policy: always}
goal: {event: purchase}
steps:
  - id: park
    wait: {duration: 24h}
`

// BenchmarkPostEvents measures POST /v1/events through the real HTTP
// handler (in-process server, loopback HTTP/1.1 with keep-alive) against
// PostgreSQL: 16 clients, each posting a new purchase event (a fresh
// event_id) for one of 1,024 contacts that have an active run, so each
// request looks the contact up and, in one transaction, takes the
// contact's advisory lock, inserts the event row and its signal delivery
// row and counts the pending deliveries. The API's pool has 16
// connections. The dispatcher does not run: this is ingest alone.
//
// Metrics: events/s (all clients, wall clock), p50-ms and p99-ms (one
// request, client side), machine-cpu-µs/event (the whole machine's CPU
// time per event while the clients ran). ns/op is dropped (the inverse of
// events/s with 16 clients, not a latency).
//
//	go test ./internal/e2e -run '^$' -bench BenchmarkPostEvents -benchtime 20s
func BenchmarkPostEvents(b *testing.B) {
	benchmarkEvents(b, viaHTTP)
}

// BenchmarkPostEventBatches is BenchmarkPostEvents with the events posted
// as backends and CDPs send them: POST /v1/events/batch, eventBatchSize
// events per request (each about a different contact), so HTTP, JSON and
// the round trip are paid once per batch. p50-ms and p99-ms are a batch
// request's.
func BenchmarkPostEventBatches(b *testing.B) {
	benchmarkEvents(b, viaBatch)
}

// eventBatchSize is BenchmarkPostEventBatches' events per request.
const eventBatchSize = 100

// How benchmarkEvents' clients store their events.
type eventsVia int

const (
	viaStore eventsVia = iota // storage.Store.TrackEvent, no HTTP
	viaHTTP                   // POST /v1/events, one event per request
	viaBatch                  // POST /v1/events/batch, eventBatchSize per request
)

// BenchmarkTrackEvent is BenchmarkPostEvents without HTTP: the 16 clients
// call storage.Store.TrackEvent (with the contact already known), so the
// two together say how much of an event's cost is the API's and how much
// its transaction's.
func BenchmarkTrackEvent(b *testing.B) {
	benchmarkEvents(b, viaStore)
}

// BenchmarkTrackEventAlone is BenchmarkTrackEvent with TrackEvent's
// grouping off (every call in a transaction of its own), to say what the
// grouped commits pay.
func BenchmarkTrackEventAlone(b *testing.B) {
	benchmarkEvents(b, viaStore, storage.WithEventBatching(storage.GateBatching{MaxBatch: 1}))
}

// BenchmarkTrackEventWithSegment is BenchmarkTrackEvent with a segment
// defined: each event also queues its contact's segment evaluation (one
// more row, in the same statement). The evaluations themselves run in the
// workers, not here. Beside BenchmarkTrackEvent it says what defining
// segments costs ingest; with none, the statement only probes the empty
// segments table.
func BenchmarkTrackEventWithSegment(b *testing.B) {
	segmentDefined = true
	defer func() { segmentDefined = false }()
	benchmarkEvents(b, viaStore)
}

// segmentDefined makes benchmarkEvents define a segment before the clock starts.
var segmentDefined bool

func benchmarkEvents(b *testing.B, via eventsVia, opts ...storage.Option) {
	ctx := context.Background()
	_, dsn := storagetest.NewWithDSN(b)
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns, pcfg.MinConns = eventClients, eventClients
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // before storagetest drops the database
	store := storage.New(pool, opts...)
	cfg := config.Config{DatabaseURL: dsn, APIToken: token, APIMaxBody: 1 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 5 * time.Second}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(api.New(api.Deps{Store: store, Temporal: temporaltest.Client(b, temporalAddr), Config: cfg, Logger: logger}).Handler())
	b.Cleanup(srv.Close)
	s := &system{t: b, store: store, api: srv, logger: logger}
	s.call("POST", "/v1/journeys", benchParked, http.StatusCreated)
	if segmentDefined {
		s.call("PUT", "/v1/segments/big_spenders", "id: big_spenders\nname: Big spenders\nwhen: 'events.sum(\"purchase\", \"total\", days(30)) >= 100.0'\n", http.StatusCreated)
	}

	// Contacts with an active run (the enrollment row only: nothing here
	// reaches Temporal), created before the clock starts.
	contacts := make([]string, eventContacts)
	benchParallel(b, eventClients, eventContacts, func(i int) error {
		c, _, err := store.UpsertContact(ctx, storage.ContactInput{ExternalID: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return err
		}
		contacts[i] = c.ID
		return store.CreateEnrollment(ctx, storage.Enrollment{ID: "enr_bench_" + strconv.Itoa(i), ContactID: c.ID, JourneyID: "bench-parked",
			Version: 1, WorkflowID: workflows.JourneyWorkflowID("bench-parked", c.ID)}, nil)
	})

	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: eventClients}}
	var (
		latencies = make([][]time.Duration, eventClients)
		failed    atomic.Pointer[error]
		wg        sync.WaitGroup
	)
	start := time.Now()
	cpu0, cpuOK := machineCPU()
	tx0, calls0 := store.EventGroupStats()
	b.ResetTimer()
	for w := range eventClients {
		quota := b.N / eventClients
		if w < b.N%eventClients {
			quota++
		}
		lat := make([]time.Duration, 0, quota)
		wg.Go(func() {
			body := func(i int) string {
				return fmt.Sprintf(`{"event_id": %q, "contact_id": %q, "name": "purchase", "properties": %s}`,
					"evt-"+uuid(), contacts[(i*eventClients+w)%eventContacts], eventProperties)
			}
			for i := 0; i < quota; {
				var err error
				t0 := time.Now()
				switch via {
				case viaStore:
					err = trackEvent(ctx, store, "evt-"+uuid(), contacts[(i*eventClients+w)%eventContacts])
					i++
				case viaHTTP:
					err = postEvent(hc, srv.URL, body(i))
					i++
				case viaBatch:
					items := make([]string, 0, eventBatchSize)
					for ; i < quota && len(items) < eventBatchSize; i++ {
						items = append(items, body(i))
					}
					err = postEventBatch(hc, srv.URL, items)
				}
				lat = append(lat, time.Since(t0))
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
			latencies[w] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, cpuOK1 := machineCPU()
	tx1, calls1 := store.EventGroupStats()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	var deliveries int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&deliveries); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(latencies...)
	if deliveries != b.N {
		b.Fatalf("%d events posted, %d deliveries stored: want one each", b.N, deliveries)
	}
	slices.Sort(all)
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
	if cpuOK && cpuOK1 {
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/n, "machine-cpu-µs/event")
	}
	if tx1 > tx0 {
		b.ReportMetric(float64(calls1-calls0)/float64(tx1-tx0), "events/tx")
	}
}

// benchProperties is eventProperties decoded, as the API hands it to TrackEvent.
var benchProperties = map[string]any{"order_id": "o-1001", "total": 42.5}

// trackEvent stores one event as POST /v1/events does after decoding and
// finding the contact, and wants it new with one pending delivery.
func trackEvent(ctx context.Context, store *storage.Store, id, contactID string) error {
	_, inserted, pending, err := store.TrackEvent(ctx, storage.Event{ID: id, ContactID: contactID, Name: "purchase",
		Properties: benchProperties, OccurredAt: time.Now().UTC()})
	if err == nil && (!inserted || pending != 1) {
		err = fmt.Errorf("TrackEvent %s: inserted %v with %d pending deliveries, want a new event with one", id, inserted, pending)
	}
	return err
}

// benchPost posts body to base+path with the API token and answers the
// response's status and body.
func benchPost(hc *http.Client, base, path, body string) (int, []byte, error) {
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// postEvent posts one event and wants its 202.
func postEvent(hc *http.Client, base, body string) error {
	status, raw, err := benchPost(hc, base, "/v1/events", body)
	if err != nil {
		return err
	}
	if status != http.StatusAccepted || !bytes.Contains(raw, []byte(`"pending_deliveries":1`)) {
		return fmt.Errorf("POST /v1/events: want 202 with one pending delivery, got %d %s", status, raw)
	}
	return nil
}

// postEventBatch posts items (event objects) as one batch and wants every
// one stored new with one pending delivery.
func postEventBatch(hc *http.Client, base string, items []string) error {
	status, raw, err := benchPost(hc, base, "/v1/events/batch", `{"items": [`+strings.Join(items, ",")+`]}`)
	if err != nil {
		return err
	}
	want := fmt.Sprintf(`"succeeded":%d,"failed":0`, len(items))
	if status != http.StatusOK || !bytes.Contains(raw, []byte(want)) ||
		bytes.Count(raw, []byte(`"pending_deliveries":1`)) != len(items) {
		return fmt.Errorf("POST /v1/events/batch: want 200 with %d new events, one pending delivery each, got %d %.300s", len(items), status, raw)
	}
	return nil
}

// BenchmarkDeliveryLag measures the outbox's delivery lag (event stored
// to Temporal taking its signal: deliveries.done_at - created_at, the
// quantity tutti_delivery_lag_seconds observes) at a steady rate: goal
// events for parked runs, BENCH_LAG_RATE a second (50) for
// BENCH_LAG_SECONDS (20), posted on schedule whatever the answers' speed,
// with the worker and its dispatcher running against the package's dev
// server. Each goal ends its run, so there are as many parked runs as
// events. It runs its scenario once whatever b.N (it takes far longer than
// any -benchtime; run it with -benchtime 1x).
//
// Metrics: lag-p50-ms, lag-p99-ms, lag-max-ms, and the rate achieved.
//
//	go test ./internal/e2e -run '^$' -bench BenchmarkDeliveryLag -benchtime 1x
func BenchmarkDeliveryLag(b *testing.B) {
	rate, seconds := envInt(b, "BENCH_LAG_RATE", 50), envInt(b, "BENCH_LAG_SECONDS", 20)
	ctx := context.Background()
	s := start(b)
	s.call("POST", "/v1/journeys", benchParked, http.StatusCreated)
	n := rate * seconds
	ids := make([]string, n)
	benchParallel(b, 8, n, func(i int) error {
		status, body, err := s.post("/v1/contacts", map[string]any{"external_id": fmt.Sprintf("lag-%d", i)})
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("contact %d: %d %v %s", i, status, err, body)
		}
		ids[i] = body["contact"].(map[string]any)["id"].(string)
		status, body, err = s.post("/v1/journeys/bench-parked/enrollments", map[string]any{"contact_id": ids[i]})
		if err != nil || status != http.StatusCreated {
			return fmt.Errorf("enrolling contact %d: %d %v %s", i, status, err, body)
		}
		return nil
	})
	waitFor(b, 5*time.Minute, "every run parked", func() bool {
		var parked int
		err := s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE current_step = 'park'`).Scan(&parked)
		return err == nil && parked == n
	})

	b.ResetTimer()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	var (
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	t0 := time.Now()
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		wg.Go(func() {
			status, body, err := s.post("/v1/events", map[string]any{"event_id": fmt.Sprintf("lag-buy-%d", i), "contact_id": ids[i], "name": "purchase"})
			if err == nil && status != http.StatusAccepted {
				err = fmt.Errorf("event %d: %d %s", i, status, body)
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	tick.Stop()
	sent := time.Since(t0)
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	waitFor(b, 5*time.Minute, "the outbox empty", func() bool {
		p, err := s.store.PendingDeliveries(ctx)
		return err == nil && p == 0
	})
	b.StopTimer()

	rows, err := s.store.Pool().Query(ctx, `SELECT extract(epoch FROM done_at - created_at)::float8 FROM deliveries WHERE kind = 'signal'`)
	if err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for rows.Next() {
		var sec float64
		if err := rows.Scan(&sec); err != nil {
			b.Fatal(err)
		}
		lags = append(lags, time.Duration(sec*float64(time.Second)))
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(lags) != n {
		b.Fatalf("%d signal deliveries for %d events", len(lags), n)
	}
	slices.Sort(lags)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/sent.Seconds(), "events/s")
	b.ReportMetric(ms(percentile(lags, 0.50)), "lag-p50-ms")
	b.ReportMetric(ms(percentile(lags, 0.99)), "lag-p99-ms")
	b.ReportMetric(ms(lags[len(lags)-1]), "lag-max-ms")
}

// benchParallel runs f(0..n-1) on workers goroutines; the first error
// fails the benchmark.
func benchParallel(b *testing.B, workers, n int, f func(i int) error) {
	b.Helper()
	next := make(chan int)
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := first.Load(); err != nil {
		b.Fatal(*err)
	}
}

// waitFor polls cond until it holds; the deadline only bounds a hung run.
func waitFor(b *testing.B, deadline time.Duration, what string, cond func() bool) {
	b.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			b.Fatalf("gave up waiting (%s) for: %s", deadline, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// uuid is a random UUID-shaped id (36 characters), as clients' event ids
// often are; the pgbench script uses gen_random_uuid() for the same width.
func uuid() string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", r[0:4], r[4:6], r[6:8], r[8:10], r[10:16])
}

// machineCPU is the CPU time used on this machine since boot (user, nice,
// system, irq and softirq in /proc/stat; not steal); false where there is
// none. The same measure as internal/storage's gate benchmark.
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
