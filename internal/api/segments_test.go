package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/workflows"
)

const hotLeads = `
id: hot_leads
name: Hot leads
when: >
  consent.email == "granted"
  && contact.?plan.orValue("") == "pro"
  && events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 2
`

// hotJourney starts on entering hot_leads and ends when the contact leaves it.
const hotJourney = `
id: hot_nurture
name: Hot nurture
trigger: {type: segment, segment: hot_leads}
exit_when_leaving: hot_leads
reentry: {policy: always}
steps:
  - id: hold
    wait: {duration: 30d}
`

func TestDefineSegmentRefusesBadDefinitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Bearer " + token
	r := h.do("PUT", "/v1/segments/hot_leads", "id: hot_leads\nwhen: 'events.count(\"x\") >'\n", "application/yaml", auth)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Equal(t, "invalid_segment", r.errorCode())
	require.ElementsMatch(t, []string{"name", "when"}, r.fieldPaths())

	r = h.do("PUT", "/v1/segments/hot_leads", strings.Replace(hotLeads, "id: hot_leads", "id: warm_leads", 1), "application/yaml", auth)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Equal(t, []string{"id"}, r.fieldPaths())

	r = h.do("PUT", "/v1/segments/hot_leads", hotLeads+"\nlimit: 3\n", "application/yaml", auth)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, r.raw)
	require.Equal(t, []string{"limit"}, r.fieldPaths())

	r = h.do("PUT", "/v1/segments/hot_leads", "", "application/yaml", auth)
	require.Equal(t, http.StatusBadRequest, r.status, r.raw)
	require.Zero(t, h.count("segment_versions"))

	// Entries and exits are Tutti's to record, not a client's to post.
	r = h.call("POST", "/v1/events", map[string]any{"event_id": "fake", "contact_id": h.newContact(map[string]any{"email": "f@example.com"}),
		"name": "segment.entered", "properties": map[string]any{"segment": "hot_leads"}}, http.StatusBadRequest)
	require.Equal(t, []string{"name"}, r.fieldPaths())

	h.call("GET", "/v1/segments/nope/members", nil, http.StatusNotFound)
	h.call("GET", "/v1/contacts/c_nope/segments", nil, http.StatusNotFound)
}

// A contact's pricing views and attribute move them into hot_leads; the
// entry starts the segment-triggered journey; leaving signals the run
// with the segment's exit, naming the segment.
func TestSegmentsEndToEndThroughTheAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	auth := "Bearer " + token
	r := h.do("PUT", "/v1/segments/hot_leads", hotLeads, "application/yaml", auth)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.Equal(t, float64(1), r.body["version"])
	require.Equal(t, true, r.body["time_dependent"])
	r = h.do("PUT", "/v1/segments/hot_leads", hotLeads, "application/yaml", auth)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, false, r.body["created"])
	h.publish(hotJourney)

	id := h.newContact(map[string]any{"email": "hot@example.com", "attributes": map[string]any{"plan": "pro"}})
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
	for _, ev := range []string{"ev-p1", "ev-p2"} {
		h.call("POST", "/v1/events", map[string]any{"event_id": ev, "contact_id": id, "name": "page.viewed", "properties": map[string]any{"path": "/pricing"}}, http.StatusAccepted)
	}
	h.drain()

	r = h.call("GET", "/v1/segments", nil, http.StatusOK)
	segs := r.body["segments"].([]any)
	require.Len(t, segs, 1)
	require.Equal(t, float64(1), segs[0].(map[string]any)["members"])
	r = h.call("GET", "/v1/segments/hot_leads/members?limit=1", nil, http.StatusOK)
	require.Equal(t, id, r.body["members"].([]any)[0].(map[string]any)["contact_id"])
	require.Equal(t, id, r.body["next"])
	r = h.call("GET", "/v1/segments/hot_leads/members?after="+id, nil, http.StatusOK)
	require.Empty(t, r.body["members"])

	r = h.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
	require.Contains(t, r.raw, `"journey_id":"hot_nurture"`)
	workflowID := workflows.JourneyWorkflowID("hot_nurture", id)
	require.Contains(t, h.startedInput(workflowID), `"name":"segment.entered"`)

	// Leaving: the attribute changes.
	h.call("POST", "/v1/contacts", map[string]any{"id": id, "attributes": map[string]any{"plan": "free"}}, http.StatusOK)
	h.drain()
	signals := strings.Join(h.signalPayloads(workflowID, "event", "events"), "\n")
	require.Contains(t, signals, `"name":"segment.exited"`)
	require.Contains(t, signals, `"segment":"hot_leads"`)

	r = h.call("GET", "/v1/contacts/"+id+"/segments", nil, http.StatusOK)
	ms := r.body["memberships"].([]any)
	require.Len(t, ms, 1)
	require.NotEmpty(t, ms[0].(map[string]any)["exited_at"])
	now := r.body["now"].([]any)[0].(map[string]any)
	require.Equal(t, false, now["member"])
	var held []bool
	for _, c := range now["clauses"].([]any) {
		held = append(held, c.(map[string]any)["held"].(bool))
	}
	require.Equal(t, []bool{true, false, true}, held, "only the plan clause fails")
}
