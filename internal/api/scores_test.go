package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/workflows"
)

const apiScoreModel = `
id: default
fit:
  - {id: big_company, when: 'contact.?employees.orValue(0.0) >= 200', points: 20}
  - {id: vp, when: 'contact.title.lowerAscii().contains("vp")', points: 15}
intent:
  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 10, cap: 25, half_life: 7d}
bands:
  combined: [{name: cold, below: 30}, {name: warm, below: 60}, {name: hot}]
`

func TestScoreModel_putGetAndRefuse(t *testing.T) {
	h := newHarness(t)
	h.call("GET", "/v1/score-model", nil, http.StatusNotFound)

	r := h.do("PUT", "/v1/score-model", apiScoreModel, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, 1.0, r.body["version"])
	require.Equal(t, true, r.body["created"])
	// The same model again stores nothing.
	r = h.do("PUT", "/v1/score-model", apiScoreModel, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, 1.0, r.body["version"])

	r = h.call("GET", "/v1/score-model", nil, http.StatusOK)
	model := r.body["model"].(map[string]any)
	require.Equal(t, "7d", model["intent"].([]any)[0].(map[string]any)["half_life"])

	// A bad model is refused with every problem's path; nothing stored.
	bad := `
id: default
fit:
  - {id: a, when: 'contact.plan ==', points: 10}
intent:
  - {id: a, event: page.viewed, points: -1, half_life: 10s, hlaf: 1d}
bands:
  combined: [{name: cold, below: 30}, {name: hot, below: 10}]
`
	r = h.do("PUT", "/v1/score-model", bad, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Equal(t, "invalid_score_model", r.errorCode())
	require.Contains(t, r.fieldPaths(), "intent[0].hlaf")
	r = h.do("PUT", "/v1/score-model", `id: default
fit:
  - {id: a, when: 'contact.plan ==', points: 10}
intent:
  - {id: a, event: page.viewed, points: -1, half_life: 10s}
bands:
  combined: [{name: cold, below: 30}, {name: hot, below: 10}]
`, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	paths := r.fieldPaths()
	for _, want := range []string{"fit[0].when", "intent[0].id", "intent[0].points", "intent[0].half_life", "bands.combined[1].below"} {
		require.True(t, slices.Contains(paths, want), "%s not in %v", want, paths)
	}
	require.Equal(t, 1, h.count("score_models"))

	r = h.do("PUT", "/v1/score-model", "", "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusBadRequest, r.status, r.raw)
	r = h.do("PUT", "/v1/score-model", apiScoreModel, "application/json", "Bearer "+token)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	r = h.do("PUT", "/v1/score-model", apiScoreModel, "multipart/form-data; boundary=x", "Bearer "+token)
	require.Equal(t, http.StatusUnsupportedMediaType, r.status, r.raw)
}

func TestContactScore_explains(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"email": "score@example.com", "attributes": map[string]any{"employees": 500, "title": "VP Sales"}})
	h.call("GET", "/v1/contacts/"+id+"/score", nil, http.StatusNotFound) // no model yet
	r := h.do("PUT", "/v1/score-model", apiScoreModel, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	day := 24 * time.Hour
	for i, age := range []time.Duration{0, 7 * day, 14 * day} {
		h.call("POST", "/v1/events", map[string]any{"contact_id": id, "name": "page.viewed", "event_id": "pv" + string(rune('a'+i)),
			"occurred_at": time.Now().Add(-age).UTC().Format(time.RFC3339), "properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)
	}
	r = h.call("GET", "/v1/contacts/"+id+"/score", nil, http.StatusOK)
	require.Equal(t, 35.0, r.body["fit"])
	// 10 + 5 + 2.5 = 17.5: under the cap of 25.
	require.InDelta(t, 17.5, r.body["intent"], 0.01)
	require.InDelta(t, 52.5, r.body["combined"], 0.01)
	require.Equal(t, map[string]any{"fit": "", "intent": "", "combined": "warm"}, r.body["bands"])
	contributions := r.body["contributions"].([]any)
	require.Len(t, contributions, 5)
	var ages []string
	for _, c := range contributions {
		c := c.(map[string]any)
		if c["kind"] == "intent" {
			ages = append(ages, c["age"].(string))
		}
	}
	require.Len(t, ages, 3)
	require.Contains(t, ages, "7d")
	require.Nil(t, r.body["stored"], "nothing scored it yet: the scorer runs in the worker")

	h.call("GET", "/v1/contacts/c_nobody/score", nil, http.StatusNotFound)
	var n int
	require.NoError(t, h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM score_pending WHERE contact_id = $1`, id).Scan(&n))
	require.Equal(t, 1, n)
}

const hotLeadSpec = `
id: hot-lead
name: Hot lead
trigger: {type: event, event: score.band_changed}
reentry: {policy: always}
steps:
  - id: pause
    wait: {duration: 1h}
`

// A tracked event that moves a band: the worker's scorer stores a
// score.band_changed event, and the dispatcher starts the journey it
// triggers and signals the contact's running journey with it, as it does
// any tracked event.
func TestBandChange_reachesJourneys(t *testing.T) {
	h := newHarness(t)
	h.publish(cartSpec)
	h.publish(hotLeadSpec)
	r := h.do("PUT", "/v1/score-model", `
id: m
intent:
  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 40, half_life: 7d}
bands:
  intent: [{name: low, below: 30}, {name: high}]
`, "application/yaml", "Bearer "+token)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	id := h.newContact(map[string]any{"external_id": "lead-1"})
	h.call("POST", "/v1/events", map[string]any{"event_id": "cart-lead", "contact_id": id, "name": "cart.abandoned"}, http.StatusAccepted)
	h.drain()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		api.NewScorer(h.store, slog.New(slog.NewTextHandler(io.Discard, nil))).Run(ctx)
	}()
	h.call("POST", "/v1/events", map[string]any{"event_id": "pv-lead", "contact_id": id, "name": "page.viewed",
		"properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)
	var changeID string
	require.Eventually(t, func() bool {
		err := h.store.Pool().QueryRow(context.Background(), `SELECT id FROM events WHERE contact_id = $1 AND name = 'score.band_changed'`, id).Scan(&changeID)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
	cancel()
	<-done
	h.drain()

	// The signal may carry the page view too (a batch), then the start.
	require.Regexp(t, `^signal:signalled 1\b.*,start:enrolled$`, h.outcomes(changeID))
	require.Equal(t, []string{"pv-lead", changeID}, h.eventSignals(workflows.JourneyWorkflowID("cart", id)))
	desc, err := h.tc.DescribeWorkflowExecution(context.Background(), workflows.JourneyWorkflowID("hot-lead", id), "")
	require.NoError(t, err)
	require.NotNil(t, desc)
	r = h.call("GET", "/v1/contacts/"+id+"/score", nil, http.StatusOK)
	require.Equal(t, "high", r.body["stored"].(map[string]any)["bands"].(map[string]any)["intent"])
}
