// Command chaos runs Tutti's chaos burst (`make chaos`; see internal/chaos):
//
//	chaos [run] [flags]   start everything, run the burst with faults and kills, print the figures
//	chaos fake [flags]    run the fault-injecting fake SendGrid/Twilio alone
//
// Every run flag has an environment variable (CHAOS_*), which scripts/chaos.sh
// and `make chaos CHAOS_CONTACTS=100` pass through. Exit status: 0 when the
// run met the target (no lost journey, no duplicate, no message left
// unsent), 1 when it did not, 2 when the harness itself could not run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/tutti-dev/tutti/internal/chaos"
)

func main() {
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "fake") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	switch cmd {
	case "fake":
		code = fake(ctx, args, os.Stderr)
	default:
		code = run(ctx, args, os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// env reads an environment default for a flag.
func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(env(key, "")); err == nil {
		return v
	}
	return def
}

func envFloat(key string, def float64) float64 {
	if v, err := strconv.ParseFloat(env(key, ""), 64); err == nil {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(key, "")); err == nil {
		return v
	}
	return def
}

type durationFlag struct{ d *chaos.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return time.Duration(*f.d).String()
}
func (f durationFlag) Set(s string) error { return f.d.UnmarshalText([]byte(s)) }

// faultFlags registers the fault-rate flags on fs over defaults from the
// environment.
func faultFlags(fs *flag.FlagSet) *chaos.Faults {
	f := chaos.DefaultFaults()
	f.Error500 = envFloat("CHAOS_FAULT_500", f.Error500)
	f.Throttle429 = envFloat("CHAOS_FAULT_429", f.Throttle429)
	f.Slow = envFloat("CHAOS_FAULT_SLOW", f.Slow)
	f.Hang = envFloat("CHAOS_FAULT_HANG", f.Hang)
	f.Drop = envFloat("CHAOS_FAULT_DROP", f.Drop)
	f.SlowMin = chaos.Duration(envDuration("CHAOS_SLOW_MIN", time.Duration(f.SlowMin)))
	f.SlowMax = chaos.Duration(envDuration("CHAOS_SLOW_MAX", time.Duration(f.SlowMax)))
	f.HangMax = chaos.Duration(envDuration("CHAOS_HANG_MAX", time.Duration(f.HangMax)))
	f.Reads = env("CHAOS_FAULT_READS", "1") != "0"
	fs.Float64Var(&f.Error500, "fault-500", f.Error500, "share of send requests answered 500, not accepted (CHAOS_FAULT_500)")
	fs.Float64Var(&f.Throttle429, "fault-429", f.Throttle429, "share answered 429 with Retry-After, not accepted (CHAOS_FAULT_429)")
	fs.Float64Var(&f.Slow, "fault-slow", f.Slow, "share answered slowly, accepted somewhere within the delay (CHAOS_FAULT_SLOW)")
	fs.Float64Var(&f.Hang, "fault-hang", f.Hang, "share accepted and then never answered (CHAOS_FAULT_HANG)")
	fs.Float64Var(&f.Drop, "fault-drop", f.Drop, "share accepted and then the connection closed unanswered (CHAOS_FAULT_DROP)")
	fs.Var(durationFlag{&f.SlowMin}, "slow-min", "shortest slow answer (CHAOS_SLOW_MIN)")
	fs.Var(durationFlag{&f.SlowMax}, "slow-max", "longest slow answer (CHAOS_SLOW_MAX)")
	fs.Var(durationFlag{&f.HangMax}, "hang-max", "how long a hung request is held before the fake closes it (CHAOS_HANG_MAX)")
	fs.BoolVar(&f.Reads, "fault-reads", f.Reads, "fault Twilio Messages list reads too (CHAOS_FAULT_READS=0 turns it off)")
	return &f
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := envInt("CHAOS_PORT_BASE", 55400)
	cfg := chaos.Config{Log: stderr}
	fs.IntVar(&cfg.Contacts, "contacts", envInt("CHAOS_CONTACTS", 1000), "contacts in the burst (CHAOS_CONTACTS)")
	fs.IntVar(&cfg.Concurrency, "concurrency", envInt("CHAOS_CONCURRENCY", 16), "concurrent API calls while creating and enrolling (CHAOS_CONCURRENCY)")
	fs.IntVar(&cfg.WorkerKills, "worker-kills", envInt("CHAOS_WORKER_KILLS", 3), "worker SIGKILLs (CHAOS_WORKER_KILLS)")
	fs.IntVar(&cfg.TemporalKills, "temporal-kills", envInt("CHAOS_TEMPORAL_KILLS", 1), "Temporal dev server SIGKILLs (CHAOS_TEMPORAL_KILLS)")
	fs.IntVar(&cfg.PGRestarts, "pg-restarts", envInt("CHAOS_PG_RESTARTS", 1), "PostgreSQL immediate restarts (CHAOS_PG_RESTARTS)")
	fs.StringVar(&cfg.Schedule, "schedule", env("CHAOS_SCHEDULE", ""), `explicit schedule, e.g. "worker@10,pg@25,temporal@50": kind@percent of expected messages accepted (CHAOS_SCHEDULE; overrides the counts)`)
	fs.DurationVar(&cfg.EventEvery, "event-every", envDuration("CHAOS_EVENT_EVERY", 3*time.Minute), "fire the next event anyway after this long (CHAOS_EVENT_EVERY)")
	fs.DurationVar(&cfg.TemporalDown, "temporal-down", envDuration("CHAOS_TEMPORAL_DOWN", 3*time.Second), "how long Temporal stays dead (CHAOS_TEMPORAL_DOWN)")
	fs.DurationVar(&cfg.Wait, "wait", envDuration("CHAOS_WAIT", 2*time.Second), "pause between the journey's sends, whole seconds (CHAOS_WAIT; 0: none)")
	fs.DurationVar(&cfg.Timeout, "timeout", envDuration("CHAOS_TIMEOUT", 20*time.Minute), "bound on waiting for every run to close (CHAOS_TIMEOUT)")
	seed := fs.Uint64("seed", uint64(envInt("CHAOS_SEED", 0)), "fault draw seed, 0 random (CHAOS_SEED)")
	fs.StringVar(&cfg.WorkDir, "work", env("CHAOS_WORK", ""), "work dir for databases and logs (default: a new temp dir; removed at the end)")
	fs.BoolVar(&cfg.Keep, "keep", env("CHAOS_KEEP", "") == "1", "keep the work dir (CHAOS_KEEP=1)")
	fs.StringVar(&cfg.OutDir, "out", env("CHAOS_OUT", ""), "also save the report, logs and the fake's record here (CHAOS_OUT)")
	fs.StringVar(&cfg.BinDir, "bin", env("CHAOS_BIN", "bin"), "directory holding tutti and tutti-worker (CHAOS_BIN)")
	fs.StringVar(&cfg.TemporalCLI, "temporal-cli", env("TEMPORAL_CLI", "/root/go/bin/temporal"), "temporal CLI (TEMPORAL_CLI)")
	fs.StringVar(&cfg.PGBin, "pg-bin", env("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"), "PostgreSQL programs: initdb, pg_ctl (CHAOS_PG_BIN)")
	fs.IntVar(&cfg.PGPort, "pg-port", base+32, "PostgreSQL port (CHAOS_PORT_BASE+32)")
	fs.IntVar(&cfg.TemporalPort, "temporal-port", base+33, "Temporal frontend port; +1 and +2 for its HTTP and metrics (CHAOS_PORT_BASE+33)")
	fs.IntVar(&cfg.APIPort, "api-port", base+80, "API port (CHAOS_PORT_BASE+80)")
	fs.IntVar(&cfg.FakePort, "fake-port", base+90, "fake provider port (CHAOS_PORT_BASE+90)")
	fs.StringVar(&cfg.Label, "label", env("CHAOS_LABEL", "unknown"), "the code under test, for the report (CHAOS_LABEL; chaos.sh passes the commit)")
	faults := faultFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Faults, cfg.Seed = *faults, *seed

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 2
	}
	cfg.Self = self
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "tutti-chaos-")
		if err != nil {
			fmt.Fprintf(stderr, "chaos: %v\n", err)
			return 2
		}
		cfg.WorkDir = dir
	}
	if abs, err := filepath.Abs(cfg.BinDir); err == nil {
		cfg.BinDir = abs
	}

	out, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "chaos: the harness could not complete the run: %v\n", err)
		return 2
	}
	chaos.PrintOutcome(stdout, cfg, out)
	if cfg.OutDir != "" {
		if f, err := os.Create(filepath.Join(cfg.OutDir, "report.txt")); err == nil {
			chaos.PrintOutcome(f, cfg, out)
			_ = f.Close()
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "chaos: interrupted; the figures above are partial")
		return 2
	}
	if len(out.Report.Failures()) > 0 {
		return 1
	}
	return 0
}

func fake(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chaos fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:58090", "listen address (loopback only)")
	var cfg chaos.FakeConfig
	fs.StringVar(&cfg.RecordFile, "record-file", "", "durable record of accepted messages (JSON lines); empty keeps it in memory")
	fs.BoolVar(&cfg.Sync, "sync", true, "fsync every record before answering")
	fs.StringVar(&cfg.SendGridAPIKey, "sendgrid-key", chaos.FakeSendGridKey, "the SendGrid API key it accepts")
	fs.StringVar(&cfg.TwilioAccountSID, "twilio-account", chaos.FakeTwilioSID, "the Twilio account SID it accepts")
	fs.StringVar(&cfg.TwilioAuthToken, "twilio-token", chaos.FakeTwilioToken, "the Twilio auth token it accepts")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "fault draw seed (0: random)")
	faultsJSON := fs.String("faults", "", "fault rates as JSON (chaos.Faults); overrides the -fault-* flags")
	faults := faultFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Faults = *faults
	if *faultsJSON != "" {
		if err := json.Unmarshal([]byte(*faultsJSON), &cfg.Faults); err != nil {
			fmt.Fprintf(stderr, "chaos fake: -faults: %v\n", err)
			return 2
		}
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(stderr, "chaos fake: -addr must be a loopback host:port, got %q\n", *addr)
		return 2
	}
	f, err := chaos.NewFakeProvider(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "chaos fake: %v\n", err)
		return 2
	}
	defer f.Close()
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv := &http.Server{Addr: *addr, Handler: f.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "chaos fake: %v\n", err)
		return 2
	}
	logger.Info("fake SendGrid and Twilio listening", "addr", ln.Addr().String(), "faults", cfg.Faults.String(), "record_file", cfg.RecordFile)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "chaos fake: %v\n", err)
			return 1
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	logger.Info("fake stopped", "stats", f.Stats())
	return 0
}
