package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/attribution"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
)

// GET /v1/reports/attribution: which channels, journeys and steps the
// conversions of a period are credited to, by every model side by side
// (storage.Attribution counts, internal/attribution credits).

// Attribution report limits: a lookback or half-life beyond 90 days says
// little about a cause, and a period beyond a year is one query too many.
const (
	maxAttributionLookback = 90 * 24 * time.Hour
	maxAttributionPeriod   = 366 * 24 * time.Hour
	defaultAttributionSpan = 30 * 24 * time.Hour
)

// AttributionReport is the answer of GET /v1/reports/attribution.
type AttributionReport struct {
	// Event is the conversion event; JourneyID the journey whose goal it
	// is, when asked by journey.
	Event     string `json:"event"`
	JourneyID string `json:"journey_id,omitempty"`
	// From and To bound when the conversions occurred: [from, to).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Lookback and HalfLife as durations ("7d", "1d").
	Lookback string              `json:"lookback"`
	HalfLife string              `json:"half_life"`
	Models   []attribution.Model `json:"models"`
	// Conversions counts the events; Contacts the distinct contacts;
	// Unattributed the conversions with no touchpoint in their window,
	// credited to nothing: each model's credits sum to Attributed.
	Conversions  int `json:"conversions"`
	Contacts     int `json:"contacts"`
	Attributed   int `json:"attributed"`
	Unattributed int `json:"unattributed"`
	// Touchpoints counts the touchpoints in the windows by kind (send,
	// open, click, reply, audience).
	Touchpoints map[string]int  `json:"touchpoints"`
	ByChannel   []ChannelCredit `json:"by_channel"`
	ByJourney   []JourneyCredit `json:"by_journey"`
	ByStep      []StepCredit    `json:"by_step"`
	GeneratedAt time.Time       `json:"generated_at"`
}

// AttributionCredit is one row's credit.
type AttributionCredit struct {
	// Credit is the conversions credited to the row, by model.
	Credit map[attribution.Model]float64 `json:"credit"`
	// Touchpoints counts the row's touchpoints in the windows; Touched the
	// conversions with at least one of them, whatever the model.
	Touchpoints int `json:"touchpoints"`
	Touched     int `json:"touched"`
}

// ChannelCredit is a channel's credit.
type ChannelCredit struct {
	Channel journey.Channel `json:"channel"`
	AttributionCredit
}

// JourneyCredit is a journey's credit; JourneyID "" is the touchpoints of
// no journey (an SMS reply to no journey's message, an audience
// membership a segment asked for).
type JourneyCredit struct {
	JourneyID string `json:"journey_id"`
	AttributionCredit
}

// StepCredit is a journey step's credit.
type StepCredit struct {
	JourneyID string `json:"journey_id"`
	StepID    string `json:"step_id"`
	AttributionCredit
}

func (s *Server) attributionReport(w http.ResponseWriter, r *http.Request) {
	ans, err := s.buildAttributionReport(r.Context(), r.URL.Query())
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// attributionParams are a report's parameters, checked.
type attributionParams struct {
	event, journeyID   string
	q                  storage.AttributionQuery
	models             []attribution.Model
	halfLife, lookback time.Duration
}

// parseAttributionParams reads the query: event or journey, from, to,
// model, lookback and half_life; every problem names its parameter.
func (s *Server) parseAttributionParams(v url.Values) (attributionParams, error) {
	var (
		fe fieldErrors
		p  = attributionParams{lookback: attribution.DefaultLookback, halfLife: attribution.DefaultHalfLife}
	)
	p.event, p.journeyID = strings.TrimSpace(v.Get("event")), strings.TrimSpace(v.Get("journey"))
	switch {
	case p.event == "" && p.journeyID == "":
		fe.add("event", "required (the conversion event, e.g. purchase), or journey= for a journey's goal event")
	case p.event != "" && p.journeyID != "":
		fe.add("journey", "give event or journey, not both")
	case len(p.event) > maxIDLen:
		fe.add("event", "at most %d characters", maxIDLen)
	case len(p.journeyID) > maxIDLen:
		fe.add("journey", "at most %d characters", maxIDLen)
	}
	to, from := s.now().UTC(), time.Time{}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"to", &to}, {"from", &from}} {
		raw := strings.TrimSpace(v.Get(t.name))
		if raw == "" {
			continue
		}
		at, err := parseReportTime(raw)
		if err != nil {
			fe.add(t.name, "%s", err)
			continue
		}
		*t.dst = at
	}
	if from.IsZero() {
		from = to.Add(-defaultAttributionSpan)
	}
	switch {
	case !from.Before(to):
		fe.add("from", "must be before to (%s)", to.Format(time.RFC3339))
	case to.Sub(from) > maxAttributionPeriod:
		fe.add("from", "the period may be at most 366 days")
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"lookback", &p.lookback}, {"half_life", &p.halfLife}} {
		raw := strings.TrimSpace(v.Get(d.name))
		if raw == "" {
			continue
		}
		x, err := journey.ParseDuration(raw)
		switch {
		case err != nil:
			fe.add(d.name, "%s (e.g. 7d, 12h, 1d12h)", err)
		case x <= 0 || time.Duration(x) > maxAttributionLookback:
			fe.add(d.name, "must be more than 0 and at most 90d")
		default:
			*d.dst = time.Duration(x)
		}
	}
	if raw := strings.TrimSpace(v.Get("model")); raw != "" {
		seen := map[attribution.Model]bool{}
		for _, name := range strings.Split(raw, ",") {
			m := attribution.Model(strings.TrimSpace(name))
			if !m.Valid() {
				fe.add("model", "unknown model %q; models are %s (comma-separated; all when absent)", string(m), modelNames())
				break
			}
			if !seen[m] {
				seen[m] = true
				p.models = append(p.models, m)
			}
		}
	}
	if err := fe.err(); err != nil {
		return attributionParams{}, err
	}
	if len(p.models) == 0 {
		p.models = attribution.Models
	}
	p.q = storage.AttributionQuery{Event: p.event, From: from, To: to, Lookback: p.lookback}
	return p, nil
}

func modelNames() string {
	names := make([]string, len(attribution.Models))
	for i, m := range attribution.Models {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// parseReportTime reads an RFC 3339 time or a date (midnight UTC).
func parseReportTime(raw string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, raw); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("not a time: give RFC 3339 (2026-03-01T00:00:00Z) or a date (2026-03-01, midnight UTC)")
}

// buildAttributionReport is GET /v1/reports/attribution's answer, which
// the attribution page shows too.
func (s *Server) buildAttributionReport(ctx context.Context, query url.Values) (AttributionReport, error) {
	p, err := s.parseAttributionParams(query)
	if err != nil {
		return AttributionReport{}, err
	}
	if p.journeyID != "" {
		if p.q.Event, err = s.journeyGoal(ctx, p.journeyID); err != nil {
			return AttributionReport{}, err
		}
	}
	tot, err := s.store.Attribution(ctx, p.q, p.models, p.halfLife)
	if err != nil {
		return AttributionReport{}, err
	}
	return attributionAnswer(p, tot, s.now().UTC()), nil
}

// journeyGoal is the goal event of the journey's newest version that has one.
func (s *Server) journeyGoal(ctx context.Context, id string) (string, error) {
	versions, err := s.store.JourneyVersions(ctx, id)
	if err != nil {
		return "", err
	}
	if len(versions) == 0 {
		return "", notFound("journey", id, "journey")
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].Version > versions[j].Version })
	for _, v := range versions {
		if v.Spec.Goal != nil && v.Spec.Goal.Event != "" {
			return v.Spec.Goal.Event, nil
		}
	}
	return "", invalid(FieldError{Path: "journey", Message: "no version of the journey has a goal; give event= instead"})
}

// attributionAnswer lays the totals out: channels in their usual order,
// journeys and steps by id with "no journey" last, every model in every
// row's credit.
func attributionAnswer(p attributionParams, tot storage.AttributionTotals, now time.Time) AttributionReport {
	ans := AttributionReport{Event: p.q.Event, JourneyID: p.journeyID, From: p.q.From, To: p.q.To,
		Lookback: shortDuration(p.lookback), HalfLife: shortDuration(p.halfLife),
		Models: tot.Models, Conversions: tot.Conversions, Contacts: tot.Contacts,
		Attributed: tot.Conversions - tot.Unattributed, Unattributed: tot.Unattributed,
		Touchpoints: map[string]int{}, ByChannel: []ChannelCredit{}, ByJourney: []JourneyCredit{}, ByStep: []StepCredit{},
		GeneratedAt: now}
	for _, k := range []string{attribution.KindSend, attribution.KindOpen, attribution.KindClick, attribution.KindReply, attribution.KindAudience} {
		ans.Touchpoints[k] = tot.ByKind[k]
	}
	credit := func(l *attribution.Line) AttributionCredit {
		c := AttributionCredit{Credit: map[attribution.Model]float64{}, Touchpoints: l.Touchpoints, Touched: l.Touched}
		for _, m := range tot.Models {
			c.Credit[m] = l.Credit[m]
		}
		return c
	}
	order := map[journey.Channel]int{journey.ChannelEmail: 0, journey.ChannelSMS: 1, journey.ChannelAds: 2}
	for ch, l := range tot.ByChannel {
		ans.ByChannel = append(ans.ByChannel, ChannelCredit{Channel: ch, AttributionCredit: credit(l)})
	}
	sort.Slice(ans.ByChannel, func(i, j int) bool {
		a, b := ans.ByChannel[i].Channel, ans.ByChannel[j].Channel
		if oa, ob := rank(order, a), rank(order, b); oa != ob {
			return oa < ob
		}
		return a < b
	})
	for id, l := range tot.ByJourney {
		ans.ByJourney = append(ans.ByJourney, JourneyCredit{JourneyID: id, AttributionCredit: credit(l)})
	}
	sort.Slice(ans.ByJourney, func(i, j int) bool {
		return noneLast(ans.ByJourney[i].JourneyID, ans.ByJourney[j].JourneyID)
	})
	for k, l := range tot.ByStep {
		ans.ByStep = append(ans.ByStep, StepCredit{JourneyID: k.Journey, StepID: k.Step, AttributionCredit: credit(l)})
	}
	sort.Slice(ans.ByStep, func(i, j int) bool {
		a, b := ans.ByStep[i], ans.ByStep[j]
		if a.JourneyID != b.JourneyID {
			return noneLast(a.JourneyID, b.JourneyID)
		}
		return a.StepID < b.StepID
	})
	return ans
}

func rank(order map[journey.Channel]int, ch journey.Channel) int {
	if n, ok := order[ch]; ok {
		return n
	}
	return len(order)
}

// noneLast orders ids with "" (no journey) after the others.
func noneLast(a, b string) bool {
	if (a == "") != (b == "") {
		return b == ""
	}
	return a < b
}

// shortDuration writes d as the parameters are written: "7d", "1d12h",
// "36h" is "1d12h", "90m" is "1h30m".
func shortDuration(d time.Duration) string {
	days, rest := d/(24*time.Hour), d%(24*time.Hour)
	out := ""
	if days > 0 {
		out = fmt.Sprintf("%dd", days)
	}
	if rest > 0 || out == "" {
		r := rest.String()
		if strings.HasSuffix(r, "m0s") {
			r = r[:len(r)-2]
		}
		if strings.HasSuffix(r, "h0m") {
			r = r[:len(r)-2]
		}
		out += r
	}
	return out
}
