package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"testing"
)

// SendGridMail mirrors the v3 Mail Send request body (the fields Tutti and
// the SDK use). Numbers inside dynamic_template_data decode as float64, as
// they would in any JSON consumer.
type SendGridMail struct {
	Personalizations []SendGridPersonalization `json:"personalizations"`
	From             *SendGridAddress          `json:"from,omitempty"`
	ReplyTo          *SendGridAddress          `json:"reply_to,omitempty"`
	Subject          string                    `json:"subject,omitempty"`
	Content          []SendGridContent         `json:"content,omitempty"`
	TemplateID       string                    `json:"template_id,omitempty"`
	Headers          map[string]string         `json:"headers,omitempty"`
	Categories       []string                  `json:"categories,omitempty"`
	CustomArgs       map[string]string         `json:"custom_args,omitempty"`
	SendAt           int64                     `json:"send_at,omitempty"`
	BatchID          string                    `json:"batch_id,omitempty"`
	ASM              json.RawMessage           `json:"asm,omitempty"`
	MailSettings     json.RawMessage           `json:"mail_settings,omitempty"`
	TrackingSettings json.RawMessage           `json:"tracking_settings,omitempty"`
}

// SendGridPersonalization is one entry of personalizations[].
type SendGridPersonalization struct {
	To                  []SendGridAddress `json:"to"`
	CC                  []SendGridAddress `json:"cc,omitempty"`
	BCC                 []SendGridAddress `json:"bcc,omitempty"`
	Subject             string            `json:"subject,omitempty"`
	Headers             map[string]string `json:"headers,omitempty"`
	Substitutions       map[string]string `json:"substitutions,omitempty"`
	CustomArgs          map[string]string `json:"custom_args,omitempty"`
	DynamicTemplateData map[string]any    `json:"dynamic_template_data,omitempty"`
	SendAt              int64             `json:"send_at,omitempty"`
}

// SendGridAddress is an email object: {"email": ..., "name": ...}.
type SendGridAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// SendGridContent is one entry of content[].
type SendGridContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// SendGridRequest is one request as the fake received and answered it.
type SendGridRequest struct {
	Method string
	Path   string
	Header http.Header
	// RawBody is the request body as sent.
	RawBody []byte
	// Body is RawBody decoded; Decoded reports whether that succeeded.
	Body    SendGridMail
	Decoded bool
	// Status is what the fake answered (0: it dropped the connection);
	// MessageID the X-Message-Id it returned on acceptance. With a Fault the
	// client never saw either: AcceptThenHang and AcceptThenReset still
	// accept the message.
	Status    int
	MessageID string
	// Fault is the network failure staged for this request, if any.
	Fault Fault
}

// Accepted reports whether the fake accepted the message.
func (r SendGridRequest) Accepted() bool { return r.Status >= 200 && r.Status < 300 }

// FakeSendGrid serves POST /v3/mail/send like SendGrid: Bearer API-key auth,
// JSON only, the main validation rules of the v3 schema, 202 Accepted with an
// X-Message-Id header, and SendGrid's {"errors":[...]} envelope on failure.
type FakeSendGrid struct {
	fakeServer
	apiKey string
	script script

	requests requestLog[SendGridRequest]
}

// NewFakeSendGrid starts a fake accepting apiKey (an empty apiKey accepts
// nothing). It is closed on t.Cleanup.
func NewFakeSendGrid(t testing.TB, apiKey string) *FakeSendGrid {
	t.Helper()
	f := &FakeSendGrid{apiKey: apiKey}
	f.start(t, f.serve)
	return f
}

// FaultNext stages fault for the next n authenticated mail/send requests.
func (f *FakeSendGrid) FaultNext(n int, fault Fault) { f.script.faultNext(n, fault) }

// FailNext makes the next n authenticated mail/send requests get status and
// body (empty body: SendGrid's error envelope for the status).
func (f *FakeSendGrid) FailNext(n, status int, body string) { f.script.failNext(n, status, body) }

// Enqueue scripts the next responses, in order; once they are used up the
// fake processes requests normally again.
func (f *FakeSendGrid) Enqueue(rs ...Response) { f.script.push(rs...) }

// Requests returns a copy of every request received, in arrival order.
func (f *FakeSendGrid) Requests() []SendGridRequest { return f.requests.all() }

// Accepted returns the requests the fake accepted (2xx), in order: the
// emails that "went out".
func (f *FakeSendGrid) Accepted() []SendGridRequest { return f.requests.accepted() }

const sendGridHelpBase = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

// sendGridErr is one entry of SendGrid's error envelope; Field and Help are
// null when not applicable, as SendGrid sends them.
type sendGridErr struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func sgErr(message, field, help string) sendGridErr {
	e := sendGridErr{Message: message}
	if field != "" {
		e.Field = &field
	}
	if help != "" {
		h := sendGridHelpBase + help
		e.Help = &h
	}
	return e
}

func sendGridBody(errs ...sendGridErr) string {
	b, _ := json.Marshal(map[string]any{"errors": errs})
	return string(b)
}

// SendGridError is a SendGrid error body with one error, e.g.
// SendGridError("Does not contain a valid address.",
// "personalizations.0.to.0.email"). An empty field is sent as null.
func SendGridError(message, field string) string {
	return sendGridBody(sgErr(message, field, ""))
}

// defaultSendGridBody is the envelope for a scripted failure without a body.
func defaultSendGridBody(status int) string {
	msg := strings.ToLower(http.StatusText(status))
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d", status)
	}
	return SendGridError(msg, "")
}

func (f *FakeSendGrid) serve(w http.ResponseWriter, r *http.Request) {
	rec := SendGridRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}

	// Everything up to authentication reads headers only, so a request can
	// be refused, or left unread, before its body is touched.
	rp, refused := f.gate(r)
	var sr Response
	scripted := false
	if !refused {
		sr, scripted = f.script.pop()
	}
	if scripted && sr.Fault == HangBeforeReading {
		rec.Fault = HangBeforeReading
		f.requests.record(rec)
		reply{fault: HangBeforeReading, notify: sr.Notify}.write(f.t, w, f.stop)
		return
	}

	body, _ := io.ReadAll(r.Body)
	rec.RawBody = body
	if err := json.Unmarshal(body, &rec.Body); err == nil {
		rec.Decoded = true
	}
	msgID := ""
	switch {
	case refused:
	case scripted && sr.Fault == 0:
		rp = scriptedReply(sr, defaultSendGridBody)
		if !rp.disconnect && rp.status >= 200 && rp.status < 300 {
			if msgID = rp.header.Get("X-Message-Id"); msgID == "" {
				msgID = sendGridMessageID()
				rp.header.Set("X-Message-Id", msgID)
			}
		}
	default:
		// AcceptThenHang and AcceptThenReset act on the request as usual
		// and only then fail to answer.
		rp, msgID = f.accept(r, rec)
		rp.fault, rp.notify, rec.Fault = sr.Fault, sr.Notify, sr.Fault
	}
	rec.Status, rec.MessageID = rp.status, msgID
	f.requests.record(rec)
	rp.write(f.t, w, f.stop)
}

// gate answers what SendGrid refuses on the request line and headers alone:
// an unknown path, a wrong method, a missing or wrong API key. refused is
// false when the request may go on.
func (f *FakeSendGrid) gate(r *http.Request) (rp reply, refused bool) {
	if r.URL.Path != "/v3/mail/send" {
		return sendGridReply(http.StatusNotFound, sgErr("resource not found", "", "")), true
	}
	if r.Method != http.MethodPost {
		rp := sendGridReply(http.StatusMethodNotAllowed, sgErr("method not allowed", "", ""))
		rp.header.Set("Allow", http.MethodPost)
		return rp, true
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		return sendGridReply(http.StatusUnauthorized, sgErr("authorization required", "", "")), true
	case auth != "Bearer "+f.apiKey || f.apiKey == "":
		return sendGridReply(http.StatusUnauthorized, sgErr("The provided authorization grant is invalid, expired, or revoked", "", "")), true
	}
	return reply{}, false
}

// accept validates an authenticated request and, if it passes, accepts the
// mail, returning its message ID.
func (f *FakeSendGrid) accept(r *http.Request, rec SendGridRequest) (reply, string) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return sendGridReply(http.StatusUnsupportedMediaType, sgErr("Content-Type should be application/json.", "", "")), ""
	}
	if !rec.Decoded {
		return sendGridReply(http.StatusBadRequest, sgErr("Bad Request", "", "")), ""
	}
	if errs := validateSendGrid(rec.Body); len(errs) > 0 {
		return sendGridReply(http.StatusBadRequest, errs...), ""
	}

	msgID := sendGridMessageID()
	// SendGrid's 202 has an empty body; the ID travels in the header.
	return reply{status: http.StatusAccepted, header: http.Header{"X-Message-Id": {msgID}}}, msgID
}

func sendGridReply(status int, errs ...sendGridErr) reply {
	return jsonReply(status, "application/json", sendGridBody(errs...))
}

// validateSendGrid applies the v3 Mail Send rules a sender most often
// breaks, with SendGrid's field paths, so tests catch malformed requests
// the way SendGrid would. Like SendGrid, it reports every error at once.
func validateSendGrid(m SendGridMail) []sendGridErr {
	var errs []sendGridErr
	if len(m.Personalizations) == 0 {
		errs = append(errs, sgErr("The personalizations field is required and must have at least one personalization.", "personalizations", "#-Personalizations-Errors"))
	}
	allHaveSubject := len(m.Personalizations) > 0
	for i, p := range m.Personalizations {
		if p.Subject == "" {
			allHaveSubject = false
		}
		if len(p.To) == 0 {
			errs = append(errs, sgErr("The to array is required for all personalization objects, and must have at least one email object with a valid email address.", fmt.Sprintf("personalizations.%d.to", i), "#message.personalizations.to"))
		}
		for j, to := range p.To {
			field := fmt.Sprintf("personalizations.%d.to.%d.email", i, j)
			switch {
			case to.Email == "":
				errs = append(errs, sgErr("The to email parameter is required.", field, "#message.personalizations.to"))
			case !validAddress(to.Email):
				errs = append(errs, sgErr("Does not contain a valid address.", field, "#message.personalizations.to"))
			}
		}
	}
	switch {
	case m.From == nil || m.From.Email == "":
		errs = append(errs, sgErr("The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.", "from", "#message.from"))
	case !validAddress(m.From.Email):
		errs = append(errs, sgErr("The from email does not contain a valid address.", "from.email", "#message.from"))
	}
	if m.TemplateID == "" {
		if m.Subject == "" && !allHaveSubject {
			errs = append(errs, sgErr("The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.", "subject", "#message.subject"))
		}
		if len(m.Content) == 0 {
			errs = append(errs, sgErr("Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.", "content", "#message.content"))
		}
	}
	for i, c := range m.Content {
		if c.Value == "" {
			errs = append(errs, sgErr("The content value must be a string at least one character in length.", fmt.Sprintf("content.%d.value", i), "#message.content.value"))
		}
		// SendGrid requires text/plain first, then text/html, then anything
		// else.
		if c.Type == "text/plain" && i != 0 || c.Type == "text/html" && i > 0 && m.Content[i-1].Type != "text/plain" {
			errs = append(errs, sgErr("If present, text/plain and text/html may only be provided in this order, before any other content.", fmt.Sprintf("content.%d.type", i), "#message.content.type"))
		}
	}
	return errs
}

// validAddress is a bare addr-spec check: no display name, one @, and a
// dotted domain, roughly what SendGrid accepts.
func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}
