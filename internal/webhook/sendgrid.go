package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Headers SendGrid sets on every Signed Event Webhook POST.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// Custom args Tutti attaches to every email it sends (see internal/provider).
// SendGrid echoes custom_args back, flattened into each event object.
const (
	CustomArgMessageID = "tutti_message_id"
	CustomArgJourneyID = "tutti_journey_id"
	CustomArgStepID    = "tutti_step_id"
	CustomArgContactID = "tutti_contact_id"
)

// SendGridVerifier checks the ECDSA signature SendGrid puts on Event Webhook
// requests and rejects requests whose signing time is outside a window, so a
// captured request cannot be replayed indefinitely.
//
// The checks are done with the standard library rather than sendgrid-go's
// helpers/eventwebhook: that helper panics on a verification key that is not
// ECDSA (unchecked type assertion), does not check the curve, and accepts
// trailing bytes after the DER signature. The signed payload and encodings
// are the same; the tests cross-check against the SDK.
type SendGridVerifier struct {
	key    *ecdsa.PublicKey
	maxAge time.Duration
}

// NewSendGridVerifier builds a verifier from the verification key shown in
// SendGrid's Mail Settings → Signed Event Webhook (base64 of the DER
// SubjectPublicKeyInfo of an ECDSA P-256 key; a PEM "PUBLIC KEY" block is
// accepted too, since that is how the key often ends up in secret stores).
//
// maxAge bounds |now − signing time|. SendGrid retries failed deliveries for
// up to 24 hours and does not document whether a retry is re-signed with a
// fresh timestamp, so a very small window can turn a transient outage into
// lost events; dedupe on sg_event_id regardless of the window.
func NewSendGridVerifier(publicKeyBase64 string, maxAge time.Duration) (*SendGridVerifier, error) {
	if maxAge <= 0 {
		// A zero window would reject everything; a negative one is a bug.
		// Turning replay protection off is not offered.
		return nil, fmt.Errorf("webhook: SendGrid maxAge must be positive, got %s", maxAge)
	}
	key, err := parseSendGridPublicKey(publicKeyBase64)
	if err != nil {
		return nil, err
	}
	return &SendGridVerifier{key: key, maxAge: maxAge}, nil
}

func parseSendGridPublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("webhook: SendGrid verification key is empty")
	}
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("webhook: SendGrid verification key looks like PEM but does not decode")
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("webhook: SendGrid verification key is a PEM %q block, want \"PUBLIC KEY\"", block.Type)
		}
		der = block.Bytes
	} else {
		var err error
		// StdEncoding skips \r and \n, so a key wrapped over lines still decodes.
		der, err = base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("webhook: SendGrid verification key is not valid base64: %w", err)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("webhook: SendGrid verification key is not a DER public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("webhook: SendGrid verification key is %T, want an ECDSA P-256 public key", pub)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("webhook: SendGrid verification key is on curve %s, want P-256", ec.Curve.Params().Name)
	}
	return ec, nil
}

// Verify authenticates one Event Webhook request. signatureB64 and timestamp
// are the raw values of SendGridSignatureHeader and SendGridTimestampHeader;
// rawBody must be the request body exactly as received (no re-encoding, no
// trimming: SendGrid's bodies end in "\r\n" and those bytes are signed).
//
// SendGrid signs SHA-256(timestamp || body) with ECDSA P-256 and sends the
// ASN.1 DER signature base64-encoded. The signature is checked before the
// timestamp window, so ErrStaleTimestamp always means "genuine but too old or
// too far in the future" (a replay or a skewed clock), never a forgery.
func (v *SendGridVerifier) Verify(signatureB64, timestamp string, rawBody []byte, now time.Time) error {
	if signatureB64 == "" {
		return fmt.Errorf("%w: %s header is empty", ErrMissingSignature, SendGridSignatureHeader)
	}
	if timestamp == "" {
		return fmt.Errorf("%w: %s header is empty", ErrMissingSignature, SendGridTimestampHeader)
	}
	signedAt, err := parseUnixSeconds(timestamp)
	if err != nil {
		return fmt.Errorf("%w: %s header: %v", ErrBadSignature, SendGridTimestampHeader, err)
	}
	sig, err := base64.StdEncoding.DecodeString(signatureB64)
	if err != nil {
		return fmt.Errorf("%w: %s header is not valid base64", ErrBadSignature, SendGridSignatureHeader)
	}

	h := sha256.New()
	h.Write([]byte(timestamp)) // the header string as sent, not a re-formatted number
	h.Write(rawBody)
	if !ecdsa.VerifyASN1(v.key, h.Sum(nil), sig) {
		return fmt.Errorf("%w: SendGrid signature does not match timestamp and body", ErrBadSignature)
	}

	// time.Time.Sub saturates instead of overflowing, so absurd timestamps
	// land outside the window rather than wrapping into it.
	skew := now.Sub(time.Unix(signedAt, 0))
	if skew > v.maxAge || skew < -v.maxAge {
		return fmt.Errorf("%w: signed at %s, %s from now, allowed ±%s",
			ErrStaleTimestamp, time.Unix(signedAt, 0).UTC().Format(time.RFC3339), skew, v.maxAge)
	}
	return nil
}

// parseUnixSeconds accepts only plain decimal digits: SendGrid sends an
// integer Unix time and anything else (signs, spaces, fractions) is a
// malformed header, not something to be lenient about.
func parseUnixSeconds(s string) (int64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a Unix time in seconds", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Unix time in seconds", s)
	}
	return n, nil
}

// SendGridEvent is one event from an Event Webhook POST. Fields that SendGrid
// only sends for some event types are zero when absent.
type SendGridEvent struct {
	Email     string
	Timestamp int64 // Unix seconds at which the event happened
	// Event is SendGrid's event name: processed, delivered, open, click,
	// bounce, dropped, spamreport, unsubscribe, group_unsubscribe, deferred,
	// and others Tutti does not act on (group_resubscribe, account events).
	Event       string
	SGEventID   string // unique per event; use it to dedupe retried POSTs
	SGMessageID string
	URL         string // click, group_(un)subscribe: the link followed
	Reason      string // bounce, dropped, deferred: why
	Status      string // bounce, dropped: SMTP enhanced status, e.g. "5.0.0"
	Response    string // delivered, deferred: the receiving server's reply
	// Type is "bounce" (the receiving server rejected the recipient) or
	// "blocked" (it rejected the message or the sending IP) on bounce events.
	Type                 string
	BounceClassification string
	ASMGroupID           int64 // unsubscribe group of group_(un)subscribe
	UserAgent            string
	IP                   string
	// SGMachineOpen is true on opens SendGrid attributes to a machine fetching
	// the tracking pixel (Apple Mail Privacy Protection prefetch), not a human.
	SGMachineOpen bool
	// Categories is SendGrid's "category", which is a string or an array.
	Categories []string
	// CustomArgs holds the top-level string fields SendGrid does not define
	// itself; that is where custom_args come back. It may also pick up
	// string fields SendGrid adds in the future, so read the keys you set
	// (the CustomArg* constants) rather than iterating.
	CustomArgs map[string]string
}

// Tutti's names for the SendGrid events it acts on, as returned by Kind.
const (
	KindEmailProcessed        = "email.processed"
	KindEmailDelivered        = "email.delivered"
	KindEmailOpened           = "email.opened"
	KindEmailClicked          = "email.clicked"
	KindEmailBounced          = "email.bounced"
	KindEmailDropped          = "email.dropped"
	KindEmailSpamReported     = "email.spam_reported"
	KindEmailUnsubscribed     = "email.unsubscribed"
	KindEmailGroupUnsubscribe = "email.group_unsubscribed"
	KindEmailDeferred         = "email.deferred"
)

var sendGridKinds = map[string]string{
	"processed":         KindEmailProcessed,
	"delivered":         KindEmailDelivered,
	"open":              KindEmailOpened,
	"click":             KindEmailClicked,
	"bounce":            KindEmailBounced,
	"dropped":           KindEmailDropped,
	"spamreport":        KindEmailSpamReported,
	"unsubscribe":       KindEmailUnsubscribed,
	"group_unsubscribe": KindEmailGroupUnsubscribe,
	"deferred":          KindEmailDeferred,
}

// Kind maps the SendGrid event name to Tutti's event name. It returns "" for
// events Tutti does not handle, which the caller should skip rather than
// fail the batch on (SendGrid adds event types over time).
func (e SendGridEvent) Kind() string {
	return sendGridKinds[e.Event]
}

// MessageID is the Tutti message ID the email was sent with, or "" if the
// event carries none (e.g. mail sent outside Tutti on the same account).
func (e SendGridEvent) MessageID() string {
	return e.CustomArgs[CustomArgMessageID]
}

// IsMachineOpen reports whether this is an open SendGrid flagged as
// automated. Such opens say nothing about the recipient's interest, so
// journeys should not branch on them as if a person had read the email.
func (e SendGridEvent) IsMachineOpen() bool {
	return e.Event == "open" && e.SGMachineOpen
}

// HardBounce reports whether the recipient address itself was rejected
// (bounce event of type "bounce"), as opposed to a block (type "blocked"),
// which is about the message or sending reputation and says nothing about the
// address. Only hard bounces should suppress the address. A bounce without a
// type is not treated as hard: SendGrid's own bounce suppression still drops
// further sends to a genuinely dead address.
func (e SendGridEvent) HardBounce() bool {
	return e.Event == "bounce" && e.Type == "bounce"
}

// Time is Timestamp as a UTC time.Time.
func (e SendGridEvent) Time() time.Time {
	return time.Unix(e.Timestamp, 0).UTC()
}

// sendGridReservedFields are top-level event fields SendGrid itself produces
// (per its Event Webhook reference and observed payloads). They never count as
// custom args, so CustomArgs stays ours.
var sendGridReservedFields = map[string]struct{}{
	"attempt": {}, "cert_err": {}, "mc_auto_id": {}, "mc_pod_id": {}, "mc_stats": {},
	"marketing_campaign_id": {}, "marketing_campaign_name": {}, "marketing_campaign_split_id": {},
	"marketing_campaign_version": {}, "newsletter": {}, "phase_id": {}, "pool": {}, "post_type": {},
	"send_at": {}, "sg_content_type": {}, "sg_template_id": {}, "sg_template_name": {},
	"sg_user_id": {}, "singlesend_id": {}, "singlesend_name": {}, "smtp-id": {},
	"template_hash": {}, "template_id": {}, "template_name": {}, "template_version_id": {},
	"tls": {}, "unique_args": {}, "url_offset": {},
}

// UnmarshalJSON decodes one event object. Known fields are decoded by name
// (exact, case-sensitive, as SendGrid sends them); numeric and boolean fields
// also accept their string spellings because SendGrid's payloads have not
// always been consistent about that. Unknown string fields become CustomArgs.
func (e *SendGridEvent) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("event is null, want an object")
	}
	var ev SendGridEvent
	stringFields := map[string]*string{
		"email": &ev.Email, "event": &ev.Event, "sg_event_id": &ev.SGEventID, "sg_message_id": &ev.SGMessageID,
		"url": &ev.URL, "reason": &ev.Reason, "status": &ev.Status, "response": &ev.Response, "type": &ev.Type,
		"bounce_classification": &ev.BounceClassification, "useragent": &ev.UserAgent, "ip": &ev.IP,
	}
	for name, value := range raw {
		var err error
		switch dst, isString := stringFields[name]; {
		case isString:
			err = decodeJSONString(value, dst)
		case name == "timestamp":
			ev.Timestamp, err = decodeJSONInt(value)
		case name == "asm_group_id":
			ev.ASMGroupID, err = decodeJSONInt(value)
		case name == "sg_machine_open":
			ev.SGMachineOpen, err = decodeJSONBool(value)
		case name == "category":
			ev.Categories, err = decodeJSONStrings(value)
		default:
			if _, reserved := sendGridReservedFields[name]; reserved {
				continue
			}
			// custom_args values are always strings; anything else is a
			// SendGrid field this code does not know, not one of ours.
			var s string
			if isJSONNull(value) || json.Unmarshal(value, &s) != nil {
				continue
			}
			if ev.CustomArgs == nil {
				ev.CustomArgs = make(map[string]string)
			}
			ev.CustomArgs[name] = s
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	*e = ev
	return nil
}

// ParseSendGridEvents decodes an Event Webhook body: a JSON array of event
// objects. Verify the request first. An empty array yields no events and no
// error. Any malformed event fails the whole batch with ErrMalformedPayload,
// because a partially applied batch would be retried by SendGrid and applied
// twice; events of kinds Tutti does not handle parse fine (Kind() == "").
func ParseSendGridEvents(rawBody []byte) ([]SendGridEvent, error) {
	trimmed := bytes.TrimSpace(rawBody)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, fmt.Errorf("%w: SendGrid body is not a JSON array", ErrMalformedPayload)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return nil, fmt.Errorf("%w: SendGrid body: %v", ErrMalformedPayload, err)
	}
	events := make([]SendGridEvent, len(items))
	for i, item := range items {
		if err := events[i].UnmarshalJSON(item); err != nil {
			return nil, fmt.Errorf("%w: SendGrid event %d: %v", ErrMalformedPayload, i, err)
		}
	}
	return events, nil
}

func isJSONNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

func decodeJSONString(v json.RawMessage, dst *string) error {
	if isJSONNull(v) {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("want a string, got %s", v)
	}
	return nil
}

// decodeJSONInt accepts an integer as a JSON number or a numeric string.
func decodeJSONInt(v json.RawMessage) (int64, error) {
	if isJSONNull(v) {
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, fmt.Errorf("want an integer, got %s", v)
		}
		n = json.Number(strings.TrimSpace(s))
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	// Integral floats ("1513299569.0") are tolerated; fractions are not.
	// float64(MaxInt64) is 2^63, which no longer fits, hence >=.
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, fmt.Errorf("want an integer, got %s", v)
	}
	return int64(f), nil
}

// decodeJSONBool accepts a JSON boolean or its string spelling.
func decodeJSONBool(v json.RawMessage) (bool, error) {
	if isJSONNull(v) {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("want a boolean, got %s", v)
}

// decodeJSONStrings accepts a single string or an array of strings.
func decodeJSONStrings(v json.RawMessage) ([]string, error) {
	if isJSONNull(v) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("want a string or an array of strings, got %s", v)
	}
	return many, nil
}
