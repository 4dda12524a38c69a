package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// Issue 11's proof, on the real dev server with the worker, its
// dispatcher, its scorer and the audience syncs running: a contact's
// intent crosses into hot -> the contact enters the hot segment -> is
// added to the Meta and Google audiences that follow it -> the hot-band
// journey starts and the nurture journey exits -> the contact buys -> the
// hot journey ends converted, the contact leaves the segment and is
// removed from both audiences; the once-only journey keeps its one run.
func TestEndToEnd_HotLeadAudiences(t *testing.T) {
	s := start(t, func(c *config.Config) { c.AudienceSyncInterval = time.Second })
	ctx := context.Background()
	scoreCtx, stopScoring := context.WithCancel(ctx)
	var scoring sync.WaitGroup
	scoring.Go(func() { api.NewScorer(s.store, s.logger).Run(scoreCtx) })
	t.Cleanup(func() {
		stopScoring()
		scoring.Wait()
	})
	hot, nurture := "e2e-aud-hot", "e2e-aud-nurture"

	s.call("PUT", "/v1/score-model", e2eScoreModel, http.StatusCreated)
	s.call("PUT", "/v1/segments/e2e_aud_hot", `
id: e2e_aud_hot
name: Hot leads who have not bought
when: score.intent_band == "hot" && events.count("purchase", days(30)) == 0
`, http.StatusCreated)
	for _, a := range []struct{ id, dest, list string }{{"e2e_hot_meta", "meta", "23850000000000042"}, {"e2e_hot_google", "google", "4242"}} {
		s.call("PUT", "/v1/audiences/"+a.id, map[string]any{"name": "Hot leads", "destination": a.dest, "external_id": a.list,
			"segment": "e2e_aud_hot"}, http.StatusCreated)
		t.Cleanup(func() {
			_ = s.tc.TerminateWorkflow(context.Background(), workflows.AudienceSyncWorkflowID(a.id), "", "test over")
		})
	}
	s.call("POST", "/v1/journeys", fmt.Sprintf(`
id: %s
name: Hot lead
trigger: {type: segment, segment: e2e_aud_hot}
reentry: {policy: once}
goal: {event: purchase}
steps:
  - id: hello
    send:
      channel: email
      email: {subject: "Still looking?", text: "Let us talk pricing"}
  - id: rest
    wait: {duration: 24h}
`, hot), http.StatusCreated)
	s.call("POST", "/v1/journeys", fmt.Sprintf(`
id: %s
name: Nurture
trigger: {type: api}
reentry: {policy: once}
exit_events: [segment.entered]
steps:
  - id: slow
    wait: {duration: 24h}
`, nurture), http.StatusCreated)

	created := s.call("POST", "/v1/contacts", map[string]any{"email": "Lead@Example.com", "phone": "+14155550142"}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	for _, ch := range []string{"email", "ads"} {
		s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": ch, "status": "granted", "source": "form"}, http.StatusOK)
	}
	s.call("POST", "/v1/journeys/"+nurture+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)

	// Intent crosses into hot.
	s.call("POST", "/v1/events", map[string]any{"event_id": "aud-pv-1", "contact_id": contactID, "name": "page.viewed",
		"properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)

	emailHash := audience.HashOf("lead@example.com").String()
	inList := func(platform, list string) bool { return slices.Contains(s.ads.Members(platform, list), emailHash) }
	eventually(t, "the contact in the Meta audience", func() bool { return inList("meta", "23850000000000042") })
	eventually(t, "the contact in the Google audience", func() bool { return inList("google", "4242") })
	eventually(t, "the hot-lead email sent", func() bool { return len(s.sg.Requests()) == 1 })
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflows.JourneyWorkflowID(nurture, contactID), "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status, "the nurture journey exits when the contact enters the segment")
	for _, r := range s.ads.Malformed() {
		t.Errorf("an ad platform refused a request as malformed: %+v", r)
	}

	// The contact buys.
	s.call("POST", "/v1/events", map[string]any{"event_id": "aud-buy-1", "contact_id": contactID, "name": "purchase"}, http.StatusAccepted)
	require.NoError(t, s.tc.GetWorkflow(ctx, workflows.JourneyWorkflowID(hot, contactID), "").Get(ctx, &result))
	require.Equal(t, model.RunConverted, result.Status)
	eventually(t, "the contact out of the Meta audience", func() bool { return !inList("meta", "23850000000000042") })
	eventually(t, "the contact out of the Google audience", func() bool { return !inList("google", "4242") })

	aud := s.call("GET", "/v1/contacts/"+contactID+"/audiences", nil, http.StatusOK)
	var results []string
	for _, e := range aud["ledger"].([]any) {
		entry := e.(map[string]any)
		results = append(results, entry["audience_id"].(string)+" "+entry["action"].(string)+" "+entry["result"].(string))
	}
	require.ElementsMatch(t, []string{"e2e_hot_meta add applied", "e2e_hot_google add applied",
		"e2e_hot_meta remove applied", "e2e_hot_google remove applied"}, results)
	// One run of the once-only hot journey: the converted one.
	runs := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
	var hotRuns int
	for _, r := range runs["journeys"].([]any) {
		if r.(map[string]any)["journey_id"] == hot {
			hotRuns++
		}
	}
	require.Equal(t, 1, hotRuns)
}
