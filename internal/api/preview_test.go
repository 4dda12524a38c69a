package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

const previewSpec = `{
  "id": "winback", "name": "Win back", "trigger": {"type": "api"}, "reentry": {"policy": "once"},
  "goal": {"event": "purchase"},
  "steps": [
    {"id": "miss_you", "send": {"channel": "email", "email": {"subject": "We miss you, {{ .contact.first_name }}", "text": "Come back"}}},
    {"id": "pause", "wait": {"duration": "3d"}},
    {"id": "offer", "send": {"channel": "email", "email": {"subject": "20% off", "text": "Today only"}}}
  ]}`

// POST /v1/journeys/preview plays a draft for a real contact in simulated
// time and writes nothing; its answers match the contract, and every bad
// field is named.
func TestPreviewJourney(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	id := h.newContact(map[string]any{"email": "grace@example.com", "attributes": map[string]any{"first_name": "Grace"}})
	_, _, err := h.store.RecordConsent(ctx, id, journey.ChannelEmail, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	start := "2026-03-02T15:00:00Z"

	r := h.call("POST", "/v1/journeys/preview", map[string]any{"contact_id": id, "spec": rawJSON(previewSpec), "start_at": start}, http.StatusOK)
	require.Equal(t, "completed", r.body["status"])
	msgs := r.body["messages"].([]any)
	require.Len(t, msgs, 2)
	first, second := msgs[0].(map[string]any), msgs[1].(map[string]any)
	require.Equal(t, "would_send", first["status"])
	require.Equal(t, start, first["at"])
	require.Equal(t, "We miss you, Grace", first["email"].(map[string]any)["subject"])
	require.Equal(t, "2026-03-05T15:00:00Z", second["at"], "three simulated days later")
	require.Equal(t, "allow", second["decision"].(map[string]any)["outcome"])

	// The goal posted on day 1 converts the run before the offer.
	r = h.call("POST", "/v1/journeys/preview", map[string]any{"contact_id": id, "spec": rawJSON(previewSpec), "start_at": start,
		"events": []any{map[string]any{"after": "1d", "name": "purchase"}}}, http.StatusOK)
	require.Equal(t, "converted", r.body["status"])
	require.Len(t, r.body["messages"].([]any), 1)

	// A published journey by id.
	h.publish(`{"id": "winback", "name": "Win back", "trigger": {"type": "api"}, "reentry": {"policy": "once"},
	  "steps": [{"id": "sms", "send": {"channel": "sms", "sms": {"body": "hi"}}}]}`)
	r = h.call("POST", "/v1/journeys/preview", map[string]any{"contact_id": id, "journey_id": "winback"}, http.StatusOK)
	m := r.body["messages"].([]any)[0].(map[string]any)
	require.Equal(t, "skipped", m["status"])
	require.Equal(t, "no_phone,no_consent", m["reason"])

	require.Zero(t, h.count("messages"))
	require.Zero(t, h.count("decisions"))
	require.Zero(t, h.count("enrollments"))

	for _, tt := range []struct {
		body   map[string]any
		status int
		paths  []string
	}{
		{map[string]any{"spec": rawJSON(previewSpec)}, http.StatusBadRequest, []string{"contact_id"}},
		{map[string]any{"contact_id": id}, http.StatusBadRequest, []string{"spec"}},
		{map[string]any{"contact_id": id, "spec": rawJSON(previewSpec), "journey_id": "winback"}, http.StatusBadRequest, []string{"journey_id"}},
		{map[string]any{"contact_id": id, "spec": "steps: []"}, http.StatusBadRequest, []string{"spec"}},
		{map[string]any{"contact_id": id, "spec": map[string]any{"id": "x", "name": "X", "trigger": map[string]any{"type": "api"},
			"reentry": map[string]any{"policy": "once"}, "steps": []any{map[string]any{"id": "w", "wait": map[string]any{"duration": "-1h"}}}}},
			http.StatusBadRequest, []string{"spec.steps[0].wait.duration"}},
		{map[string]any{"contact_id": id, "spec": rawJSON(previewSpec), "events": []any{map[string]any{"after": "soon", "name": ""}}},
			http.StatusBadRequest, []string{"events[0].after", "events[0].name"}},
		{map[string]any{"contact_id": id, "spec": rawJSON(previewSpec), "horizon": "5000d", "start_at": "yesterday"},
			http.StatusBadRequest, []string{"horizon", "start_at"}},
		{map[string]any{"contact_id": "c_nobody", "spec": rawJSON(previewSpec)}, http.StatusNotFound, []string{"contact_id"}},
		{map[string]any{"contact_id": id, "journey_id": "nope"}, http.StatusNotFound, []string{"journey_id"}},
	} {
		r := h.call("POST", "/v1/journeys/preview", tt.body, tt.status)
		require.ElementsMatch(t, tt.paths, r.fieldPaths(), r.raw)
	}
}

// rawJSON is a JSON document kept as is inside a request body.
func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }
