package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

const waterfallJourney = `
id: %s
name: Waterfall
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: remind
    send:
      waterfall: [{channel: email}, {channel: sms, after: %s}]
      email: {subject: "Your cart", text: "Still there"}
      sms: {body: "Your cart is waiting"}
`

// A waterfall through the real worker, API, dispatcher and gate: each
// stage is its own message through the send gate, and an open that the
// webhook path would store (here POST /v1/events) stops the next stage.
func TestEndToEnd_Waterfall(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	newContact := func(ext, phone string) string {
		created := s.call("POST", "/v1/contacts", map[string]any{"external_id": ext, "email": ext + "@example.com", "phone": phone}, http.StatusCreated)
		id := created["contact"].(map[string]any)["id"].(string)
		s.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "form"}, http.StatusOK)
		return id
	}
	run := func(journeyID, contactID string) workflows.JourneyResult {
		started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
		var res workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), "").Get(ctx, &res))
		return res
	}

	t.Run("no engagement: the sms stage goes to the gate, which holds it for want of consent", func(t *testing.T) {
		s.call("POST", "/v1/journeys", fmt.Sprintf(waterfallJourney, "e2e-waterfall-quiet", "2s"), http.StatusCreated)
		c := newContact("wf-quiet", "+14155550142")
		res := run("e2e-waterfall-quiet", c)
		require.Equal(t, model.RunCompleted, res.Status)
		msgs, err := s.store.MessagesForContact(ctx, c, 10)
		require.NoError(t, err)
		byChannel := map[journey.Channel]model.MessageStatus{}
		for _, m := range msgs {
			byChannel[m.Channel] = m.Status
		}
		require.Equal(t, model.MessageSent, byChannel[journey.ChannelEmail])
		why := s.call("GET", "/v1/contacts/"+c+"/journeys/e2e-waterfall-quiet/steps/remind/why", nil, http.StatusOK)
		ds := why["decisions"].([]any)
		require.Len(t, ds, 2, "one gate decision per stage: %v", why)
		newest := ds[0].(map[string]any)
		require.Equal(t, "sms", newest["channel"])
		require.Equal(t, "skip", newest["outcome"])
		require.Len(t, s.tw.Requests(), 0, "no SMS without consent")
	})

	t.Run("an open stops the waterfall", func(t *testing.T) {
		s.call("POST", "/v1/journeys", fmt.Sprintf(waterfallJourney, "e2e-waterfall-open", "1h"), http.StatusCreated)
		c := newContact("wf-open", "+14155550143")
		started := s.call("POST", "/v1/journeys/e2e-waterfall-open/enrollments", map[string]any{"contact_id": c}, http.StatusCreated)
		eventually(t, "email sent", func() bool {
			msgs, err := s.store.MessagesForContact(ctx, c, 10)
			return err == nil && len(msgs) == 1 && msgs[0].Status == model.MessageSent
		})
		s.call("POST", "/v1/events", map[string]any{"event_id": "open-wf-1", "contact_id": c, "name": "email.opened"}, http.StatusAccepted)
		var res workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), "").Get(ctx, &res))
		require.Equal(t, model.RunCompleted, res.Status)
		why := s.call("GET", "/v1/contacts/"+c+"/journeys/e2e-waterfall-open/steps/remind/why", nil, http.StatusOK)
		require.Len(t, why["decisions"].([]any), 1, "the sms stage never reached the gate")
	})
}
