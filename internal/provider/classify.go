package provider

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// defaultTimeout bounds a provider call when the caller passes no
// *http.Client. Neither SDK's own default is a fit: sendgrid/rest uses an
// http.Client with no timeout at all, so a stalled connection would hold an
// activity until Temporal's start-to-close timeout fires.
const defaultTimeout = 30 * time.Second

// retryableStatus is the retry policy shared by both providers: throttling
// and server-side failures can succeed later; any other 4xx means the request
// itself is wrong (bad address, bad key, opted-out recipient) and resending
// the same bytes cannot help.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// retryAfter reads a Retry-After header, in either of the forms RFC 9110
// allows: delay-seconds or an HTTP-date. Zero means no usable hint.
func retryAfter(h http.Header, now time.Time) time.Duration {
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
