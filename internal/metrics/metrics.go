// Package metrics is Tutti's Prometheus instrumentation: gate decisions by
// outcome and reason, gate latency, send results and provider webhooks, the
// delivery outbox's lag and depth,
// plus the Go runtime and process collectors.
//
// Everything is registered on the package's own registry, not the global
// default one, so only what is listed here is exposed (Handler) and no
// library can add series behind our back. The worker serves it on
// TUTTI_METRICS_ADDR (Serve); the API at GET /metrics.
//
// Every label value is mapped onto a bounded set before it reaches a series:
// a reason code, channel or status this package does not know becomes
// "other", so a bug or an odd provider payload cannot blow up cardinality.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
)

// Label values used when the real value is missing or outside the known set.
const (
	// ReasonNone is the reason label of a decision without reasons (a plain allow).
	ReasonNone = "none"
	// Other replaces any label value outside the known set.
	Other = "other"
)

var (
	registry = prometheus.NewRegistry()

	gateDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_gate_decisions_total",
		Help: "Send gate decisions, one per decision, by requested channel, class and outcome.",
	}, []string{"channel", "class", "outcome"})

	gateReasons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_gate_decision_reasons_total",
		Help: "Send gate decisions by reason: one increment per distinct reason code of a decision " +
			`(reason="none" for a decision without reasons), so a decision with several reasons counts under each. ` +
			"channel is the requested channel.",
	}, []string{"channel", "class", "outcome", "reason"})

	gateSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tutti_gate_decision_seconds",
		Help:    "Latency of a send gate decision: waiting for its transaction (shared with other contacts' decisions), then lock the contact, read its state, decide, record.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})

	messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_messages_total",
		Help: "Send results by channel and resulting ledger status (sent, retrying, failed, skipped, unknown...).",
	}, []string{"channel", "status"})

	// gateGroups reads the store's shared-transaction counts; set by
	// WatchGateGroups.
	gateGroups atomic.Pointer[func() (transactions, calls int64)]

	gateTransactions = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tutti_gate_transactions_total",
		Help: "Send gate transactions that decided a group of sends together. " +
			"tutti_gate_transaction_decisions_total / tutti_gate_transactions_total is the mean group size.",
	}, func() float64 { t, _ := readGateGroups(); return float64(t) })

	gateGroupedDecisions = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tutti_gate_transaction_decisions_total",
		Help: "Send gate decisions taken in the transactions counted by tutti_gate_transactions_total.",
	}, func() float64 { _, c := readGateGroups(); return float64(c) })

	deliveryLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tutti_delivery_lag_seconds",
		Help:    "Delivery outbox: from an event, consent change, exit request or async enrollment being stored to Temporal taking its delivery (signal accepted, run started or refused by the re-entry policy, run already ended), by kind (signal, start, consent, exit, enroll).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"kind"})

	deliveryFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_delivery_failures_total",
		Help: "Delivery outbox: failed delivery attempts (retried with backoff), by kind (signal, start, consent, exit, enroll).",
	}, []string{"kind"})

	deliveryHolds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_delivery_holds_total",
		Help: "Delivery outbox: signal deliveries held back (released for a quick retry, not a failure) because a run they go to was about to continue as new (hand_over) or still busy with the workflow task before (busy); each hold is followed by a retry.",
	}, []string{"reason"})

	// outboxDepth reads the pending delivery count; set by WatchOutbox.
	outboxDepth atomic.Pointer[func() (float64, bool)]

	outboxDepthGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tutti_outbox_depth",
		Help: "Delivery outbox: deliveries stored and not yet taken by Temporal (read at scrape; -1 if the count failed). Growing means dispatchers are behind or Temporal refuses them.",
	}, func() float64 {
		if f := outboxDepth.Load(); f != nil {
			if n, ok := (*f)(); ok {
				return n
			}
			return -1
		}
		return 0
	})

	rateWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_rate_limit_waits_total",
		Help: "Sends deferred to a later slot by a provider rate limit (TUTTI_RATE_LIMITS), by limit key; the run waits for the slot on a durable timer.",
	}, []string{"limit"})
	// scoreOutboxDepth reads the count of contacts waiting to be rescored;
	// set by WatchScoreOutbox.
	scoreOutboxDepth atomic.Pointer[func() (float64, bool)]

	scoreOutboxDepthGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tutti_score_outbox_depth",
		Help: "Scoring outbox: contacts whose events or attributes changed and that no scorer has rescored yet (read at scrape; -1 if the count failed). Growing means the workers' scorers are behind or not running.",
	}, func() float64 {
		if f := scoreOutboxDepth.Load(); f != nil {
			if n, ok := (*f)(); ok {
				return n
			}
			return -1
		}
		return 0
	})

	// segmentQueue reads the queued segment evaluations; set by WatchSegmentQueue.
	segmentQueue atomic.Pointer[func() (float64, bool)]

	segmentQueueGauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tutti_segment_queue_depth",
		Help: "Segments: changes (events, attributes, consent, suppressions) queued for segment evaluation and not yet evaluated (read at scrape; -1 if the count failed). Growing means the workers' evaluations are behind.",
	}, func() float64 {
		if f := segmentQueue.Load(); f != nil {
			if n, ok := (*f)(); ok {
				return n
			}
			return -1
		}
		return 0
	})

	segmentChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_segment_changes_total",
		Help: "Segments: memberships recorded, by change (entered, exited).",
	}, []string{"change"})

	webhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tutti_webhook_events_total",
		Help: "Provider webhook events by provider, event kind and handling result.",
	}, []string{"provider", "kind", "result"})
)

func init() {
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gateDecisions, gateReasons, gateSeconds, messages, webhookEvents,
		gateTransactions, gateGroupedDecisions,
		deliveryLag, deliveryFailures, deliveryHolds, outboxDepthGauge, rateWaits, scoreOutboxDepthGauge,
		segmentQueueGauge, segmentChanges,
	)
}

// RecordDecision counts one gate decision for a send requested on
// requested: one increment of tutti_gate_decisions_total per distinct reason
// code, or one with reason "none" when the decision has no reasons.
func RecordDecision(requested journey.Channel, class journey.MessageClass, d policy.Decision) {
	ch, cl, out := channelLabel(requested), classLabel(class), outcomeLabel(d.Outcome)
	gateDecisions.WithLabelValues(ch, cl, out).Inc()
	for _, reason := range reasonLabels(d) {
		gateReasons.WithLabelValues(ch, cl, out, reason).Inc()
	}
}

// WatchGateGroups makes the metrics report the send gate's shared
// transactions from stats (storage.Store.GateGroupStats); both counters stay
// at zero until it is called.
func WatchGateGroups(stats func() (transactions, calls int64)) {
	gateGroups.Store(&stats)
}

func readGateGroups() (transactions, calls int64) {
	if f := gateGroups.Load(); f != nil {
		return (*f)()
	}
	return 0, 0
}

// ObserveGate records the latency of one gate decision (Store.Gate call).
func ObserveGate(d time.Duration) {
	gateSeconds.Observe(d.Seconds())
}

// deliveryKindLabel is an outbox delivery kind (model.DeliveryKind), or
// Other.
func deliveryKindLabel(kind string) string {
	if model.DeliveryKind(kind).Valid() {
		return kind
	}
	return Other
}

// ObserveDelivery records a delivery Temporal took, lag after its event was stored.
func ObserveDelivery(kind string, lag time.Duration) {
	deliveryLag.WithLabelValues(deliveryKindLabel(kind)).Observe(lag.Seconds())
}

// RecordDeliveryFailure counts one failed delivery attempt.
func RecordDeliveryFailure(kind string) {
	deliveryFailures.WithLabelValues(deliveryKindLabel(kind)).Inc()
}

// holdReasons are why the dispatcher holds a delivery.
var holdReasons = setOf("hand_over", "busy")

// RecordDeliveryHold counts one delivery held back, with its reason
// ("hand_over" or "busy").
func RecordDeliveryHold(reason string) {
	if !holdReasons[reason] {
		reason = Other
	}
	deliveryHolds.WithLabelValues(reason).Inc()
}

// RecordRateWait counts one send deferred by the rate limit key (a
// configured key, so the label's values are bounded by the configuration).
func RecordRateWait(key string) { rateWaits.WithLabelValues(key).Inc() }

// WatchOutbox makes tutti_outbox_depth report pending(), called at each
// scrape with a short timeout; the gauge reads 0 until it is called.
func WatchOutbox(pending func(ctx context.Context) (int64, error)) {
	f := func() (float64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := pending(ctx)
		return float64(n), err == nil
	}
	outboxDepth.Store(&f)
}

// WatchScoreOutbox makes tutti_score_outbox_depth report pending(), as
// WatchOutbox does for the delivery outbox.
func WatchScoreOutbox(pending func(ctx context.Context) (int64, error)) {
	f := func() (float64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := pending(ctx)
		return float64(n), err == nil
	}
	scoreOutboxDepth.Store(&f)
}

// WatchSegmentQueue makes tutti_segment_queue_depth report queued(), called
// at each scrape with a short timeout; the gauge reads 0 until it is called.
func WatchSegmentQueue(queued func(ctx context.Context) (int64, error)) {
	f := func() (float64, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := queued(ctx)
		return float64(n), err == nil
	}
	segmentQueue.Store(&f)
}

// RecordSegmentChanges counts recorded segment entries and exits.
func RecordSegmentChanges(entered, exited int) {
	segmentChanges.WithLabelValues("entered").Add(float64(entered))
	segmentChanges.WithLabelValues("exited").Add(float64(exited))
}

// RecordMessage counts one send result: the ledger status the send left the
// message in (model.MessageSent, model.MessageRetrying, model.MessageFailed...).
func RecordMessage(channel journey.Channel, status model.MessageStatus) {
	messages.WithLabelValues(channelLabel(channel), statusLabel(status)).Inc()
}

// RecordWebhook counts one provider webhook event. provider is "sendgrid" or
// "twilio"; kind is the provider's event type ("delivered", "bounce",
// "undelivered", "inbound"...); result is what handling it did ("applied",
// "duplicate", "unknown_message", "ignored", "invalid", "error"...). Values
// are lower-cased; kind and result must look like identifiers, and only the
// first maxKinds / maxResults distinct ones get their own series; anything
// else is "other".
func RecordWebhook(provider, kind, result string) {
	webhookEvents.WithLabelValues(webhookProviders.label(provider), webhookKinds.label(kind), webhookResults.label(result)).Inc()
}

// Handler serves the registry in the Prometheus exposition format.
func Handler() http.Handler {
	return promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		Registry:          registry,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
}

// Serve listens on addr (host:port) and serves Handler at /metrics until ctx
// is done. It returns once listening, or the error if it cannot listen;
// later serving errors are logged.
func Serve(ctx context.Context, addr string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listening on %s (TUTTI_METRICS_ADDR; \"off\" disables): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler())
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics: serving stopped", "addr", addr, "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}

// ---------------------------------------------------------------------------
// label mapping

func channelLabel(ch journey.Channel) string {
	switch ch {
	case journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds, journey.ChannelWebhook:
		return string(ch)
	}
	return Other
}

// classLabel: an empty class is marketing, as in journey.Spec.
func classLabel(c journey.MessageClass) string {
	switch c {
	case "", journey.ClassMarketing:
		return string(journey.ClassMarketing)
	case journey.ClassTransactional:
		return string(c)
	}
	return Other
}

func outcomeLabel(o policy.Outcome) string {
	switch o {
	case policy.OutcomeAllow, policy.OutcomeDefer, policy.OutcomeSkip, policy.OutcomeFallback:
		return string(o)
	}
	return Other
}

// reasonCodes is every reason code policy.Decide produces.
var reasonCodes = setOf(
	policy.CodeInvalidRequest, policy.CodeNoPhone, policy.CodeNoEmail, policy.CodeNoConsent,
	policy.CodeConsentRevoked, policy.CodeConsentPending, policy.CodeSMSPendingDoubleOptIn,
	policy.CodeSubscriptionRevoked, policy.CodeSubscriptionPending,
	policy.CodeSuppressedConverted, policy.CodeSuppressedInOpportunity, policy.CodeSuppressedDoNotContact,
	policy.CodeSuppressedHardBounce, policy.CodeSuppressedSpamComplaint, policy.CodeSuppressedUnengaged,
	policy.CodeSuppressedOther,
	policy.CodeAbandonmentMissing, policy.CodeAbandonmentSMSAlreadySent, policy.CodeAbandonmentWindowExpired,
	policy.CodeCapGlobal, policy.CodeCooldownEmail, policy.CodeCooldownSMS, policy.CodeCooldownAds,
	policy.CodeQuietHours, policy.CodeNoSendWindow, policy.CodeTransactionalBypass,
)

func setOf(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

func reasonLabel(code string) string {
	if reasonCodes[code] {
		return code
	}
	return Other
}

// reasonLabels lists the decision's distinct reason labels in order, or
// "none". A code reported for both the primary and the fallback channel
// counts once.
func reasonLabels(d policy.Decision) []string {
	if len(d.Reasons) == 0 {
		return []string{ReasonNone}
	}
	out := make([]string, 0, len(d.Reasons))
	seen := make(map[string]bool, len(d.Reasons))
	for _, r := range d.Reasons {
		l := reasonLabel(r.Code)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// statusLabel is a ledger status (model.Message*) as it is, anything else Other.
func statusLabel(status model.MessageStatus) string {
	if status.Valid() {
		return string(status)
	}
	return Other
}

// Webhook label bounds: provider names are few; event kinds and results are
// whatever the handlers pass, admitted up to a cap.
const (
	maxProviders = 8
	maxKinds     = 64
	maxResults   = 32
)

var (
	webhookProviders = newBoundedSet(maxProviders, "sendgrid", "twilio")
	webhookKinds     = newBoundedSet(maxKinds)
	webhookResults   = newBoundedSet(maxResults)
)

var labelPattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,39}$`)

// boundedSet admits label values that look like identifiers, up to max
// distinct ones (the preset values count); the rest map to Other.
type boundedSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newBoundedSet(maxValues int, preset ...string) *boundedSet {
	s := &boundedSet{max: maxValues, seen: make(map[string]bool, maxValues)}
	for _, v := range preset {
		s.seen[v] = true
	}
	return s
}

func (s *boundedSet) label(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if !labelPattern.MatchString(v) {
		return Other
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] {
		return v
	}
	if len(s.seen) >= s.max {
		return Other
	}
	s.seen[v] = true
	return v
}
