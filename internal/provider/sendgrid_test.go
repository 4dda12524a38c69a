package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
)

const sgKey = "SG.test-key.abcdef"

func newSendGrid(t *testing.T) (*provider.SendGrid, *providertest.FakeSendGrid) {
	t.Helper()
	fake := providertest.NewFakeSendGrid(t, sgKey)
	return provider.NewSendGrid(sgKey, fake.URL(), &http.Client{Timeout: 10 * time.Second}), fake
}

func templateEmail() provider.Email {
	return provider.Email{
		To:           "ada@example.com",
		From:         "news@tutti.example",
		FromName:     "Tutti News",
		TemplateID:   "d-0123456789abcdef0123456789abcdef",
		TemplateData: map[string]any{"first_name": "Ada", "points": 3, "tags": []string{"vip"}},
		CustomArgs:   map[string]string{"journey_id": "welcome", "step_id": "day-1"},
	}
}

func contentEmail() provider.Email {
	return provider.Email{
		To:         "ada@example.com",
		From:       "news@tutti.example",
		FromName:   "Tutti News",
		Subject:    "Welcome, Ada",
		Text:       "Hello Ada",
		HTML:       "<p>Hello <b>Ada</b></p>",
		CustomArgs: map[string]string{"journey_id": "welcome"},
	}
}

// asError asserts err is a *provider.Error and returns it.
func asError(t *testing.T, err error) *provider.Error {
	t.Helper()
	require.Error(t, err)
	var pe *provider.Error
	require.True(t, errors.As(err, &pe), "want *provider.Error, got %T: %v", err, err)
	return pe
}

func TestSendGridTemplateEmailWireFormat(t *testing.T) {
	sg, fake := newSendGrid(t)

	res, err := sg.SendEmail(context.Background(), "msg-1", templateEmail())
	require.NoError(t, err)

	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "sendgrid", res.Provider)
	assert.NotEmpty(t, res.ProviderMessageID)
	assert.Equal(t, r.MessageID, res.ProviderMessageID, "ProviderMessageID comes from X-Message-Id")
	assert.False(t, res.AcceptedAt.IsZero())

	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/v3/mail/send", r.Path)
	assert.Equal(t, "Bearer "+sgKey, r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "sendgrid/"), "sent by the SDK: %q", r.Header.Get("User-Agent"))
	assert.Equal(t, http.StatusAccepted, r.Status)

	require.True(t, r.Decoded)
	m := r.Body
	assert.Equal(t, "d-0123456789abcdef0123456789abcdef", m.TemplateID)
	require.NotNil(t, m.From)
	assert.Equal(t, providertest.SendGridAddress{Email: "news@tutti.example", Name: "Tutti News"}, *m.From)
	require.Len(t, m.Personalizations, 1)
	p := m.Personalizations[0]
	assert.Equal(t, []providertest.SendGridAddress{{Email: "ada@example.com"}}, p.To)
	assert.Equal(t, map[string]any{"first_name": "Ada", "points": float64(3), "tags": []any{"vip"}}, p.DynamicTemplateData)
	assert.Equal(t, map[string]string{"journey_id": "welcome", "step_id": "day-1", provider.CustomArgMessageID: "msg-1"}, m.CustomArgs)

	// A template send carries no subject or content of its own.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.RawBody, &raw))
	assert.NotContains(t, raw, "subject")
	assert.NotContains(t, raw, "content")
	assert.Contains(t, raw, "custom_args")
}

func TestSendGridContentEmailWireFormat(t *testing.T) {
	sg, fake := newSendGrid(t)

	_, err := sg.SendEmail(context.Background(), "msg-2", contentEmail())
	require.NoError(t, err)

	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	m := reqs[0].Body
	assert.Empty(t, m.TemplateID)
	assert.Equal(t, "Welcome, Ada", m.Subject)
	assert.Equal(t, []providertest.SendGridContent{
		{Type: "text/plain", Value: "Hello Ada"},
		{Type: "text/html", Value: "<p>Hello <b>Ada</b></p>"},
	}, m.Content, "text/plain must precede text/html")
	require.Len(t, m.Personalizations, 1)
	assert.Nil(t, m.Personalizations[0].DynamicTemplateData)
	assert.Equal(t, "msg-2", m.CustomArgs[provider.CustomArgMessageID])
	assert.Equal(t, "welcome", m.CustomArgs["journey_id"])
	assert.NotContains(t, string(reqs[0].RawBody), "dynamic_template_data")
	assert.NotContains(t, string(reqs[0].RawBody), "template_id")
}

func TestSendGridHTMLOnly(t *testing.T) {
	sg, fake := newSendGrid(t)
	e := contentEmail()
	e.Text = ""

	_, err := sg.SendEmail(context.Background(), "msg-3", e)
	require.NoError(t, err)
	assert.Equal(t, []providertest.SendGridContent{{Type: "text/html", Value: e.HTML}}, fake.Requests()[0].Body.Content)
}

func TestSendGridMessageIDWinsOverCallerCustomArg(t *testing.T) {
	sg, fake := newSendGrid(t)
	e := contentEmail()
	e.CustomArgs = map[string]string{provider.CustomArgMessageID: "forged"}

	_, err := sg.SendEmail(context.Background(), "msg-real", e)
	require.NoError(t, err)
	assert.Equal(t, "msg-real", fake.Requests()[0].Body.CustomArgs[provider.CustomArgMessageID])
}

func TestSendGridErrorClassification(t *testing.T) {
	tests := []struct {
		name      string
		script    []providertest.Response
		email     func() provider.Email
		key       string
		status    int
		retryable bool
		message   string
		after     time.Duration
	}{
		{
			name:    "invalid recipient address, validated by the fake",
			email:   func() provider.Email { e := contentEmail(); e.To = "not-an-address"; return e },
			status:  400,
			message: "personalizations.0.to.0.email: Does not contain a valid address.",
		},
		{
			name:    "scripted 400",
			script:  []providertest.Response{{Status: 400, Body: providertest.SendGridError("Does not contain a valid address.", "personalizations.0.to.0.email")}},
			status:  400,
			message: "personalizations.0.to.0.email: Does not contain a valid address.",
		},
		{
			name:    "wrong API key",
			key:     "SG.wrong",
			status:  401,
			message: "The provided authorization grant is invalid, expired, or revoked",
		},
		{
			name:    "forbidden",
			script:  []providertest.Response{{Status: 403, Body: providertest.SendGridError("The from address does not match a verified Sender Identity.", "from")}},
			status:  403,
			message: "from: The from address does not match a verified Sender Identity.",
		},
		{
			name:      "rate limited with Retry-After",
			script:    []providertest.Response{{Status: 429, Header: http.Header{"Retry-After": {"7"}}}},
			status:    429,
			retryable: true,
			message:   "too many requests",
			after:     7 * time.Second,
		},
		{name: "internal error", script: []providertest.Response{{Status: 500}}, status: 500, retryable: true, message: "internal server error"},
		{name: "unavailable", script: []providertest.Response{{Status: 503}}, status: 503, retryable: true, message: "service unavailable"},
		{
			name:      "proxy error page",
			script:    []providertest.Response{{Status: 502, Body: "<html><body>502 Bad Gateway</body></html>", Header: http.Header{"Content-Type": {"text/html"}}}},
			status:    502,
			retryable: true,
			message:   "<html><body>502 Bad Gateway</body></html>",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := providertest.NewFakeSendGrid(t, sgKey)
			fake.Enqueue(tc.script...)
			key := sgKey
			if tc.key != "" {
				key = tc.key
			}
			email := contentEmail()
			if tc.email != nil {
				email = tc.email()
			}

			_, err := provider.NewSendGrid(key, fake.URL(), nil).SendEmail(context.Background(), "msg", email)

			pe := asError(t, err)
			assert.Equal(t, "sendgrid", pe.Provider)
			assert.Equal(t, tc.status, pe.StatusCode)
			assert.Equal(t, tc.retryable, pe.Retryable)
			assert.Equal(t, tc.retryable, provider.IsRetryable(err))
			assert.Equal(t, tc.message, pe.Message)
			assert.Equal(t, tc.after, pe.RetryAfter)
			assert.Zero(t, pe.Code, "SendGrid has no error codes")
		})
	}
}

func TestSendGridRateLimitResetHint(t *testing.T) {
	sg, fake := newSendGrid(t)
	reset := time.Now().Add(2 * time.Minute).Unix()
	fake.Enqueue(providertest.Response{Status: 429, Header: http.Header{"X-RateLimit-Reset": {strconv.FormatInt(reset, 10)}}})

	_, err := sg.SendEmail(context.Background(), "msg", contentEmail())
	pe := asError(t, err)
	assert.True(t, pe.Retryable)
	assert.Greater(t, pe.RetryAfter, time.Minute, "X-RateLimit-Reset is used when Retry-After is absent")
	assert.LessOrEqual(t, pe.RetryAfter, 2*time.Minute)
}

func TestSendGridScriptedOutageThenSuccess(t *testing.T) {
	sg, fake := newSendGrid(t)
	fake.FailNext(2, http.StatusInternalServerError, "")

	for i := range 2 {
		_, err := sg.SendEmail(context.Background(), "msg", contentEmail())
		assert.True(t, asError(t, err).Retryable, "attempt %d", i+1)
	}
	res, err := sg.SendEmail(context.Background(), "msg", contentEmail())
	require.NoError(t, err)

	reqs := fake.Requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, []int{500, 500, 202}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status})
	accepted := fake.Accepted()
	require.Len(t, accepted, 1)
	assert.Equal(t, accepted[0].MessageID, res.ProviderMessageID)
}

func TestSendGridTransportFailures(t *testing.T) {
	t.Run("server gone", func(t *testing.T) {
		sg, fake := newSendGrid(t)
		fake.Close()

		_, err := sg.SendEmail(context.Background(), "msg", contentEmail())
		pe := asError(t, err)
		assert.Zero(t, pe.StatusCode)
		assert.True(t, pe.Retryable)
		assert.True(t, provider.IsRetryable(err))
		var opErr *net.OpError
		assert.True(t, errors.As(err, &opErr), "the dial error is reachable through Unwrap: %v", err)
	})
	t.Run("connection dropped after the request was read", func(t *testing.T) {
		sg, fake := newSendGrid(t)
		fake.Enqueue(providertest.Response{Disconnect: true})

		_, err := sg.SendEmail(context.Background(), "msg", contentEmail())
		pe := asError(t, err)
		assert.Zero(t, pe.StatusCode)
		assert.True(t, pe.Ambiguous, "SendGrid may have the mail: %v", err)
		assert.False(t, pe.Retryable)
		require.Len(t, fake.Requests(), 1, "the fake saw the request before hanging up")
	})
	t.Run("context cancelled", func(t *testing.T) {
		sg, fake := newSendGrid(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		_, err := sg.SendEmail(ctx, "msg", contentEmail())
		assert.True(t, asError(t, err).Retryable)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, fake.Requests())
	})
}

// hangingServer never answers until the client goes away or the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// The server only notices a client hang-up once the body is consumed.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: cleanups are LIFO
	return srv
}

func TestSendGridHonoursHTTPClientTimeout(t *testing.T) {
	srv := hangingServer(t)
	sg := provider.NewSendGrid(sgKey, srv.URL, &http.Client{Timeout: clientTimeout})

	_, err := sg.SendEmail(context.Background(), "msg", contentEmail())
	pe := asError(t, err)
	assert.True(t, pe.Ambiguous, "the request went out and no answer came")
	var ne net.Error
	require.True(t, errors.As(err, &ne), "want a net.Error, got %v", err)
	assert.True(t, ne.Timeout(), "the client's Timeout, not the SDK's timeout-less default client, ended the call")
}

func TestSendGridUnencodableTemplateData(t *testing.T) {
	sg, fake := newSendGrid(t)
	e := templateEmail()
	e.TemplateData = map[string]any{"bad": func() {}}

	_, err := sg.SendEmail(context.Background(), "msg", e)
	pe := asError(t, err)
	assert.False(t, pe.Retryable)
	assert.Contains(t, pe.Error(), "encoding mail/send body")
	assert.Empty(t, fake.Requests(), "nothing is sent")
}

func TestSendGridDefaultBaseURL(t *testing.T) {
	// A stub transport stands in for the network: the test only looks at the
	// request a send would make, and nothing leaves the process.
	var seen *http.Request
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return nil, errors.New("offline")
	})}
	_, err := provider.NewSendGrid(sgKey, "", client).SendEmail(context.Background(), "msg", contentEmail())
	require.Error(t, err)
	require.NotNil(t, seen)
	assert.Equal(t, "https://api.sendgrid.com/v3/mail/send", seen.URL.String())
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
