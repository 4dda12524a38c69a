package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tutti-dev/tutti/activities"
	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/codec"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporalclient"
	"github.com/tutti-dev/tutti/internal/temporaltest"
	"github.com/tutti-dev/tutti/workflows"
)

// Markers that must never appear in Temporal in clear: the journey's
// subjects and bodies (they travel in the workflow input) and the contact's
// name (it must not travel at all).
const (
	markerSubject  = "ZebraSubject4711"
	markerBody     = "QuokkaBody4711"
	markerSecond   = "OkapiSubject4711"
	markerName     = "Wilhelmina4711"
	codecE2EToken  = "e2e-codec-token-0123456789"
	codecE2EOrigin = "http://localhost:8233"
)

const codecJourney = `
id: %s
name: Encrypted welcome
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: welcome_email
    send:
      channel: email
      email: {subject: "` + markerSubject + ` {{ .contact.first_name }}", text: "` + markerBody + `"}
  - id: wait_open
    wait_for: {event: email.opened, timeout: 1h, on_event: second_email, on_timeout: done}
  - id: second_email
    send:
      channel: email
      email: {subject: "` + markerSecond + `", text: "Thanks for opening"}
  - id: done
    exit: {reason: completed}
`

// TestEndToEnd_PayloadEncryption runs Tutti with payload encryption on a dev
// server of its own: its workers are then the only ones polling the task
// queue, so no worker without the keys (from another test) can pick up an
// encrypted run.
func TestEndToEnd_PayloadEncryption(t *testing.T) {
	srv := temporaltest.StartDevServer(t)
	addr := srv.FrontendHostPort()
	k1, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	k2, err := codec.GenerateKey("k2")
	require.NoError(t, err)

	t.Run("raw history holds no plaintext; the codec endpoint decodes it", func(t *testing.T) {
		e := newEncrypted(t, addr)
		s := e.start(k1)
		ctx := context.Background()
		workflowID := e.enroll(s, "enc-welcome")
		eventually(t, "welcome email sent", func() bool { return len(e.sg.Requests()) == 1 })
		require.Equal(t, markerSubject+" "+markerName, e.sg.Requests()[0].Body.Subject, "the worker decrypted the spec")
		eventually(t, "waiting for the open", func() bool { return e.currentStep(s) == "wait_open" })

		// A client without the keys, as anyone with Temporal access has,
		// sees only ciphertext.
		plain := temporaltest.Client(t, addr)
		events := rawHistory(t, plain, workflowID)
		var raw []byte
		for _, ev := range events {
			b, err := proto.Marshal(ev)
			require.NoError(t, err)
			raw = append(raw, b...)
		}
		for _, m := range []string{markerSubject, markerBody, markerSecond, markerName} {
			require.False(t, bytes.Contains(raw, []byte(m)), "%s is readable in the raw history", m)
		}
		keyIDs := encryptedKeyIDs(t, events)
		require.Equal(t, map[string]bool{"k1": true}, keyIDs, "every payload is encrypted under k1")
		state, err := plain.QueryWorkflow(ctx, workflowID, "", workflows.QueryState)
		require.NoError(t, err)
		var st workflows.JourneyState
		require.Error(t, state.Get(&st), "a client without the keys cannot read the run's state")

		// The codec endpoint decodes the raw payloads for ops with the token:
		// the workflow input holds the spec in plaintext once decoded.
		input := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
		require.NotEmpty(t, input)
		body, err := protojson.Marshal(&commonpb.Payloads{Payloads: input})
		require.NoError(t, err)

		decoded := e.codecPost(t, s, "/codec/default/decode", body, map[string]string{"Authorization": "Bearer " + codecE2EToken}, http.StatusOK)
		var in workflows.JourneyInput
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(decoded[0], &in))
		require.Equal(t, markerSubject+" {{ .contact.first_name }}", in.Spec.Steps[0].Send.Email.Subject)
		require.Equal(t, markerBody, in.Spec.Steps[0].Send.Email.Text)

		// The Temporal UI's form: token in the path, from the UI's origin.
		decoded = e.codecPost(t, s, "/codec/ui/"+codecE2EToken+"/decode", body,
			map[string]string{"Origin": codecE2EOrigin, "X-Namespace": "default"}, http.StatusOK)
		require.Contains(t, string(decoded[0].Data), markerSubject)

		// Without the token: nothing.
		e.codecPost(t, s, "/codec/default/decode", body, map[string]string{"Authorization": "Bearer " + token}, http.StatusUnauthorized)

		// `temporal workflow show --codec-endpoint`, as the README has it.
		cli, err := temporaltest.CLIPath()
		require.NoError(t, err)
		// startInput runs the command and returns the run's input payload as shown.
		startInput := func(env []string, flags ...string) *commonpb.Payload {
			args := append([]string{"workflow", "show", "--output", "json", "--address", addr, "--workflow-id", workflowID}, flags...)
			cmd := exec.Command(cli, args...)
			cmd.Env = append([]string{"HOME=" + t.TempDir(), "TEMPORAL_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none.toml")}, env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "%s", stderr.String())
			var h historypb.History
			require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(out, &h), "%s", out)
			return h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
		}
		requireDecoded := func(p *commonpb.Payload) {
			t.Helper()
			require.Equal(t, "json/plain", string(p.Metadata[converter.MetadataEncoding]))
			require.Contains(t, string(p.Data), markerSubject)
		}
		p := startInput(nil)
		require.Equal(t, codec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]), "without the codec the CLI shows ciphertext")
		requireDecoded(startInput(nil, "--codec-endpoint", s.api.URL+"/codec/default", "--codec-auth", "Bearer "+codecE2EToken))
		requireDecoded(startInput([]string{"TEMPORAL_CODEC_ENDPOINT=" + s.api.URL + "/codec/default", "TEMPORAL_CODEC_AUTH=Bearer " + codecE2EToken}))

		// The run goes on to the end with the keys.
		s.call("POST", "/v1/events", map[string]any{"event_id": "enc-open-1", "contact_id": e.contactID, "name": "email.opened"}, http.StatusAccepted)
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second) // bounds a hung run, asserts nothing on speed
		defer cancel()
		var result workflows.JourneyResult
		require.NoError(t, s.tc.GetWorkflow(wctx, workflowID, "").Get(wctx, &result))
		require.Len(t, e.sg.Requests(), 2)
	})

	t.Run("a run started under k1 finishes after rotation to k2", func(t *testing.T) {
		e := newEncrypted(t, addr)
		ctx := context.Background()

		before := e.start(k1)
		workflowID := e.enroll(before, "enc-rotate")
		eventually(t, "welcome email sent", func() bool { return len(e.sg.Requests()) == 1 })
		eventually(t, "waiting for the open", func() bool { return e.currentStep(before) == "wait_open" })
		e.stopWorker()

		// A deploy that drops k1 too early: the worker cannot replay the
		// run. Its workflow task fails and is retried; the run itself
		// neither fails nor moves.
		tooEarly := e.start(k2)
		tooEarly.call("POST", "/v1/events", map[string]any{"event_id": "rot-open-1", "contact_id": e.contactID, "name": "email.opened"}, http.StatusAccepted)
		plain := temporaltest.Client(t, addr)
		k2Only, err := codec.New(k2)
		require.NoError(t, err)
		eventually(t, "a failed workflow task naming k1", func() bool {
			for _, ev := range rawHistory(t, plain, workflowID) {
				// The failure's message is encrypted too (under k2).
				if f := ev.GetWorkflowTaskFailedEventAttributes().GetFailure(); f != nil {
					return strings.Contains(k2Only.FailureConverter().FailureToError(f).Error(), `key "k1", which is not configured`)
				}
			}
			return false
		})
		desc, err := plain.DescribeWorkflowExecution(ctx, workflowID, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status, "the run waits for its key")
		require.Len(t, e.sg.Requests(), 1)
		e.stopWorker()

		// The right deploy: k2 in front of k1. The worker replays the run's
		// k1 history, takes the event, and writes what is new under k2.
		after := e.start(k2, k1)
		// A worker that cannot decrypt the history retries its workflow task
		// forever; the deadline only keeps such a failure from hanging the test.
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		var result workflows.JourneyResult
		require.NoError(t, after.tc.GetWorkflow(wctx, workflowID, "").Get(wctx, &result), "the run did not finish under the rotated keys")
		require.Len(t, e.sg.Requests(), 2)
		require.Equal(t, markerSecond, e.sg.Requests()[1].Body.Subject)
		desc, err = after.tc.DescribeWorkflowExecution(ctx, workflowID, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)

		keyIDs := encryptedKeyIDs(t, rawHistory(t, temporaltest.Client(t, addr), workflowID))
		require.Equal(t, map[string]bool{"k1": true, "k2": true}, keyIDs, "the history holds payloads under both keys")
	})
}

// encrypted is one Tutti deployment over a database, fake providers and a
// dev server; start (re)deploys its worker and API with a key list.
type encrypted struct {
	t      *testing.T
	addr   string
	dsn    string
	sys    system
	sg     *providertest.FakeSendGrid
	worker worker.Worker
	// stopDispatch stops the dispatcher that runs with the worker.
	stopDispatch func()
	contactID    string
}

func newEncrypted(t *testing.T, addr string) *encrypted {
	store, dsn := storagetest.NewWithDSN(t)
	return &encrypted{
		t: t, addr: addr, dsn: dsn,
		sys: system{t: t, store: store, logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		sg:  providertest.NewFakeSendGrid(t, "SG.e2e"),
	}
}

// start runs a worker and an API whose Temporal clients are dialed the way
// tutti-worker and `tutti serve` dial them, with keys (newest first).
func (e *encrypted) start(keys ...codec.Key) *system {
	t := e.t
	c, err := codec.New(keys...)
	require.NoError(t, err)
	opts, err := temporalclient.Options(envMap{
		"TEMPORAL_ADDRESS":     e.addr,
		"TEMPORAL_NAMESPACE":   temporaltest.Namespace,
		"TEMPORAL_CONFIG_FILE": filepath.Join(t.TempDir(), "none.toml"),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), temporalclient.WithCodec(c))
	require.NoError(t, err)
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc, err := client.DialContext(dctx, opts)
	require.NoError(t, err)
	t.Cleanup(tc.Close)

	settings := policy.DefaultSettings()
	settings.QuietHours, settings.Cooldowns = nil, nil
	hc := &http.Client{Timeout: 10 * time.Second}
	w := worker.New(tc, workflows.TaskQueue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Store: e.sys.store, Logger: e.sys.logger, Delivery: &delivery.Service{
		Policy: settings,
		Store:  e.sys.store,
		Email:  provider.NewSendGrid("SG.e2e", e.sg.URL(), hc),
		SMS:    provider.NewSandbox(e.sys.store),
		Sender: delivery.Identity{EmailFrom: "hello@tutti.test", SMSFrom: "+15005550006"},
		Logger: e.sys.logger,
	}})
	require.NoError(t, w.Start())
	e.worker = w
	t.Cleanup(e.stopWorker)

	cfg := config.Config{
		DatabaseURL: e.dsn, APIToken: token, APIMaxBody: 1 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 5 * time.Second,
		Codec: c, CodecAuthToken: codecE2EToken, CodecCORSOrigins: []string{codecE2EOrigin},
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: e.sys.store, Temporal: tc, Config: cfg, Logger: e.sys.logger}).Handler())
	t.Cleanup(srv.Close)
	e.stopDispatch = dispatch(t, api.Deps{Store: e.sys.store, Temporal: tc, Config: cfg, Logger: e.sys.logger})
	s := e.sys
	s.tc, s.api = tc, srv
	return &s
}

func (e *encrypted) stopWorker() {
	if e.stopDispatch != nil {
		e.stopDispatch()
		e.stopDispatch = nil
	}
	if e.worker != nil {
		e.worker.Stop()
		e.worker = nil
	}
}

// enroll publishes the journey, creates a contact with email consent and
// starts the journey for them.
func (e *encrypted) enroll(s *system, journeyID string) string {
	created := s.call("POST", "/v1/contacts", map[string]any{"email": "wil@example.com", "attributes": map[string]any{"first_name": markerName}}, http.StatusCreated)
	e.contactID = created["contact"].(map[string]any)["id"].(string)
	s.call("POST", "/v1/contacts/"+e.contactID+"/consent", map[string]any{"channel": "email", "status": "granted", "source": "test"}, http.StatusOK)
	s.call("POST", "/v1/journeys", fmt.Sprintf(codecJourney, journeyID), http.StatusCreated)
	started := s.call("POST", "/v1/journeys/"+journeyID+"/enrollments", map[string]any{"contact_id": e.contactID}, http.StatusCreated)
	return started["workflow_id"].(string)
}

// currentStep is the run's step as the API reports it (a query, decrypted).
func (e *encrypted) currentStep(s *system) string {
	list := s.call("GET", "/v1/contacts/"+e.contactID+"/journeys", nil, http.StatusOK)
	for _, j := range list["journeys"].([]any) {
		if step, _ := j.(map[string]any)["current_step"].(string); step != "" {
			return step
		}
	}
	return ""
}

// codecPost posts payloads to the codec endpoint and returns the answer's.
func (e *encrypted) codecPost(t *testing.T, s *system, path string, body []byte, headers map[string]string, want int) []*commonpb.Payload {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.api.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s", raw)
	if origin := headers["Origin"]; origin != "" {
		require.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if want != http.StatusOK {
		return nil
	}
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(raw, &out), "%s", raw)
	return out.Payloads
}

// rawHistory reads a run's whole history as stored.
func rawHistory(t *testing.T, c client.Client, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	require.NotEmpty(t, events)
	return events
}

// encryptedKeyIDs walks every payload in the events and fails the test on
// any that is not encrypted, except search attributes, which Temporal must
// index (they hold ids only). It returns the key ids seen.
func encryptedKeyIDs(t *testing.T, events []*historypb.HistoryEvent) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	payloadName := (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()
	searchName := (&commonpb.SearchAttributes{}).ProtoReflect().Descriptor().FullName()
	var walk func(where string, m protoreflect.Message)
	walk = func(where string, m protoreflect.Message) {
		switch m.Descriptor().FullName() {
		case searchName:
			return
		case payloadName:
			p := m.Interface().(*commonpb.Payload)
			require.Equal(t, codec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]), "%s: payload not encrypted: %v", where, p)
			ids[string(p.Metadata[codec.MetadataKeyID])] = true
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
				return true
			}
			at := where + "." + string(fd.Name())
			switch {
			case fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					walk(at, v.List().Get(i).Message())
				}
			case fd.IsMap():
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
						walk(at, mv.Message())
						return true
					})
				}
			default:
				walk(at, v.Message())
			}
			return true
		})
	}
	for _, ev := range events {
		walk(ev.GetEventType().String(), ev.ProtoReflect())
	}
	require.NotEmpty(t, ids, "the history has no payloads at all")
	return ids
}

// envMap is an envconfig.EnvLookup over a map: the test's Temporal settings
// without touching the process environment.
type envMap map[string]string

func (e envMap) Environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

func (e envMap) LookupEnv(k string) (string, bool) { v, ok := e[k]; return v, ok }
