package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/workflows"
)

// DELETE /v1/contacts/{id} erases the person, tells their running journey
// to end with the code erased, and answers a retry with the same erasure.
// Their SMS STOP outlives them: a webhook from the number finds nobody, and
// a contact created later with it starts opted out, until the person texts
// START themselves.
func TestEraseContact(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	const email, phone, ext, said = "jane.doe@example.com", "+14155550123", "crm-jane-1", "hi it is jane, call me"
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": ext, "email": email, "phone": "(415) 555-0123",
		"attributes": map[string]any{"first_name": "Jane"}})
	h.call("POST", "/v1/contacts/"+id+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "signup-form"}, http.StatusOK)
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-stop", phone, "STOP")).status)
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-reply", phone, said)).status)
	wfID := h.enroll(id)

	r := h.call("DELETE", "/v1/contacts/"+id, nil, http.StatusOK)
	erasure := r.body["erasure"].(map[string]any)
	require.Equal(t, id, erasure["contact_id"])
	require.Equal(t, false, r.body["already_erased"])
	require.Equal(t, []any{wfID}, r.body["runs_told_to_end"], r.raw)
	require.Greater(t, erasure["proofs_kept"].(float64), 0.0)
	sigs := h.signals(wfID)
	require.Equal(t, workflows.SignalExit, sigs[len(sigs)-1].name)
	require.Equal(t, map[string]any{"reason": workflows.ExitErased, "by": "erasure"}, sigs[len(sigs)-1].arg)

	h.call("GET", "/v1/contacts/"+id, nil, http.StatusNotFound)
	hits, err := storagetest.FindText(ctx, h.store.Pool(), email, phone, ext, "Jane", said)
	require.NoError(t, err)
	require.Empty(t, hits, storagetest.DescribeHits(hits))

	// A retry (say the first answer was lost) finds the erasure and tells
	// the run again; an id that never was a contact is 404.
	again := h.call("DELETE", "/v1/contacts/"+id, nil, http.StatusOK)
	require.Equal(t, true, again.body["already_erased"])
	require.Equal(t, erasure["id"], again.body["erasure"].(map[string]any)["id"])
	require.Equal(t, []any{wfID}, again.body["runs_told_to_end"])
	h.call("DELETE", "/v1/contacts/c_nobody", nil, http.StatusNotFound)

	// A START from the erased number finds nobody and brings nobody back.
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-start-1", phone, "START")).status)
	require.Equal(t, 0, h.count("contacts"))

	// Imported again: SMS starts revoked, from the proof.
	back := h.newContact(map[string]any{"phone": phone})
	sms := h.consent(back, journey.ChannelSMS, "")
	require.Equal(t, model.ConsentRevoked, sms.Status)
	require.True(t, strings.HasPrefix(sms.Source, storage.ErasureProofSource), sms.Source)
	require.Empty(t, h.consent(back, journey.ChannelEmail, "").Status, "email consent is not assumed back")
	// The person opting in again themselves is what lifts it.
	require.Equal(t, http.StatusOK, h.twilio("/webhooks/twilio/inbound", inbound("SM-start-2", phone, "START")).status)
	require.Equal(t, model.ConsentGranted, h.consent(back, journey.ChannelSMS, "").Status)
}

// Support's words stay in PostgreSQL: the run is told the code and the id
// of the exit request, and the enrollment shows the words once it ended.
func TestExit_ReasonStaysInPostgres(t *testing.T) {
	h := newHookHarness(t, hookOpts{})
	ctx := context.Background()
	h.publish(welcome("welcome", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "x-2"})
	wfID := h.enroll(id)
	const reason = "Jane called from +1 415 555 0123, jane.doe@example.com, asked to stop"
	r := h.call("POST", "/v1/contacts/"+id+"/journeys/welcome/exit", map[string]any{"reason": reason}, http.StatusAccepted)
	xID := r.body["exit_request"].(map[string]any)["id"].(string)

	h.drain()
	sigs := h.signals(wfID)
	require.Len(t, sigs, 1)
	require.Equal(t, map[string]any{"reason": workflows.ExitSupport, "request_id": xID, "by": "api"}, sigs[0].arg)
	x, err := h.store.ExitRequest(ctx, xID)
	require.NoError(t, err)
	require.Equal(t, reason, x.Reason)

	// What the worker's FinishEnrollment does when the run ends.
	e, err := h.store.ActiveEnrollment(ctx, id, "welcome")
	require.NoError(t, err)
	require.NoError(t, h.store.EndEnrollment(ctx, e.ID, storage.EnrollmentEnd{Status: model.RunExited, Reason: workflows.ExitSupport, ExitRequestID: xID}))
	list := h.call("GET", "/v1/contacts/"+id+"/journeys", nil, http.StatusOK)
	run := list.body["journeys"].([]any)[0].(map[string]any)
	require.Equal(t, workflows.ExitSupport, run["exit_reason"])
	require.Equal(t, reason, run["exit_note"])
	why := h.call("GET", "/v1/contacts/"+id+"/journeys/welcome/steps/welcome_email/why", nil, http.StatusOK)
	require.Contains(t, why.body["summary"], "(support_exit: "+reason+")")
}
