// Package api is Tutti's HTTP API: the backend identifies contacts, records
// consent, tracks events and starts journeys; marketers validate and publish
// journey specs; support looks contacts up and exits them from journeys.
//
// Postgres is the system of record and Temporal runs the journeys: a handler
// writes to Postgres first and then starts or signals workflows, so a request
// that fails validation changes nothing, and a request retried after a
// Temporal hiccup repairs what the first attempt could not finish.
//
// Every route is in one table (routes) so the OpenAPI document can be checked
// against it. Handlers are small; the JSON and error conventions live in
// respond.go.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/storage"
)

// Deps are what the server needs; all are required but SMS.
type Deps struct {
	Store    *storage.Store
	Temporal client.Client
	Config   config.Config
	Logger   *slog.Logger
	// Delivery sends the SMS double opt-in prompt, through the send path
	// journeys use (wiring.DeliveryFromConfig). Without it (or without an SMS
	// sender in it) an SMS opt-in is still recorded as pending, and the
	// answer says that no prompt was sent.
	Delivery *delivery.Service
}

// Server serves the API. Build it with New.
type Server struct {
	store    *storage.Store
	temporal client.Client
	delivery *delivery.Service
	cfg      config.Config
	log      *slog.Logger
	mux      *http.ServeMux
	// tokenSum is the SHA-256 of the API token: comparing digests keeps the
	// comparison constant-time regardless of the presented token's length.
	tokenSum [sha256.Size]byte
	now      func() time.Time
	// hooks verify provider webhook signatures (webhooks.go).
	hooks webhookVerifiers
	// codec serves Temporal's remote codec protocol (codec.go).
	codec codecEndpoint
}

// Defaults for settings a hand-built Config (tests, embedding) may leave zero.
const (
	defaultMaxBody       = 1 << 20
	defaultSignalTimeout = 5 * time.Second
	// queryTimeout bounds one state query for GET /v1/contacts/{id}/journeys:
	// without a worker a query waits for one, and support should still get
	// the list, with state_error, promptly.
	queryTimeout = 2 * time.Second
)

// New builds a Server.
func New(deps Deps) *Server {
	s := &Server{
		store:    deps.Store,
		temporal: deps.Temporal,
		delivery: deps.Delivery,
		cfg:      deps.Config,
		log:      deps.Logger,
		mux:      http.NewServeMux(),
		now:      time.Now,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.APIMaxBody <= 0 {
		s.cfg.APIMaxBody = defaultMaxBody
	}
	if s.cfg.APIMaxBatchBody <= 0 {
		s.cfg.APIMaxBatchBody = config.DefaultAPIMaxBatchBody
	}
	if s.cfg.SendGridWebhookMaxBody <= 0 {
		s.cfg.SendGridWebhookMaxBody = config.DefaultSendGridWebhookMaxBody
	}
	if s.cfg.SignalTimeout <= 0 {
		s.cfg.SignalTimeout = defaultSignalTimeout
	}
	if strings.TrimSpace(s.cfg.SMSConfirmPrompt) == "" {
		s.cfg.SMSConfirmPrompt = config.DefaultSMSConfirmPrompt
	}
	if s.cfg.APIToken == "" {
		// config.Load never allows this; a hand-built Config might. An empty
		// token must not mean "no auth", so every /v1 call is refused.
		s.log.Error("api: no API token configured; every /v1 request will be refused")
	}
	s.tokenSum = sha256.Sum256([]byte(s.cfg.APIToken))
	s.hooks = newWebhookVerifiers(s.cfg, s.log)
	s.codec = newCodecEndpoint(s)
	s.registerPages()
	for _, rt := range routes {
		h := rt.handler(s)
		if rt.auth {
			h = s.requireToken(h)
		}
		s.mux.Handle(rt.method+" "+rt.path, h)
	}
	return s
}

// route is one entry of the route table.
type route struct {
	method string
	path   string // ServeMux pattern; the same text is the OpenAPI path key
	auth   bool   // requires the bearer token
	handle func(s *Server, w http.ResponseWriter, r *http.Request)
}

// handler checks the request's path segments and query parameters
// (checkRequestText) before the route's handler sees them.
func (rt route) handler(s *Server) http.Handler {
	params := pathParams(rt.path)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequestText(r, params); err != nil {
			writeError(w, r, err)
			return
		}
		rt.handle(s, w, r)
	})
}

// routes is the whole API. openapi_test.go checks it against openapi.yaml.
var routes = []route{
	{"GET", "/healthz", false, (*Server).health},
	{"GET", "/openapi.yaml", false, (*Server).openAPI},
	{"GET", "/metrics", false, (*Server).serveMetrics},

	{"POST", "/v1/contacts", true, (*Server).identifyContact},
	{"POST", "/v1/contacts/batch", true, (*Server).identifyContactBatch},
	{"GET", "/v1/contacts", true, (*Server).findContact},
	{"GET", "/v1/contacts/{id}", true, (*Server).getContact},
	{"DELETE", "/v1/contacts/{id}", true, (*Server).eraseContact},
	{"POST", "/v1/contacts/{id}/merge", true, (*Server).mergeContact},
	{"POST", "/v1/contacts/{id}/consent", true, (*Server).recordConsent},
	{"GET", "/v1/contacts/{id}/consent", true, (*Server).consentHistory},
	{"POST", "/v1/contacts/{id}/suppressions", true, (*Server).addSuppression},
	{"GET", "/v1/contacts/{id}/suppressions", true, (*Server).listSuppressions},
	{"DELETE", "/v1/contacts/{id}/suppressions/{suppression_id}", true, (*Server).liftSuppression},
	{"GET", "/v1/contacts/{id}/journeys", true, (*Server).contactJourneys},
	{"GET", "/v1/contacts/{id}/audiences", true, (*Server).contactAudiences},
	{"PUT", "/v1/audiences/{audience_id}", true, (*Server).defineAudience},
	{"GET", "/v1/audiences", true, (*Server).listAudiences},
	{"GET", "/v1/audiences/{audience_id}", true, (*Server).getAudience},
	{"GET", "/v1/audiences/{audience_id}/members", true, (*Server).audienceMembers},
	{"POST", "/v1/contacts/{id}/journeys/{journey_id}/exit", true, (*Server).exitJourney},
	{"GET", "/v1/contacts/{id}/messages", true, (*Server).contactMessages},
	{"GET", "/v1/contacts/{id}/decisions", true, (*Server).contactDecisions},
	{"GET", "/v1/contacts/{id}/journeys/{journey_id}/steps/{step_id}/why", true, (*Server).why},
	{"GET", "/v1/contacts/{id}/score", true, (*Server).contactScore},
	{"GET", "/v1/contacts/{id}/segments", true, (*Server).contactSegments},

	{"POST", "/v1/events", true, (*Server).trackEvent},
	{"POST", "/v1/events/batch", true, (*Server).trackEventBatch},
	{"GET", "/v1/deliveries/status", true, (*Server).deliveriesStatus},

	{"POST", "/v1/journeys/validate", true, (*Server).validateJourney},
	{"POST", "/v1/journeys/preview", true, (*Server).previewJourney},
	{"POST", "/v1/journeys", true, (*Server).publishJourney},
	{"GET", "/v1/journeys", true, (*Server).listJourneys},
	{"GET", "/v1/journeys/{journey_id}", true, (*Server).getJourney},
	{"GET", "/v1/journeys/{journey_id}/versions/{version}", true, (*Server).getJourneyVersion},
	{"POST", "/v1/journeys/{journey_id}/enrollments", true, (*Server).enroll},

	{"PUT", "/v1/score-model", true, (*Server).putScoreModel},
	{"GET", "/v1/score-model", true, (*Server).getScoreModel},
	{"GET", "/v1/reports/journeys/{journey_id}", true, (*Server).journeyReport},
	{"GET", "/v1/reports/journeys/{journey_id}/experiments/{experiment}", true, (*Server).experimentReport},
	{"GET", "/v1/reports/attribution", true, (*Server).attributionReport},
	{"PUT", "/v1/segments/{segment_id}", true, (*Server).defineSegment},
	{"GET", "/v1/segments", true, (*Server).listSegments},
	{"GET", "/v1/segments/{segment_id}/members", true, (*Server).segmentMembers},

	{"GET", "/v1/sandbox/messages", true, (*Server).sandboxMessages},
	{"GET", "/v1/messages/unknown", true, (*Server).unknownMessages},

	// Provider webhooks: signed by the provider instead of the API token.
	{"POST", "/webhooks/sendgrid", false, (*Server).sendGridWebhook},
	{"POST", "/webhooks/twilio/inbound", false, (*Server).twilioInbound},
	{"POST", "/webhooks/twilio/status", false, (*Server).twilioStatus},

	// Temporal's remote codec protocol, for the Temporal UI and CLI: its own
	// token (TUTTI_CODEC_AUTH_TOKEN) instead of the API token (codec.go).
	{"POST", "/codec/{namespace}/{op}", false, (*Server).codecWithBearer},
	{"OPTIONS", "/codec/{namespace}/{op}", false, (*Server).codecPreflight},
	{"POST", "/codec/ui/{token}/{op}", false, (*Server).codecWithPathToken},
	{"OPTIONS", "/codec/ui/{token}/{op}", false, (*Server).codecPreflight},
}

// Handler returns the API's root handler: request ids, access logs, panic
// recovery, body limits, and JSON answers for unknown routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	// A caller's request id is kept so its logs and ours correlate, but only
	// if it is a plain token: it is echoed in a header and written to logs.
	reqID := r.Header.Get("X-Request-Id")
	if !requestIDPattern.MatchString(reqID) {
		reqID = newRequestID()
	}
	w.Header().Set("X-Request-Id", reqID)
	rw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(withRequestLogger(r.Context(), s.log, reqID))
	if r.Body != nil {
		// The original writer: it lets the server close the connection
		// after an oversized body instead of draining it.
		r.Body = http.MaxBytesReader(w, r.Body, s.bodyLimit(r))
	}

	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			loggerFrom(r.Context()).Error("api: panic", "panic", p, "method", r.Method, "path", loggedPath(r))
			if !rw.wrote {
				writeError(rw, r, errInternal)
			}
		}
		// The path is logged, the query string never: lookups carry email
		// addresses and phone numbers there.
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "api: request", slog.String("request_id", reqID),
			slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("path", loggedPath(r)),
			slog.Int("status", rw.status()), slog.Int64("duration_ms", s.now().Sub(start).Milliseconds()))
	}()

	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(rw, r)
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// bodyLimit is the most a request's body may hold: APIMaxBody, but the
// routes that take batches have their own, larger limits. The SendGrid
// webhook reads its body whole before verifying the signature over it, so
// its limit bounds that read too.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if r.Method != http.MethodPost {
		return s.cfg.APIMaxBody
	}
	switch r.URL.Path {
	case "/webhooks/sendgrid":
		return s.cfg.SendGridWebhookMaxBody
	case "/v1/events/batch", "/v1/contacts/batch":
		return s.cfg.APIMaxBatchBody
	}
	return s.cfg.APIMaxBody
}

// noRoute answers requests no route matches with the JSON error shape,
// keeping ServeMux's distinction between 404 and 405 (with Allow).
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); probe.code == http.StatusMethodNotAllowed && allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allow})
		return
	}
	writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no route for " + r.Method + " " + r.URL.Path})
}

// requireToken checks `Authorization: Bearer <token>`.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		ok := strings.EqualFold(scheme, "Bearer") && s.cfg.APIToken != "" &&
			subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tutti"`)
			writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "missing or invalid API token: send Authorization: Bearer <TUTTI_API_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// health reports whether the API can reach Postgres. Temporal is not
// checked: the SDK client reconnects on its own, and a Temporal outage must
// not make orchestrators restart a healthy API.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Pool().Ping(ctx); err != nil {
		loggerFrom(r.Context()).Warn("api: health check failed", "error", err)
		writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// headerProbe captures what ServeMux's own 404/405 handler would answer.
type headerProbe struct {
	header http.Header
	code   int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.code = code }

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type loggerKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// requestLogger is a request's logger, made when something logs: most
// requests log only their access line (serveHTTP), and a logger with an
// attribute costs an allocation and a formatting of it per request.
type requestLogger struct {
	base  *slog.Logger
	reqID string
}

func withRequestLogger(ctx context.Context, base *slog.Logger, reqID string) context.Context {
	return context.WithValue(ctx, loggerKey{}, &requestLogger{base: base, reqID: reqID})
}

func loggerFrom(ctx context.Context) *slog.Logger {
	switch l := ctx.Value(loggerKey{}).(type) {
	case *slog.Logger:
		return l
	case *requestLogger:
		return l.base.With("request_id", l.reqID)
	}
	return slog.Default()
}
