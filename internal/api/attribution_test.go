package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/attribution"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// seedPeriod is the seeded period (storagetest.SeedAttribution).
const seedPeriod = "from=2026-02-02&to=2026-02-16"

func TestAttributionReport(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	storagetest.SeedAttribution(t, h.store)

	var rep api.AttributionReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/attribution?event=purchase&"+seedPeriod, nil, http.StatusOK).raw), &rep))
	require.Equal(t, "purchase", rep.Event)
	require.Equal(t, "7d", rep.Lookback)
	require.Equal(t, "1d", rep.HalfLife)
	require.Equal(t, attribution.Models, rep.Models)
	// Six purchases of five contacts; Carol's has no touchpoint.
	require.Equal(t, 6, rep.Conversions)
	require.Equal(t, 5, rep.Contacts)
	require.Equal(t, 1, rep.Unattributed)
	require.Equal(t, 5, rep.Attributed)
	require.Equal(t, map[string]int{"send": 4, "open": 1, "click": 1, "reply": 2, "audience": 3}, rep.Touchpoints)
	require.Equal(t, []journey.Channel{journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds},
		[]journey.Channel{rep.ByChannel[0].Channel, rep.ByChannel[1].Channel, rep.ByChannel[2].Channel})
	// Every model credits the attributed conversions exactly, in every list.
	for _, m := range attribution.Models {
		var ch, jr, st float64
		for _, r := range rep.ByChannel {
			ch += r.Credit[m]
		}
		for _, r := range rep.ByJourney {
			jr += r.Credit[m]
		}
		for _, r := range rep.ByStep {
			st += r.Credit[m]
		}
		for _, sum := range []float64{ch, jr, st} {
			require.InDelta(t, 5, sum, 1e-9, m)
		}
	}
	// First touch, worked out in storage's TestAttribution: email 2 (Alice,
	// Erin), SMS 2 (Bob's first, Dave), ads 1 (Bob's second).
	require.InDelta(t, 2, rep.ByChannel[0].Credit[attribution.FirstTouch], 1e-12)
	require.InDelta(t, 1, rep.ByChannel[2].Credit[attribution.FirstTouch], 1e-12)
	require.Equal(t, []string{"promo", "welcome", ""}, []string{rep.ByJourney[0].JourneyID, rep.ByJourney[1].JourneyID, rep.ByJourney[2].JourneyID})
	last := rep.ByStep[len(rep.ByStep)-1]
	require.Equal(t, [2]string{"", ""}, [2]string{last.JourneyID, last.StepID}, "no journey last")

	// Two models, a one-day lookback: Bob's second purchase (the
	// audience left two days before) is unattributed too.
	rep = api.AttributionReport{}
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/attribution?event=purchase&"+seedPeriod+"&model=linear,first_touch&lookback=1d&half_life=12h",
		nil, http.StatusOK).raw), &rep))
	require.Equal(t, []attribution.Model{attribution.Linear, attribution.FirstTouch}, rep.Models)
	require.Equal(t, 2, rep.Unattributed)
	require.Equal(t, "12h", rep.HalfLife)
	for _, r := range rep.ByChannel {
		require.Len(t, r.Credit, 2, r.Channel)
	}

	// By journey: its goal event. Unknown journey: 404.
	spec, err := journey.ParseAndValidate([]byte(storagetest.ReportSpec))
	require.NoError(t, err)
	_, err = h.store.PublishJourney(context.Background(), spec)
	require.NoError(t, err)
	byJourney := api.AttributionReport{}
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/attribution?journey=offer&"+seedPeriod, nil, http.StatusOK).raw), &byJourney))
	require.Equal(t, "purchase", byJourney.Event)
	require.Equal(t, "offer", byJourney.JourneyID)
	require.Equal(t, 6, byJourney.Conversions)
	r := h.call("GET", "/v1/reports/attribution?journey=nope", nil, http.StatusNotFound)
	require.Equal(t, []string{"journey"}, r.fieldPaths())

	// Default period: the last 30 days (the seed is older: nothing).
	rep = api.AttributionReport{}
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/attribution?event=purchase", nil, http.StatusOK).raw), &rep))
	require.Zero(t, rep.Conversions)
	require.Equal(t, 30*24.0, rep.To.Sub(rep.From).Hours())

	require.Equal(t, http.StatusUnauthorized, h.do("GET", "/v1/reports/attribution?event=purchase", nil, "", "").status)
}

// A bad parameter is a 400 that names it.
func TestAttributionReportBadParams(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct{ query, field string }{
		{"", "event"},
		{"from=2026-01-01", "event"},
		{"event=purchase&journey=offer", "journey"},
		{"event=purchase&from=yesterday", "from"},
		{"event=purchase&to=2026-13-01", "to"},
		{"event=purchase&from=2026-03-01&to=2026-02-01", "from"},
		{"event=purchase&from=2026-03-01&to=2026-03-01", "from"},
		{"event=purchase&from=2024-01-01&to=2026-01-01", "from"},
		{"event=purchase&lookback=0d", "lookback"},
		{"event=purchase&lookback=a+week", "lookback"},
		{"event=purchase&lookback=91d", "lookback"},
		{"event=purchase&half_life=-1h", "half_life"},
		{"event=purchase&model=last_click", "model"},
		{"event=purchase&model=linear,", "model"},
	} {
		r := h.call("GET", "/v1/reports/attribution?"+tc.query, nil, http.StatusBadRequest)
		require.Equal(t, "invalid_request", r.errorCode(), tc.query)
		require.Equal(t, []string{tc.field}, r.fieldPaths(), tc.query)
	}
}

// The attribution page shows, in a real browser, the JSON answer's
// numbers; a bad parameter is a 400 page.
func TestAttributionPageInChromium(t *testing.T) {
	h := newHarness(t)
	storagetest.SeedAttribution(t, h.store)
	chromium(t)

	var rep api.AttributionReport
	require.NoError(t, json.Unmarshal([]byte(h.call("GET", "/v1/reports/attribution?event=purchase&"+seedPeriod, nil, http.StatusOK).raw), &rep))
	got := browse(t, h.url+"/reports/attribution?event=purchase&"+seedPeriod, token, "report-attribution-purchase.png")
	require.Equal(t, "purchase", got["event"])
	require.Equal(t, fmt.Sprint(rep.Conversions), got["conversions"])
	require.Equal(t, fmt.Sprint(rep.Contacts), got["contacts"])
	require.Equal(t, fmt.Sprint(rep.Attributed), got["attributed"])
	require.Equal(t, fmt.Sprint(rep.Unattributed), got["unattributed"])
	require.Equal(t, "1", got["unattributed"], "Carol")
	rows := 0
	check := func(prefix string, c api.AttributionCredit) {
		t.Helper()
		for _, m := range rep.Models {
			require.Equal(t, fmt.Sprintf("%.2f", c.Credit[m]), got[prefix+"/"+string(m)], prefix+" "+string(m))
			rows++
		}
		require.Equal(t, fmt.Sprint(c.Touchpoints), got[prefix+"/touchpoints"], prefix)
		require.Equal(t, fmt.Sprint(c.Touched), got[prefix+"/touched"], prefix)
	}
	for _, c := range rep.ByChannel {
		check("by-channel/channel-"+string(c.Channel), c.AttributionCredit)
	}
	for _, j := range rep.ByJourney {
		check("by-journey/journey-"+j.JourneyID, j.AttributionCredit)
	}
	for _, st := range rep.ByStep {
		check("by-step/step-"+st.JourneyID+"/"+st.StepID, st.AttributionCredit)
	}
	require.Equal(t, 5*(3+3+4), rows, "every model of every channel, journey and step is shown")
	_, ok := got["channel-bars"]
	require.True(t, ok, "the channel chart is drawn")

	req, _ := http.NewRequest("GET", h.url+"/reports/attribution?event=purchase&lookback=1y", nil)
	req.SetBasicAuth("analyst", token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = http.Get(h.url + "/reports/attribution?event=purchase")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
