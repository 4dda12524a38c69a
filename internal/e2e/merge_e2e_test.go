package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// A contact merged mid-journey: on the real dev server, with a worker and
// the outbox dispatcher, its run ends with the code merged, the enrollment
// says into which contact, the survivor's own run carries on, and the
// absorbed run's history holds neither contact's email nor phone.
func TestEndToEnd_MergeEndsTheAbsorbedRun(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-merge"
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	person := func(body map[string]any) (string, string) {
		created := s.call("POST", "/v1/contacts", body, http.StatusCreated)
		id := created["contact"].(map[string]any)["id"].(string)
		s.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
		started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": id}, http.StatusCreated)
		return id, started["workflow_id"].(string)
	}
	sv, svRun := person(map[string]any{"email": "ada@example.com", "attributes": map[string]any{"first_name": "Ada"}})
	ab, abRun := person(map[string]any{"email": "ada.l@example.com", "phone": "+14155550177", "attributes": map[string]any{"first_name": "Ada"}})
	eventually(t, "both welcome emails sent", func() bool { return len(s.sg.Requests()) == 2 })

	merged := s.call("POST", "/v1/contacts/"+sv+"/merge", map[string]any{"absorb": ab}, http.StatusOK)
	require.Equal(t, []any{abRun}, merged["runs_exiting"])
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, abRun, "").Get(ctx, &result))
	require.Equal(t, workflows.JourneyResult{Status: model.RunExited, ExitReason: workflows.ExitMerged}, result)
	eventually(t, "the absorbed run's enrollment ended", func() bool {
		enr, err := s.store.LastEnrollment(ctx, ab, journeyID)
		return err == nil && enr.Status == model.RunExited
	})
	enr, err := s.store.LastEnrollment(ctx, ab, journeyID)
	require.NoError(t, err)
	require.Equal(t, workflows.ExitMerged, enr.ExitReason)
	require.Equal(t, "merged into contact "+sv, enr.ExitNote)

	svEnr, err := s.store.LastEnrollment(ctx, sv, journeyID)
	require.NoError(t, err)
	require.Equal(t, model.RunActive, svEnr.Status, "the survivor's run carries on")
	require.Equal(t, svRun, svEnr.WorkflowID)

	leaks, err := temporaltest.FindInHistory(ctx, s.tc, abRun, "ada@example.com", "ada.l@example.com", "4155550177")
	require.NoError(t, err)
	require.Empty(t, leaks, "personal data in the history: %v", leaks)
}
