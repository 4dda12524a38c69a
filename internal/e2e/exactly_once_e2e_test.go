package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/workflows"
)

const reentryJourney = `
id: %s
name: Cart reminder
trigger: {type: api}
reentry: {policy: always}
steps:
  - id: reminder
    send:
      channel: email
      email: {subject: "You left something in your cart", text: "Hello {{ .contact.first_name }}"}
`

// A contact who re-enters a journey gets its messages again: each run has
// its own idempotency keys, while a retry within a run keeps its key.
func TestEndToEnd_ReentrySendsAgain(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	journeyID := "e2e-reentry"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "rae@example.com", "attributes": map[string]any{"first_name": "Rae"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(reentryJourney, journeyID), http.StatusCreated)

	var enrollments []string
	for run := 1; run <= 2; run++ {
		started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
		enrollments = append(enrollments, started["enrollment"].(map[string]any)["id"].(string))
		var result workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), started["run_id"].(string)).Get(ctx, &result))
		require.Equal(t, model.RunCompleted, result.Status)
		require.Len(t, s.sg.Accepted(), run, "run %d sent its reminder", run)
	}
	msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	for i, m := range msgs {
		require.Equal(t, model.MessageSent, m.Status)
		require.Equal(t, "enrollment/"+enrollments[len(msgs)-1-i]+"/reminder/1", m.IdempotencyKey)
	}
}

const optOutRaceJourney = `
id: %s
name: One message
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: hello
    send:
      channel: %s
      %s
`

// The opt-out race of the issue, on the real system: each send is held by
// the worker right after the gate reserved it, while the contact opts out -
// by a signed Twilio STOP, a consent API revoke, or a signed SendGrid
// unsubscribe - and the opt-out is answered 2xx. Once released, none of the
// held sends reaches the provider, and the ledger says why.
func TestEndToEnd_AcknowledgedOptOutIsFinal(t *testing.T) {
	s := start(t)
	hooks := startHooks(t, s)
	ctx := context.Background()

	var mu sync.Mutex
	held := map[string]chan chan struct{}{}
	s.delivery.Faults = &delivery.Faults{AfterReserve: func(_ context.Context, m storage.Message) {
		mu.Lock()
		hand := held[m.ContactID]
		mu.Unlock()
		if hand == nil {
			return
		}
		resume := make(chan struct{})
		hand <- resume
		<-resume
	}}

	type optOut struct {
		name    string
		channel string
		do      func(contactID, phone, email string)
	}
	kinds := []optOut{
		{"signed Twilio STOP", "sms", func(_, phone, _ string) {
			status, raw := hooks.twilioInbound("SMstop"+phone[1:], phone, "STOP")
			require.Equal(t, http.StatusOK, status, raw)
		}},
		{"consent API revoke", "sms", func(contactID, _, _ string) {
			s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "sms", "status": "revoked", "source": "support"}, http.StatusOK)
		}},
		{"consent API revoke", "email", func(contactID, _, _ string) {
			s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "revoked", "source": "support"}, http.StatusOK)
		}},
		{"signed SendGrid unsubscribe", "email", func(_, _, email string) {
			status, raw := hooks.sendGrid(map[string]any{"email": email, "event": "unsubscribe",
				"timestamp": time.Now().Unix(), "sg_event_id": "unsub-" + email})
			require.Equal(t, http.StatusOK, status, raw)
		}},
	}
	bodies := map[string]string{
		"sms":   `sms: {body: "Hi, reply STOP to opt out"}`,
		"email": `email: {subject: "Hi", text: "Hello"}`,
	}
	for _, ch := range []string{"sms", "email"} {
		s.call("POST", "/v1/journeys", fmt.Sprintf(optOutRaceJourney, "e2e-race-"+ch, ch, bodies[ch]), http.StatusCreated)
	}

	const contacts = 20
	var wg sync.WaitGroup
	for i := range contacts {
		kind := kinds[i%len(kinds)]
		phone := fmt.Sprintf("+1415555%04d", 3000+i)
		email := fmt.Sprintf("race%d@example.com", i)
		created := s.call("POST", "/v1/contacts", map[string]any{"email": email, "phone": phone}, http.StatusCreated)
		contactID := created["contact"].(map[string]any)["id"].(string)
		// Given at signup, an hour ago: SendGrid stamps events in whole
		// seconds, and a grant in the unsubscribe's own second would be the
		// later decision and stay in force.
		grant := map[string]any{"channel": kind.channel, "status": "granted", "source": "test",
			"occurred_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
		if kind.channel == "sms" {
			grant["double_opt_in_confirmed"] = true
		}
		s.call("POST", "/v1/contacts/"+contactID+"/consent", grant, http.StatusOK)
		hand := make(chan chan struct{}, 1)
		mu.Lock()
		held[contactID] = hand
		mu.Unlock()
		wg.Go(func() {
			started := s.call("POST", "/v1/journeys/e2e-race-"+kind.channel+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
			resume := <-hand // the send is reserved and held
			kind.do(contactID, phone, email)
			close(resume) // the opt-out was answered 2xx: let the send go on
			var result workflows.JourneyResult
			require.NoError(t, s.tc.GetWorkflow(ctx, started["workflow_id"].(string), "").Get(ctx, &result))
			msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
			require.NoError(t, err)
			require.Len(t, msgs, 1, "%s (contact %d)", kind.name, i)
			require.Equal(t, model.MessageSkipped, msgs[0].Status, "%s (contact %d)", kind.name, i)
			require.Equal(t, storage.ReasonConsentRevoked, msgs[0].StatusReason, "%s (contact %d)", kind.name, i)
		})
	}
	wg.Wait()
	require.Empty(t, s.tw.Requests(), "no SMS reached Twilio after an acknowledged opt-out")
	require.Empty(t, s.sg.Requests(), "no email reached SendGrid after an acknowledged opt-out")
}
