package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

const (
	e2eScoreModel = `
id: e2e
intent:
  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 40, half_life: 7d}
bands:
  intent: [{name: cold, below: 30}, {name: hot}]
`
	// hotJourney starts at a band change and emails the contact.
	hotJourney = `
id: %s
name: Hot lead
trigger: {type: event, event: score.band_changed}
reentry: {policy: always}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Still looking?", text: "Let us talk pricing"}
  - id: rest
    wait: {duration: 1h}
`
	// nurtureJourney runs until a band change ends it.
	nurtureJourney = `
id: %s
name: Nurture
trigger: {type: api}
reentry: {policy: once}
exit_events: [score.band_changed]
steps:
  - id: slow
    wait: {duration: 24h}
`
)

// A contact's intent crosses into hot on a tracked event, with the worker,
// its dispatcher and its scorer running on the dev server: the scorer
// stores score.band_changed, the hot-lead journey it triggers starts and
// sends, and the nurture journey the contact was in exits on it.
func TestEndToEnd_LeadScoreBandChange(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	scoreCtx, stopScoring := context.WithCancel(ctx)
	var scoring sync.WaitGroup
	scoring.Go(func() { api.NewScorer(s.store, s.logger).Run(scoreCtx) })
	t.Cleanup(func() {
		stopScoring()
		scoring.Wait()
	})
	hot, nurture := "e2e-hot-lead", "e2e-nurture"

	s.call("PUT", "/v1/score-model", e2eScoreModel, http.StatusCreated)
	s.call("POST", "/v1/journeys", fmt.Sprintf(hotJourney, hot), http.StatusCreated)
	s.call("POST", "/v1/journeys", fmt.Sprintf(nurtureJourney, nurture), http.StatusCreated)
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "lead@example.com"}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
	s.call("POST", "/v1/journeys/"+nurture+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)

	s.call("POST", "/v1/events", map[string]any{"event_id": "pv-1", "contact_id": contactID, "name": "page.viewed",
		"properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)

	eventually(t, "the hot-lead email sent", func() bool { return len(s.sg.Requests()) == 1 })
	require.Equal(t, "lead@example.com", s.sg.Requests()[0].Body.Personalizations[0].To[0].Email)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflows.JourneyWorkflowID(nurture, contactID), "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status)

	score := s.call("GET", "/v1/contacts/"+contactID+"/score", nil, http.StatusOK)
	require.Equal(t, "hot", score["bands"].(map[string]any)["intent"])
	require.Equal(t, "hot", score["stored"].(map[string]any)["bands"].(map[string]any)["intent"])
	evs, err := s.store.EventsForContact(ctx, contactID, 10)
	require.NoError(t, err)
	var changes []map[string]any
	for _, e := range evs {
		if e.Name == "score.band_changed" {
			changes = append(changes, e.Properties)
		}
	}
	require.Equal(t, []map[string]any{{"score": "intent", "from": "cold", "to": "hot"}}, changes)
}
