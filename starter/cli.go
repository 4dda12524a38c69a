package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/wiring"
)

// Exit codes.
const (
	exitOK    = 0 // done
	exitFail  = 1 // the operation failed: API error, invalid spec, unreachable server
	exitUsage = 2 // the command line was wrong
)

const (
	// defaultAPIURL is where `make dev` runs the API.
	defaultAPIURL = "http://127.0.0.1:8080"
	// clientTimeout bounds one API call from the CLI.
	clientTimeout = 30 * time.Second
	// shutdownTimeout is how long serve lets in-flight requests finish.
	shutdownTimeout = 20 * time.Second
)

// env reads the environment through a lookup function, so tests need not
// touch the process environment.
type env struct{ lookup func(string) (string, bool) }

func (e env) get(key, def string) string {
	if v, ok := e.lookup(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

type cli struct {
	env    env
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand; name may be two words ("journey validate").
type command struct {
	name    string
	args    string
	summary string
	run     func(c *cli, ctx context.Context, inv *invocation) error
}

// commands is every subcommand, in the order `tutti help` lists them.
var commands = []command{
	{"serve", "", "Run the HTTP API (settings from the environment; see README)", (*cli).serve},
	{"migrate", "", "Create the database if missing and apply migrations to DATABASE_URL", (*cli).migrate},
	{"journey validate", "FILE", `Check a journey spec offline; prints every problem as "path: message"`, (*cli).journeyValidate},
	{"journey publish", "FILE", "Publish a journey spec (YAML or JSON) as the journey's next version", (*cli).journeyPublish},
	{"contact show", "ID", "Show a contact with its consent and journeys (live state of active runs)", (*cli).contactShow},
	{"contact find", "--email X | --phone X | --external-id X", "Look a contact up by one identifier", (*cli).contactFind},
	{"contact erase", "ID [--json]",
		"Erase a contact on their request: delete everything that identifies them, keep only hashed proof of consent and opt-out, end their journeys", (*cli).contactErase},
	{"exit", "--contact ID --journey ID --reason TEXT", "Ask a contact's active run of a journey to end now", (*cli).exit},
	{"why", "CONTACT JOURNEY STEP [--json]",
		"Explain why a contact was (or was not) sent a journey step: the gate's decision, its reasons and every rule checked", (*cli).why},
	{"consent", "ID --channel C --status S [--subscription T] [--source S] [--confirmed]",
		"Record a consent change (an SMS grant stays pending until the contact replies YES, unless --confirmed)", (*cli).consent},
	{"suppress", "ID --reason R [--journey J] [--channel C] [--note N] [--expires RFC3339]",
		"Suppress a contact (every journey and channel unless --journey/--channel narrow it)", (*cli).suppress},
	{"suppressions", "ID [--json]", "List a contact's suppressions, lifted and expired ones included", (*cli).suppressions},
	{"unsuppress", "ID SUPPRESSION_ID [--by WHO]", "Lift one of a contact's suppressions (it stays as history)", (*cli).unsuppress},
	{"outbox", "[--contact ID] [--limit N] [--json]", "List the messages the sandbox provider recorded instead of sending", (*cli).outbox},
	{"unknown", "[--limit N] [--before ID] [--json]", "List sends whose outcome is unknown (the provider may have them; never resent), across contacts", (*cli).unknown},
	{"events send", "--contact ID --name NAME [--id ID] [--properties JSON]", "Track an event for a contact (handy for demos)", (*cli).eventsSend},
	{"codec new-key", "ID", "Print a new payload encryption key as ID:BASE64 for TUTTI_CODEC_KEYS (offline; list it first to rotate)", (*cli).codecNewKey},
}

// invocation is one command being run.
type invocation struct {
	cmd  command
	fs   *flag.FlagSet
	raw  []string // the arguments after the command name
	args []string // positional arguments left after flags
}

// errHelp: help was printed on request (exit 0).
var errHelp = errors.New("help requested")

// errReported: the failure was already printed (exit 1).
var errReported = errors.New("failure reported")

// usageError is a wrong command line (exit 2, with the command's usage).
type usageError struct {
	inv *invocation
	msg string
}

func (e *usageError) Error() string { return e.msg }

func (inv *invocation) usagef(format string, args ...any) error {
	return &usageError{inv: inv, msg: fmt.Sprintf(format, args...)}
}

// parse parses the flags and checks the number of positional arguments.
func (inv *invocation) parse(c *cli, positional int) error {
	inv.fs.SetOutput(io.Discard)
	inv.fs.Usage = func() {}
	// Flags may come before or after positional arguments ("tutti suppress
	// c_1 --reason converted"); after "--" everything is positional.
	inv.args = nil
	rest := inv.raw
	for {
		if err := inv.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.commandUsage(c.stdout, inv)
				return errHelp
			}
			return inv.usagef("%v", err)
		}
		left := inv.fs.Args()
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			inv.args = append(inv.args, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		inv.args = append(inv.args, left[0])
		rest = left[1:]
	}
	if len(inv.args) != positional {
		if positional == 0 {
			return inv.usagef("unexpected argument %q", inv.args[0])
		}
		return inv.usagef("want %s", inv.cmd.args)
	}
	return nil
}

// run runs one command line and returns the process exit code.
func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) int {
	c := &cli{env: e, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		c.usage(stdout)
		return exitOK
	}
	cmd, rest, ok := findCommand(args)
	if !ok {
		if group := subcommands(args[0]); len(group) > 0 {
			fmt.Fprintf(stderr, "tutti %s: missing or unknown subcommand; use one of:\n", args[0])
			for _, g := range group {
				fmt.Fprintf(stderr, "  tutti %s %s\n", g.name, g.args)
			}
		} else {
			fmt.Fprintf(stderr, "tutti: unknown command %q\n\n", args[0])
			c.usage(stderr)
		}
		return exitUsage
	}
	inv := &invocation{cmd: cmd, fs: flag.NewFlagSet("tutti "+cmd.name, flag.ContinueOnError), raw: rest}
	return c.exitCode(cmd.run(c, ctx, inv))
}

// findCommand matches the longest command name at the start of args.
func findCommand(args []string) (command, []string, bool) {
	if len(args) >= 2 {
		for _, cmd := range commands {
			if cmd.name == args[0]+" "+args[1] {
				return cmd, args[2:], true
			}
		}
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd, args[1:], true
		}
	}
	return command{}, nil, false
}

// subcommands lists the commands of a group ("journey", "contact").
func subcommands(group string) []command {
	var out []command
	for _, cmd := range commands {
		if strings.HasPrefix(cmd.name, group+" ") {
			out = append(out, cmd)
		}
	}
	return out
}

func (c *cli) exitCode(err error) int {
	var (
		ue *usageError
		ae *apiError
	)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "tutti %s: %s\n\n", ue.inv.cmd.name, ue.msg)
		c.commandUsage(c.stderr, ue.inv)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFail
	case errors.As(err, &ae):
		ae.print(c.stderr)
		return exitFail
	default:
		fmt.Fprintf(c.stderr, "tutti: %v\n", err)
		return exitFail
	}
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `tutti: Tutti's API server and command-line tool.

Usage:
`)
	for _, cmd := range commands {
		line := "tutti " + cmd.name
		if cmd.args != "" {
			line += " " + cmd.args
		}
		fmt.Fprintf(w, "  %s\n      %s\n", line, cmd.summary)
	}
	fmt.Fprintf(w, `
Every command except serve, migrate, journey validate and codec new-key calls the API:
  TUTTI_API_URL    the API's base URL (default %s)
  TUTTI_API_TOKEN  its bearer token (default %s, the sandbox dev token)

"tutti COMMAND --help" describes a command's flags.
Exit status: 0 success, 1 failure, 2 wrong usage.
`, defaultAPIURL, config.DevAPIToken)
}

func (c *cli) commandUsage(w io.Writer, inv *invocation) {
	line := "tutti " + inv.cmd.name
	if inv.cmd.args != "" {
		line += " " + inv.cmd.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", line, inv.cmd.summary)
	hasFlags := false
	inv.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		inv.fs.SetOutput(w)
		inv.fs.PrintDefaults()
		inv.fs.SetOutput(io.Discard)
	}
}

// ---------------------------------------------------------------------------
// serve and migrate

// serve runs the API until SIGINT or SIGTERM, then drains in-flight requests.
func (c *cli) serve(ctx context.Context, inv *invocation) error {
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	if cfg.APIUsingDev {
		logger.Warn("!!! TUTTI_API_TOKEN is not set: the API accepts the public dev token \"" + config.DevAPIToken +
			"\". Anyone who can reach it can read contacts and send messages. Set TUTTI_API_TOKEN for anything but local development. !!!")
		if !isLoopback(cfg.APIAddr) {
			logger.Error("!!! the dev token is in use on a non-loopback address", "addr", cfg.APIAddr)
		}
	}

	// The API texts the SMS double opt-in prompt itself, through the same
	// send path the worker sends with.
	deps, err := wiring.Open(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer deps.Close()
	srv := api.New(api.Deps{Store: deps.Store, Temporal: deps.Temporal, Config: cfg, Logger: logger, Delivery: deps.Delivery})
	hs := &http.Server{
		Addr:    cfg.APIAddr,
		Handler: srv.Handler(),
		// Slow clients must not hold connections: headers promptly, bodies
		// (at most TUTTI_API_MAX_BODY_BYTES) within the read timeout.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Above the longest handler: an event fan-out is bounded by
		// TUTTI_SIGNAL_TIMEOUT per phase.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listening on %s (TUTTI_API_ADDR): %w", cfg.APIAddr, err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("api listening", "addr", ln.Addr().String(), "provider_mode", cfg.ProviderMode)

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("api shutting down; finishing in-flight requests", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	logger.Info("api stopped")
	return nil
}

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// migrate creates the database if needed and applies the migrations.
func (c *cli) migrate(ctx context.Context, inv *invocation) error {
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	// Only DATABASE_URL matters here; the other settings are checked by
	// serve and the worker, and a provider key missing must not block a
	// schema upgrade. Load still supplies the default URL.
	cfg, _ := config.Load()
	dsn := cfg.DatabaseURL
	if err := storage.EnsureDatabase(ctx, dsn); err != nil {
		// Production databases are provisioned outside Tutti, often with a
		// role that cannot reach the maintenance database; Migrate below
		// reports clearly if the database is really missing.
		fmt.Fprintf(c.stderr, "tutti migrate: could not check or create the database (continuing): %v\n", err)
	}
	if err := storage.Migrate(ctx, dsn); err != nil {
		return err
	}
	states, err := storage.MigrationStatus(ctx, dsn)
	if err != nil {
		return err
	}
	var latest int64
	for _, s := range states {
		if s.Applied && s.Version > latest {
			latest = s.Version
		}
	}
	fmt.Fprintf(c.stdout, "database migrated (schema version %d)\n", latest)
	return nil
}

// ---------------------------------------------------------------------------
// journeys

// journeyValidate validates a spec file offline, with the same code the API uses.
func (c *cli) journeyValidate(_ context.Context, inv *invocation) error {
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	file := inv.args[0]
	data, err := readFile(file)
	if err != nil {
		return err
	}
	spec, err := journey.ParseAndValidate(data)
	var problems journey.Problems
	switch {
	case err == nil:
		fmt.Fprintf(c.stdout, "%s: valid (journey %s, %d steps)\n", file, spec.ID, len(spec.Steps))
		return nil
	case errors.As(err, &problems):
		for _, p := range problems {
			fmt.Fprintln(c.stderr, p.String())
		}
		fmt.Fprintf(c.stderr, "%s: %d problem(s)\n", file, len(problems))
		return errReported
	default:
		fmt.Fprintf(c.stderr, "%s: %v\n", file, err)
		return errReported
	}
}

func (c *cli) journeyPublish(ctx context.Context, inv *invocation) error {
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	file := inv.args[0]
	data, err := readFile(file)
	if err != nil {
		return err
	}
	ctype := "application/yaml"
	if strings.EqualFold(filepath.Ext(file), ".json") {
		ctype = "application/json"
	}
	var out struct {
		JourneyID string `json:"journey_id"`
		Version   int    `json:"version"`
	}
	if _, err := c.client().call(ctx, http.MethodPost, "/v1/journeys", nil, data, ctype, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "published journey %s version %d\n", out.JourneyID, out.Version)
	return nil
}

func readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

// ---------------------------------------------------------------------------
// contacts, exits, events, outbox

// contactShow prints the contact and its consent, with the journey runs
// from the live listing (which asks active runs where they are).
func (c *cli) contactShow(ctx context.Context, inv *invocation) error {
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	id := url.PathEscape(inv.args[0])
	cl := c.client()
	var detail map[string]json.RawMessage
	if _, err := cl.call(ctx, http.MethodGet, "/v1/contacts/"+id, nil, nil, "", &detail); err != nil {
		return err
	}
	var runs struct {
		Journeys json.RawMessage `json:"journeys"`
	}
	if _, err := cl.call(ctx, http.MethodGet, "/v1/contacts/"+id+"/journeys", nil, nil, "", &runs); err != nil {
		return err
	}
	out := struct {
		Contact              json.RawMessage `json:"contact"`
		Consents             json.RawMessage `json:"consents"`
		SubscriptionConsents json.RawMessage `json:"subscription_consents,omitempty"`
		Journeys             json.RawMessage `json:"journeys"`
	}{detail["contact"], detail["consents"], detail["subscription_consents"], runs.Journeys}
	return c.printJSON(out)
}

func (c *cli) contactFind(ctx context.Context, inv *invocation) error {
	email := inv.fs.String("email", "", "the contact's email address")
	phone := inv.fs.String("phone", "", "the contact's phone number (any format; read in TUTTI_DEFAULT_REGION without +)")
	ext := inv.fs.String("external-id", "", "the contact's id in your system")
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"email": *email, "phone": *phone, "external_id": *ext} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) != 1 {
		return inv.usagef("give exactly one of --email, --phone or --external-id")
	}
	raw, err := c.client().call(ctx, http.MethodGet, "/v1/contacts", q, nil, "", nil)
	if err != nil {
		return err
	}
	return c.printRaw(raw)
}

// eraseAnswer is the part of DELETE /v1/contacts/{id} the CLI prints.
type eraseAnswer struct {
	Erasure struct {
		ID         string    `json:"id"`
		ContactID  string    `json:"contact_id"`
		ErasedAt   time.Time `json:"erased_at"`
		ActiveRuns []string  `json:"active_runs"`
		ProofsKept int       `json:"proofs_kept"`
	} `json:"erasure"`
	Already bool     `json:"already_erased"`
	Ended   []string `json:"runs_told_to_end"`
	Failed  []struct {
		WorkflowID string `json:"workflow_id"`
		Error      string `json:"error"`
	} `json:"failed"`
}

// contactErase erases a contact through DELETE /v1/contacts/{id}. Running
// it again for an erased contact is safe: it finishes telling the runs.
func (c *cli) contactErase(ctx context.Context, inv *invocation) error {
	asJSON := inv.fs.Bool("json", false, "print the API's JSON instead of a summary")
	if err := inv.parse(c, 1); err != nil {
		return err
	}
	var out eraseAnswer
	raw, err := c.client().call(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(inv.args[0]), nil, nil, "", &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && len(raw) > 0 {
		// Erased, but some runs were not told: say which, then fail.
		if json.Unmarshal(raw, &out) == nil {
			printErasure(c.stdout, out)
		}
		return err
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printRaw(raw)
	}
	printErasure(c.stdout, out)
	return nil
}

func printErasure(w io.Writer, a eraseAnswer) {
	e := a.Erasure
	verb := "erased"
	if a.Already {
		verb = "was already erased"
	}
	fmt.Fprintf(w, "contact %s %s at %s (erasure %s); %d consent record(s) kept under hashed identifiers\n",
		e.ContactID, verb, whenUTC(e.ErasedAt), e.ID, e.ProofsKept)
	for _, id := range a.Ended {
		fmt.Fprintf(w, "  told to end (erased): %s\n", id)
	}
	for _, f := range a.Failed {
		fmt.Fprintf(w, "  NOT told, retry: %s: %s\n", f.WorkflowID, f.Error)
	}
}

func (c *cli) exit(ctx context.Context, inv *invocation) error {
	contactID := inv.fs.String("contact", "", "contact id (required)")
	journeyID := inv.fs.String("journey", "", "journey id (required)")
	reason := inv.fs.String("reason", "", "why the contact leaves the journey (required; kept in PostgreSQL and shown on the run, which itself is told only support_exit)")
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	if *contactID == "" || *journeyID == "" || strings.TrimSpace(*reason) == "" {
		return inv.usagef("--contact, --journey and --reason are required")
	}
	body, _ := json.Marshal(map[string]string{"reason": *reason})
	var out struct {
		WorkflowID string `json:"workflow_id"`
		Enrollment struct {
			ID string `json:"id"`
		} `json:"enrollment"`
	}
	path := "/v1/contacts/" + url.PathEscape(*contactID) + "/journeys/" + url.PathEscape(*journeyID) + "/exit"
	if _, err := c.client().call(ctx, http.MethodPost, path, nil, body, "application/json", &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "exit requested: workflow %s (enrollment %s)\n", out.WorkflowID, out.Enrollment.ID)
	return nil
}

func (c *cli) eventsSend(ctx context.Context, inv *invocation) error {
	contactID := inv.fs.String("contact", "", "contact id (required)")
	name := inv.fs.String("name", "", "event name, e.g. purchase or email.opened (required)")
	id := inv.fs.String("id", "", "event id, the idempotency key (default: a new random id)")
	props := inv.fs.String("properties", "", `event properties as a JSON object, e.g. '{"amount": 42}'`)
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	if *contactID == "" || *name == "" {
		return inv.usagef("--contact and --name are required")
	}
	req := map[string]any{"contact_id": *contactID, "name": *name, "event_id": *id}
	if *id == "" {
		req["event_id"] = "cli-" + randomHex(8)
	}
	if *props != "" {
		var p map[string]any
		if err := json.Unmarshal([]byte(*props), &p); err != nil {
			return inv.usagef("--properties must be a JSON object: %v", err)
		}
		req["properties"] = p
	}
	body, _ := json.Marshal(req)
	raw, err := c.client().call(ctx, http.MethodPost, "/v1/events", nil, body, "application/json", nil)
	if err != nil {
		// A 503 still carries what was delivered; show it with the error.
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && len(raw) > 0 {
			_ = c.printRaw(raw)
		}
		return err
	}
	return c.printRaw(raw)
}

// unknown lists the sends ops must account for: a request reached the
// provider unanswered, and the provider cannot be asked.
func (c *cli) unknown(ctx context.Context, inv *invocation) error {
	limit := inv.fs.Int("limit", 50, "how many, most recent first (1-500)")
	before := inv.fs.String("before", "", "the last message id of the previous page")
	asJSON := inv.fs.Bool("json", false, "print the API's JSON instead of a summary")
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 500 {
		return inv.usagef("--limit must be from 1 to 500")
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *before != "" {
		q.Set("before", *before)
	}
	var out struct {
		Messages []storage.Message `json:"messages"`
	}
	raw, err := c.client().call(ctx, http.MethodGet, "/v1/messages/unknown", q, nil, "", &out)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printRaw(raw)
	}
	if len(out.Messages) == 0 {
		fmt.Fprintln(c.stdout, "no send has an unknown outcome")
		return nil
	}
	for _, m := range out.Messages {
		fmt.Fprintf(c.stdout, "%s  %-5s via %s  contact %s  journey %s, step %s  message %s (%s)\n",
			m.UpdatedAt.UTC().Format(time.DateTime), m.Channel, m.Provider, m.ContactID, m.JourneyID, m.StepID, m.ID, m.StatusReason)
	}
	return nil
}

// sandboxMessage is the part of a sandbox message the outbox prints.
type sandboxMessage struct {
	ID        string         `json:"id"`
	MessageID string         `json:"message_id"`
	ContactID string         `json:"contact_id"`
	JourneyID string         `json:"journey_id"`
	StepID    string         `json:"step_id"`
	Channel   string         `json:"channel"`
	Recipient string         `json:"recipient"`
	Payload   map[string]any `json:"payload"`
	CreatedAt time.Time      `json:"created_at"`
}

func (c *cli) outbox(ctx context.Context, inv *invocation) error {
	contactID := inv.fs.String("contact", "", "only this contact's messages")
	limit := inv.fs.Int("limit", 20, "how many messages, newest first (1-500)")
	asJSON := inv.fs.Bool("json", false, "print the API's JSON instead of a summary")
	if err := inv.parse(c, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 500 {
		return inv.usagef("--limit must be from 1 to 500")
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *contactID != "" {
		q.Set("contact_id", *contactID)
	}
	var out struct {
		Messages []sandboxMessage `json:"messages"`
	}
	raw, err := c.client().call(ctx, http.MethodGet, "/v1/sandbox/messages", q, nil, "", &out)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printRaw(raw)
	}
	if len(out.Messages) == 0 {
		fmt.Fprintln(c.stdout, "the outbox is empty")
		return nil
	}
	for i, m := range out.Messages {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		printSandboxMessage(c.stdout, m)
	}
	return nil
}

func printSandboxMessage(w io.Writer, m sandboxMessage) {
	fmt.Fprintf(w, "%s  %-5s to %s  journey %s, step %s  (contact %s, message %s)\n",
		m.CreatedAt.UTC().Format(time.DateTime), m.Channel, m.Recipient, m.JourneyID, m.StepID, m.ContactID, m.MessageID)
	str := func(k string) string { s, _ := m.Payload[k].(string); return s }
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") }
	switch m.Channel {
	case "email":
		if t := str("template_id"); t != "" {
			data, _ := json.Marshal(m.Payload["template_data"])
			fmt.Fprintf(w, "    Template: %s %s\n", t, data)
		}
		if s := str("subject"); s != "" {
			fmt.Fprintf(w, "    Subject: %s\n", s)
		}
		if t := str("text"); t != "" {
			fmt.Fprintln(w, indent(t))
		} else if h := str("html"); h != "" {
			fmt.Fprintln(w, indent(h))
		}
	case "sms":
		fmt.Fprintln(w, indent(str("body")))
	default:
		data, _ := json.Marshal(m.Payload)
		fmt.Fprintln(w, indent(string(data)))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *cli) printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", data)
	return err
}

func (c *cli) printRaw(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = c.stdout.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

// ---------------------------------------------------------------------------
// API client

// apiClient calls the Tutti API, like any other client of it.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

func (c *cli) client() *apiClient {
	return &apiClient{
		base:  strings.TrimRight(c.env.get("TUTTI_API_URL", defaultAPIURL), "/"),
		token: c.env.get("TUTTI_API_TOKEN", config.DevAPIToken),
		hc:    &http.Client{Timeout: clientTimeout},
	}
}

// apiError is an error answer from the API.
type apiError struct {
	Status   int               `json:"-"`
	Code     string            `json:"code"`
	Message  string            `json:"message"`
	Fields   []api.FieldError  `json:"fields"`
	Problems []journey.Problem `json:"-"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// print writes the error with one line per field (or spec problem).
func (e *apiError) print(w io.Writer) {
	fmt.Fprintf(w, "tutti: %s\n", e.Error())
	if len(e.Problems) > 0 {
		for _, p := range e.Problems {
			fmt.Fprintf(w, "%s\n", p.String())
		}
		return
	}
	for _, f := range e.Fields {
		if f.Path == "" {
			fmt.Fprintf(w, "  %s\n", f.Message)
		} else {
			fmt.Fprintf(w, "  %s: %s\n", f.Path, f.Message)
		}
	}
}

// call makes one request. A 2xx answer is decoded into out (if not nil); any
// other is returned as *apiError. The raw body is returned either way.
func (a *apiClient) call(ctx context.Context, method, path string, q url.Values, body []byte, ctype string, out any) ([]byte, error) {
	u, err := url.Parse(a.base + path)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("TUTTI_API_URL=%q is not a URL like %s", a.base, defaultAPIURL)
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the API at %s (TUTTI_API_URL): %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the API's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var env struct {
			Error    *apiError         `json:"error"`
			Problems []journey.Problem `json:"problems"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Error == nil {
			return raw, &apiError{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(raw))}
		}
		env.Error.Status = resp.StatusCode
		env.Error.Problems = env.Problems
		return raw, env.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decoding the API's answer: %w", err)
		}
	}
	return raw, nil
}
