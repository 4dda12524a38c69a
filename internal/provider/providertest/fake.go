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
//
// Network failures, for telling a request that never left from one that may
// have been acted on:
//
//   - Close: the port refuses connections, so nothing is written;
//   - FaultNext(n, AcceptThenHang) or AcceptThenReset: the message is
//     accepted and recorded, and the client never hears so;
//   - FaultNext(n, HangBeforeReading): the request is never read or
//     answered, though the client's bytes have left it;
//   - Response{Disconnect: true}: the request is read, not acted on, and the
//     connection dropped.
//
// A client cannot tell the last three apart from the first two: all are
// ambiguous to it.
package providertest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Fault is a network failure a fake stages in place of an answer.
type Fault int

const (
	// AcceptThenHang processes the request as usual - validation and, for a
	// valid one, acceptance: the message is recorded as sent - and then
	// never answers, holding the connection until the client gives up (or
	// the fake closes). The classic ambiguous call: the provider has the
	// message, the client saw a timeout.
	AcceptThenHang Fault = iota + 1
	// AcceptThenReset processes the request as AcceptThenHang does, then
	// resets the connection (TCP RST) without answering.
	AcceptThenReset
	// HangBeforeReading never reads the request body, never acts on it and
	// never answers; it holds the connection until the fake closes. The
	// client has still written its request (into the socket buffers), so to
	// it this is as ambiguous as AcceptThenHang.
	HangBeforeReading
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
	// Fault, when set, stages a network failure instead of answering: see
	// Fault. Status, Body, Header and Disconnect are then ignored.
	Fault Fault
	// Notify, when not nil, is closed once the fake has recorded the request
	// and its answer or fault is under way (a hang has begun, a reset was
	// sent), so a test can give up on a call at a known point rather than
	// after a guessed delay.
	Notify chan struct{}
}

// fakeServer is the loopback server under a fake, and how it shuts down.
type fakeServer struct {
	t     testing.TB
	srv   *httptest.Server
	close sync.Once
	stop  chan struct{} // closed on Close: ends staged hangs
}

// start serves h on loopback until Close, which t.Cleanup calls.
func (s *fakeServer) start(t testing.TB, h http.HandlerFunc) {
	s.t, s.stop = t, make(chan struct{})
	s.srv = httptest.NewServer(h)
	t.Cleanup(s.Close)
}

// URL is the fake's base URL, to give the provider client.
func (s *fakeServer) URL() string { return s.srv.URL }

// Close shuts the server down; later sends fail with a connection error,
// which is how tests simulate the provider being unreachable (nothing is
// written). Staged hangs end. Safe to call twice.
func (s *fakeServer) Close() {
	s.close.Do(func() {
		close(s.stop)
		s.srv.Close()
	})
}

// requestLog is every request a fake received, in arrival order; safe for
// concurrent use.
type requestLog[R interface{ Accepted() bool }] struct {
	mu   sync.Mutex
	reqs []R
}

func (l *requestLog[R]) record(r R) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r)
}

// all returns a copy of every request, in arrival order.
func (l *requestLog[R]) all() []R {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]R, len(l.reqs))
	copy(out, l.reqs)
	return out
}

// accepted returns the requests the fake accepted, in arrival order.
func (l *requestLog[R]) accepted() []R {
	var out []R
	for _, r := range l.all() {
		if r.Accepted() {
			out = append(out, r)
		}
	}
	return out
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

func (s *script) faultNext(n int, f Fault) {
	rs := make([]Response, n)
	for i := range rs {
		rs[i] = Response{Fault: f}
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
	// fault replaces the answer with a network failure; notify is closed
	// when the answer or the fault is under way.
	fault  Fault
	notify chan struct{}
}

func jsonReply(status int, contentType, body string) reply {
	return reply{status: status, header: http.Header{"Content-Type": {contentType}}, body: body}
}

// scriptedReply turns a scripted Response into a reply; an empty error body
// becomes the provider's envelope from defaultBody.
func scriptedReply(r Response, defaultBody func(status int) string) reply {
	if r.Fault != 0 {
		return reply{fault: r.Fault, notify: r.Notify}
	}
	if r.Disconnect {
		return reply{disconnect: true, notify: r.Notify}
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
	return reply{status: r.Status, header: h, body: body, notify: r.Notify}
}

// write sends the reply, or stages its fault; stop is closed when the fake
// shuts down, which ends any hang.
func (rp reply) write(t testing.TB, w http.ResponseWriter, stop <-chan struct{}) {
	switch {
	case rp.fault == AcceptThenHang || rp.fault == HangBeforeReading:
		hold(t, w, stop, rp.fault == AcceptThenHang, rp.notify)
		return
	case rp.fault == AcceptThenReset:
		reset(t, w, rp.notify)
		return
	case rp.disconnect:
		conn := hijack(t, w)
		if conn != nil {
			_ = conn.Close()
		}
		notify(rp.notify)
		return
	}
	for k, vs := range rp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(rp.status)
	notify(rp.notify)
	_, _ = io.WriteString(w, rp.body)
}

// hijack takes the connection over from the HTTP server, or answers 500 and
// fails the test. Only HTTP/1 connections can be hijacked, which is what
// httptest.NewServer serves.
func hijack(t testing.TB, w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("providertest: cannot take over the connection: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	}
	return conn
}

// hold keeps the connection open and silent until the fake stops or, when
// watch is set, until the client closes its end. Watching means reading,
// which is why HangBeforeReading does not watch.
func hold(t testing.TB, w http.ResponseWriter, stop <-chan struct{}, watch bool, n chan struct{}) {
	conn := hijack(t, w)
	if conn == nil {
		notify(n)
		return
	}
	defer conn.Close()
	gone := make(chan struct{})
	if watch {
		go func() {
			defer close(gone)
			_, _ = io.Copy(io.Discard, conn) // returns when the client hangs up
		}()
	}
	notify(n)
	select {
	case <-gone:
	case <-stop:
	}
}

// reset drops the connection with a TCP RST rather than an orderly FIN.
func reset(t testing.TB, w http.ResponseWriter, n chan struct{}) {
	defer notify(n)
	conn := hijack(t, w)
	if conn == nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST
	}
	_ = conn.Close()
}

func notify(n chan struct{}) {
	if n != nil {
		close(n)
	}
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
