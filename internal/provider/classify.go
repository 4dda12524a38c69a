package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// defaultTimeout bounds a provider call when the caller passes no
// *http.Client. Neither SDK's own default is a fit: sendgrid/rest uses an
// http.Client with no timeout at all, so a stalled connection would hold an
// activity until Temporal's start-to-close timeout fires.
const defaultTimeout = 30 * time.Second

// RetryableStatus is the retry policy shared by every provider Tutti calls: throttling
// and server-side failures can succeed later; any other 4xx means the request
// itself is wrong (bad address, bad key, opted-out recipient) and resending
// the same bytes cannot help.
func RetryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// RetryAfter reads a Retry-After header, in either of the forms RFC 9110
// allows: delay-seconds or an HTTP-date. Zero means no usable hint.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxErrorBody caps how much of an unparseable error body ends up in
// Error.Message: enough to recognise a proxy's HTML error page, not so much
// that a ledger row or log line fills with markup.
const maxErrorBody = 512

// snippet returns a whitespace-trimmed, length-capped body for messages.
func snippet(body string) string {
	body = strings.TrimSpace(body)
	if len(body) <= maxErrorBody {
		return body
	}
	cut := maxErrorBody
	for cut > 0 && !utf8.RuneStart(body[cut]) {
		cut--
	}
	return body[:cut] + "…"
}

// statusMessage is the fallback explanation when a provider's error body
// says nothing usable.
func statusMessage(status int, body string) string {
	if s := snippet(body); s != "" {
		return s
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "unexpected HTTP status " + strconv.Itoa(status)
}

// writeTrace follows one provider call through net/http/httptrace to tell a
// transport failure before the request was written in full (the provider
// cannot have acted on it: resend) from one after (it may have: ambiguous).
// It hooks the request's context, so it works with whatever RoundTripper the
// caller configured.
//
// The hooks alone are not enough. Go's HTTP/1 transport calls WroteRequest
// once the request is in its write buffer, before the final flush to the
// socket, so a small request (every SMS and most email) is reported written
// with no byte on the wire yet; a flush that then fails comes back as the
// call's error, a *net.OpError with Op "write". On HTTP/1 the transport waits
// for its writer to finish before returning an error, so the hooks have run
// by then; on HTTP/2 a write can still be in flight, and a connection with no
// WroteRequest yet is counted as written, since the bytes may be on their
// way. A cancellation that lands between WroteRequest and the flush also
// counts as written: the flush's own outcome is hidden behind the context
// error. Both err toward "ambiguous", which never sends twice.
type writeTrace struct {
	mu sync.Mutex
	// Per attempt: the transport may retry a request on a fresh connection
	// when nothing of it was written to a reused one, and GetConn starts
	// each attempt.
	connected bool  // GotConn: a connection (TLS handshake done) was obtained
	wrote     bool  // WroteRequest ran
	writeErr  error // what WroteRequest reported
}

// attach returns ctx with the trace hooks added (to any already there).
func (w *writeTrace) attach(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) {
			w.mu.Lock()
			w.connected, w.wrote, w.writeErr = false, false, nil
			w.mu.Unlock()
		},
		GotConn: func(httptrace.GotConnInfo) {
			w.mu.Lock()
			w.connected = true
			w.mu.Unlock()
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			w.mu.Lock()
			w.wrote, w.writeErr = true, info.Err
			w.mu.Unlock()
		},
	})
}

// written reports whether a call that failed with err, and no HTTP response,
// may have delivered its whole request to the provider.
func (w *writeTrace) written(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !w.connected:
		// Refused, DNS, TLS handshake, cancelled before a connection: the
		// request never left.
		return false
	case w.wrote && w.writeErr != nil:
		return false
	case writeFailed(err):
		return false
	default:
		return true
	}
}

// writeFailed reports whether err is a failed write to the connection: the
// request did not reach the socket in full.
func writeFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}

// transportError classifies a call that got no HTTP response. written is
// writeTrace.written: once the request is out, only the provider knows
// whether it acted, and resending could deliver the message twice.
func transportError(provider string, err error, written bool) *Error {
	e := &Error{Provider: provider, Err: err}
	msg := "no response"
	if err != nil {
		msg = err.Error()
	}
	if written {
		e.Ambiguous = true
		e.Message = "request sent, no answer (the provider may have accepted it): " + msg
	} else {
		e.Retryable = true
		e.Message = msg
	}
	return e
}
