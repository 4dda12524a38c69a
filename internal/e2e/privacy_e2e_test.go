package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// Personal data and Temporal: a run's history keeps whatever the run was
// given, told or returned, so it must hold ids and codes only. These tests
// put an email address and a phone number where they used to leak (a CEL
// error quoting an attribute, support's exit reason) and search the raw
// history for them.

// conditionErrorsJourney hits each class of condition error on attributes
// holding the contact's email and phone (all but cost_limit, which needs a
// huge attribute and quotes nothing), then waits for support.
const conditionErrorsJourney = `
id: %s
name: Condition errors
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: bad_timestamp
    branch: {condition: 'timestamp(contact.signup_date) < journey.entered_at', then: bad_phone_timestamp, else: bad_phone_timestamp}
  - id: bad_phone_timestamp
    branch: {condition: 'timestamp(contact.phone) < journey.entered_at', then: bad_regex, else: bad_regex}
  - id: bad_regex
    branch: {condition: 'contact.email.matches(contact.pattern)', then: not_boolean, else: not_boolean}
  - id: not_boolean
    branch: {condition: 'contact.email', then: bad_key, else: bad_key}
  - id: bad_key
    branch: {condition: 'contact.prefs[contact.email] > 0.0', then: bad_type, else: bad_type}
  - id: bad_type
    branch: {condition: 'int(contact.email) > 0', then: bad_zone, else: bad_zone}
  - id: bad_zone
    branch: {condition: 'journey.entered_at.getHours(contact.email) > 8', then: bad_duration, else: bad_duration}
  - id: bad_duration
    branch: {condition: 'duration(contact.email) > duration("1h")', then: bad_division, else: bad_division}
  - id: bad_division
    branch: {condition: 'contact.phone.size() / int(contact.zero) > 0', then: bad_index, else: bad_index}
  - id: bad_index
    branch: {condition: 'contact.email.substring(99) == contact.phone', then: hold, else: hold}
  - id: hold
    wait: {duration: 24h}
`

func TestEndToEnd_NoPersonalDataInHistory(t *testing.T) {
	// A short history limit, so the run continues as new on the way and the
	// search covers a chain of runs.
	s := start(t, func(c *config.Config) { c.ContinueAsNewAfter = 25 })
	ctx := context.Background()
	const (
		email  = "jane.doe@example.com"
		phone  = "+14155550123"
		reason = "Customer Jane called from +1 (415) 555-0123, jane.doe@example.com: stop everything"
	)
	journeyID := "e2e-pii-history"
	created := s.call("POST", "/v1/contacts", map[string]any{"email": email, "phone": phone, "attributes": map[string]any{
		"first_name": "Jane", "signup_date": email, "pattern": "(" + phone, "prefs": map[string]any{"news": 1}, "zero": 0,
	}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/journeys", fmt.Sprintf(conditionErrorsJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)

	eventually(t, "the run holds after its branches", func() bool {
		list := s.call("GET", "/v1/contacts/"+contactID+"/journeys", nil, http.StatusOK)
		run := list["journeys"].([]any)[0].(map[string]any)
		return run["current_step"] == "hold"
	})
	exit := s.call("POST", "/v1/contacts/"+contactID+"/journeys/"+journeyID+"/exit", map[string]any{"reason": reason}, http.StatusAccepted)
	requestID := exit["exit_request"].(map[string]any)["id"].(string)
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, workflows.JourneyResult{Status: model.RunExited, ExitReason: workflows.ExitSupport}, result)

	// Support still reads their own words, from PostgreSQL.
	enr, err := s.store.LastEnrollment(ctx, contactID, journeyID)
	require.NoError(t, err)
	require.Equal(t, workflows.ExitSupport, enr.ExitReason)
	require.Equal(t, reason, enr.ExitNote)

	runs, err := temporaltest.WorkflowHistory(ctx, s.tc, workflowID, "")
	require.NoError(t, err)
	require.Greater(t, len(runs), 1, "the run continued as new")
	leaks, err := temporaltest.FindInHistory(ctx, s.tc, workflowID,
		email, "jane.doe", phone, "4155550123", "555-0123", "Customer Jane", "stop everything")
	require.NoError(t, err)
	require.Empty(t, leaks, "personal data in the history: %v", leaks)

	// The search sees where the values would be: the codes that replaced
	// them are found, in activity results and the exit signal.
	codes := []string{journey.CondInvalidTimestamp, journey.CondInvalidRegex, journey.CondNotBoolean,
		journey.CondNoSuchAttribute, journey.CondTypeMismatch, journey.CondInvalidDuration, journey.CondArithmetic,
		journey.CondIndexOutOfRange, workflows.ExitSupport, requestID}
	found, err := temporaltest.FindInHistory(ctx, s.tc, workflowID, codes...)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, h := range found {
		seen[h.Needle] = true
	}
	for _, c := range codes {
		require.True(t, seen[c], "%q is in the history", c)
	}
}

// A contact erased mid-journey: the run ends with the code erased, and
// nothing of the person is left in any table.
func TestEndToEnd_EraseContact(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	const email, phone, ext = "erin.erased@example.com", "+14155550177", "crm-erin-9"
	journeyID := "e2e-erase"
	created := s.call("POST", "/v1/contacts", map[string]any{"external_id": ext, "email": email, "phone": phone,
		"attributes": map[string]any{"first_name": "Erinna"}}, http.StatusCreated)
	contactID := created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup-form"}, http.StatusOK)
	s.call("POST", "/v1/contacts/"+contactID+"/consent", map[string]any{"channel": "sms", "status": "revoked", "source": "support: texted STOP"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(e2eJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": contactID}, http.StatusCreated)
	workflowID := started["workflow_id"].(string)
	eventually(t, "welcome email sent", func() bool { return len(s.sg.Requests()) == 1 })
	s.call("POST", "/v1/events", map[string]any{"event_id": "erin-1", "contact_id": contactID, "name": "page.viewed",
		"properties": map[string]any{"search": "Erinna " + email}}, http.StatusAccepted)

	erased := s.call("DELETE", "/v1/contacts/"+contactID, nil, http.StatusOK)
	require.Equal(t, []any{workflowID}, erased["runs_told_to_end"])
	var result workflows.JourneyResult
	require.NoError(t, s.tc.GetWorkflow(ctx, workflowID, "").Get(ctx, &result))
	require.Equal(t, workflows.JourneyResult{Status: model.RunExited, ExitReason: workflows.ExitErased}, result)

	hits, err := storagetest.FindText(ctx, s.store.Pool(), email, phone, ext, "Erinna")
	require.NoError(t, err)
	require.Empty(t, hits, storagetest.DescribeHits(hits))
	e, err := s.store.ContactErasure(ctx, contactID)
	require.NoError(t, err)
	require.Equal(t, []string{workflowID}, e.ActiveRuns)
	require.Positive(t, e.ProofsKept)

	// She comes back in a later import: her SMS opt-out is in force again,
	// her email consent is not assumed.
	back := s.call("POST", "/v1/contacts", map[string]any{"email": email, "phone": phone}, http.StatusCreated)
	consents, err := s.store.Consents(ctx, back["contact"].(map[string]any)["id"].(string))
	require.NoError(t, err)
	require.NotContains(t, consents, journey.ChannelEmail)
	require.Equal(t, model.ConsentRevoked, consents[journey.ChannelSMS].Status)
}
