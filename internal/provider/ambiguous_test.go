package provider_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
)

// fakeAPI is what the ambiguity tests need of either fake.
type fakeAPI interface {
	URL() string
	Close()
	Enqueue(...providertest.Response)
	seen() int     // requests received
	accepted() int // messages accepted
}

type twilioFake struct{ *providertest.FakeTwilio }

func (f twilioFake) seen() int     { return len(f.Requests()) }
func (f twilioFake) accepted() int { return len(f.Accepted()) }

type sendGridFake struct{ *providertest.FakeSendGrid }

func (f sendGridFake) seen() int     { return len(f.Requests()) }
func (f sendGridFake) accepted() int { return len(f.Accepted()) }

// providerUnderTest sends one message through the real SDK of one provider.
type providerUnderTest struct {
	name    string
	newFake func(t *testing.T) fakeAPI
	send    func(ctx context.Context, baseURL string, hc *http.Client) error
}

var providersUnderTest = []providerUnderTest{
	{
		name:    "twilio",
		newFake: func(t *testing.T) fakeAPI { return twilioFake{providertest.NewFakeTwilio(t, twAccount, twToken)} },
		send: func(ctx context.Context, baseURL string, hc *http.Client) error {
			_, err := provider.NewTwilio(twAccount, twToken, baseURL, hc).SendSMS(ctx, "msg", sms())
			return err
		},
	},
	{
		name:    "sendgrid",
		newFake: func(t *testing.T) fakeAPI { return sendGridFake{providertest.NewFakeSendGrid(t, sgKey)} },
		send: func(ctx context.Context, baseURL string, hc *http.Client) error {
			_, err := provider.NewSendGrid(sgKey, baseURL, hc).SendEmail(ctx, "msg", contentEmail())
			return err
		},
	},
}

// clientTimeout is the "short" client timeout of the hang cases. It only has
// to outlast a loopback connect and write on a busy machine: the request must
// be out before the client gives up, or the case is a different one.
const clientTimeout = 500 * time.Millisecond

func TestTransportFailureClassification(t *testing.T) {
	type setup struct {
		ctx     context.Context
		baseURL string
		client  *http.Client
		// notified, when not nil, is closed once the fake has recorded the
		// request; the test waits for it before counting what the fake did.
		notified chan struct{}
	}
	tests := []struct {
		name      string
		prepare   func(t *testing.T, f fakeAPI) setup
		ambiguous bool
		seen      int // requests the fake received
		accepted  int // of which accepted
	}{
		{
			name: "connection refused (closed port): nothing written",
			prepare: func(t *testing.T, f fakeAPI) setup {
				f.Close()
				return setup{ctx: context.Background(), baseURL: f.URL()}
			},
		},
		{
			name: "TLS handshake fails (untrusted certificate): nothing written",
			prepare: func(t *testing.T, f fakeAPI) setup {
				var reached atomic.Bool
				srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
				t.Cleanup(func() {
					srv.Close()
					assert.False(t, reached.Load(), "no request got through the failed handshake")
				})
				srv.Config.ErrorLog = quietLog() // the handshake failure is the point
				// A client of its own, without the test server's CA.
				return setup{ctx: context.Background(), baseURL: srv.URL, client: &http.Client{Transport: &http.Transport{}}}
			},
		},
		{
			name: "context cancelled before the call: nothing written",
			prepare: func(t *testing.T, f fakeAPI) setup {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return setup{ctx: ctx, baseURL: f.URL()}
			},
		},
		{
			name: "accepted, then no answer until the client times out",
			prepare: func(t *testing.T, f fakeAPI) setup {
				n := make(chan struct{})
				f.Enqueue(providertest.Response{Fault: providertest.AcceptThenHang, Notify: n})
				return setup{ctx: context.Background(), baseURL: f.URL(), client: &http.Client{Timeout: clientTimeout}, notified: n}
			},
			ambiguous: true, seen: 1, accepted: 1,
		},
		{
			name: "accepted, then no answer until the caller gives up",
			prepare: func(t *testing.T, f fakeAPI) setup {
				n := make(chan struct{})
				f.Enqueue(providertest.Response{Fault: providertest.AcceptThenHang, Notify: n})
				// Cancelled once the fake has the message: the ambiguous
				// case at its most certain, with no timing in it.
				ctx, cancel := context.WithCancel(context.Background())
				go func() { <-n; cancel() }()
				t.Cleanup(cancel)
				return setup{ctx: ctx, baseURL: f.URL(), notified: n}
			},
			ambiguous: true, seen: 1, accepted: 1,
		},
		{
			name: "accepted, then the connection is reset",
			prepare: func(t *testing.T, f fakeAPI) setup {
				n := make(chan struct{})
				f.Enqueue(providertest.Response{Fault: providertest.AcceptThenReset, Notify: n})
				return setup{ctx: context.Background(), baseURL: f.URL(), notified: n}
			},
			ambiguous: true, seen: 1, accepted: 1,
		},
		{
			name: "read, then the connection is dropped without acting",
			prepare: func(t *testing.T, f fakeAPI) setup {
				n := make(chan struct{})
				f.Enqueue(providertest.Response{Disconnect: true, Notify: n})
				return setup{ctx: context.Background(), baseURL: f.URL(), notified: n}
			},
			// The client cannot know the fake did nothing with it.
			ambiguous: true, seen: 1,
		},
		{
			name: "never read, until the client times out",
			prepare: func(t *testing.T, f fakeAPI) setup {
				n := make(chan struct{})
				f.Enqueue(providertest.Response{Fault: providertest.HangBeforeReading, Notify: n})
				return setup{ctx: context.Background(), baseURL: f.URL(), client: &http.Client{Timeout: clientTimeout}, notified: n}
			},
			// The request sits in the socket buffers: written, as far as the
			// client can ever know.
			ambiguous: true, seen: 1,
		},
	}
	for _, p := range providersUnderTest {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				f := p.newFake(t)
				s := tc.prepare(t, f)

				err := p.send(s.ctx, s.baseURL, s.client)

				pe := asError(t, err)
				assert.Zero(t, pe.StatusCode, "no HTTP response")
				assert.Equal(t, tc.ambiguous, pe.Ambiguous, "ambiguous: %v", err)
				assert.Equal(t, tc.ambiguous, provider.IsAmbiguous(err))
				assert.Equal(t, !tc.ambiguous, pe.Retryable, "retryable: %v", err)
				assert.Equal(t, !tc.ambiguous, provider.IsRetryable(err))
				if tc.ambiguous {
					assert.Equal(t, p.name+":ambiguous", pe.ReasonCode())
				} else {
					assert.Equal(t, p.name+":transport", pe.ReasonCode())
				}
				assert.NotNil(t, pe.Err, "the transport error is kept")

				if s.notified != nil {
					<-s.notified
				}
				assert.Equal(t, tc.seen, f.seen(), "requests the fake received")
				assert.Equal(t, tc.accepted, f.accepted(), "messages the fake accepted")
			})
		}
	}
}

func TestCancelledContextStaysVisible(t *testing.T) {
	// Whatever the classification, errors.Is still sees why the call ended.
	for _, p := range providersUnderTest {
		t.Run(p.name, func(t *testing.T) {
			f := p.newFake(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := p.send(ctx, f.URL(), nil)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}

func TestReasonCode(t *testing.T) {
	tests := []struct {
		name string
		err  provider.Error
		want string
	}{
		{"Twilio error code", provider.Error{Provider: "twilio", StatusCode: 400, Code: 21211, Message: "The 'To' number +15551230001 is not a valid phone number."}, "twilio:21211"},
		{"Twilio opt-out", provider.Error{Provider: "twilio", StatusCode: 400, Code: provider.TwilioCodeUnsubscribed}, provider.TwilioOptOutSource},
		{"SendGrid status", provider.Error{Provider: "sendgrid", StatusCode: 400, Message: "personalizations.0.to.0.email: Does not contain a valid address."}, "sendgrid:http_400"},
		{"throttled", provider.Error{Provider: "sendgrid", StatusCode: 429, Retryable: true}, "sendgrid:http_429"},
		{"not written", provider.Error{Provider: "twilio", Retryable: true, Message: "dial tcp 127.0.0.1:1: connection refused"}, "twilio:transport"},
		{"written, no answer", provider.Error{Provider: "sendgrid", Ambiguous: true}, "sendgrid:ambiguous"},
		{"failed before sending", provider.Error{Provider: "sendgrid", Message: "encoding mail/send body: json: unsupported type"}, "sendgrid:not_sent"},
		{"odd provider name", provider.Error{Provider: "Twilio (+1 555)", Code: 20003}, "twilio1555:20003"},
		{"no provider name", provider.Error{StatusCode: 500}, "provider:http_500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.ReasonCode())
		})
	}
}

func TestReasonCodeLeavesOutWhatTwilioQuotes(t *testing.T) {
	// Twilio's 21211 quotes the number it refused. The reason code is what
	// goes into Temporal history, so it must not.
	const number = "+1555012345678901"
	tw, _ := newTwilio(t)
	m := sms()
	m.To = number

	_, err := tw.SendSMS(context.Background(), "msg", m)

	pe := asError(t, err)
	require.Equal(t, provider.TwilioCodeInvalidTo, pe.Code)
	require.Contains(t, pe.Message, number, "the fake quotes the number, as Twilio does")
	assert.Equal(t, "twilio:21211", pe.ReasonCode())
	assert.NotContains(t, pe.ReasonCode(), "555")
}

func TestIsAmbiguousUnclassified(t *testing.T) {
	assert.False(t, provider.IsAmbiguous(nil))
	assert.False(t, provider.IsAmbiguous(errors.New("boom")))
	assert.True(t, provider.IsAmbiguous(errors.Join(errors.New("context"), &provider.Error{Ambiguous: true})))
}

// quietLog discards a test server's log, for failures a test provokes.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
