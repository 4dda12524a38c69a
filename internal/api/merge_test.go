package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/workflows"
)

// A merge is answered once PostgreSQL has committed, with Temporal down;
// the absorbed contact's run then hears, through the outbox, the code
// merged and the exit request's id, and nothing that names the person.
func TestMergeContact_RunsExitMergedThroughTheOutbox(t *testing.T) {
	h := newHarness(t)
	h.publish(welcome("welcome", "{policy: once}"))
	sv := h.newContact(map[string]any{"external_id": "web-1", "email": "sam@example.com", "attributes": map[string]any{"plan": "pro"}})
	ab := h.newContact(map[string]any{"external_id": "pos-1", "email": "samantha@example.com", "phone": "+14155550142",
		"attributes": map[string]any{"plan": "free", "city": "Lyon"}})
	h.call("POST", "/v1/contacts/"+ab+"/consent", map[string]any{"channel": "sms", "status": "granted", "source": "pos-form"}, http.StatusOK)
	started := h.call("POST", "/v1/journeys/welcome/enrollments", map[string]any{"contact_id": ab}, http.StatusCreated)
	wfID := started.body["workflow_id"].(string)

	down := h.withTemporal(unreachableTemporal(t))
	r := down.call("POST", "/v1/contacts/"+sv+"/merge", map[string]any{"absorb": ab}, http.StatusOK)
	survivor := r.body["survivor"].(map[string]any)
	require.Equal(t, sv, survivor["id"])
	require.Equal(t, "+14155550142", survivor["phone"], "the survivor takes the phone it lacked")
	require.Equal(t, "sam@example.com", survivor["email"], "and keeps its own email")
	require.Equal(t, map[string]any{"plan": "pro", "city": "Lyon"}, survivor["attributes"])
	require.Equal(t, []any{"phone"}, r.body["identifiers_taken"])
	require.Equal(t, []any{"email", "external_id"}, r.body["aliases"])
	require.Equal(t, []any{wfID}, r.body["runs_exiting"])
	require.Equal(t, false, r.body["already_merged"])
	changes := r.body["consent_changes"].([]any)
	require.Len(t, changes, 1)
	require.Equal(t, "merge:"+ab, changes[0].(map[string]any)["source"])
	xID := r.body["exit_requests"].([]any)[0].(string)
	require.Empty(t, h.signalNames(wfID), "told through the outbox, not during the request")

	h.drain()
	sigs := h.signalPayloads(wfID, workflows.SignalExit)
	require.Len(t, sigs, 1)
	require.Contains(t, sigs[0], `"reason":"merged"`)
	require.Contains(t, sigs[0], `"request_id":"`+xID+`"`)
	for _, pii := range []string{"samantha", "sam@", "+1415", "pos-1", "web-1"} {
		require.NotContains(t, sigs[0], pii)
	}

	// The absorbed contact's own id says where it went; its identifiers
	// find the survivor.
	g := h.call("GET", "/v1/contacts/"+ab, nil, http.StatusGone)
	require.Equal(t, "contact_merged", g.errorCode())
	require.Equal(t, []string{"id"}, g.fieldPaths())
	require.Contains(t, g.raw, sv)
	f := h.call("GET", "/v1/contacts?email=samantha@example.com", nil, http.StatusOK)
	require.Equal(t, sv, f.body["contact"].(map[string]any)["id"])
	ev := h.call("POST", "/v1/events", map[string]any{"event_id": "m-1", "external_id": "pos-1", "name": "purchase"}, http.StatusAccepted)
	require.Equal(t, sv, ev.body["event"].(map[string]any)["contact_id"])
	idf := h.call("POST", "/v1/contacts", map[string]any{"email": "samantha@example.com", "attributes": map[string]any{"vip": true}}, http.StatusOK)
	require.Equal(t, sv, idf.body["contact"].(map[string]any)["id"])
	h.call("POST", "/v1/contacts/"+ab+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "x"}, http.StatusGone)
	e := h.call("DELETE", "/v1/contacts/"+ab, nil, http.StatusConflict)
	require.Equal(t, "contact_merged", e.errorCode())

	// A retry, by external id this time, is answered with the merge.
	again := h.call("POST", "/v1/contacts/"+sv+"/merge", map[string]any{"absorb_external_id": "pos-1"}, http.StatusOK)
	require.Equal(t, true, again.body["already_merged"])
	require.Equal(t, r.body["merged_at"], again.body["merged_at"])
}

// Every refusal names the field of the contact it is about.
func TestMergeContact_Refusals(t *testing.T) {
	h := newHarness(t)
	a := h.newContact(map[string]any{"external_id": "r-a"})
	b := h.newContact(map[string]any{"external_id": "r-b"})
	c := h.newContact(map[string]any{"external_id": "r-c"})
	gone := h.newContact(map[string]any{"external_id": "r-gone"})
	h.call("DELETE", "/v1/contacts/"+gone, nil, http.StatusOK)
	h.call("POST", "/v1/contacts/"+a+"/merge", map[string]any{"absorb": b}, http.StatusOK)

	for _, tc := range []struct {
		survivor string
		body     map[string]any
		status   int
		code     string
		field    string
	}{
		{a, map[string]any{}, http.StatusBadRequest, "invalid_request", "absorb"},
		{a, map[string]any{"absorb": c, "absorb_external_id": "r-c"}, http.StatusBadRequest, "invalid_request", "absorb_external_id"},
		{a, map[string]any{"absorb": a}, http.StatusBadRequest, "invalid_request", "absorb"},
		{a, map[string]any{"absorb_external_id": "r-a"}, http.StatusBadRequest, "invalid_request", "absorb_external_id"},
		{a, map[string]any{"absorb": "c_nobody"}, http.StatusNotFound, "not_found", "absorb"},
		{a, map[string]any{"absorb_external_id": "nobody"}, http.StatusNotFound, "not_found", "absorb_external_id"},
		{"c_nobody", map[string]any{"absorb": c}, http.StatusNotFound, "not_found", "id"},
		{b, map[string]any{"absorb": c}, http.StatusConflict, "contact_merged", "id"},
		{c, map[string]any{"absorb": b}, http.StatusConflict, "contact_merged", "absorb"},
		{c, map[string]any{"absorb_external_id": "r-b"}, http.StatusConflict, "contact_merged", "absorb_external_id"},
		{c, map[string]any{"absorb": gone}, http.StatusGone, "contact_erased", "absorb"},
		{gone, map[string]any{"absorb": c}, http.StatusGone, "contact_erased", "id"},
		{a, map[string]any{"absorb": 7}, http.StatusBadRequest, "invalid_request", "absorb"},
	} {
		r := h.call("POST", "/v1/contacts/"+tc.survivor+"/merge", tc.body, tc.status)
		require.Equal(t, tc.code, r.errorCode(), "%v: %s", tc.body, r.raw)
		require.True(t, slices.Contains(r.fieldPaths(), tc.field), "%v: fields %v, want %s", tc.body, r.fieldPaths(), tc.field)
		if tc.code == "contact_merged" {
			require.True(t, strings.Contains(r.raw, a), fmt.Sprintf("names the survivor %s: %s", a, r.raw))
		}
	}
}

// A reply from the absorbed contact's number, now an alias of a survivor
// texted at its own number: STOP revokes the survivor's SMS consent, START
// grants nothing (it was not given for the number the survivor is sent to).
func TestMergeContact_SMSKeywordsFromAnAlias(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	const svPhone, abPhone = "+14155550181", "+14155550182"
	sv := h.newContact(map[string]any{"phone": svPhone})
	ab := h.newContact(map[string]any{"phone": abPhone})
	h.call("POST", "/v1/contacts/"+sv+"/merge", map[string]any{"absorb": ab}, http.StatusOK)

	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-alias-start", abPhone, "START")).status)
	require.Empty(t, h.consent(sv, journey.ChannelSMS, "").Status, "a START from the alias grants nothing")
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-own-start", svPhone, "START")).status)
	require.Equal(t, model.ConsentGranted, h.consent(sv, journey.ChannelSMS, "").Status, "from its own number it does")
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-alias-stop", abPhone, "STOP")).status)
	require.Equal(t, model.ConsentRevoked, h.consent(sv, journey.ChannelSMS, "").Status, "a STOP from the alias revokes")
}
