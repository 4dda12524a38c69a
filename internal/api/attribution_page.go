package api

import (
	"fmt"
	"html"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// The attribution page: GET /reports/attribution?event=... (the JSON
// route's parameters), credit by channel as one bar per model, and the
// journeys and steps as tables, from buildAttributionReport.

type attributionPage struct {
	pageBase
	Report      AttributionReport
	Period      string
	Query       map[string]string
	Models      []string
	ChannelsSVG template.HTML
	Channels    []creditRow
	Journeys    []creditRow
	Steps       []creditRow
	Unattrib    []string
}

// creditRow is one table row: its name, a data-testid key, each model's
// credit (formatted, in the report's model order), touchpoints and
// conversions touched.
type creditRow struct {
	Name, Key            string
	Credit               []modelCredit
	Touchpoints, Touched int
}

type modelCredit struct {
	Model, Value string
}

// credit formats a credit as the page shows it: two decimals.
func credit(x float64) string { return fmt.Sprintf("%.2f", x) }

func (s *Server) attributionPage(w http.ResponseWriter, r *http.Request) {
	rep, err := s.buildAttributionReport(r.Context(), r.URL.Query())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := attributionPage{Report: rep,
		Period: rep.From.Format(time.RFC3339) + " to " + rep.To.Format(time.RFC3339),
		Query:  map[string]string{"event": rep.Event, "from": rep.From.Format(time.RFC3339), "to": rep.To.Format(time.RFC3339), "lookback": rep.Lookback, "half_life": rep.HalfLife},
		pageBase: pageBase{Title: "Attribution of " + rep.Event, GeneratedAt: rep.GeneratedAt.Format(time.RFC3339),
			APIPath: "/v1/reports/attribution?" + r.URL.Query().Encode()}}
	if rep.JourneyID != "" {
		p.Query["event"], p.Query["journey"] = "", rep.JourneyID
	}
	for _, m := range rep.Models {
		p.Models = append(p.Models, string(m))
		p.Unattrib = append(p.Unattrib, fmt.Sprint(rep.Unattributed))
	}
	row := func(name, key string, c AttributionCredit) creditRow {
		cr := creditRow{Name: name, Key: key, Touchpoints: c.Touchpoints, Touched: c.Touched}
		for _, m := range rep.Models {
			cr.Credit = append(cr.Credit, modelCredit{Model: string(m), Value: credit(c.Credit[m])})
		}
		return cr
	}
	for _, c := range rep.ByChannel {
		p.Channels = append(p.Channels, row(string(c.Channel), string(c.Channel), c.AttributionCredit))
	}
	for _, j := range rep.ByJourney {
		p.Journeys = append(p.Journeys, row(orNoJourney(j.JourneyID), j.JourneyID, j.AttributionCredit))
	}
	for _, st := range rep.ByStep {
		name := st.JourneyID + " / " + st.StepID
		if st.JourneyID == "" {
			name = orNoJourney("")
		}
		p.Steps = append(p.Steps, row(name, st.JourneyID+"/"+st.StepID, st.AttributionCredit))
	}
	p.ChannelsSVG = channelCreditSVG(rep)
	s.renderPage(w, r, "attribution.html", p)
}

func orNoJourney(id string) string {
	if id == "" {
		return "(no journey)"
	}
	return id
}

var channelColours = map[string]string{"email": "#4f6bd8", "sms": "#2f9e6e", "ads": "#d9822b"}

// channelCreditSVG draws one bar per model, all conversions long: each
// channel's credit, then the unattributed conversions, so that the models
// can be compared at a glance and every bar adds up to the same total.
func channelCreditSVG(rep AttributionReport) template.HTML {
	const width, rowH, labelW, legendH = 640, 26, 110, 24
	if rep.Conversions == 0 {
		return ""
	}
	barW := float64(width - labelW - 10)
	scale := barW / float64(rep.Conversions)
	h := rowH*len(rep.Models) + legendH + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg role="img" aria-label="credit by channel, per model" data-testid="channel-bars" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, h, width, h)
	for i, m := range rep.Models {
		y := i*rowH + 2
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text>`, y+15, html.EscapeString(string(m)))
		x := float64(labelW)
		for _, c := range rep.ByChannel {
			v := c.Credit[m]
			if v <= 0 {
				continue
			}
			w := v * scale
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s</title></rect>`,
				x, y+3, w, rowH-6, colourOf(string(c.Channel)), html.EscapeString(string(m)), html.EscapeString(string(c.Channel)), credit(v))
			if w > 34 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" style="fill:#fff">%s</text>`, x+4, y+15, credit(v))
			}
			x += w
		}
		if rep.Unattributed > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#d9dce3"><title>unattributed: %d</title></rect>`,
				x, y+3, float64(rep.Unattributed)*scale, rowH-6, rep.Unattributed)
		}
	}
	y := rowH*len(rep.Models) + 4
	x := labelW
	legend := []string{}
	for _, c := range rep.ByChannel {
		legend = append(legend, string(c.Channel))
	}
	legend = append(legend, "unattributed")
	for _, name := range legend {
		colour := colourOf(name)
		if name == "unattributed" {
			colour = "#d9dce3"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`, x, y+2, colour, x+16, y+12, html.EscapeString(name))
		x += 24 + 8*len(name)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above from numbers and escaped labels
}

func colourOf(channel string) string {
	if c, ok := channelColours[channel]; ok {
		return c
	}
	return "#8a93a6"
}
