package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

// Config is one chaos run.
type Config struct {
	Contacts    int // contacts enrolled in the burst
	Concurrency int // concurrent API calls while creating and enrolling them

	// The kill schedule: how many of each, spread over the run (see
	// Schedule), or Schedule itself as "worker@10,pg@25,..." (percent of
	// the expected messages accepted by the fake).
	WorkerKills, TemporalKills, PGRestarts int
	Schedule                               string
	// EventEvery fires the next event anyway when this long passed since
	// the last one without the fake's count reaching its threshold.
	EventEvery time.Duration
	// TemporalDown is how long the Temporal dev server stays dead.
	TemporalDown time.Duration

	Faults Faults
	Seed   uint64
	// Wait is the pause between the journey's sends (0: none).
	Wait time.Duration
	// Timeout bounds the wait for every run to close after the burst.
	Timeout time.Duration

	// WorkDir holds the databases and logs; it is removed at the end unless
	// Keep. OutDir, if set, receives the report and the logs.
	WorkDir string
	Keep    bool
	OutDir  string

	// Self is this program (run as "self fake ..." for the fake provider);
	// BinDir holds tutti and tutti-worker.
	Self        string
	BinDir      string
	TemporalCLI string
	PGBin       string

	PGPort, TemporalPort, APIPort, FakePort int

	// Label names the code under test in the report (a commit).
	Label string
	// Log receives progress lines.
	Log io.Writer
}

// Made-up credentials the fake accepts: they never leave loopback.
const (
	FakeSendGridKey = "SG.chaos-fake-key"
	FakeTwilioSID   = "ACc0ffee00c0ffee00c0ffee00c0ffee00"
	FakeTwilioToken = "c0ffee00c0ffee00c0ffee00c0ffee00"
	fakeTwilioFrom  = "+15005550006"
	apiToken        = "chaos-token"
	journeyID       = "chaos"
)

// Outcome is a finished run: the report plus what the harness did.
type Outcome struct {
	Report   Report
	Events   []string
	Stats    Stats
	Started  time.Time
	Duration time.Duration
	// Unplanned counts processes that exited without being killed.
	Unplanned map[string]int
}

type harness struct {
	cfg   Config
	steps []Step
	start time.Time

	pgData, pgLog, pgSock string
	dbURL                 string
	apiURL, fakeURL       string

	fake, temporal, worker, api *proc
	tc                          client.Client
	http                        *http.Client

	logMu  sync.Mutex
	events []string
}

func (h *harness) say(format string, args ...any) {
	line := fmt.Sprintf("[%6.1fs] ", time.Since(h.start).Seconds()) + fmt.Sprintf(format, args...)
	h.logMu.Lock()
	defer h.logMu.Unlock()
	fmt.Fprintln(h.cfg.Log, line)
}

func (h *harness) event(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs ", time.Since(h.start).Seconds()) + fmt.Sprintf(format, args...)
	h.logMu.Lock()
	h.events = append(h.events, line)
	h.logMu.Unlock()
	h.say(format, args...)
}

// chaosSteps is the journey: email, sms, email.
func chaosSteps() []Step {
	return []Step{
		{ID: "email_1", Channel: "email", Marker: "[chaos email_1]"},
		{ID: "sms_1", Channel: "sms", Marker: "[chaos sms_1]"},
		{ID: "email_2", Channel: "email", Marker: "[chaos email_2]"},
	}
}

// journeyYAML renders the chaos journey: each message carries its step's
// marker, so the fake's record names the step by itself.
func journeyYAML(steps []Step, wait time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nname: Chaos burst\ntrigger: {type: api}\nreentry: {policy: once}\nsteps:\n", journeyID)
	for i, s := range steps {
		if i > 0 && wait > 0 {
			fmt.Fprintf(&b, "  - id: pause_%d\n    wait: {duration: %ds}\n", i, int(wait.Seconds()))
		}
		fmt.Fprintf(&b, "  - id: %s\n    send:\n      channel: %s\n", s.ID, s.Channel)
		switch s.Channel {
		case "email":
			fmt.Fprintf(&b, "      email:\n        subject: '%s for {{ .contact.first_name }}'\n        text: 'Hello {{ .contact.first_name }}, this is %s.'\n", s.Marker, s.Marker)
		case "sms":
			fmt.Fprintf(&b, "      sms:\n        body: '%s Hi {{ .contact.first_name }}'\n", s.Marker)
		}
	}
	return b.String()
}

// policyYAML lifts the workspace rules that would hold a burst back for
// hours (quiet hours, cooldowns, the unengaged rule): the run is about
// delivery, not the gate's timing. Consent still applies.
const policyYAML = `global_cap: {max: 100, window: 7d}
cooldowns: {}
quiet_hours:
  email: {default: [{start: "00:00", end: "24:00"}]}
  sms: {default: [{start: "00:00", end: "24:00"}]}
unengaged_days: 0
`

// Run runs the burst and returns what happened. An error means the harness
// itself could not do its job (a tool missing, a port taken...), not that
// Tutti failed the run: that is in the Report.
func Run(ctx context.Context, cfg Config) (out Outcome, err error) {
	h := &harness{cfg: cfg, steps: chaosSteps(), start: time.Now(), http: &http.Client{Timeout: 30 * time.Second}}
	out.Started = h.start
	if err := h.check(); err != nil {
		return out, err
	}
	defer func() {
		h.shutdown()
		out.Events = h.events
		out.Duration = time.Since(h.start)
	}()

	// Bring everything up, each piece after those it needs.
	for _, start := range []func(context.Context) error{h.startPostgres, h.startFake, h.startTemporal, h.migrate, h.startTutti, h.publish} {
		if err := start(ctx); err != nil {
			return out, err
		}
	}
	contacts, err := h.createContacts(ctx)
	if err != nil {
		return out, err
	}
	expected := len(contacts) * len(h.steps)

	plan, err := h.plan()
	if err != nil {
		return out, err
	}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		h.runSchedule(chaosCtx, plan, expected)
	}()

	enrolled, notEnrolled := h.enroll(ctx, contacts)
	h.say("enrolled %d contacts (%d could not be)", len(enrolled), notEnrolled)

	h.waitClosed(ctx, enrolled, chaosDone)
	stopChaos()
	<-chaosDone
	if ctx.Err() != nil {
		return out, fmt.Errorf("interrupted before every run closed: %w", ctx.Err())
	}

	ev, err := h.collect(ctx, enrolled, notEnrolled)
	if err != nil {
		return out, err
	}
	out.Report = Tally(ev)
	out.Stats, _ = h.fakeStats(ctx)
	out.Unplanned = map[string]int{}
	for _, p := range []*proc{h.fake, h.temporal, h.worker, h.api} {
		if p != nil && p.unplannedExits() > 0 {
			out.Unplanned[p.name] = p.unplannedExits()
		}
	}
	return out, nil
}

// check fails fast on a missing tool or a taken port.
func (h *harness) check() error {
	c := h.cfg
	for _, f := range []string{c.Self, filepath.Join(c.BinDir, "tutti"), filepath.Join(c.BinDir, "tutti-worker"), c.TemporalCLI,
		filepath.Join(c.PGBin, "initdb"), filepath.Join(c.PGBin, "pg_ctl")} {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			return fmt.Errorf("needed program %s is missing (run via `make chaos`, which builds and finds them)", f)
		}
	}
	for _, port := range []int{c.PGPort, c.TemporalPort, c.TemporalPort + 1, c.TemporalPort + 2, c.APIPort, c.FakePort} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("port %d on 127.0.0.1 is taken (%v); choose other ports (CHAOS_PORT_BASE)", port, err)
		}
		_ = ln.Close()
	}
	if err := c.Faults.Validate(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	if c.Contacts < 1 {
		return errors.New("contacts: need at least one")
	}
	return os.MkdirAll(filepath.Join(c.WorkDir, "logs"), 0o755)
}

func (h *harness) logPath(name string) string {
	return filepath.Join(h.cfg.WorkDir, "logs", name+".log")
}

// shutdown stops everything the harness started, in order, and removes the
// work dir unless asked to keep it (after saving the logs to OutDir).
func (h *harness) shutdown() {
	for _, p := range []*proc{h.api, h.worker, h.temporal, h.fake} {
		if p != nil {
			p.stop(15 * time.Second)
		}
	}
	if h.tc != nil {
		h.tc.Close()
	}
	h.stopPostgres()
	if h.cfg.OutDir != "" {
		if err := copyLogs(filepath.Join(h.cfg.WorkDir, "logs"), h.pgLog, filepath.Join(h.cfg.WorkDir, "fake-records.jsonl"), h.cfg.OutDir); err != nil {
			h.say("saving logs to %s: %v", h.cfg.OutDir, err)
		}
	}
	if h.cfg.Keep {
		h.say("kept %s", h.cfg.WorkDir)
		return
	}
	if err := os.RemoveAll(h.cfg.WorkDir); err != nil {
		h.say("removing %s: %v", h.cfg.WorkDir, err)
	}
}

func copyLogs(logDir, pgLog, records, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	files = append(files, pgLog, records)
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(outDir, filepath.Base(f)), b, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PrintOutcome writes the report with the run's settings and events.
func PrintOutcome(w io.Writer, cfg Config, out Outcome) {
	fmt.Fprintf(w, "\n== Chaos run: %d contacts, %s, code %s, %s\n", cfg.Contacts, out.Started.UTC().Format("2006-01-02 15:04 UTC"), cfg.Label, out.Duration.Round(time.Second))
	fmt.Fprintf(w, "faults: 500 %.0f%%, 429 %.0f%% (Retry-After %ds), slow %.0f%% (%s-%s), accept-then-hang %.0f%%, accept-then-drop %.0f%%; Twilio list reads faulted: %v\n",
		cfg.Faults.Error500*100, cfg.Faults.Throttle429*100, cfg.Faults.RetryAfterSeconds, cfg.Faults.Slow*100,
		time.Duration(cfg.Faults.SlowMin), time.Duration(cfg.Faults.SlowMax), cfg.Faults.Hang*100, cfg.Faults.Drop*100, cfg.Faults.Reads)
	fmt.Fprintln(w, "events:")
	for _, e := range out.Events {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if len(out.Unplanned) > 0 {
		fmt.Fprintf(w, "processes that exited on their own (restarted): %s\n", countsText(out.Unplanned))
	}
	s := out.Stats
	for _, p := range []struct {
		name string
		st   ProviderStats
	}{{"SendGrid", s.SendGrid}, {"Twilio", s.Twilio}} {
		fmt.Fprintf(w, "fake %s: %d requests, %d accepted, %d rejected (4xx), %d 500s, %d 429s, %d slow, %d hung, %d dropped, %d answers the client never got, %d abandoned before acceptance\n",
			p.name, p.st.Requests, p.st.Accepted, p.st.Rejected, p.st.Error500, p.st.Throttle429, p.st.Slow, p.st.Hang, p.st.Drop, p.st.ClientGone, p.st.GoneBeforeAccept)
	}
	fmt.Fprintf(w, "fake Twilio Messages list reads: %d (%d faulted)\n", s.TwilioListRequests, s.TwilioListFaults)
	if s.RecordError != "" {
		fmt.Fprintf(w, "FAKE RECORD ERROR: %s\n", s.RecordError)
	}
	fmt.Fprintln(w)
	out.Report.Print(w)
	fmt.Fprintln(w)
	if f := out.Report.Failures(); len(f) > 0 {
		fmt.Fprintf(w, "FAIL: %s\n", strings.Join(f, "; "))
	} else {
		fmt.Fprintln(w, "PASS: no lost journey, no duplicate, no message left unsent")
	}
}
