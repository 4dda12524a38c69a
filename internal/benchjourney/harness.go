package benchjourney

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/searchattr"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// apiToken is the bench API's bearer token; it never leaves loopback.
const apiToken = "bench-journeys-token"

// policyYAML lifts the workspace rules that would hold sends back (quiet
// hours, cooldowns, the unengaged rule), as the chaos run does: the
// benchmark is about the workflow, not the gate's timing. Consent applies.
const policyYAML = `global_cap: {max: 100, window: 7d}
cooldowns: {}
quiet_hours:
  email: {default: [{start: "00:00", end: "24:00"}]}
  sms: {default: [{start: "00:00", end: "24:00"}]}
unengaged_days: 0
`

type harness struct {
	cfg     Config
	dbURL   string
	store   *storage.Store
	tc      client.Client
	addr    string // Temporal frontend
	http    *http.Client
	apiURL  string
	contact atomic.Int64
	runSeq  atomic.Int64
	// enrollFailed counts API enrollments that did not answer 201.
	enrollFailed int

	temporal, worker, api *proc
	journeys              map[string]storage.JourneyVersion
}

func (h *harness) logPath(name string) string { return filepath.Join(h.cfg.WorkDir, name+".log") }

// setUp starts everything: the scratch database, the dev server, the main
// worker and the API, and publishes the journeys.
func (h *harness) setUp(ctx context.Context) error {
	if err := os.MkdirAll(h.cfg.WorkDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.cfg.WorkDir, "policy.yaml"), []byte(policyYAML), 0o644); err != nil {
		return err
	}
	if err := h.database(ctx); err != nil {
		return err
	}
	if err := h.startTemporal(ctx); err != nil {
		return err
	}
	var err error
	if h.worker, err = h.startWorker(ctx, workflows.TaskQueue, "worker"); err != nil {
		return err
	}
	if err := h.startAPI(ctx); err != nil {
		return err
	}
	return h.publish(ctx)
}

func (h *harness) tearDown() {
	h.api.stop(10 * time.Second)
	h.worker.stop(10 * time.Second)
	if h.tc != nil {
		h.tc.Close()
	}
	h.temporal.stop(10 * time.Second)
	if h.store != nil {
		h.store.Close()
	}
}

// database drops and creates the scratch database and migrates it.
func (h *harness) database(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(h.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL (TEST_DATABASE_URL): %w", err)
	}
	defer conn.Close(ctx)
	name := pgx.Identifier{h.cfg.DatabaseName}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping the scratch database: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("creating the scratch database: %w", err)
	}
	h.dbURL = withDatabase(h.cfg.DatabaseURL, h.cfg.DatabaseName)
	if err := storage.Migrate(ctx, h.dbURL); err != nil {
		return err
	}
	h.store, err = storage.Open(ctx, h.dbURL)
	return err
}

// dropDatabase removes the scratch database (the tests' cleanup).
func dropDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// withDatabase is url with its database replaced by db.
func withDatabase(url, db string) string {
	base, query, _ := strings.Cut(url, "?")
	scheme, rest, ok := strings.Cut(base, "://")
	if !ok {
		return url + " dbname=" + db
	}
	host, _, _ := strings.Cut(rest, "/")
	out := scheme + "://" + host + "/" + db
	if query != "" {
		out += "?" + query
	}
	return out
}

func (h *harness) startTemporal(ctx context.Context) error {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	h.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	args := []string{h.cfg.TemporalCLI, "server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
		"--http-port", strconv.Itoa(ports[1]), "--metrics-port", strconv.Itoa(ports[2]), "--headless",
		"--log-level", "warn", "--namespace", "default"}
	for _, sa := range searchattr.Flags() {
		args = append(args, "--search-attribute", sa)
	}
	var err error
	if h.temporal, err = startProc("temporal", h.logPath("temporal"), childEnv(), args...); err != nil {
		return err
	}
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if h.tc, err = client.NewLazyClient(client.Options{HostPort: h.addr, Namespace: "default", Logger: quiet}); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.tc.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		cancel()
		if err == nil {
			h.cfg.logf("Temporal dev server (in memory) up on %s, pid %d", h.addr, h.temporal.pid())
			return nil
		}
		if h.temporal.exited() || time.Now().After(deadline) {
			return fmt.Errorf("the Temporal dev server did not come up: %v (log %s)", err, h.logPath("temporal"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// PassedSettings are the Tutti settings the benchmark hands on to the
// worker and the API it starts when they are set in its environment: the
// tuning ones, which issue 10 asks to choose from measurements.
var PassedSettings = []string{"TUTTI_DATABASE_MAX_CONNS", "TUTTI_WORKER_WORKFLOW_POLLERS", "TUTTI_WORKER_ACTIVITY_POLLERS",
	"TUTTI_WORKER_STICKY_TIMEOUT", "TUTTI_WORKER_CACHE_SIZE"}

// tuttiEnv is the environment of the worker and the API: sandbox mode
// against the scratch database and the dev server.
// The tuning settings in PassedSettings pass through from the benchmark's
// own environment, so a setting can be measured without a rebuild.
func (h *harness) tuttiEnv(extra ...string) []string {
	for _, k := range PassedSettings {
		if v, ok := os.LookupEnv(k); ok {
			extra = append(extra, k+"="+v)
		}
	}
	return childEnv(append([]string{
		"DATABASE_URL=" + h.dbURL,
		"TEMPORAL_ADDRESS=" + h.addr,
		"TEMPORAL_NAMESPACE=default",
		"TUTTI_PROVIDER_MODE=sandbox",
		"TUTTI_API_TOKEN=" + apiToken,
		"TUTTI_METRICS_ADDR=off",
		"TUTTI_DEFAULT_TIMEZONE=UTC",
		"TUTTI_POLICY_FILE=" + filepath.Join(h.cfg.WorkDir, "policy.yaml"),
	}, extra...)...)
}

// startWorker starts a worker process polling queue and waits until it
// polls (its pid shows in the queue's pollers).
func (h *harness) startWorker(ctx context.Context, queue, name string) (*proc, error) {
	p, err := startProc(name, h.logPath(name), h.tuttiEnv(EnvTaskQueue+"="+queue), h.cfg.Worker...)
	if err != nil {
		return nil, err
	}
	prefix := strconv.Itoa(p.pid()) + "@"
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := h.tc.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err == nil {
			for _, poller := range resp.GetPollers() {
				if strings.HasPrefix(poller.GetIdentity(), prefix) {
					return p, nil
				}
			}
		}
		if p.exited() || time.Now().After(deadline) {
			p.stop(time.Second)
			return nil, fmt.Errorf("%s did not start polling %s (log %s)", name, queue, h.logPath(name))
		}
		select {
		case <-ctx.Done():
			p.stop(time.Second)
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (h *harness) startAPI(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h.apiURL = "http://" + addr
	if h.api, err = startProc("api", h.logPath("api"), h.tuttiEnv("TUTTI_API_ADDR="+addr), h.cfg.TuttiBin, "serve"); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.apiURL+"/healthz", nil)
		if resp, err := h.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if h.api.exited() || time.Now().After(deadline) {
			return fmt.Errorf("the API did not answer on %s (log %s)", h.apiURL, h.logPath("api"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- journeys and contacts ----------------------------------------------

// Journeys the benchmark publishes, by id.
const (
	journeyPark = "bench_park"
)

// stepYAML is one step of kind k, numbered i.
func stepYAML(k journey.StepKind, i int) string {
	switch k {
	case journey.KindSend:
		return fmt.Sprintf("  - id: send_%d\n    send:\n      channel: email\n      email:\n        subject: 'Bench %d for {{ .contact.first_name | default \"you\" }}'\n        text: 'Hello, this is message %d.'\n", i, i, i)
	case journey.KindWait:
		return fmt.Sprintf("  - id: wait_%d\n    wait: {duration: 1s}\n", i)
	case journey.KindWaitFor:
		return fmt.Sprintf("  - id: wait_for_%d\n    wait_for: {event: email.opened, timeout: 1s}\n", i)
	case journey.KindBranch:
		return fmt.Sprintf("  - id: branch_%d\n    branch: {condition: 'consent.email == \"granted\"'}\n", i)
	}
	panic("no YAML for step kind " + string(k))
}

// kindJourney is the id of the journey of n steps of kind k.
func kindJourney(k journey.StepKind, n int) string { return fmt.Sprintf("bench_%s_%d", k, n) }

// measuredKinds are the step kinds P2 measures.
var measuredKinds = []journey.StepKind{journey.KindSend, journey.KindWait, journey.KindWaitFor, journey.KindBranch}

// specs are the benchmark's journeys, validated as a publish would: the
// parked one (a 30-day wait) and, for each measured step kind, one of a
// single step and one of three. Every one has the goal event "purchase".
func specs() (map[string]journey.Spec, error) {
	steps := map[string]string{
		journeyPark: "  - id: long_wait\n    wait: {duration: 30d}\n",
	}
	for _, k := range measuredKinds {
		for _, n := range []int{1, 3} {
			var b strings.Builder
			for i := 1; i <= n; i++ {
				b.WriteString(stepYAML(k, i))
			}
			steps[kindJourney(k, n)] = b.String()
		}
	}
	out := map[string]journey.Spec{}
	for id, st := range steps {
		doc := fmt.Sprintf("id: %s\nname: Benchmark %s\ntrigger: {type: api}\nreentry: {policy: always}\ngoal: {event: purchase}\nsteps:\n%s", id, id, st)
		spec, err := journey.ParseAndValidate([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("journey %s: %w", id, err)
		}
		out[id] = spec
	}
	return out, nil
}

func (h *harness) publish(ctx context.Context) error {
	all, err := specs()
	if err != nil {
		return err
	}
	h.journeys = map[string]storage.JourneyVersion{}
	for id, spec := range all {
		jv, err := h.store.PublishJourney(ctx, spec)
		if err != nil {
			return fmt.Errorf("publishing %s: %w", id, err)
		}
		h.journeys[id] = jv
	}
	return nil
}

// newContacts creates n contacts with email consent, 8 at a time.
func (h *harness) newContacts(ctx context.Context, n int) ([]string, error) {
	ids := make([]string, n)
	err := parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		k := h.contact.Add(1)
		c, _, err := h.store.UpsertContact(ctx, storage.ContactInput{
			ExternalID: fmt.Sprintf("bench-%d", k), Email: fmt.Sprintf("bench-%d@example.com", k), TimeZone: "UTC",
			Attributes: map[string]any{"first_name": "Bench"},
		})
		if err != nil {
			return err
		}
		if _, _, err := h.store.RecordConsent(ctx, c.ID, journey.ChannelEmail, model.ConsentGranted, "bench", time.Now().Add(-time.Hour)); err != nil {
			return err
		}
		ids[i] = c.ID
		return nil
	})
	return ids, err
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error (the rest are cancelled).
func parallel(outer context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(outer)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		return outer.Err()
	}
	return first
}
