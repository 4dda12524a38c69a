package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/workflows"
)

const salesAlertJourney = `
id: e2e-sales-alert
name: Sales alert
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: alert_sales
    webhook:
      destination: sales
      payload: {contact_id: '{{ .contact.id }}', email: '{{ .contact.email }}', name: '{{ .contact.first_name }}'}
  - id: done
    exit: {reason: completed}
`

// A webhook step end to end: published through the API (which knows the
// destination), run by the worker, posted to a local receiver that checks
// the signature with its own HMAC, keyed by the run, recorded in the
// ledger, explained by `why`; and a suppressed contact's run posts nothing.
func TestEndToEnd_WebhookStep(t *testing.T) {
	const secret = "whsec_e2e_0123456789"
	type post struct {
		key  string
		body map[string]any
	}
	var mu sync.Mutex
	var posts []post
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var ts, sig string
		for _, part := range strings.Split(r.Header.Get("Tutti-Signature"), ",") {
			k, v, _ := strings.Cut(part, "=")
			if k == "t" {
				ts = v
			} else if k == "v1" {
				sig = v
			}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "."))
		mac.Write(raw)
		if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		posts = append(posts, post{key: r.Header.Get("Idempotency-Key"), body: body})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rcv.Close()
	dests := map[string]provider.WebhookDestination{"sales": {Name: "sales", URL: rcv.URL, Secret: []byte(secret)}}
	s := start(t, func(c *config.Config) { c.WebhookDestinations = dests })
	ctx := context.Background()

	s.call("POST", "/v1/journeys", salesAlertJourney, http.StatusCreated)
	lead := s.call("POST", "/v1/contacts", map[string]any{"email": "lead@example.com", "attributes": map[string]any{"first_name": "Lin"}},
		http.StatusCreated)["contact"].(map[string]any)["id"].(string)
	blocked := s.call("POST", "/v1/contacts", map[string]any{"email": "no@example.com", "attributes": map[string]any{"first_name": "No"}},
		http.StatusCreated)["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+blocked+"/suppressions", map[string]any{"reason": "do_not_contact"}, http.StatusCreated)

	run := func(contactID string) {
		started := s.call("POST", "/v1/journeys/e2e-sales-alert/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
		var res workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), "").Get(ctx, &res))
		require.Equal(t, model.RunCompleted, res.Status)
	}
	run(lead)
	run(blocked)

	enr, err := s.store.LastEnrollment(ctx, lead, "e2e-sales-alert")
	require.NoError(t, err)
	mu.Lock()
	require.Equal(t, []post{{key: fmt.Sprintf("enrollment/%s/alert_sales/1", enr.ID),
		body: map[string]any{"contact_id": lead, "email": "lead@example.com", "name": "Lin"}}}, posts,
		"one signed post, for the lead only")
	mu.Unlock()

	why := s.call("GET", "/v1/contacts/"+lead+"/journeys/e2e-sales-alert/steps/alert_sales/why", nil, http.StatusOK)
	require.Equal(t, "sent", why["state"], why)
	why = s.call("GET", "/v1/contacts/"+blocked+"/journeys/e2e-sales-alert/steps/alert_sales/why", nil, http.StatusOK)
	require.Equal(t, "skipped", why["state"], why)
	require.Contains(t, why["summary"], "suppressed:do_not_contact")
}
