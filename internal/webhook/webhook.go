// Package webhook authenticates and decodes the callbacks Tutti's delivery
// providers post back to it: SendGrid's Signed Event Webhook (email
// processed/delivered/open/click/bounce/... events) and Twilio's messaging
// webhooks (inbound SMS and message status callbacks). It also classifies
// inbound SMS bodies into the carrier opt-out/opt-in/help keywords, and
// decides what each event changes in Tutti (effects.go): an Update in
// storage's vocabulary, which storage.ApplyProviderEvent commits.
//
// The package is deliberately pure: no I/O, no clock, no HTTP server, no
// database access (it uses storage's types, never its Store). An HTTP
// handler is expected to
//
//  1. read the raw request body (bounded, e.g. with http.MaxBytesReader) and
//     the signature headers,
//  2. call the provider verifier's Verify method and reject the request if it
//     fails, and only then
//  3. call the matching Parse function, look up the message and contact the
//     event is about, and apply the matching Update function's answer.
//
// Parsing before verifying would let anyone who can reach the endpoint forge
// opens, bounces or opt-outs, so the Parse functions assume their input has
// already been authenticated.
//
// Errors are reported through the sentinels below, tested with errors.Is, so
// the handler can choose a status code without string matching. A sensible
// mapping is ErrMissingSignature → 401, ErrBadSignature and ErrStaleTimestamp
// → 403, ErrMalformedPayload → 400.
package webhook

import "errors"

var (
	// ErrMissingSignature means the request carried no signature at all (or,
	// for SendGrid, no signing timestamp): it was not signed by the provider,
	// or a proxy stripped the headers.
	ErrMissingSignature = errors.New("webhook: missing signature")

	// ErrBadSignature means a signature was present but is malformed or does
	// not match the request: it was forged, tampered with in transit, signed
	// with a different key/token, or verified against the wrong URL.
	ErrBadSignature = errors.New("webhook: invalid signature")

	// ErrStaleTimestamp means the signature is genuine but the signing time is
	// too far from now, so the request may be a replay.
	ErrStaleTimestamp = errors.New("webhook: signature timestamp outside the accepted window")

	// ErrMalformedPayload means an authenticated request's body does not have
	// the shape the provider documents (not a JSON array of events, a required
	// form field missing, a number that does not parse, ...).
	ErrMalformedPayload = errors.New("webhook: malformed payload")
)
