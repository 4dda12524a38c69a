package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

// keyedCartJourney runs once per cart, and its own email cooldown of a day
// (skip rather than defer) shows whether the send gate counts a contact's
// runs together.
const keyedCartJourney = `
id: %s
name: Cart reminder, per cart
trigger: {type: event, event: cart.abandoned, key: cart_id}
reentry: {policy: once}
goal: {event: cart.recovered}
policy: {cooldowns: {email: 1d}, on_cap: skip}
steps:
  - id: reminder
    send:
      channel: email
      email: {subject: "Your cart", text: "Still thinking it over?"}
  - id: linger
    wait: {duration: 1h}
`

// Two carts make two runs on a real dev server, each with its own workflow
// id carrying a digest of its cart id, never the id; the same cart posted
// again makes no third, nor does it once its run has ended (re-entry
// once, per cart). The gate's cooldown applies across both runs. A
// cart.recovered for one cart converts only that cart's run, and support's
// exit ends the other.
func TestEndToEnd_OneRunPerCart(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-cart-keyed"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "lin@example.com", "attributes": map[string]any{"first_name": "Lin"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(keyedCartJourney, journeyID), http.StatusCreated)

	// Cart ids are whatever the shop sends: here, ones that name the person.
	const cart1, cart2 = "lin@example.com#cart-1", "lin@example.com#cart-2"
	post := func(eventID, name, cart string) {
		s.call("POST", "/v1/events", map[string]any{"event_id": eventID, "contact_id": contactID, "name": name,
			"properties": map[string]any{"cart_id": cart}}, http.StatusAccepted)
	}
	post("ab-1", "cart.abandoned", cart1)
	post("ab-2", "cart.abandoned", cart2)
	post("ab-1-again", "cart.abandoned", cart1)

	outcome := func(eventID string) string {
		var o string
		err := s.store.Pool().QueryRow(ctx, `SELECT COALESCE(outcome, '') FROM deliveries WHERE event_id = $1 AND kind = 'start'`, eventID).Scan(&o)
		require.NoError(t, err)
		return o
	}
	eventually(t, "every start delivered", func() bool { return outcome("ab-1-again") != "" && outcome("ab-2") != "" })
	require.Equal(t, "enrolled", outcome("ab-1"))
	require.Equal(t, "enrolled", outcome("ab-2"), "a second cart while the first run waits")
	require.Equal(t, "not_enrolled already_active", outcome("ab-1-again"), "the same cart twice")

	runs, err := s.store.ActiveRuns(ctx, contactID, journeyID)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	byCart := map[string]storage.Enrollment{}
	for _, r := range runs {
		var trigger string
		require.NoError(t, s.store.Pool().QueryRow(ctx, `SELECT event_id FROM deliveries WHERE enrollment_id = $1 AND kind = 'start'`, r.ID).Scan(&trigger))
		byCart[trigger] = r
	}
	run1, run2 := byCart["ab-1"], byCart["ab-2"]
	id := regexp.MustCompile(`^journey/` + journeyID + `/contact/` + regexp.QuoteMeta(contactID) + `/key/[0-9a-f]{32}$`)
	for _, r := range []storage.Enrollment{run1, run2} {
		require.Regexp(t, id, r.WorkflowID)
		require.NotContains(t, r.WorkflowID, "example.com", "no key value in a workflow id")
		require.NotContains(t, r.WorkflowID, "#cart", "no key value in a workflow id")
	}
	require.NotEqual(t, run1.WorkflowID, run2.WorkflowID)

	// Temporal has exactly these two runs, and nothing of the cart ids in
	// their histories.
	eventually(t, "both runs visible by ContactId", func() bool {
		resp, err := s.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf(`ContactId = %q AND JourneyId = %q`, contactID, journeyID),
		})
		return err == nil && len(resp.Executions) == 2
	})

	// Each run reached its send; the gate let one email go and skipped the
	// other on the contact's email cooldown, whichever run came first.
	eventually(t, "both runs past their send", func() bool {
		list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
		n := 0
		for _, e := range list["journeys"].([]any) {
			if e.(map[string]any)["current_step"] == "linger" {
				n++
			}
		}
		return n == 2
	})
	msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	statuses := map[model.MessageStatus]string{}
	for _, m := range msgs {
		statuses[m.Status] = m.StatusReason
	}
	require.Contains(t, statuses, model.MessageSent)
	require.Contains(t, statuses, model.MessageSkipped)
	require.Contains(t, statuses[model.MessageSkipped], policy.CodeCooldownEmail, "the cooldown counts the contact's other run")
	require.Len(t, s.sg.Requests(), 1)

	// Cart 2 is recovered: only its run converts.
	post("rec-2", "cart.recovered", cart2)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, run2.WorkflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunConverted, result.Status)
	desc, err := s.tc.DescribeWorkflowExecution(ctx, run1.WorkflowID, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status, "cart 1's run goes on")

	// Cart 2 abandoned again: its own re-entry rule (once) refuses it,
	// whatever cart 1 does.
	eventually(t, "cart 2's enrollment ended", func() bool {
		e, err := s.store.Enrollment(ctx, run2.ID)
		return err == nil && e.Status == model.RunConverted
	})
	post("ab-2-later", "cart.abandoned", cart2)
	eventually(t, "the later start delivered", func() bool { return outcome("ab-2-later") != "" })
	require.Equal(t, "not_enrolled reentry_refused", outcome("ab-2-later"))

	// Support's exit names the journey; the one run left ends.
	ex := s.call("POST", "/v1/contacts/"+contactID+"/journeys/"+journeyID+"/exit", map[string]any{"reason": "asked to stop"}, http.StatusAccepted)
	require.Len(t, ex["runs"], 1)
	require.Equal(t, run1.WorkflowID, ex["workflow_id"])
	require.NoError(t, s.tc.GetWorkflow(ctx, run1.WorkflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunExited, result.Status)

	for _, r := range []storage.Enrollment{run1, run2} {
		iter := s.tc.GetWorkflowHistory(ctx, r.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			require.NoError(t, err)
			require.False(t, strings.Contains(ev.String(), "cart-1") || strings.Contains(ev.String(), "cart-2") || strings.Contains(ev.String(), "lin@"),
				"history of %s holds a cart id: %s", r.WorkflowID, ev)
		}
	}
	list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
	ended := map[string]string{}
	for _, e := range list["journeys"].([]any) {
		ended[e.(map[string]any)["workflow_id"].(string)] = e.(map[string]any)["status"].(string)
	}
	require.Equal(t, map[string]string{run1.WorkflowID: "exited", run2.WorkflowID: "converted"}, ended)
}
