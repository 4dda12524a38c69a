package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// faults breaks the API's Temporal connection on purpose, between the SDK
// and the real dev server.
type faults struct {
	// loseStartAnswer lets a start reach the server, which starts the run,
	// and then loses the answer: the caller sees its deadline pass.
	loseStartAnswer atomic.Bool
	// refuseStart fails a start before it reaches the server.
	refuseStart atomic.Bool
	// failDescribe fails every describe call, as a server that is down would.
	failDescribe atomic.Bool
}

const workflowService = "/temporal.api.workflowservice.v1.WorkflowService/"

func (f *faults) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch {
	case method == workflowService+"StartWorkflowExecution" && f.refuseStart.Load():
		return status.Error(codes.Unavailable, "test: connection refused")
	case method == workflowService+"StartWorkflowExecution" && f.loseStartAnswer.Load():
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		<-ctx.Done()
		return status.Error(codes.DeadlineExceeded, "test: the answer was lost")
	case method == workflowService+"DescribeWorkflowExecution" && f.failDescribe.Load():
		return status.Error(codes.Unavailable, "test: Temporal is restarting")
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// newFaultyHarness is newHarness with the API's Temporal client going
// through faults; h.tc is a healthy client for looking at what happened.
func newFaultyHarness(t *testing.T) (*harness, *faults) {
	t.Helper()
	store := storagetest.New(t)
	f := &faults{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	faulty, err := client.DialContext(ctx, client.Options{
		HostPort:  temporalAddr,
		Namespace: temporaltest.Namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		ConnectionOptions: client.ConnectionOptions{
			// WithUnaryInterceptor runs outside the SDK's own retries, like a
			// network that loses the answer after the server acted.
			DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(f.intercept)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(faulty.Close)
	cfg := config.Config{
		APIToken:        token,
		APIMaxBody:      16 << 10,
		DefaultRegion:   "US",
		DefaultTimeZone: "UTC",
		// Short, so a lost answer costs the test little; nothing asserts on it.
		SignalTimeout: 2 * time.Second,
	}
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: faulty, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &harness{t: t, store: store, tc: temporaltest.Client(t, temporalAddr), url: url, client: hc}, f
}

// enrollWithKey enrolls with an Idempotency-Key header ("" for none).
func (h *harness) enrollWithKey(journeyID, contactID, key string, want int) response {
	h.t.Helper()
	hdr := http.Header{}
	if key != "" {
		hdr.Set("Idempotency-Key", key)
	}
	return h.enrollWith(journeyID, contactID, hdr, want)
}

// enrollWith enrolls with the given extra request headers.
func (h *harness) enrollWith(journeyID, contactID string, hdr http.Header, want int) response {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.url+"/v1/journeys/"+journeyID+"/enrollments",
		strings.NewReader(`{"contact_id":"`+contactID+`"}`))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		h.t.Fatalf("answer is not JSON: %v\n%s", err, raw)
	}
	if r.status != want {
		h.t.Fatalf("enroll (headers %v): status %d, want %d: %s", hdr, r.status, want, raw)
	}
	return r
}

// runOf describes the workflow's current run: its run id, status and the
// enrollment id in its memo. ok is false when there is no run.
func (h *harness) runOf(workflowID string) (runID string, st enumspb.WorkflowExecutionStatus, enrollmentID string, ok bool) {
	h.t.Helper()
	d, err := h.tc.DescribeWorkflow(context.Background(), workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "", 0, "", false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	if p := d.Memo.GetFields()[workflows.MemoEnrollmentID]; p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &enrollmentID); err != nil {
			h.t.Fatal(err)
		}
	}
	return d.WorkflowExecution.RunID, d.Status, enrollmentID, true
}

func enrollmentOf(r response) (id, runID string) {
	e, _ := r.body["enrollment"].(map[string]any)
	id, _ = e["id"].(string)
	runID, _ = r.body["run_id"].(string)
	return id, runID
}

// A start whose answer is lost after Temporal started the run: the API finds
// its run and answers 201 with it, and the row is committed.
func TestEnrollStartAnswerLost_RunStartedAnswers201(t *testing.T) {
	h, f := newFaultyHarness(t)
	ctx := context.Background()
	h.publish(welcome("lost-answer", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "lost-1"})
	f.loseStartAnswer.Store(true)

	r := h.enrollWithKey("lost-answer", id, "", http.StatusCreated)
	enrollmentID, runID := enrollmentOf(r)
	gotRun, st, memoID, ok := h.runOf(workflows.JourneyWorkflowID("lost-answer", id))
	if !ok || gotRun != runID || st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || memoID != enrollmentID {
		t.Fatalf("Temporal has run %q (%v, enrollment %q, found %v); the API answered %s", gotRun, st, memoID, ok, r.raw)
	}
	row, err := h.store.ActiveEnrollment(ctx, id, "lost-answer")
	if err != nil || row.ID != enrollmentID {
		t.Fatalf("active enrollment %+v, %v; want %s", row, err, enrollmentID)
	}
	if n := h.count("enrollments"); n != 1 {
		t.Errorf("%d enrollment rows", n)
	}
}

// A start that never reached Temporal: nothing started, nothing recorded,
// and the answer says so; the retry starts the journey.
func TestEnrollStartRefused_NothingRecorded(t *testing.T) {
	h, f := newFaultyHarness(t)
	h.publish(welcome("refused", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "refused-1"})
	f.refuseStart.Store(true)

	r := h.enrollWithKey("refused", id, "", http.StatusServiceUnavailable)
	if r.errorCode() != "unavailable" || !strings.Contains(r.raw, "nothing was recorded") {
		t.Errorf("answer: %s", r.raw)
	}
	if _, _, _, ok := h.runOf(workflows.JourneyWorkflowID("refused", id)); ok {
		t.Error("a run exists although the answer said none started")
	}
	if n := h.count("enrollments"); n != 0 {
		t.Errorf("%d enrollment rows after a start that did not happen", n)
	}

	f.refuseStart.Store(false)
	r = h.enrollWithKey("refused", id, "", http.StatusCreated)
	enrollmentID, runID := enrollmentOf(r)
	if gotRun, _, memoID, _ := h.runOf(workflows.JourneyWorkflowID("refused", id)); gotRun != runID || memoID != enrollmentID {
		t.Errorf("retry: Temporal has run %q of enrollment %q; the API answered %s", gotRun, memoID, r.raw)
	}
}

// A lost start answer while describing fails too: the API cannot tell, says
// so, and keeps the row it committed before starting; the run Temporal did
// start is picked up by a retry with the key the answer gives.
func TestEnrollStartOutcomeUnknown_RetryWithKeyAnswersWithTheRun(t *testing.T) {
	h, f := newFaultyHarness(t)
	ctx := context.Background()
	h.publish(welcome("unknown", "{policy: once}"))
	id := h.newContact(map[string]any{"external_id": "unknown-1"})
	workflowID := workflows.JourneyWorkflowID("unknown", id)
	f.loseStartAnswer.Store(true)
	f.failDescribe.Store(true)

	r := h.enrollWithKey("unknown", id, "", http.StatusServiceUnavailable)
	key, _ := r.body["error"].(map[string]any)["idempotency_key"].(string)
	if r.errorCode() != "start_outcome_unknown" || key == "" || !strings.Contains(r.raw, "Idempotency-Key: "+key) {
		t.Fatalf("answer: %s", r.raw)
	}
	if n := h.count("enrollments"); n != 1 {
		t.Errorf("%d enrollment rows while the outcome is unknown, want the one committed before the start", n)
	}
	// What Temporal really did: the run started (no worker runs here, so it
	// has not written its own row).
	startedRun, st, memoID, ok := h.runOf(workflowID)
	if !ok || st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || !strings.Contains(r.raw, memoID) {
		t.Fatalf("Temporal: run %q (%v) of enrollment %q, found %v; the answer was %s", startedRun, st, memoID, ok, r.raw)
	}

	f.loseStartAnswer.Store(false)
	f.failDescribe.Store(false)
	// Without the key the retry is another call, and the run is not its own.
	if r := h.enrollWithKey("unknown", id, "", http.StatusConflict); r.errorCode() != "already_active" {
		t.Errorf("retry without the key: %s", r.raw)
	}
	// With the key, the retry is the same enrollment: it answers with the
	// run that started.
	r = h.enrollWithKey("unknown", id, key, http.StatusOK)
	enrollmentID, runID := enrollmentOf(r)
	if enrollmentID != memoID || runID != startedRun {
		t.Errorf("retry with the key: enrollment %s run %s, want %s %s: %s", enrollmentID, runID, memoID, startedRun, r.raw)
	}
	row, err := h.store.ActiveEnrollment(ctx, id, "unknown")
	if err != nil || row.ID != memoID {
		t.Errorf("active enrollment %+v, %v; want %s", row, err, memoID)
	}
	// Once more: the enrollment exists, so 200 with the same run.
	r = h.enrollWithKey("unknown", id, key, http.StatusOK)
	if e, run := enrollmentOf(r); e != memoID || run != startedRun {
		t.Errorf("second retry: %s", r.raw)
	}
	if n := h.count("enrollments"); n != 1 {
		t.Errorf("%d enrollment rows", n)
	}
}

// A start Temporal never made, while Temporal could not say so: the row
// committed before the start stays (503 start_outcome_unknown); a retry
// with the key starts its run, and an enrollment without the key drops a
// row like it once it is old enough to be no start in flight.
func TestEnrollStartOutcomeUnknown_NoRun_RetryStartsIt_NextEnrollmentDropsIt(t *testing.T) {
	h, f := newFaultyHarness(t)
	ctx := context.Background()
	h.publish(welcome("no-run", "{policy: always}"))
	id := h.newContact(map[string]any{"external_id": "no-run-1"})
	workflowID := workflows.JourneyWorkflowID("no-run", id)
	unknown := func() string {
		t.Helper()
		f.refuseStart.Store(true) // Unavailable: it may have reached Temporal
		f.failDescribe.Store(true)
		defer f.refuseStart.Store(false)
		defer f.failDescribe.Store(false)
		r := h.enrollWithKey("no-run", id, "", http.StatusServiceUnavailable)
		key, _ := r.body["error"].(map[string]any)["idempotency_key"].(string)
		if r.errorCode() != "start_outcome_unknown" || key == "" {
			t.Fatalf("answer: %s", r.raw)
		}
		if _, st, _, ok := h.runOf(workflowID); ok && st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatal("a run is open although the start was refused")
		}
		return key
	}

	key := unknown()
	row, err := h.store.ActiveEnrollment(ctx, id, "no-run")
	if err != nil {
		t.Fatalf("the committed row: %v", err)
	}
	// A fresh row may be a start in flight: another call is refused.
	if r := h.enrollWithKey("no-run", id, "", http.StatusConflict); r.errorCode() != "already_active" {
		t.Errorf("while the row is fresh: %s", r.raw)
	}
	r := h.enrollWithKey("no-run", id, key, http.StatusCreated)
	enrollmentID, runID := enrollmentOf(r)
	if gotRun, _, memoID, ok := h.runOf(workflowID); !ok || enrollmentID != row.ID || memoID != row.ID || gotRun != runID {
		t.Fatalf("retry with the key: Temporal has run %q of enrollment %q (found %v); row %s; answer %s", gotRun, memoID, ok, row.ID, r.raw)
	}

	// Again, for a caller that never retries: the orphan blocks the journey
	// until an enrollment finds it old and runless, and drops it.
	if err := h.store.FinishEnrollment(ctx, row.ID, model.RunCompleted, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.terminate(workflowID)
	unknown()
	orphan, err := h.store.ActiveEnrollment(ctx, id, "no-run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Pool().Exec(ctx, `UPDATE enrollments SET started_at = now() - interval '1 hour' WHERE id = $1`, orphan.ID); err != nil {
		t.Fatal(err)
	}
	r = h.enrollWithKey("no-run", id, "", http.StatusCreated)
	if e, _ := enrollmentOf(r); e == orphan.ID {
		t.Errorf("the orphan was answered: %s", r.raw)
	}
	if _, err := h.store.Enrollment(ctx, orphan.ID); err == nil {
		t.Error("the orphan row is still there")
	}
	if n := h.count("enrollments"); n != 2 {
		t.Errorf("%d enrollment rows, want the finished one and the new one", n)
	}
}

// The Idempotency-Key on a healthy connection: one enrollment per key.
func TestEnrollIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.publish(welcome("keyed", "{policy: always}"))
	id := h.newContact(map[string]any{"external_id": "keyed-1"})

	first := h.enrollWithKey("keyed", id, "signup-1", http.StatusCreated)
	enrollmentID, runID := enrollmentOf(first)
	again := h.enrollWithKey("keyed", id, "signup-1", http.StatusOK)
	if e, run := enrollmentOf(again); e != enrollmentID || run != runID {
		t.Errorf("same key: %s, first was %s", again.raw, first.raw)
	}
	if r := h.enrollWithKey("keyed", id, "signup-2", http.StatusConflict); r.errorCode() != "already_active" {
		t.Errorf("another key while the run is active: %s", r.raw)
	}

	// The run ended: the same key still names that enrollment (200, and no
	// new run although re-entry would allow one); a new key enrolls again.
	if err := h.store.FinishEnrollment(ctx, enrollmentID, model.RunCompleted, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	h.terminate(workflows.JourneyWorkflowID("keyed", id))
	ended := h.enrollWithKey("keyed", id, "signup-1", http.StatusOK)
	if e, _ := enrollmentOf(ended); e != enrollmentID || ended.body["enrollment"].(map[string]any)["status"] != "completed" {
		t.Errorf("same key after the run ended: %s", ended.raw)
	}
	next := h.enrollWithKey("keyed", id, "signup-3", http.StatusCreated)
	if e, _ := enrollmentOf(next); e == enrollmentID {
		t.Errorf("a new key got the old enrollment: %s", next.raw)
	}
	// The workflow's current run is now the new enrollment's: the old one's
	// answer has no run id rather than a wrong one.
	ended = h.enrollWithKey("keyed", id, "signup-1", http.StatusOK)
	if _, ok := ended.body["run_id"]; ok {
		t.Errorf("run_id of a run that is no longer current: %s", ended.raw)
	}

	r := h.enrollWithKey("keyed", id, strings.Repeat("k", 201), http.StatusBadRequest)
	if p := r.fieldPaths(); len(p) != 1 || p[0] != "Idempotency-Key" {
		t.Errorf("long key: %s", r.raw)
	}
}

// A run ops terminated (the Temporal UI, `temporal workflow terminate`)
// records no ending: its enrollment stays active, blocking the contact's
// re-entry, until the contact's next enrollment in the journey finds it old
// enough to ask Temporal about. Temporal says the run closed without an
// ending, so the enrollment ends as failed (run_terminated, at the close's
// time) and the new run starts.
func TestEnrollAfterTerminatedRun_EndsItAsFailed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id, firstID := h.terminatedRun("ops-ended", "ops-ended-1")

	// A fresh row may be a start in flight: it is not asked about.
	if r := h.enrollWithKey("ops-ended", id, "", http.StatusConflict); r.errorCode() != "already_active" {
		t.Fatalf("while the row is fresh: %s", r.raw)
	}
	if _, err := h.store.Pool().Exec(ctx, `UPDATE enrollments SET started_at = now() - interval '1 hour' WHERE id = $1`, firstID); err != nil {
		t.Fatal(err)
	}
	secondID, runID := enrollmentOf(h.enrollWithKey("ops-ended", id, "", http.StatusCreated))
	if secondID == firstID || runID == "" {
		t.Fatalf("second enrollment %q run %q, first %q", secondID, runID, firstID)
	}
	first, err := h.store.Enrollment(ctx, firstID)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != model.RunFailed || first.ExitReason != model.RunClosedTerminated || first.EndedAt == nil ||
		first.EndedAt.Before(first.StartedAt) || first.EndedAt.After(time.Now()) {
		t.Errorf("the terminated run's enrollment: %+v", first)
	}
	if n := h.count("enrollments"); n != 2 {
		t.Errorf("%d enrollment rows, want the failed one and the new one", n)
	}
}

// terminatedRun publishes journeyID (re-entry always), enrolls a new
// contact with externalID in it and terminates the run, as ops would in
// the Temporal UI; it answers the contact and its enrollment.
func (h *harness) terminatedRun(journeyID, externalID string) (contactID, enrollmentID string) {
	h.t.Helper()
	h.publish(welcome(journeyID, "{policy: always}"))
	contactID = h.newContact(map[string]any{"external_id": externalID})
	enrollmentID, _ = enrollmentOf(h.enrollWithKey(journeyID, contactID, "", http.StatusCreated))
	h.terminate(workflows.JourneyWorkflowID(journeyID, contactID))
	return contactID, enrollmentID
}
