package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/audience"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// Defining an audience stores it and starts its one sync workflow; lists,
// members and a contact's rows and ledger follow; bad fields are named.
func TestAudiences(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	body := map[string]any{"name": "Hot leads (Meta)", "destination": "meta", "external_id": "23850000000000001"}
	r := h.call("PUT", "/v1/audiences/hot_meta", body, http.StatusCreated)
	require.Equal(t, "hot_meta", r.body["id"])
	require.Nil(t, r.body["sync_error"])
	d, err := h.tc.DescribeWorkflowExecution(ctx, workflows.AudienceSyncWorkflowID("hot_meta"), "")
	require.NoError(t, err)
	run := d.WorkflowExecutionInfo.Execution.RunId
	// Defining it again changes it, and keeps the one sync.
	body["name"] = "Hot leads"
	r = h.call("PUT", "/v1/audiences/hot_meta", body, http.StatusOK)
	require.Equal(t, "Hot leads", r.body["name"])
	d, err = h.tc.DescribeWorkflowExecution(ctx, workflows.AudienceSyncWorkflowID("hot_meta"), "")
	require.NoError(t, err)
	require.Equal(t, run, d.WorkflowExecutionInfo.Execution.RunId)
	t.Cleanup(func() {
		_ = h.tc.TerminateWorkflow(context.Background(), workflows.AudienceSyncWorkflowID("hot_meta"), "", "test over")
	})

	c := h.newContact(map[string]any{"email": "hot@example.com"})
	_, _, err = h.store.RecordConsent(ctx, c, journey.ChannelAds, model.ConsentGranted, "form", time.Time{})
	require.NoError(t, err)
	out, err := h.store.RequestAudienceChange(ctx, "hot_meta", c, audience.Add, "journey:hot/ads")
	require.NoError(t, err)
	require.Equal(t, "queued", out)

	r = h.call("GET", "/v1/audiences", nil, http.StatusOK)
	list := r.body["audiences"].([]any)
	require.Len(t, list, 1)
	require.Equal(t, float64(1), list[0].(map[string]any)["counts"].(map[string]any)["pending_add"])
	r = h.call("GET", "/v1/audiences/hot_meta/members?limit=10", nil, http.StatusOK)
	require.Len(t, r.body["members"].([]any), 1)
	r = h.call("GET", "/v1/contacts/"+c+"/audiences", nil, http.StatusOK)
	require.Equal(t, "journey:hot/ads", r.body["audiences"].([]any)[0].(map[string]any)["desired_by"])
	h.call("GET", "/v1/audiences/nope", nil, http.StatusNotFound)
	h.call("GET", "/v1/audiences/nope/members", nil, http.StatusNotFound)

	for _, tt := range []struct {
		path  string
		body  map[string]any
		paths []string
	}{
		{"/v1/audiences/Bad%20Id", map[string]any{"name": "x", "destination": "meta", "external_id": "1"}, []string{"audience_id"}},
		{"/v1/audiences/ok", map[string]any{"name": "", "destination": "tiktok", "external_id": "1/../2"}, []string{"name", "destination", "external_id"}},
	} {
		r := h.call("PUT", tt.path, tt.body, http.StatusBadRequest)
		require.ElementsMatch(t, tt.paths, r.fieldPaths(), r.raw)
	}
}
