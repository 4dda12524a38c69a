// Package providertest runs fake SendGrid and Twilio API servers on loopback
// that speak the real wire format: the same paths, authentication, request
// encodings, success bodies and error envelopes as the production APIs. Point
// provider.NewSendGrid / provider.NewTwilio (or any other client) at URL() and
// the real SDKs run end to end, so tests exercise exactly the bytes that would
// go to the providers.
//
// Each fake records every request it receives and can be scripted to fail:
// FailNext(2, 500, "") then a normal 202/201 is a transient outage;
// FailNext(1, 400, providertest.TwilioError(21610, 400, "...")) is a
// permanent refusal. A fake is safe for concurrent use and shuts down on
// t.Cleanup.
package providertest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"testing"
)

// Response is a scripted reply. The fake answers the next authenticated
// request to its API endpoint with it instead of processing the request (the
// request is still recorded).
type Response struct {
	// Status is the HTTP status to send.
	Status int
	// Body is sent as is. Empty means the provider's own error envelope for
	// Status (see SendGridError and TwilioError).
	Body string
	// Header is added to the response, e.g. Retry-After for a 429.
	Header http.Header
	// Disconnect drops the connection without answering, the closest a test
	// can get to a network failure in the middle of a call: the client cannot
	// tell whether the provider acted on the request. Status and Body are
	// ignored.
	Disconnect bool
}

// script is the queue of scripted responses shared by both fakes.
type script struct {
	mu    sync.Mutex
	queue []Response
}

func (s *script) push(rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

func (s *script) pop() (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Response{}, false
	}
	r := s.queue[0]
	s.queue = s.queue[1:]
	return r, true
}

func (s *script) failNext(n, status int, body string) {
	rs := make([]Response, n)
	for i := range rs {
		rs[i] = Response{Status: status, Body: body}
	}
	s.push(rs...)
}

// reply is an answer decided on but not yet written. The fakes record a
// request before writing its reply, so a client holding a response (or a
// dropped connection) always finds its request in Requests().
type reply struct {
	status     int // 0 for a dropped connection
	header     http.Header
	body       string
	disconnect bool
}

func jsonReply(status int, contentType, body string) reply {
	return reply{status: status, header: http.Header{"Content-Type": {contentType}}, body: body}
}

// scriptedReply turns a scripted Response into a reply; an empty error body
// becomes the provider's envelope from defaultBody.
func scriptedReply(r Response, defaultBody func(status int) string) reply {
	if r.Disconnect {
		return reply{disconnect: true}
	}
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	body := r.Body
	if body == "" && r.Status >= 400 {
		body = defaultBody(r.Status)
	}
	if body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return reply{status: r.Status, header: h, body: body}
}

func (rp reply) write(t testing.TB, w http.ResponseWriter) {
	if rp.disconnect {
		// Only HTTP/1 connections can be hijacked, which is what
		// httptest.NewServer serves.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("providertest: cannot drop the connection: %v", err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_ = conn.Close()
		return
	}
	for k, vs := range rp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(rp.status)
	_, _ = io.WriteString(w, rp.body)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

// sendGridMessageID looks like SendGrid's X-Message-Id: 22 URL-safe base64
// characters.
func sendGridMessageID() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(16))
}

// twilioSID is a Twilio resource SID: a two-letter type prefix and 32 hex
// digits.
func twilioSID(prefix string) string {
	return prefix + hex.EncodeToString(randomBytes(16))
}
