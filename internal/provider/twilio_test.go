package provider_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
)

const (
	twAccount = "AC0123456789abcdef0123456789abcdef"
	twToken   = "0123456789abcdef0123456789abcdef"
	twService = "MG0123456789abcdef0123456789abcdef"
)

var sidPattern = regexp.MustCompile(`^(SM|MM)[0-9a-f]{32}$`)

func newTwilio(t *testing.T) (*provider.Twilio, *providertest.FakeTwilio) {
	t.Helper()
	fake := providertest.NewFakeTwilio(t, twAccount, twToken)
	return provider.NewTwilio(twAccount, twToken, fake.URL(), &http.Client{Timeout: 10 * time.Second}), fake
}

func sms() provider.SMS {
	return provider.SMS{
		To:             "+15551230001",
		From:           "+15005550006",
		Body:           "Hi Ada, 20% off today. Reply STOP to opt out.",
		StatusCallback: "https://tutti.example/webhooks/twilio/status",
	}
}

func TestTwilioSMSWireFormat(t *testing.T) {
	tw, fake := newTwilio(t)

	res, err := tw.SendSMS(context.Background(), "msg-1", sms())
	require.NoError(t, err)

	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "twilio", res.Provider)
	assert.Equal(t, r.SID, res.ProviderMessageID)
	assert.Regexp(t, sidPattern, res.ProviderMessageID)
	assert.True(t, strings.HasPrefix(res.ProviderMessageID, "SM"))
	assert.False(t, res.AcceptedAt.IsZero())

	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/2010-04-01/Accounts/"+twAccount+"/Messages.json", r.Path)
	user, pass, ok := r.BasicAuth()
	require.True(t, ok, "HTTP Basic auth")
	assert.Equal(t, twAccount, user)
	assert.Equal(t, twToken, pass)
	assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "twilio-go/"), "sent by the SDK: %q", r.Header.Get("User-Agent"))
	assert.Equal(t, http.StatusCreated, r.Status)

	assert.Equal(t, url.Values{
		"To":             {"+15551230001"},
		"From":           {"+15005550006"},
		"Body":           {"Hi Ada, 20% off today. Reply STOP to opt out."},
		"StatusCallback": {"https://tutti.example/webhooks/twilio/status"},
	}, r.Form, "exactly the message's fields, nothing else")
}

func TestTwilioNonAlphanumericTokenAuthenticates(t *testing.T) {
	// twilio-go would refuse this token locally (code 21224) without asking
	// Twilio; the request must go out and authenticate like any other.
	const token = "test-auth-token"
	fake := providertest.NewFakeTwilio(t, twAccount, token)

	_, err := provider.NewTwilio(twAccount, token, fake.URL(), nil).SendSMS(context.Background(), "msg", sms())
	require.NoError(t, err)
	user, pass, ok := fake.Requests()[0].BasicAuth()
	require.True(t, ok)
	assert.Equal(t, twAccount, user)
	assert.Equal(t, token, pass)

	// And a wrong one is Twilio's 401, not an SDK-invented 400.
	_, err = provider.NewTwilio(twAccount, "wrong-token", fake.URL(), nil).SendSMS(context.Background(), "msg", sms())
	pe := asError(t, err)
	assert.Equal(t, 401, pe.StatusCode)
	assert.Equal(t, 20003, pe.Code)
	assert.False(t, pe.Retryable)
}

func TestTwilioMMSWireFormat(t *testing.T) {
	tw, fake := newTwilio(t)
	m := sms()
	m.Body = ""
	m.StatusCallback = ""
	m.MediaURL = []string{"https://cdn.tutti.example/a.jpg", "https://cdn.tutti.example/b.gif"}

	res, err := tw.SendSMS(context.Background(), "msg-2", m)
	require.NoError(t, err)

	r := fake.Requests()[0]
	assert.Equal(t, []string{"https://cdn.tutti.example/a.jpg", "https://cdn.tutti.example/b.gif"}, r.Form["MediaUrl"], "repeated, in order")
	assert.NotContains(t, r.Form, "Body")
	assert.NotContains(t, r.Form, "StatusCallback")
	assert.True(t, strings.HasPrefix(res.ProviderMessageID, "MM"), "Twilio gives MMS an MM SID: %s", res.ProviderMessageID)
}

func TestTwilioMessagingServiceRouting(t *testing.T) {
	t.Run("MG SID is sent as MessagingServiceSid", func(t *testing.T) {
		tw, fake := newTwilio(t)
		m := sms()
		m.From = twService

		_, err := tw.SendSMS(context.Background(), "msg", m)
		require.NoError(t, err)
		r := fake.Requests()[0]
		assert.Equal(t, twService, r.Form.Get("MessagingServiceSid"))
		assert.NotContains(t, r.Form, "From")
	})
	t.Run("sender ID that merely starts with MG stays From", func(t *testing.T) {
		tw, fake := newTwilio(t)
		m := sms()
		m.From = "MGMRewards"

		_, err := tw.SendSMS(context.Background(), "msg", m)
		require.NoError(t, err)
		r := fake.Requests()[0]
		assert.Equal(t, "MGMRewards", r.Form.Get("From"))
		assert.NotContains(t, r.Form, "MessagingServiceSid")
	})
}

func TestTwilioErrorClassification(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(*providertest.FakeTwilio)
		sms       func() provider.SMS
		token     string
		status    int
		code      int
		retryable bool
		message   string
		after     time.Duration
	}{
		{
			name:    "recipient replied STOP",
			prepare: func(f *providertest.FakeTwilio) { f.OptOut("+15551230001") },
			status:  400,
			code:    provider.TwilioCodeUnsubscribed,
			message: "Attempt to send to unsubscribed recipient",
		},
		{
			name: "scripted 21610",
			prepare: func(f *providertest.FakeTwilio) {
				f.FailNext(1, 400, providertest.TwilioError(21610, 400, "Attempt to send to unsubscribed recipient"))
			},
			status:  400,
			code:    provider.TwilioCodeUnsubscribed,
			message: "Attempt to send to unsubscribed recipient",
		},
		{
			name:    "invalid To, validated by the fake",
			sms:     func() provider.SMS { m := sms(); m.To = "555-0100"; return m },
			status:  400,
			code:    provider.TwilioCodeInvalidTo,
			message: "The 'To' number 555-0100 is not a valid phone number.",
		},
		{
			name: "landline",
			prepare: func(f *providertest.FakeTwilio) {
				f.FailNext(1, 400, providertest.TwilioError(21614, 400, "'To' number is not a valid mobile number"))
			},
			status:  400,
			code:    provider.TwilioCodeNotMobile,
			message: "'To' number is not a valid mobile number",
		},
		{
			name:    "wrong auth token",
			token:   "ffffffffffffffffffffffffffffffff",
			status:  401,
			code:    20003,
			message: "Authenticate",
		},
		{
			name: "rate limited with Retry-After",
			prepare: func(f *providertest.FakeTwilio) {
				f.Enqueue(providertest.Response{Status: 429, Header: http.Header{"Retry-After": {"3"}}})
			},
			status:    429,
			code:      20429,
			retryable: true,
			message:   "Too Many Requests",
			after:     3 * time.Second,
		},
		{
			name:      "internal error",
			prepare:   func(f *providertest.FakeTwilio) { f.FailNext(1, 500, "") },
			status:    500,
			code:      20500,
			retryable: true,
			message:   "Internal Server Error",
		},
		{
			name:      "unavailable",
			prepare:   func(f *providertest.FakeTwilio) { f.FailNext(1, 503, "") },
			status:    503,
			code:      20503,
			retryable: true,
			message:   "Service Unavailable",
		},
		{
			// twilio-go cannot decode this and returns a pkg/errors-wrapped
			// decode error; the status must still drive classification.
			name: "proxy error page",
			prepare: func(f *providertest.FakeTwilio) {
				f.Enqueue(providertest.Response{Status: 502, Body: "<html>Bad Gateway</html>", Header: http.Header{"Content-Type": {"text/html"}}})
			},
			status:    502,
			retryable: true,
			message:   "error decoding the response for an HTTP error code: 502: invalid character '<' looking for beginning of value",
		},
		{
			// Accepted, probably queued, but untrackable: retrying risks a
			// duplicate text.
			name: "2xx with unreadable body",
			prepare: func(f *providertest.FakeTwilio) {
				f.Enqueue(providertest.Response{Status: 201, Body: "not json"})
			},
			status:  201,
			message: "reading accepted response: invalid character 'o' in literal null (expecting 'u')",
		},
		{
			name: "2xx without sid",
			prepare: func(f *providertest.FakeTwilio) {
				f.Enqueue(providertest.Response{Status: 201, Body: `{"status":"queued"}`})
			},
			status:  201,
			message: "accepted response has no message sid",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := providertest.NewFakeTwilio(t, twAccount, twToken)
			if tc.prepare != nil {
				tc.prepare(fake)
			}
			token := twToken
			if tc.token != "" {
				token = tc.token
			}
			m := sms()
			if tc.sms != nil {
				m = tc.sms()
			}

			_, err := provider.NewTwilio(twAccount, token, fake.URL(), nil).SendSMS(context.Background(), "msg", m)

			pe := asError(t, err)
			assert.Equal(t, "twilio", pe.Provider)
			assert.Equal(t, tc.status, pe.StatusCode)
			assert.Equal(t, tc.code, pe.Code)
			assert.Equal(t, tc.retryable, pe.Retryable)
			assert.Equal(t, tc.retryable, provider.IsRetryable(err))
			assert.Equal(t, tc.message, pe.Message)
			assert.Equal(t, tc.after, pe.RetryAfter)
		})
	}
}

func TestTwilioScriptedOutageThenSuccess(t *testing.T) {
	tw, fake := newTwilio(t)
	fake.FailNext(2, 500, "")

	for i := range 2 {
		_, err := tw.SendSMS(context.Background(), "msg", sms())
		assert.True(t, asError(t, err).Retryable, "attempt %d", i+1)
	}
	res, err := tw.SendSMS(context.Background(), "msg", sms())
	require.NoError(t, err)

	reqs := fake.Requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, []int{500, 500, 201}, []int{reqs[0].Status, reqs[1].Status, reqs[2].Status})
	require.Len(t, fake.Accepted(), 1)
	assert.Equal(t, fake.Accepted()[0].SID, res.ProviderMessageID)
}

func TestTwilioTransportFailures(t *testing.T) {
	t.Run("server gone", func(t *testing.T) {
		tw, fake := newTwilio(t)
		fake.Close()

		_, err := tw.SendSMS(context.Background(), "msg", sms())
		pe := asError(t, err)
		assert.Zero(t, pe.StatusCode)
		assert.True(t, pe.Retryable)
		var opErr *net.OpError
		assert.True(t, errors.As(err, &opErr), "the dial error is reachable through Unwrap: %v", err)
		assert.Contains(t, pe.Message, fake.URL()+"/2010-04-01/", "the error names where the request really went")
	})
	t.Run("connection dropped after the request was read", func(t *testing.T) {
		tw, fake := newTwilio(t)
		fake.Enqueue(providertest.Response{Disconnect: true})

		_, err := tw.SendSMS(context.Background(), "msg", sms())
		pe := asError(t, err)
		assert.Zero(t, pe.StatusCode)
		assert.True(t, pe.Ambiguous, "Twilio may have the message: %v", err)
		assert.False(t, pe.Retryable)
		require.Len(t, fake.Requests(), 1)
	})
	t.Run("context cancelled reaches the socket", func(t *testing.T) {
		// twilio-go builds requests with context.Background(); the per-call
		// transport is what makes the caller's context count.
		tw, fake := newTwilio(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		_, err := tw.SendSMS(ctx, "msg", sms())
		assert.True(t, asError(t, err).Retryable)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, fake.Requests())
	})
}

func TestTwilioHonoursHTTPClient(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		srv := hangingServer(t)
		tw := provider.NewTwilio(twAccount, twToken, srv.URL, &http.Client{Timeout: clientTimeout})

		_, err := tw.SendSMS(context.Background(), "msg", sms())
		pe := asError(t, err)
		assert.True(t, pe.Ambiguous, "the request went out and no answer came")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("transport", func(t *testing.T) {
		fake := providertest.NewFakeTwilio(t, twAccount, twToken)
		var trips atomic.Int32
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			trips.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})}

		_, err := provider.NewTwilio(twAccount, twToken, fake.URL(), client).SendSMS(context.Background(), "msg", sms())
		require.NoError(t, err)
		assert.Equal(t, int32(1), trips.Load(), "one round trip through the caller's transport: no SDK retries")
	})
}

func TestTwilioBaseURLWithPathPrefix(t *testing.T) {
	var gotPath, gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHost = r.URL.Path, r.Host
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM00000000000000000000000000000001","status":"queued"}`)
	}))
	t.Cleanup(srv.Close)

	res, err := provider.NewTwilio(twAccount, twToken, srv.URL+"/twilio/", nil).SendSMS(context.Background(), "msg", sms())
	require.NoError(t, err)
	assert.Equal(t, "SM00000000000000000000000000000001", res.ProviderMessageID)
	assert.Equal(t, "/twilio/2010-04-01/Accounts/"+twAccount+"/Messages.json", gotPath)
	assert.Equal(t, strings.TrimPrefix(srv.URL, "http://"), gotHost, "Host header follows the base URL, not api.twilio.com")
}

func TestTwilioBaseURLIgnoresEdgeEnvironment(t *testing.T) {
	// twilio-go rewrites api.twilio.com to api.<edge>.<region>.twilio.com from
	// these variables; a configured base URL must still win.
	t.Setenv("TWILIO_EDGE", "sydney")
	t.Setenv("TWILIO_REGION", "au1")
	tw, fake := newTwilio(t)

	_, err := tw.SendSMS(context.Background(), "msg", sms())
	require.NoError(t, err)
	assert.Len(t, fake.Accepted(), 1)
}

func TestTwilioDefaultBaseURL(t *testing.T) {
	t.Setenv("TWILIO_EDGE", "")
	t.Setenv("TWILIO_REGION", "")
	var seen *http.Request
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return nil, errors.New("offline")
	})}
	for _, base := range []string{"", provider.TwilioBaseURL, provider.TwilioBaseURL + "/"} {
		_, err := provider.NewTwilio(twAccount, twToken, base, client).SendSMS(context.Background(), "msg", sms())
		require.Error(t, err)
		require.NotNil(t, seen)
		assert.Equal(t, "https://api.twilio.com/2010-04-01/Accounts/"+twAccount+"/Messages.json", seen.URL.String(), "base %q", base)
	}
}

func TestTwilioInvalidBaseURL(t *testing.T) {
	_, err := provider.NewTwilio(twAccount, twToken, "api.twilio.local", nil).SendSMS(context.Background(), "msg", sms())
	pe := asError(t, err)
	assert.False(t, pe.Retryable, "configuration errors do not heal on retry")
	assert.Contains(t, pe.Message, "invalid Twilio base URL")
}
