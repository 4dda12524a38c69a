package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

const alertSpec = `
id: alert
name: Sales alert
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: alert_sales
    webhook: {destination: %s, payload: {contact_id: '{{ .contact.id }}'}}
`

// A webhook step must name a destination this workspace configured: the
// API says which step does not (the spec alone cannot tell). And `why`
// explains a webhook step's gate decision as it does a send's.
func TestWebhookStepPublishAndWhy(t *testing.T) {
	cfg := harnessConfig()
	cfg.WebhookDestinations = map[string]provider.WebhookDestination{
		"sales": {Name: "sales", URL: "https://hooks.example.com/sales", Secret: []byte("whsec_0123456789abcdef")},
	}
	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	url, hc := serveAPI(t, api.Deps{Store: store, Temporal: tc, Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := &harness{t: t, store: store, tc: tc, url: url, client: hc}

	unknown := strings.Replace(alertSpec, "%s", "crm", 1)
	for _, path := range []string{"/v1/journeys/validate", "/v1/journeys"} {
		r := h.do("POST", path, unknown, "application/yaml", "Bearer "+token)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.raw, `steps[0].webhook.destination`) ||
			!strings.Contains(r.raw, `destination \"crm\" is not configured`) {
			t.Errorf("%s with an unknown destination: %d %s", path, r.status, r.raw)
		}
	}
	if n := h.count("journey_versions"); n != 0 {
		t.Fatalf("%d versions stored", n)
	}
	h.publish(strings.Replace(alertSpec, "%s", "sales", 1))

	c := h.newContact(map[string]any{"email": "lead@example.com"})
	h.enrollIn(c, "alert", 1, "alert_sales")
	ctx := context.Background()
	if _, _, err := h.store.AddSuppression(ctx, storage.Suppression{ContactID: c, Reason: model.SuppressDoNotContact, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	_, err := h.store.Gate(ctx, storage.GateInput{
		Message: storage.Message{IdempotencyKey: "enrollment/e1/alert_sales/1", ContactID: c, JourneyID: "alert", JourneyVersion: 1,
			StepID: "alert_sales", Channel: journey.ChannelWebhook, Class: string(journey.ClassMarketing), Provider: "webhook"},
		Now: now, Lookback: 7 * 24 * time.Hour,
	}, func(st storage.GateState) policy.Decision {
		return policy.Decide(policy.DefaultSettings(), policy.Request{Contact: st.Contact, Channel: journey.ChannelWebhook,
			Class: journey.ClassMarketing, JourneyID: "alert", Now: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	r := h.call("GET", whyPath(c, "alert", "alert_sales"), nil, http.StatusOK)
	step := r.body["step"].(map[string]any)
	if r.body["state"] != "skipped" || !strings.Contains(r.body["summary"].(string), "suppressed:do_not_contact") ||
		step["kind"] != "webhook" || step["channel"] != "webhook" {
		t.Errorf("why: %s", r.raw)
	}
	if ds := decisionsOf(r); len(ds) != 1 || ds[0]["channel"] != "webhook" {
		t.Errorf("decisions: %s", r.raw)
	}
}
