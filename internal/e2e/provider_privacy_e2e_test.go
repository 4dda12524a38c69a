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

const providerErrorsJourney = `
id: %s
name: Every provider error
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: email_refused
    send: {channel: email, email: {subject: "Hi", text: "Hello"}}
  - id: email_retried
    send: {channel: email, email: {subject: "Hi again", text: "Hello again"}}
  - id: sms_invalid
    send: {channel: sms, sms: {body: "Hi"}}
  - id: sms_opted_out
    send: {channel: sms, sms: {body: "Last one"}}
`

// Provider error text quotes the address (Twilio's 21211 quotes the number,
// a SendGrid 400 the email). A run that hits every provider error path -
// permanent refusals, a 5xx that is retried, a 21610 opt-out -
// keeps only codes in its history: the raw history holds neither address.
func TestEndToEnd_ProviderErrorsKeepAddressesOutOfHistory(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	const email, phone = "quoted.person@example.com", "+14155550188"
	journeyID := "e2e-provider-errors"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": email, "phone": phone}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "sms", "status": "granted", "source": "test", "double_opt_in_confirmed": true}, http.StatusOK)

	s.sg.FailNext(1, http.StatusBadRequest, `{"errors":[{"message":"The email address `+email+` is not valid.","field":"personalizations.0.to.0.email"}]}`)
	s.sg.FailNext(1, http.StatusInternalServerError, `{"errors":[{"message":"could not deliver to `+email+`, try later"}]}`)
	s.tw.FailNext(1, http.StatusBadRequest, `{"code":21211,"message":"The 'To' number `+phone+` is not a valid phone number.","status":400}`)
	// The last SMS meets a recipient who replied STOP at Twilio.
	s.tw.FailNext(1, http.StatusBadRequest, `{"code":21610,"message":"Attempt to send to unsubscribed recipient `+phone+`","status":400}`)
	s.call("POST", "/v1/journeys", fmt.Sprintf(providerErrorsJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, model.RunCompleted, result.Status)

	leaks, err := temporaltest.FindInHistory(ctx, s.tc, workflowID, email, "quoted.person", phone, "4155550188")
	require.NoError(t, err)
	require.Empty(t, leaks, "personal data in the history: %v", leaks)
	// The scan does reach the results: the codes are there.
	found, err := temporaltest.FindInHistory(ctx, s.tc, workflowID, "sendgrid:http_400", "twilio:21211", "twilio:21610")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, h := range found {
		seen[h.Needle] = true
	}
	require.Len(t, seen, 3, "codes found: %v", found)

	// Support still reads the provider's words, in Postgres.
	msgs, err := s.store.MessagesForContact(ctx, contactID, 10)
	require.NoError(t, err)
	details := map[string]string{}
	for _, m := range msgs {
		details[m.StepID] = m.StatusReason + " / " + m.StatusDetail
	}
	require.Contains(t, details["email_refused"], "is not valid")
	require.Contains(t, details["sms_invalid"], "not a valid phone number")
}
