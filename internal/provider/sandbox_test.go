package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
)

type recorded struct {
	MessageID, Channel, Recipient string
	Payload                       map[string]any
	At                            time.Time
}

// memRecorder is an in-memory provider.Recorder.
type memRecorder struct {
	mu   sync.Mutex
	rows []recorded
	err  error
}

func (m *memRecorder) RecordSandbox(_ context.Context, messageID, channel, recipient string, payload map[string]any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.rows = append(m.rows, recorded{messageID, channel, recipient, payload, time.Now()})
	return nil
}

func (m *memRecorder) SandboxMessageByID(_ context.Context, messageID string) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return time.Time{}, false, m.err
	}
	for _, r := range m.rows {
		if r.MessageID == messageID {
			return r.At, true, nil
		}
	}
	return time.Time{}, false, nil
}

// jsonRoundTrip checks the payload survives JSON encoding (it is stored as
// jsonb) and returns it as a reader of that JSON would see it.
func jsonRoundTrip(t *testing.T, payload map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestSandboxRecordsEmail(t *testing.T) {
	rec := &memRecorder{}
	sb := provider.NewSandbox(rec)

	res, err := sb.SendEmail(context.Background(), "msg-1", templateEmail())
	require.NoError(t, err)
	assert.Equal(t, "sandbox", res.Provider)
	assert.True(t, strings.HasPrefix(res.ProviderMessageID, "sandbox-"))
	assert.False(t, res.AcceptedAt.IsZero())

	require.Len(t, rec.rows, 1)
	row := rec.rows[0]
	assert.Equal(t, "msg-1", row.MessageID)
	assert.Equal(t, provider.ChannelEmail, row.Channel)
	assert.Equal(t, "ada@example.com", row.Recipient)
	assert.Equal(t, map[string]any{
		"to":            "ada@example.com",
		"from":          "news@tutti.example",
		"from_name":     "Tutti News",
		"template_id":   "d-0123456789abcdef0123456789abcdef",
		"template_data": map[string]any{"first_name": "Ada", "points": float64(3), "tags": []any{"vip"}},
		"subject":       "",
		"html":          "",
		"text":          "",
		"custom_args":   map[string]any{"journey_id": "welcome", "step_id": "day-1", provider.CustomArgMessageID: "msg-1"},
	}, jsonRoundTrip(t, row.Payload))
}

func TestSandboxRecordsContentEmail(t *testing.T) {
	rec := &memRecorder{}
	_, err := provider.NewSandbox(rec).SendEmail(context.Background(), "msg-2", contentEmail())
	require.NoError(t, err)

	p := jsonRoundTrip(t, rec.rows[0].Payload)
	assert.Equal(t, "Welcome, Ada", p["subject"])
	assert.Equal(t, "Hello Ada", p["text"])
	assert.Equal(t, "<p>Hello <b>Ada</b></p>", p["html"])
	assert.Equal(t, map[string]any{}, p["template_data"])
}

func TestSandboxRecordsSMS(t *testing.T) {
	rec := &memRecorder{}
	sb := provider.NewSandbox(rec)
	m := sms()
	m.MediaURL = []string{"https://cdn.tutti.example/a.jpg"}

	res, err := sb.SendSMS(context.Background(), "msg-3", m)
	require.NoError(t, err)
	assert.Equal(t, "sandbox", res.Provider)

	require.Len(t, rec.rows, 1)
	row := rec.rows[0]
	assert.Equal(t, provider.ChannelSMS, row.Channel)
	assert.Equal(t, "+15551230001", row.Recipient)
	assert.Equal(t, map[string]any{
		"to":              "+15551230001",
		"from":            "+15005550006",
		"body":            "Hi Ada, 20% off today. Reply STOP to opt out.",
		"media_url":       []any{"https://cdn.tutti.example/a.jpg"},
		"status_callback": "https://tutti.example/webhooks/twilio/status",
	}, jsonRoundTrip(t, row.Payload))

	res2, err := sb.SendSMS(context.Background(), "msg-4", sms())
	require.NoError(t, err)
	assert.NotEqual(t, res.ProviderMessageID, res2.ProviderMessageID)
	assert.Equal(t, []any{}, jsonRoundTrip(t, rec.rows[1].Payload)["media_url"], "[] rather than null")
}

func TestSandboxDoesNotAliasCallerData(t *testing.T) {
	rec := &memRecorder{}
	e := templateEmail()
	_, err := provider.NewSandbox(rec).SendEmail(context.Background(), "msg", e)
	require.NoError(t, err)

	e.TemplateData["first_name"] = "changed"
	e.CustomArgs["journey_id"] = "changed"
	assert.Equal(t, "Ada", rec.rows[0].Payload["template_data"].(map[string]any)["first_name"])
	assert.Equal(t, "welcome", rec.rows[0].Payload["custom_args"].(map[string]string)["journey_id"])
}

func TestSandboxRecorderFailureIsRetryable(t *testing.T) {
	boom := errors.New("connection refused")
	sb := provider.NewSandbox(&memRecorder{err: boom})

	_, err := sb.SendSMS(context.Background(), "msg", sms())
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	assert.True(t, provider.IsRetryable(err))
}

func TestSandboxFindsWhatItRecorded(t *testing.T) {
	rec := &memRecorder{}
	sb := provider.NewSandbox(rec)
	since := time.Now().Add(-time.Minute)
	smsRes, err := sb.SendSMS(context.Background(), "msg-sms", sms())
	require.NoError(t, err)
	emailRes, err := sb.SendEmail(context.Background(), "msg-email", contentEmail())
	require.NoError(t, err)

	tests := []struct {
		name  string
		find  func() (provider.Result, bool, error)
		found bool
		want  provider.Result
	}{
		{
			name: "recorded SMS",
			find: func() (provider.Result, bool, error) {
				return sb.FindSMS(context.Background(), "msg-sms", sms(), since)
			},
			found: true,
			want:  smsRes,
		},
		{
			name:  "recorded email",
			find:  func() (provider.Result, bool, error) { return sb.FindEmail(context.Background(), "msg-email", since) },
			found: true,
			want:  emailRes,
		},
		{
			name: "SMS never recorded",
			find: func() (provider.Result, bool, error) {
				return sb.FindSMS(context.Background(), "msg-other", sms(), since)
			},
		},
		{
			name: "email never recorded",
			find: func() (provider.Result, bool, error) { return sb.FindEmail(context.Background(), "msg-other", since) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, found, err := tc.find()
			require.NoError(t, err)
			assert.Equal(t, tc.found, found)
			if !tc.found {
				assert.Zero(t, res)
				return
			}
			assert.Equal(t, "sandbox", res.Provider)
			assert.Equal(t, tc.want.ProviderMessageID, res.ProviderMessageID, "named as the send named it")
			assert.False(t, res.AcceptedAt.IsZero())
		})
	}
}

func TestSandboxFindFailureIsRetryable(t *testing.T) {
	boom := errors.New("connection refused")
	sb := provider.NewSandbox(&memRecorder{err: boom})

	_, found, err := sb.FindSMS(context.Background(), "msg", sms(), time.Now())
	assert.False(t, found)
	assert.ErrorIs(t, err, boom)
	assert.True(t, provider.IsRetryable(err))
	assert.False(t, provider.IsAmbiguous(err))
}
