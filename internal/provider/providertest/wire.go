package providertest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// The functions in this file expose the fakes' wire rules to servers that
// are not tied to a test: internal/chaos runs a long-lived, fault-injecting
// fake provider process with them, so a message it accepts passed exactly the
// checks FakeSendGrid and FakeTwilio apply.

// WireError is the answer a provider gives a request it refuses without
// acting on it: the status, headers and the provider's own error envelope.
type WireError struct {
	Status int
	Header http.Header
	Body   string
}

// Write sends the refusal.
func (e *WireError) Write(w http.ResponseWriter) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(e.Body))
}

func wireError(rp reply) *WireError {
	return &WireError{Status: rp.status, Header: rp.header, Body: rp.body}
}

// SendGridMailSendPath is the v3 Mail Send endpoint the SendGrid fakes serve.
const SendGridMailSendPath = "/v3/mail/send"

// CheckSendGridMailSend applies FakeSendGrid's rules to one request: POST
// /v3/mail/send, "Authorization: Bearer apiKey", a JSON body, and the v3
// schema rules. A nil *WireError means SendGrid would accept the message.
// The body is returned decoded when it is JSON, whatever the verdict.
func CheckSendGridMailSend(r *http.Request, body []byte, apiKey string) (SendGridMail, *WireError) {
	var m SendGridMail
	decoded := json.Unmarshal(body, &m) == nil
	switch {
	case r.URL.Path != SendGridMailSendPath:
		return m, wireError(sendGridReply(http.StatusNotFound, sgErr("resource not found", "", "")))
	case r.Method != http.MethodPost:
		rp := sendGridReply(http.StatusMethodNotAllowed, sgErr("method not allowed", "", ""))
		rp.header.Set("Allow", http.MethodPost)
		return m, wireError(rp)
	}
	if e := CheckSendGridAuth(r, apiKey); e != nil {
		return m, e
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return m, wireError(sendGridReply(http.StatusUnsupportedMediaType, sgErr("Content-Type should be application/json.", "", "")))
	}
	if !decoded {
		return m, wireError(sendGridReply(http.StatusBadRequest, sgErr("Bad Request", "", "")))
	}
	if errs := validateSendGrid(m); len(errs) > 0 {
		return m, wireError(sendGridReply(http.StatusBadRequest, errs...))
	}
	return m, nil
}

// CheckSendGridAuth checks the Bearer API key as SendGrid does (an empty
// apiKey accepts nothing).
func CheckSendGridAuth(r *http.Request, apiKey string) *WireError {
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		return wireError(sendGridReply(http.StatusUnauthorized, sgErr("authorization required", "", "")))
	case auth != "Bearer "+apiKey || apiKey == "":
		return wireError(sendGridReply(http.StatusUnauthorized, sgErr("The provided authorization grant is invalid, expired, or revoked", "", "")))
	}
	return nil
}

// SendGridStatusError is SendGrid's answer with status and its error
// envelope, e.g. SendGridStatusError(500, nil). header is added (a 429's
// Retry-After, say).
func SendGridStatusError(status int, header http.Header) *WireError {
	e := wireError(jsonReply(status, "application/json", defaultSendGridBody(status)))
	for k, vs := range header {
		e.Header[k] = append(e.Header[k], vs...)
	}
	return e
}

// NewSendGridMessageID returns an id shaped like SendGrid's X-Message-Id.
func NewSendGridMessageID() string { return sendGridMessageID() }

// ParseTwilioRequest reads a Messages API request the way FakeTwilio does:
// the {AccountSid} path segment and the form-encoded parameters (Twilio reads
// nothing else). Status and SID are left zero.
func ParseTwilioRequest(r *http.Request, body []byte) TwilioRequest {
	rec := TwilioRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), RawBody: body}
	if m := messagesPath.FindStringSubmatch(r.URL.Path); m != nil {
		rec.AccountSID = m[1]
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			rec.Form = form
		}
	}
	if rec.Form == nil {
		rec.Form = url.Values{}
	}
	rec.To = rec.Form.Get("To")
	rec.From = rec.Form.Get("From")
	rec.MessagingServiceSID = rec.Form.Get("MessagingServiceSid")
	rec.Body = rec.Form.Get("Body")
	rec.MediaURL = rec.Form["MediaUrl"]
	rec.StatusCallback = rec.Form.Get("StatusCallback")
	return rec
}

// twilioMessagesPath is the Messages list or one Message:
// /2010-04-01/Accounts/{AccountSid}/Messages.json or .../Messages/{Sid}.json.
var twilioMessagesPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json$`)

// TwilioMessageSID returns the {Sid} of a .../Messages/{Sid}.json path, or
// "" for the list or any other path.
func TwilioMessageSID(path string) string {
	if m := twilioMessagesPath.FindStringSubmatch(path); m != nil {
		return m[2]
	}
	return ""
}

// CheckTwilioAuth checks that r is for the Messages list of accountSID or
// one of its Messages, and authenticated as that account, as FakeTwilio
// does. Credentials for one account cannot act on another: Twilio answers
// that with the same 20003 as a wrong token.
func CheckTwilioAuth(r *http.Request, accountSID, authToken string) *WireError {
	m := twilioMessagesPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return TwilioNotFound(r.URL.Path)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != accountSID || pass != authToken || m[1] != accountSID {
		rp := twilioReply(http.StatusUnauthorized, TwilioError(20003, 401, "Authenticate"))
		rp.header.Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		return wireError(rp)
	}
	return nil
}

// TwilioNotFound is Twilio's 404 (code 20404) for path.
func TwilioNotFound(path string) *WireError {
	return wireError(twilioReply(http.StatusNotFound, TwilioError(20404, 404, "The requested resource "+path+" was not found")))
}

// CheckTwilioCreateMessage applies FakeTwilio's rules to a POST to the
// Messages list: path, Basic auth as the account, and the parameter checks
// with Twilio's error codes. A nil *WireError means Twilio would create the
// message. Opt-outs (21610) are not modelled here.
func CheckTwilioCreateMessage(r *http.Request, body []byte, accountSID, authToken string) (TwilioRequest, *WireError) {
	rec := ParseTwilioRequest(r, body)
	if rec.AccountSID == "" {
		return rec, TwilioNotFound(r.URL.Path)
	}
	if e := CheckTwilioAuth(r, accountSID, authToken); e != nil {
		return rec, e
	}
	if r.Method != http.MethodPost {
		rp := twilioReply(http.StatusMethodNotAllowed, TwilioError(20004, 405, "Method not allowed"))
		rp.header.Set("Allow", "GET, POST")
		return rec, wireError(rp)
	}
	if code, msg := validateTwilio(rec); code != 0 {
		return rec, wireError(twilioReply(http.StatusBadRequest, TwilioError(code, 400, msg)))
	}
	return rec, nil
}

// TwilioStatusError is Twilio's answer with status and its error envelope
// (code 20000+status: 20429, 20500...). header is added.
func TwilioStatusError(status int, header http.Header) *WireError {
	e := wireError(twilioReply(status, defaultTwilioBody(status)))
	for k, vs := range header {
		e.Header[k] = append(e.Header[k], vs...)
	}
	return e
}

// TwilioMessage is a Message resource as Twilio returns it, nulls included.
type TwilioMessage = twilioMessage

// TwilioPage is Twilio's list envelope for Messages.
type TwilioPage = twilioPage

// NewTwilioMessage is the resource Twilio creates for an accepted request at
// now: a fresh SID, status queued (accepted through a Messaging Service),
// RFC 2822 dates in GMT, segments counted as carriers do.
func NewTwilioMessage(r TwilioRequest, now time.Time) TwilioMessage { return newTwilioMessage(r, now) }

// TwilioJSON is the content type Twilio answers with.
const TwilioJSON = "application/json; charset=utf-8"

// TwilioPageSize reads the PageSize parameter of a list request: default 50,
// at most 1000 (Twilio's documented bounds; out-of-range values are clamped).
func TwilioPageSize(q url.Values) int {
	n, err := strconv.Atoi(q.Get("PageSize"))
	switch {
	case err != nil || n < 1:
		return 50
	case n > 1000:
		return 1000
	}
	return n
}
