package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/experiment"
)

// Report pages: the journey funnel and an experiment's results as
// server-rendered HTML with inline SVG charts, no front-end build. They
// show the same answers as the JSON report routes (buildJourneyReport,
// buildExperimentReport), behind the same token: a browser sends it as
// the password of HTTP Basic authentication (any user name), which it
// asks for on the first 401; programs may send it as a Bearer token.
//
//	GET /reports/journeys/{journey_id}
//	GET /reports/journeys/{journey_id}/experiments/{experiment}
//	GET /reports/attribution?event=... (attribution_page.go)

//go:embed pages/*.html
var pageFiles embed.FS

var pageTemplates = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

// registerPages adds the report pages to the mux, outside the JSON route
// table (and the OpenAPI document, which describes the JSON API).
func (s *Server) registerPages() {
	s.mux.Handle("GET /reports/journeys/{journey_id}", s.requirePageToken(http.HandlerFunc(s.journeyPage)))
	s.mux.Handle("GET /reports/journeys/{journey_id}/experiments/{experiment}", s.requirePageToken(http.HandlerFunc(s.experimentPage)))
	s.mux.Handle("GET /reports/attribution", s.requirePageToken(http.HandlerFunc(s.attributionPage)))
}

// requirePageToken is requireToken for pages: Bearer, or Basic with the
// token as the password; a 401 asks the browser for it.
func (s *Server) requirePageToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token := strings.TrimSpace(value)
		if strings.EqualFold(scheme, "Basic") {
			token = ""
			if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value)); err == nil {
				_, token, _ = strings.Cut(string(raw), ":")
			}
			scheme = "Bearer"
		}
		got := sha256.Sum256([]byte(token))
		if !strings.EqualFold(scheme, "Bearer") || s.cfg.APIToken == "" || subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Tutti reports", charset="UTF-8"`)
			writePageError(w, http.StatusUnauthorized, "Sign in with the API token (TUTTI_API_TOKEN) as the password; any user name.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writePageError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%d</title><p>%s</p>\n", status, html.EscapeString(msg))
}

// pageError answers a page's failure: a 4xx says what was not found, a
// 5xx is logged by writeError's rules and says no more.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) && e.Status < 500 {
		writePageError(w, e.Status, e.Message)
		return
	}
	loggerFrom(r.Context()).Error("api: report page", "error", err)
	writePageError(w, http.StatusInternalServerError, "internal error; see the API log")
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.pageError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// page fields every page has.
type pageBase struct {
	Title       string
	GeneratedAt string
	APIPath     string
}

type journeyPage struct {
	pageBase
	Report   JourneyReport
	Versions []versionView
}

type versionView struct {
	Version                int
	Entered, Contacts      int64
	Goal, ConversionWindow string
	Converted, Rate        string
	TimeToConvert          string
	Steps                  []stepView
	Channels               []channelView
	FunnelSVG              template.HTML
	Paths                  []pathView
}

// pathView is one row of conversion by path.
type pathView struct {
	Label, Entered, Converted, Rate, TimeToConvert string
}

type stepView struct {
	StepID, Kind                             string
	Reached, Sent, Skipped, Deferred, Failed string
	SkippedBy                                string
}

type channelView struct {
	Channel, SentTo, OptedOut, OptOutRate string
}

func (s *Server) journeyPage(w http.ResponseWriter, r *http.Request) {
	rep, err := s.buildJourneyReport(r.Context(), r.PathValue("journey_id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := journeyPage{Report: rep, pageBase: pageBase{Title: "Journey " + rep.JourneyID,
		GeneratedAt: rep.GeneratedAt.Format(time.RFC3339), APIPath: "/v1/reports/journeys/" + rep.JourneyID}}
	for _, v := range rep.Versions {
		vv := versionView{Version: v.Version, Entered: v.Entered, Contacts: v.Contacts, Goal: v.Goal, ConversionWindow: v.ConversionWindow,
			Converted: optInt(v.Converted), Rate: rateWithCI(v.ConversionRate, v.ConversionRateCI),
			TimeToConvert: optDuration(v.TimeToConvertP50Seconds) + " / " + optDuration(v.TimeToConvertP90Seconds)}
		var bars []bar
		bars = append(bars, bar{Label: "entered", Value: v.Entered})
		for _, st := range v.Steps {
			sv := stepView{StepID: st.StepID, Kind: string(st.Kind), Reached: optInt(st.Reached), Sent: "–", Skipped: "–", Deferred: "–", Failed: "–"}
			if st.Sends != nil {
				sv.Sent, sv.Skipped = fmt.Sprint(st.Sends.Sent), fmt.Sprint(st.Sends.Skipped)
				sv.Deferred, sv.Failed = fmt.Sprint(st.Sends.Deferred), fmt.Sprint(st.Sends.Failed)
				sv.SkippedBy = countsText(st.Sends.SkippedByReason)
			}
			if st.Variants != nil {
				sv.SkippedBy = countsText(st.Variants)
			}
			if st.Reached != nil {
				bars = append(bars, bar{Label: st.StepID, Value: *st.Reached})
			}
			vv.Steps = append(vv.Steps, sv)
		}
		if v.Converted != nil {
			bars = append(bars, bar{Label: "converted", Value: *v.Converted})
		}
		vv.FunnelSVG = funnelSVG(bars, v.Entered)
		for _, c := range v.Channels {
			vv.Channels = append(vv.Channels, channelView{Channel: string(c.Channel), SentTo: fmt.Sprint(c.SentTo),
				OptedOut: fmt.Sprint(c.OptedOut), OptOutRate: percent(c.OptOutRate)})
		}
		for _, pc := range v.ByPath {
			vv.Paths = append(vv.Paths, pathView{Label: pc.Label(), Entered: fmt.Sprint(pc.Entered), Converted: optInt(pc.Converted),
				Rate: rateWithCI(pc.ConversionRate, pc.ConversionRateCI), TimeToConvert: optDuration(pc.TimeToConvertP50Seconds)})
		}
		p.Versions = append(p.Versions, vv)
	}
	s.renderPage(w, r, "journey.html", p)
}

type experimentPage struct {
	pageBase
	Report     ExperimentReport
	Confidence string
	SRM        string
	Groups     []groupView
	RatesSVG   template.HTML
}

type groupView struct {
	Name, Role                  string
	Entered, Converted          int64
	Rate, Lift, P, AlwaysValidP string
	Guardrails                  string
}

func (s *Server) experimentPage(w http.ResponseWriter, r *http.Request) {
	rep, err := s.buildExperimentReport(r.Context(), r.PathValue("journey_id"), r.PathValue("experiment"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := experimentPage{Report: rep, Confidence: fmt.Sprintf("%g%%", rep.Confidence*100),
		pageBase: pageBase{Title: "Experiment " + rep.Experiment, GeneratedAt: rep.GeneratedAt.Format(time.RFC3339),
			APIPath: "/v1/reports/journeys/" + rep.JourneyID + "/experiments/" + rep.Experiment}}
	if srm := rep.SRM; srm != nil {
		p.SRM = fmt.Sprintf("Sample ratio check: chi-square %.2f, p = %s.", srm.ChiSquare, pValue(srm.PValue))
		if srm.Mismatch {
			p.SRM += " The groups' sizes do not match their weights: assignment may be broken; do not trust these results until it is explained."
		}
	}
	var dots []dot
	for _, g := range rep.Groups {
		gv := groupView{Name: g.Group, Entered: g.Entered, Converted: g.Converted, Lift: "–", P: "–", AlwaysValidP: "–"}
		switch {
		case g.IsControl:
			gv.Role = "control"
		case g.IsHoldout:
			gv.Role = "holdout"
		}
		rate := g.Rate
		gv.Rate = rateWithCI(&rate, g.RateCI)
		if t := g.VsControl; t != nil {
			gv.Lift = fmt.Sprintf("%+.1f pp (%+.1f to %+.1f)", t.Difference*100, t.DifferenceCI.Low*100, t.DifferenceCI.High*100)
			gv.P, gv.AlwaysValidP = pValue(t.PValue), pValue(t.AlwaysValidPValue)
		}
		var guards []string
		for _, c := range g.Guardrails {
			text := fmt.Sprintf("%s %s", c.Metric, percent(c.Rate))
			if c.Breached {
				text += " (breached)"
			}
			guards = append(guards, text)
		}
		gv.Guardrails = strings.Join(guards, "; ")
		p.Groups = append(p.Groups, gv)
		if g.RateCI != nil {
			dots = append(dots, dot{Label: g.Group, Value: g.Rate, Low: g.RateCI.Low, High: g.RateCI.High})
		}
	}
	p.RatesSVG = ratesSVG(dots)
	s.renderPage(w, r, "experiment.html", p)
}

func optInt(n *int64) string {
	if n == nil {
		return "–"
	}
	return fmt.Sprint(*n)
}

func percent(x float64) string { return fmt.Sprintf("%.1f%%", x*100) }

func rateWithCI(rate *float64, ci *experiment.Interval) string {
	if rate == nil {
		return "–"
	}
	if ci == nil {
		return percent(*rate)
	}
	return fmt.Sprintf("%s (%s–%s)", percent(*rate), percent(ci.Low), percent(ci.High))
}

func pValue(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func optDuration(seconds *float64) string {
	if seconds == nil {
		return "–"
	}
	d := time.Duration(*seconds * float64(time.Second)).Round(time.Minute)
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return d.String()
}

func countsText(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

type bar struct {
	Label string
	Value int64
}

// funnelSVG draws one horizontal bar per stage, as a share of entered.
func funnelSVG(bars []bar, entered int64) template.HTML {
	const width, rowH, labelW = 640, 22, 150
	var b strings.Builder
	fmt.Fprintf(&b, `<svg role="img" aria-label="funnel" data-testid="funnel" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, rowH*len(bars)+4, width, rowH*len(bars)+4)
	for i, br := range bars {
		share := 0.0
		if entered > 0 {
			share = math.Min(1, float64(br.Value)/float64(entered))
		}
		w := share * float64(width-labelW-90)
		y := i*rowH + 2
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text>`, y+15, html.EscapeString(br.Label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="#4f6bd8"/>`, labelW, y+3, w, rowH-6)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d</text>`, float64(labelW)+w+6, y+15, br.Value)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above from numbers and escaped labels
}

type dot struct {
	Label            string
	Value, Low, High float64
}

// ratesSVG draws each group's conversion rate with its interval.
func ratesSVG(dots []dot) template.HTML {
	const width, rowH, labelW = 640, 26, 150
	if len(dots) == 0 {
		return ""
	}
	top := 0.0
	for _, d := range dots {
		top = math.Max(top, d.High)
	}
	if top == 0 {
		top = 1
	}
	scale := float64(width-labelW-60) / top
	var b strings.Builder
	fmt.Fprintf(&b, `<svg role="img" aria-label="conversion rates with intervals" data-testid="rates" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, rowH*len(dots)+4, width, rowH*len(dots)+4)
	for i, d := range dots {
		y := float64(i*rowH) + 15
		fmt.Fprintf(&b, `<text x="0" y="%.0f">%s</text>`, y+4, html.EscapeString(d.Label))
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#8a93a6" stroke-width="2"/>`,
			labelW+d.Low*scale, labelW+d.High*scale, y, y)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" fill="#4f6bd8"/>`, labelW+d.Value*scale, y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f">%s</text>`, labelW+d.High*scale+6, y+4, percent(d.Value))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above from numbers and escaped labels
}
