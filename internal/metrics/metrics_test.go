package metrics

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
)

func TestChannelClassOutcomeLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"email", channelLabel(journey.ChannelEmail), "email"},
		{"sms", channelLabel(journey.ChannelSMS), "sms"},
		{"ads", channelLabel(journey.ChannelAds), "ads"},
		{"empty channel", channelLabel(""), Other},
		{"unknown channel", channelLabel("pigeon"), Other},
		{"empty class is marketing", classLabel(""), "marketing"},
		{"marketing", classLabel(journey.ClassMarketing), "marketing"},
		{"transactional", classLabel(journey.ClassTransactional), "transactional"},
		{"unknown class", classLabel("promo"), Other},
		{"allow", outcomeLabel(policy.OutcomeAllow), "allow"},
		{"defer", outcomeLabel(policy.OutcomeDefer), "defer"},
		{"skip", outcomeLabel(policy.OutcomeSkip), "skip"},
		{"fallback", outcomeLabel(policy.OutcomeFallback), "fallback"},
		{"unknown outcome", outcomeLabel("maybe"), Other},
		{"empty outcome", outcomeLabel(""), Other},
		{"sent", statusLabel(model.MessageSent), "sent"},
		{"unknown status", statusLabel("exploded"), Other},
		{"signal delivery", deliveryKindLabel(string(model.DeliverySignal)), "signal"},
		{"consent delivery", deliveryKindLabel(string(model.DeliveryConsent)), "consent"},
		{"exit delivery", deliveryKindLabel(string(model.DeliveryExit)), "exit"},
		{"unknown delivery", deliveryKindLabel("erase"), Other},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestReasonLabels(t *testing.T) {
	reasons := func(codes ...string) policy.Decision {
		d := policy.Decision{Outcome: policy.OutcomeSkip, Channel: journey.ChannelSMS}
		for _, c := range codes {
			d.Reasons = append(d.Reasons, policy.Reason{Code: c, Channel: journey.ChannelSMS})
		}
		return d
	}
	for _, tc := range []struct {
		name string
		d    policy.Decision
		want []string
	}{
		{"allow without reasons", policy.Decision{Outcome: policy.OutcomeAllow}, []string{ReasonNone}},
		{"one known code", reasons(policy.CodeConsentRevoked), []string{"consent_revoked"}},
		{"suppression code", reasons(policy.SuppressedCode(model.SuppressHardBounce)), []string{"suppressed:hard_bounce"}},
		{"unknown suppression reason", reasons(policy.SuppressedCode("weird")), []string{"suppressed:other"}},
		{"cooldown code", reasons(policy.CooldownCode(journey.ChannelSMS)), []string{"cooldown:sms"}},
		{"unknown cooldown channel", reasons(policy.CooldownCode("pigeon")), []string{Other}},
		{"several codes keep order", reasons(policy.CodeQuietHours, policy.CodeCapGlobal), []string{"quiet_hours", "cap:global"}},
		{"same code on two channels counts once", reasons(policy.CodeConsentRevoked, policy.CodeConsentRevoked), []string{"consent_revoked"}},
		{"free text collapses to other", reasons("contact said no", "🙃"), []string{Other}},
		{"known and unknown", reasons("made_up", policy.CodeNoPhone), []string{Other, "no_phone"}},
	} {
		if got := reasonLabels(tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestEveryStatusIsKnown keeps the status label set in step with the ledger.
func TestEveryStatusIsKnown(t *testing.T) {
	for _, s := range []model.MessageStatus{model.MessageReserved, model.MessageInFlight, model.MessageRetrying, model.MessageSent, model.MessageDelivered,
		model.MessageOpened, model.MessageClicked, model.MessageFailed, model.MessageBounced, model.MessageDropped,
		model.MessageComplained, model.MessageSkipped, model.MessageUnknown} {
		if statusLabel(s) != string(s) {
			t.Errorf("ledger status %q maps to %q", s, statusLabel(s))
		}
	}
}

func TestBoundedSet(t *testing.T) {
	s := newBoundedSet(3, "sendgrid")
	for _, tc := range []struct{ in, want string }{
		{"sendgrid", "sendgrid"},
		{" Twilio ", "twilio"},
		{"twilio", "twilio"},
		{"has space", Other},
		{"", Other},
		{"9lives", Other},
		{strings.Repeat("a", 41), Other},
		{"mailgun", "mailgun"}, // third distinct value: admitted
		{"postmark", Other},    // over the cap
		{"mailgun", "mailgun"}, // admitted values stay
	} {
		if got := s.label(tc.in); got != tc.want {
			t.Errorf("label(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRecordDecisionCountsEachReason(t *testing.T) {
	c := func(reason string) float64 {
		return testutil.ToFloat64(gateReasons.WithLabelValues("email", "marketing", "defer", reason))
	}
	decisions := func() float64 {
		return testutil.ToFloat64(gateDecisions.WithLabelValues("email", "marketing", "defer"))
	}
	q0, cap0, d0 := c("quiet_hours"), c("cap:global"), decisions()
	RecordDecision(journey.ChannelEmail, "", policy.Decision{
		Outcome: policy.OutcomeDefer, Channel: journey.ChannelEmail, Until: time.Now().Add(time.Hour),
		Reasons: []policy.Reason{{Code: policy.CodeQuietHours}, {Code: policy.CodeCapGlobal}},
	})
	if c("quiet_hours") != q0+1 || c("cap:global") != cap0+1 {
		t.Errorf("quiet_hours %v→%v, cap:global %v→%v", q0, c("quiet_hours"), cap0, c("cap:global"))
	}
	if decisions() != d0+1 {
		t.Errorf("decisions %v→%v: one decision counts once", d0, decisions())
	}
}

// scrape reads Handler's exposition.
func scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// sample returns the value of one series in an exposition, or 0 if absent.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

func TestHandlerExposesCounters(t *testing.T) {
	skipSeries := `tutti_gate_decision_reasons_total{channel="sms",class="transactional",outcome="skip",reason="consent_revoked"}`
	otherSeries := `tutti_gate_decision_reasons_total{channel="sms",class="transactional",outcome="skip",reason="other"}`
	allowSeries := `tutti_gate_decision_reasons_total{channel="ads",class="marketing",outcome="allow",reason="none"}`
	skipDecision := `tutti_gate_decisions_total{channel="sms",class="transactional",outcome="skip"}`
	allowDecision := `tutti_gate_decisions_total{channel="ads",class="marketing",outcome="allow"}`
	msgSeries := `tutti_messages_total{channel="sms",status="sent"}`
	hookSeries := `tutti_webhook_events_total{kind="undelivered",provider="twilio",result="applied"}` // labels sort by name
	before := scrape(t)

	RecordDecision(journey.ChannelSMS, journey.ClassTransactional, policy.Decision{
		Outcome: policy.OutcomeSkip, Channel: journey.ChannelSMS,
		Reasons: []policy.Reason{
			{Code: policy.CodeConsentRevoked, Channel: journey.ChannelSMS, Detail: "STOP"},
			{Code: "not-a-code", Channel: journey.ChannelSMS},
		},
	})
	RecordDecision(journey.ChannelAds, journey.ClassMarketing, policy.Decision{Outcome: policy.OutcomeAllow, Channel: journey.ChannelAds})
	ObserveGate(12 * time.Millisecond)
	RecordMessage(journey.ChannelSMS, model.MessageSent)
	RecordWebhook("twilio", "Undelivered", "applied")

	after := scrape(t)
	// One decision with two reasons: once in decisions_total, once per reason.
	for _, series := range []string{skipSeries, otherSeries, allowSeries, skipDecision, allowDecision, msgSeries, hookSeries} {
		if got, was := sample(t, after, series), sample(t, before, series); got != was+1 {
			t.Errorf("%s: %v after, %v before; want one more\n%s", series, got, was, after)
		}
	}
	if got, was := sample(t, after, "tutti_gate_decision_seconds_count"), sample(t, before, "tutti_gate_decision_seconds_count"); got != was+1 {
		t.Errorf("tutti_gate_decision_seconds_count: %v after, %v before", got, was)
	}
	for _, want := range []string{"# TYPE tutti_gate_decision_seconds histogram", "go_goroutines", "process_", "go_memstats_alloc_bytes"} {
		if !strings.Contains(after, want) {
			t.Errorf("the exposition lacks %q", want)
		}
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := Serve(ctx, addr, quiet); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", addr))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tutti_gate_decision_seconds") {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}

	// A taken address is an error, not a silent failure.
	if err := Serve(ctx, addr, quiet); err == nil {
		t.Error("a second Serve on the same address should fail")
	}
}

// TestEveryReasonCodeIsKnown: a reason code added to policy without adding
// it here would be counted as "other"; this reads policy's Code* constants.
func TestEveryReasonCodeIsKnown(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../policy/types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				code, _ := strconv.Unquote(lit.Value)
				n++
				if reasonLabel(code) != code {
					t.Errorf("policy.%s (%q) is not a known reason label", name.Name, code)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d Code* constants in policy/types.go", n)
	}
}

func TestWatchGateGroups(t *testing.T) {
	t.Cleanup(func() { gateGroups.Store(nil) })
	WatchGateGroups(func() (int64, int64) { return 3, 17 })
	out := scrape(t)
	if got := sample(t, out, "tutti_gate_transactions_total"); got != 3 {
		t.Errorf("tutti_gate_transactions_total = %v, want 3\n%s", got, out)
	}
	if got := sample(t, out, "tutti_gate_transaction_decisions_total"); got != 17 {
		t.Errorf("tutti_gate_transaction_decisions_total = %v, want 17\n%s", got, out)
	}
}

func TestDeliveryMetrics(t *testing.T) {
	t.Cleanup(func() { outboxDepth.Store(nil) })
	before := scrape(t)
	ObserveDelivery("signal", 1500*time.Millisecond)
	RecordDeliveryFailure("start")
	RecordDeliveryFailure("nonsense")
	RecordDeliveryHold("hand_over")
	RecordDeliveryHold("nonsense")
	WatchOutbox(func(context.Context) (int64, error) { return 42, nil })
	after := scrape(t)
	for _, series := range []string{`tutti_delivery_lag_seconds_count{kind="signal"}`, `tutti_delivery_lag_seconds_bucket{kind="signal",le="2.5"}`,
		`tutti_delivery_failures_total{kind="start"}`, `tutti_delivery_failures_total{kind="other"}`,
		`tutti_delivery_holds_total{reason="hand_over"}`, `tutti_delivery_holds_total{reason="other"}`} {
		if got, was := sample(t, after, series), sample(t, before, series); got != was+1 {
			t.Errorf("%s: %v after, %v before; want one more\n%s", series, got, was, after)
		}
	}
	if got := sample(t, after, "tutti_outbox_depth"); got != 42 {
		t.Errorf("tutti_outbox_depth = %v, want 42", got)
	}
	WatchOutbox(func(context.Context) (int64, error) { return 0, errors.New("database down") })
	if got := sample(t, scrape(t), "tutti_outbox_depth"); got != -1 {
		t.Errorf("tutti_outbox_depth with a failing count = %v, want -1", got)
	}
}

func TestScoreOutboxDepth(t *testing.T) {
	t.Cleanup(func() { scoreOutboxDepth.Store(nil) })
	WatchScoreOutbox(func(context.Context) (int64, error) { return 7, nil })
	if got := sample(t, scrape(t), "tutti_score_outbox_depth"); got != 7 {
		t.Errorf("tutti_score_outbox_depth = %v, want 7", got)
	}
	WatchScoreOutbox(func(context.Context) (int64, error) { return 0, errors.New("database down") })
	if got := sample(t, scrape(t), "tutti_score_outbox_depth"); got != -1 {
		t.Errorf("tutti_score_outbox_depth with a failing count = %v, want -1", got)
	}
}

func TestSegmentMetrics(t *testing.T) {
	t.Cleanup(func() { segmentQueue.Store(nil) })
	before := scrape(t)
	RecordSegmentChanges(2, 1)
	WatchSegmentQueue(func(context.Context) (int64, error) { return 7, nil })
	after := scrape(t)
	if got, was := sample(t, after, `tutti_segment_changes_total{change="entered"}`), sample(t, before, `tutti_segment_changes_total{change="entered"}`); got != was+2 {
		t.Errorf("entered: %v after, %v before; want two more", got, was)
	}
	if got, was := sample(t, after, `tutti_segment_changes_total{change="exited"}`), sample(t, before, `tutti_segment_changes_total{change="exited"}`); got != was+1 {
		t.Errorf("exited: %v after, %v before; want one more", got, was)
	}
	if got := sample(t, after, "tutti_segment_queue_depth"); got != 7 {
		t.Errorf("tutti_segment_queue_depth = %v, want 7", got)
	}
	WatchSegmentQueue(func(context.Context) (int64, error) { return 0, errors.New("database down") })
	if got := sample(t, scrape(t), "tutti_segment_queue_depth"); got != -1 {
		t.Errorf("tutti_segment_queue_depth with a failing count = %v, want -1", got)
	}
}
