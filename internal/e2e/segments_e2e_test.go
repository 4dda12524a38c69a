package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

const e2eHotLeads = `
id: e2e_hot
name: Hot leads
when: >
  contact.?plan.orValue("") == "pro"
  && consent.email == "granted"
  && events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 2
`

const e2eHotJourney = `
id: e2e-hot-nurture
name: Hot nurture
trigger: {type: segment, segment: e2e_hot}
exit_when_leaving: e2e_hot
reentry: {policy: always}
steps:
  - id: pricing_help
    send:
      channel: email
      email: {subject: "Questions about pricing?", text: "Reply and a human answers."}
  - id: hold
    wait: {duration: 30d}
`

// On a real dev server, with the worker and its dispatcher: two pricing
// views make a pro contact a hot lead, the entry starts the
// segment-triggered journey, which sends its email; the plan changing takes
// them out of the segment, and the run ends as exited because of it.
func TestEndToEnd_SegmentEntryStartsAJourneyAndLeavingEndsIt(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	s.call("PUT", "/v1/segments/e2e_hot", e2eHotLeads, http.StatusCreated)
	s.call("POST", "/v1/journeys", e2eHotJourney, http.StatusCreated)

	created := s.call("POST", "/v1/contacts", map[string]any{"email": "hot@example.com", "attributes": map[string]any{"plan": "pro"}}, http.StatusCreated)
	id := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
	for _, ev := range []string{"view-1", "view-2"} {
		s.call("POST", "/v1/events", map[string]any{"event_id": ev, "contact_id": id, "name": "page.viewed",
			"properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)
	}

	eventually(t, "the journey's email sent", func() bool { return len(s.sg.Requests()) == 1 })
	workflowID := workflows.JourneyWorkflowID("e2e-hot-nurture", id)
	eventually(t, "the run waiting", func() bool {
		list := s.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
		js := list["journeys"].([]any)
		return len(js) == 1 && js[0].(map[string]any)["current_step"] == "hold"
	})

	// The contact moves to the free plan: out of the segment, out of the run.
	s.call("POST", "/v1/contacts", map[string]any{"id": id, "attributes": map[string]any{"plan": "free"}}, http.StatusOK)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status)
	require.Equal(t, "left segment: e2e_hot", result.ExitReason)

	history := s.call("GET", "/v1/contacts/"+id+"/segments", nil, http.StatusOK)
	ms := history["memberships"].([]any)
	require.Len(t, ms, 1)
	require.NotEmpty(t, ms[0].(map[string]any)["exited_at"])
	var entered, exited int
	require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE name = 'segment.entered'), count(*) FILTER (WHERE name = 'segment.exited')
		FROM events WHERE contact_id = $1`, id).Scan(&entered, &exited))
	require.Equal(t, [2]int{1, 1}, [2]int{entered, exited})
	require.Len(t, s.sg.Requests(), 1)

	// The segment travelled through Temporal by id; the person did not.
	found, err := temporaltest.FindInHistory(ctx, s.tc, workflowID, "hot@example.com", "e2e_hot")
	require.NoError(t, err)
	needles := map[string]bool{}
	for _, h := range found {
		needles[h.Needle] = true
	}
	require.Equal(t, map[string]bool{"e2e_hot": true}, needles)
}
