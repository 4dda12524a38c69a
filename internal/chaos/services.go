package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/tutti-dev/tutti/internal/searchattr"
)

// The processes the harness runs: its own PostgreSQL cluster, the fake
// provider, a Temporal dev server with a file database, and Tutti.

// --- PostgreSQL: a throwaway cluster of its own -------------------------

// pgCmd runs a PostgreSQL program, as the postgres user when we are root
// (initdb and postgres refuse to run as root).
func (h *harness) pgCmd(ctx context.Context, prog string, args ...string) *exec.Cmd {
	bin := filepath.Join(h.cfg.PGBin, prog)
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

func (h *harness) runPG(ctx context.Context, prog string, args ...string) error {
	cmd := h.pgCmd(ctx, prog, args...)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, outb)
	}
	return nil
}

func (h *harness) startPostgres(ctx context.Context) error {
	dir := filepath.Join(h.cfg.WorkDir, "pg")
	h.pgData, h.pgSock, h.pgLog = filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "postgres.log")
	if err := os.MkdirAll(h.pgSock, 0o755); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// The cluster belongs to postgres; the work dir must be reachable.
		if err := os.Chmod(h.cfg.WorkDir, 0o755); err != nil {
			return err
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs a postgres user for initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, h.pgSock} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	h.say("initdb %s", h.pgData)
	if err := h.runPG(ctx, "initdb", "-D", h.pgData, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c max_connections=200", h.cfg.PGPort, h.pgSock)
	if err := h.runPG(ctx, "pg_ctl", "-D", h.pgData, "-l", h.pgLog, "-o", opts, "-w", "-t", "120", "start"); err != nil {
		return err
	}
	h.dbURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/tutti?sslmode=disable", h.cfg.PGPort)
	h.say("PostgreSQL up on 127.0.0.1:%d", h.cfg.PGPort)
	return nil
}

func (h *harness) restartPostgres(ctx context.Context) error {
	// -l again: without it the new postmaster would write to our pipe and
	// keep it open.
	return h.runPG(ctx, "pg_ctl", "-D", h.pgData, "-l", h.pgLog, "-m", "immediate", "-w", "-t", "120", "restart")
}

func (h *harness) stopPostgres() {
	if h.pgData == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(h.pgData, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := h.runPG(ctx, "pg_ctl", "-D", h.pgData, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		h.say("stopping PostgreSQL: %v", err)
		_ = h.runPG(ctx, "pg_ctl", "-D", h.pgData, "-m", "immediate", "-w", "-t", "30", "stop")
	}
}

func (h *harness) pgConn(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return pgx.Connect(ctx, h.dbURL)
}

// --- the fake provider ----------------------------------------------------

func (h *harness) startFake(ctx context.Context) error {
	faults, _ := json.Marshal(h.cfg.Faults)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(h.cfg.FakePort))
	h.fakeURL = "http://" + addr
	h.fake = &proc{
		name: "fake", path: h.cfg.Self, logPath: h.logPath("fake"), say: h.say, restartDelay: time.Second,
		args: []string{"fake", "-addr", addr, "-record-file", filepath.Join(h.cfg.WorkDir, "fake-records.jsonl"),
			"-sendgrid-key", FakeSendGridKey, "-twilio-account", FakeTwilioSID, "-twilio-token", FakeTwilioToken,
			"-faults", string(faults), "-seed", strconv.FormatUint(h.cfg.Seed, 10)},
		env: os.Environ(),
	}
	if err := h.fake.start(); err != nil {
		return err
	}
	go h.fake.supervise(ctx)
	return waitHTTP(ctx, h.http, h.fakeURL+"/_chaos/healthz", time.Minute)
}

func (h *harness) fakeStats(ctx context.Context) (Stats, error) {
	var s Stats
	err := h.getJSON(ctx, h.fakeURL+"/_chaos/stats", &s)
	return s, err
}

func (h *harness) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func waitHTTP(ctx context.Context, hc *http.Client, url string, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s", url, bound)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// --- Temporal dev server with a file database ---------------------------

func (h *harness) startTemporal(ctx context.Context) error {
	port := h.cfg.TemporalPort
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(port + 1), "--metrics-port", strconv.Itoa(port + 2), "--headless",
		"--db-filename", filepath.Join(h.cfg.WorkDir, "temporal.db"), "--log-level", "warn", "--namespace", "default"}
	for _, sa := range searchattr.Flags() {
		args = append(args, "--search-attribute", sa)
	}
	h.temporal = &proc{name: "temporal", path: h.cfg.TemporalCLI, args: args, env: cleanEnv(nil), logPath: h.logPath("temporal"),
		restartDelay: h.cfg.TemporalDown, say: h.say}
	h.temporal.ready = h.waitTemporal
	if err := h.temporal.start(); err != nil {
		return err
	}
	go h.temporal.supervise(ctx)
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	tc, err := client.NewLazyClient(client.Options{HostPort: h.temporalAddr(), Namespace: "default", Logger: quiet})
	if err != nil {
		return err
	}
	h.tc = tc
	if err := h.waitTemporal(ctx); err != nil {
		return err
	}
	h.say("Temporal dev server up on %s (file DB)", h.temporalAddr())
	return nil
}

func (h *harness) temporalAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(h.cfg.TemporalPort))
}

// waitTemporal waits (bounded) until the server answers for the default
// namespace with Tutti's search attributes.
func (h *harness) waitTemporal(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		if h.tc != nil {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := h.tc.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
			ccancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Temporal dev server on %s did not become ready (log: %s)", h.temporalAddr(), h.logPath("temporal"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// --- Tutti: migrate, worker, API ----------------------------------------

// cleanEnv is our environment without any Temporal, Tutti or provider
// settings of the caller's, plus extra.
func cleanEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "TEMPORAL_CLI":
		case strings.HasPrefix(k, "TEMPORAL_"), strings.HasPrefix(k, "TUTTI_"), strings.HasPrefix(k, "SENDGRID_"),
			strings.HasPrefix(k, "TWILIO_"), k == "DATABASE_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func (h *harness) tuttiEnv() []string {
	return cleanEnv([]string{
		"DATABASE_URL=" + h.dbURL,
		"TEMPORAL_ADDRESS=" + h.temporalAddr(),
		"TEMPORAL_NAMESPACE=default",
		"TUTTI_PROVIDER_MODE=live",
		// Live mode requires both; fixed, since every process of one run
		// must share them (a restarted worker decrypts what the last wrote).
		"TUTTI_CODEC_KEYS=chaos:Y2hhb3MtaGFybmVzcy1jb2RlYy1rZXktMzJieXRlcyE=",
		"TUTTI_ERASURE_HASH_KEY=chaos-harness-erasure-hash-key-0123456789",
		"TUTTI_API_TOKEN=" + apiToken,
		"TUTTI_API_ADDR=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(h.cfg.APIPort)),
		"TUTTI_METRICS_ADDR=off",
		"TUTTI_POLICY_FILE=" + filepath.Join(h.cfg.WorkDir, "policy.yaml"),
		"TUTTI_DEFAULT_TIMEZONE=UTC",
		"TUTTI_EMAIL_FROM=hello@tutti.test",
		"SENDGRID_API_KEY=" + FakeSendGridKey,
		"SENDGRID_BASE_URL=" + h.fakeURL,
		"TWILIO_ACCOUNT_SID=" + FakeTwilioSID,
		"TWILIO_AUTH_TOKEN=" + FakeTwilioToken,
		"TWILIO_BASE_URL=" + h.fakeURL,
		"TWILIO_FROM=" + fakeTwilioFrom,
	})
}

func (h *harness) migrate(ctx context.Context) error {
	if err := os.WriteFile(filepath.Join(h.cfg.WorkDir, "policy.yaml"), []byte(policyYAML), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(h.cfg.BinDir, "tutti"), "migrate")
	cmd.Env = h.tuttiEnv()
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tutti migrate: %w\n%s", err, outb)
	}
	return nil
}

func (h *harness) startTutti(ctx context.Context) error {
	h.apiURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(h.cfg.APIPort))
	h.worker = &proc{name: "worker", path: filepath.Join(h.cfg.BinDir, "tutti-worker"), env: h.tuttiEnv(),
		logPath: h.logPath("worker"), restartDelay: time.Second, say: h.say}
	h.api = &proc{name: "api", path: filepath.Join(h.cfg.BinDir, "tutti"), args: []string{"serve"}, env: h.tuttiEnv(),
		logPath: h.logPath("api"), restartDelay: time.Second, say: h.say}
	for _, p := range []*proc{h.worker, h.api} {
		if err := p.start(); err != nil {
			return err
		}
		go p.supervise(ctx)
	}
	if err := waitHTTP(ctx, h.http, h.apiURL+"/healthz", 2*time.Minute); err != nil {
		return err
	}
	h.say("worker (pid %d) and API (%s) up in live mode against the fake at %s", h.worker.pid(), h.apiURL, h.fakeURL)
	return nil
}
