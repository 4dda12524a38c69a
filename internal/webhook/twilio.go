package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// TwilioSignatureHeader is the header Twilio signs every webhook request with.
const TwilioSignatureHeader = "X-Twilio-Signature"

// TwilioVerifier checks X-Twilio-Signature on Twilio webhook requests.
//
// Twilio signs base64(HMAC-SHA1(auth token, URL + params)) where URL is the
// full URL Twilio requested (scheme, host, path and query, exactly as
// configured) and params is every POST parameter, sorted by name, appended as
// name followed by value with no delimiters. The comparison is constant-time.
//
// This is implemented here rather than by calling twilio-go's
// client.RequestValidator because that validator takes a map[string]string
// (Validate) or keeps only the first value of each parameter (ValidateBody),
// so requests with a repeated parameter fail to verify, and its port
// stripping splits the host on ":" and mangles IPv6 literals. For
// single-valued forms the two agree; the tests cross-check them.
type TwilioVerifier struct {
	tokens [][]byte
}

// NewTwilioVerifier builds a verifier for the account's auth token.
// previousTokens are also accepted, so that rotating the auth token (promoting
// the secondary token) does not reject requests signed just before the switch;
// drop them once the rotation is done.
func NewTwilioVerifier(authToken string, previousTokens ...string) (*TwilioVerifier, error) {
	tokens := make([][]byte, 0, 1+len(previousTokens))
	for i, t := range append([]string{authToken}, previousTokens...) {
		// An empty HMAC key is public knowledge: anyone could sign requests.
		if t == "" {
			if i == 0 {
				return nil, errors.New("webhook: Twilio auth token is empty")
			}
			return nil, fmt.Errorf("webhook: previous Twilio auth token %d is empty", i)
		}
		tokens = append(tokens, []byte(t))
	}
	return &TwilioVerifier{tokens: tokens}, nil
}

// Verify authenticates a form-encoded (application/x-www-form-urlencoded)
// webhook, which is how Twilio posts inbound SMS and status callbacks.
//
// fullURL must be the public URL Twilio was configured with, including the
// query string exactly as Twilio sent it; behind a proxy or load balancer,
// rebuild it from configuration, not from the Host header (which an attacker
// controls and which would be wrong behind TLS termination anyway).
//
// form must contain only the POST body parameters (http.Request.PostForm),
// not the query parameters merged in (http.Request.Form): query parameters
// are already covered as part of the URL.
//
// Repeated parameters are signed the way Twilio's own SDKs (twilio-python,
// twilio-node, twilio-php) do and their shared test vector pins: each
// parameter name once, its values sorted and de-duplicated. Twilio's docs do
// not describe repeated parameters; concatenating values in arrival order is
// what the SDKs did first, and it failed on real Twilio requests
// (twilio-node#722, twilio-python#613) until they switched to sorting.
//
// Twilio's SDKs note that the signing side is inconsistent about whether the
// URL carries the default port, so the URL is tried both with and without
// it: "https://h/p" is also tried as "https://h:443/p", and "https://h:8443/p"
// also as "https://h/p".
func (v *TwilioVerifier) Verify(fullURL string, form url.Values, signatureHeader string) error {
	if signatureHeader == "" {
		return fmt.Errorf("%w: %s header is empty", ErrMissingSignature, TwilioSignatureHeader)
	}
	if !v.matches(fullURL, canonicalTwilioParams(form), signatureHeader) {
		return fmt.Errorf("%w: %s does not match the URL and parameters", ErrBadSignature, TwilioSignatureHeader)
	}
	return nil
}

// VerifyBody authenticates a webhook from its raw body, for handlers that do
// not parse the form themselves. If fullURL has a bodySHA256 query parameter
// (Twilio's scheme for JSON bodies), the signature covers the URL alone and
// the body must hash to that value; otherwise the body is parsed as a form
// and checked as in Verify.
func (v *TwilioVerifier) VerifyBody(fullURL string, rawBody []byte, signatureHeader string) error {
	if signatureHeader == "" {
		return fmt.Errorf("%w: %s header is empty", ErrMissingSignature, TwilioSignatureHeader)
	}
	u, err := url.Parse(fullURL)
	if err != nil {
		return fmt.Errorf("%w: cannot parse webhook URL: %v", ErrBadSignature, err)
	}
	wantHash := u.Query().Get("bodySHA256")
	if wantHash == "" {
		form, err := url.ParseQuery(string(rawBody))
		if err != nil {
			return fmt.Errorf("%w: body is not a form: %v", ErrBadSignature, err)
		}
		return v.Verify(fullURL, form, signatureHeader)
	}
	// The signature authenticates the URL, and with it bodySHA256; only then
	// does the hash comparison say anything about the body.
	if !v.matches(fullURL, "", signatureHeader) {
		return fmt.Errorf("%w: %s does not match the URL", ErrBadSignature, TwilioSignatureHeader)
	}
	want, err := hex.DecodeString(wantHash)
	if err != nil {
		return fmt.Errorf("%w: bodySHA256 is not hex", ErrBadSignature)
	}
	got := sha256.Sum256(rawBody)
	if !hmac.Equal(got[:], want) {
		return fmt.Errorf("%w: body does not match bodySHA256", ErrBadSignature)
	}
	return nil
}

// matches reports whether signature is the Twilio signature of any port
// variant of fullURL followed by params, under any accepted token.
func (v *TwilioVerifier) matches(fullURL, params, signature string) bool {
	for _, u := range twilioURLVariants(fullURL) {
		for _, token := range v.tokens {
			mac := hmac.New(sha1.New, token)
			mac.Write([]byte(u))
			mac.Write([]byte(params))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1 {
				return true
			}
		}
	}
	return false
}

// canonicalTwilioParams builds the parameter part of the signed string:
// names in byte order (case-sensitive, so "Reason" sorts before
// "ReasonConferenceEnded" and "To" before "a"), each followed by each of its
// distinct values in byte order.
func canonicalTwilioParams(form url.Values) string {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		values := slices.Clone(form[name])
		slices.Sort(values)
		for _, value := range slices.Compact(values) {
			b.WriteString(name)
			b.WriteString(value)
		}
	}
	return b.String()
}

// twilioURLVariants returns rawURL and the same URL with its port removed (if
// it has one) or with the scheme's default port added (if it has none). It
// edits the string in place instead of re-serialising a url.URL, because the
// signature covers the exact characters and re-encoding could change them.
func twilioURLVariants(rawURL string) []string {
	schemeEnd := strings.Index(rawURL, "://")
	if schemeEnd <= 0 {
		return []string{rawURL}
	}
	authStart := schemeEnd + len("://")
	authEnd := len(rawURL)
	if i := strings.IndexAny(rawURL[authStart:], "/?#"); i >= 0 {
		authEnd = authStart + i
	}
	// Skip any userinfo; the port belongs to the host after the last '@'.
	hostStart := authStart + strings.LastIndex(rawURL[authStart:authEnd], "@") + 1
	hostPort := rawURL[hostStart:authEnd]

	portColon := -1
	if strings.HasPrefix(hostPort, "[") { // IPv6 literal: [::1]:8080
		if end := strings.IndexByte(hostPort, ']'); end >= 0 && end+1 < len(hostPort) && hostPort[end+1] == ':' {
			portColon = end + 1
		}
	} else {
		portColon = strings.LastIndexByte(hostPort, ':')
	}
	if portColon >= 0 {
		return []string{rawURL, rawURL[:hostStart+portColon] + rawURL[authEnd:]}
	}

	var port string
	switch strings.ToLower(rawURL[:schemeEnd]) {
	case "https":
		port = "443"
	case "http":
		port = "80"
	default:
		return []string{rawURL}
	}
	return []string{rawURL, rawURL[:authEnd] + ":" + port + rawURL[authEnd:]}
}

// TwilioInbound is an inbound SMS/MMS posted to a number's messaging webhook.
type TwilioInbound struct {
	MessageSid string
	AccountSid string
	From       string // sender, E.164
	To         string // the Tutti number it was sent to, E.164
	Body       string // as sent; may be empty for media-only MMS
	NumMedia   int
}

// ParseTwilioInbound reads an inbound-message webhook form (verify it first).
// From and MessageSid are required: without a sender there is no contact to
// attribute the message (or an opt-out) to, and without the SID it cannot be
// deduplicated.
func ParseTwilioInbound(form url.Values) (TwilioInbound, error) {
	f := twilioForm{values: form}
	in := TwilioInbound{
		MessageSid: f.required("MessageSid"),
		From:       f.required("From"),
		AccountSid: f.single("AccountSid"),
		To:         f.single("To"),
		Body:       f.single("Body"),
		NumMedia:   f.nonNegativeInt("NumMedia"),
	}
	if f.err != nil {
		return TwilioInbound{}, f.err
	}
	return in, nil
}

// TwilioStatus is a message status callback (the StatusCallback URL given
// when sending).
type TwilioStatus struct {
	MessageSid string
	// MessageStatus is Twilio's status: queued, sending, sent, delivered,
	// undelivered, failed, read, ... It is reported as received; callbacks can
	// arrive out of order, so the consumer must not move a message backwards.
	MessageStatus string
	ErrorCode     int // Twilio error code on failed/undelivered, else 0
	To            string
	From          string
}

// ParseTwilioStatus reads a status callback form (verify it first).
// MessageSid and MessageStatus are required.
func ParseTwilioStatus(form url.Values) (TwilioStatus, error) {
	f := twilioForm{values: form}
	st := TwilioStatus{
		MessageSid:    f.required("MessageSid"),
		MessageStatus: f.required("MessageStatus"),
		ErrorCode:     f.nonNegativeInt("ErrorCode"),
		To:            f.single("To"),
		From:          f.single("From"),
	}
	if f.err != nil {
		return TwilioStatus{}, f.err
	}
	return st, nil
}

// twilioForm reads the parameters of a webhook form, keeping the first
// error: after one, every read returns the zero value.
type twilioForm struct {
	values url.Values
	err    error
}

// single returns the parameter's value, "" if absent. A parameter given
// more than once is rejected: Twilio sends these fields once, and since the
// signature sorts repeated values, their order is not authenticated — taking
// "the first" would let a relay choose which one is used.
func (f *twilioForm) single(name string) string {
	if f.err != nil {
		return ""
	}
	values := f.values[name]
	switch len(values) {
	case 0:
		return ""
	case 1:
		return values[0]
	default:
		f.err = fmt.Errorf("%w: Twilio parameter %s given %d times", ErrMalformedPayload, name, len(values))
		return ""
	}
}

// required is single for a parameter that must be present and non-empty.
func (f *twilioForm) required(name string) string {
	v := f.single(name)
	if f.err == nil && v == "" {
		f.err = fmt.Errorf("%w: Twilio parameter %s is missing", ErrMalformedPayload, name)
	}
	return v
}

// nonNegativeInt parses an optional non-negative integer parameter; absent is 0.
func (f *twilioForm) nonNegativeInt(name string) int {
	v := f.single(name)
	if f.err != nil || v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		f.err = fmt.Errorf("%w: Twilio parameter %s=%q is not a non-negative integer", ErrMalformedPayload, name, v)
		return 0
	}
	return n
}

// TwiMLReply is the TwiML answer to an inbound message: a reply with
// message, or no reply when message is "".
func TwiMLReply(message string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	if message != "" {
		b.WriteString("<Message>")
		_ = xml.EscapeText(&b, []byte(message))
		b.WriteString("</Message>")
	}
	b.WriteString("</Response>")
	return b.String()
}
