package providertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// TwilioRequest is one request as the fake received and answered it.
type TwilioRequest struct {
	Method string
	Path   string
	Header http.Header
	// RawBody is the request body as sent; Form is it parsed (Twilio reads
	// only application/x-www-form-urlencoded bodies).
	RawBody []byte
	Form    url.Values
	// AccountSID is the {AccountSid} path segment.
	AccountSID string
	// The Messages API parameters, from Form. Body is the message text.
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	MediaURL            []string
	StatusCallback      string
	// Status is what the fake answered (0: it dropped the connection); SID
	// the Message SID it created. With a Fault the client never saw Status:
	// AcceptThenHang and AcceptThenReset still create the message.
	Status int
	SID    string
	// Fault is the network failure staged for this request, if any.
	Fault Fault
	// Query is the query string of a list read (see Reads).
	Query url.Values
	// ReceivedAt is when the fake began reading the request.
	ReceivedAt time.Time
}

// Accepted reports whether the fake created a message.
func (r TwilioRequest) Accepted() bool { return r.Status >= 200 && r.Status < 300 }

// BasicAuth returns the HTTP Basic credentials the request carried.
func (r TwilioRequest) BasicAuth() (username, password string, ok bool) {
	return (&http.Request{Header: r.Header}).BasicAuth()
}

// FakeTwilio serves POST /2010-04-01/Accounts/{AccountSid}/Messages.json like
// Twilio: HTTP Basic auth as the account, a form-encoded body, 201 Created
// with a Message resource, and Twilio's {"code","message","more_info",
// "status"} envelope on failure. GET on the same path lists the messages it
// created, newest first, in Twilio's page envelope, filtered by To, From and
// DateSent (=, <, >) and paged by PageSize, Page and PageToken.
type FakeTwilio struct {
	fakeServer
	accountSID string
	authToken  string
	script     script
	readScript script

	requests requestLog[TwilioRequest]

	mu       sync.Mutex
	reads    []TwilioRequest
	messages []*twilioMessage // created, oldest first
	optedOut map[string]bool
}

// NewFakeTwilio starts a fake for one account. It is closed on t.Cleanup.
func NewFakeTwilio(t testing.TB, accountSID, authToken string) *FakeTwilio {
	t.Helper()
	f := &FakeTwilio{accountSID: accountSID, authToken: authToken, optedOut: map[string]bool{}}
	f.start(t, f.serve)
	return f
}

// FaultNext stages fault for the next n authenticated create requests.
func (f *FakeTwilio) FaultNext(n int, fault Fault) { f.script.faultNext(n, fault) }

// EnqueueRead scripts the answers to the next list reads (GET), in order,
// apart from the create script; faults apply as to creates.
func (f *FakeTwilio) EnqueueRead(rs ...Response) { f.readScript.push(rs...) }

// Reads returns a copy of every list read (GET) received, in arrival order.
// They are not in Requests, which holds the rest.
func (f *FakeTwilio) Reads() []TwilioRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TwilioRequest(nil), f.reads...)
}

// MarkSent gives the message sid the status "sent" and date_sent at, as
// Twilio does when it hands a message to the carrier; until then date_sent is
// null and no DateSent filter matches the message. It reports whether the
// message exists.
func (f *FakeTwilio) MarkSent(sid string, at time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.messages {
		if m.SID == sid {
			d := at.UTC().Format(time.RFC1123Z)
			m.Status, m.DateSent, m.DateUpdated, m.sentAt = "sent", &d, d, at
			return true
		}
	}
	return false
}

// FailNext makes the next n authenticated Messages requests get status and
// body (empty body: Twilio's error envelope for the status, with code
// 20000+status, which is Twilio's numbering for 20404, 20429, 20500...).
func (f *FakeTwilio) FailNext(n, status int, body string) { f.script.failNext(n, status, body) }

// Enqueue scripts the next responses, in order; once they are used up the
// fake processes requests normally again.
func (f *FakeTwilio) Enqueue(rs ...Response) { f.script.push(rs...) }

// OptOut makes every later message to phone fail as Twilio does after the
// recipient replied STOP: HTTP 400, code 21610.
func (f *FakeTwilio) OptOut(phone string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.optedOut[phone] = true
}

// OptIn undoes OptOut, as a START reply would.
func (f *FakeTwilio) OptIn(phone string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.optedOut, phone)
}

// Requests returns a copy of every request received, in arrival order.
func (f *FakeTwilio) Requests() []TwilioRequest { return f.requests.all() }

// Accepted returns the requests that created a message, in order: the
// messages that "went out".
func (f *FakeTwilio) Accepted() []TwilioRequest { return f.requests.accepted() }

func (f *FakeTwilio) isOptedOut(phone string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.optedOut[phone]
}

// TwilioError is a Twilio REST error body, e.g.
// TwilioError(21610, 400, "Attempt to send to unsubscribed recipient").
func TwilioError(code, status int, message string) string {
	b, _ := json.Marshal(struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Status   int    `json:"status"`
	}{code, message, fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), status})
	return string(b)
}

func defaultTwilioBody(status int) string {
	msg := http.StatusText(status)
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d", status)
	}
	return TwilioError(20000+status, status, msg)
}

var messagesPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)

func (f *FakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	rec := TwilioRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), ReceivedAt: time.Now()}
	if m := messagesPath.FindStringSubmatch(r.URL.Path); m != nil {
		rec.AccountSID = m[1]
	}
	if rec.AccountSID != "" && r.Method == http.MethodGet {
		f.serveList(w, r, rec)
		return
	}

	// Everything up to authentication reads headers only, so a request can
	// be refused, or left unread, before its body is touched.
	rp, refused := f.gate(r, rec)
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
	// Twilio reads parameters only from a form-encoded body; anything else
	// (JSON, say) arrives as no parameters at all.
	parsed := ParseTwilioRequest(r, body)
	parsed.Fault, parsed.ReceivedAt = rec.Fault, rec.ReceivedAt
	rec = parsed

	sid := ""
	switch {
	case refused:
	case scripted && sr.Fault == 0:
		rp = scriptedReply(sr, defaultTwilioBody)
	default:
		// AcceptThenHang and AcceptThenReset act on the request as usual
		// and only then fail to answer.
		rp, sid = f.create(rec)
		rp.fault, rp.notify, rec.Fault = sr.Fault, sr.Notify, sr.Fault
	}
	rec.Status, rec.SID = rp.status, sid
	f.requests.record(rec)
	rp.write(f.t, w, f.stop)
}

// gate answers what Twilio refuses on the request line and headers alone:
// an unknown path, a wrong method, bad credentials. refused is false when the
// request may go on.
func (f *FakeTwilio) gate(r *http.Request, rec TwilioRequest) (rp reply, refused bool) {
	if rec.AccountSID == "" {
		return twilioReply(http.StatusNotFound, TwilioError(20404, 404, fmt.Sprintf("The requested resource %s was not found", r.URL.Path))), true
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		rp := twilioReply(http.StatusMethodNotAllowed, TwilioError(20004, 405, "Method not allowed"))
		rp.header.Set("Allow", "GET, POST")
		return rp, true
	}
	// Credentials for one account cannot act on another: Twilio answers that
	// with the same 20003 as a wrong token.
	user, pass, ok := r.BasicAuth()
	if !ok || user != f.accountSID || pass != f.authToken || rec.AccountSID != f.accountSID {
		rp := twilioReply(http.StatusUnauthorized, TwilioError(20003, 401, "Authenticate"))
		rp.header.Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		return rp, true
	}
	return reply{}, false
}

// create validates an authenticated create request and, if it passes, creates
// the message, returning its SID.
func (f *FakeTwilio) create(rec TwilioRequest) (reply, string) {
	if code, msg := validateTwilio(rec); code != 0 {
		return twilioReply(http.StatusBadRequest, TwilioError(code, 400, msg)), ""
	}
	if f.isOptedOut(rec.To) {
		return twilioReply(http.StatusBadRequest, TwilioError(21610, 400, "Attempt to send to unsubscribed recipient")), ""
	}

	now := time.Now()
	msg := newTwilioMessage(rec, now)
	b, _ := json.Marshal(msg)
	msg.createdAt = now
	f.mu.Lock()
	f.messages = append(f.messages, &msg)
	f.mu.Unlock()
	return twilioReply(http.StatusCreated, string(b)), msg.SID
}

func twilioReply(status int, body string) reply {
	return jsonReply(status, "application/json; charset=utf-8", body)
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// validateTwilio applies the Messages API parameter checks, with Twilio's
// error codes, in the order Twilio reports them (one error per response).
func validateTwilio(r TwilioRequest) (int, string) {
	switch {
	case r.To == "":
		return 21604, "A 'To' phone number is required."
	case r.From == "" && r.MessagingServiceSID == "":
		return 21603, "A 'From' phone number is required."
	case r.Body == "" && len(r.MediaURL) == 0 && r.Form.Get("ContentSid") == "":
		return 21602, "Message body is required."
	case !e164.MatchString(r.To):
		return 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", r.To)
	case len(utf16.Encode([]rune(r.Body))) > 1600:
		return 21617, "The concatenated message body exceeds the 1600 character limit."
	}
	for _, m := range r.MediaURL {
		if u, err := url.Parse(m); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 21620, "Invalid media URL(s)."
		}
	}
	if r.StatusCallback != "" {
		if u, err := url.Parse(r.StatusCallback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 21609, "Invalid StatusCallback url."
		}
	}
	return 0, ""
}

// twilioMessage is the Message resource as Twilio returns it, nulls
// included.
type twilioMessage struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`

	// For listing: when the message was created and (zero until MarkSent)
	// sent, at full precision.
	createdAt, sentAt time.Time
}

func newTwilioMessage(r TwilioRequest, now time.Time) twilioMessage {
	// Twilio gives MMS their own SID prefix.
	prefix := "SM"
	if len(r.MediaURL) > 0 {
		prefix = "MM"
	}
	sid := twilioSID(prefix)
	date := now.UTC().Format(time.RFC1123Z) // RFC 2822, GMT: "Mon, 02 Jan 2006 15:04:05 +0000"
	base := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s", r.AccountSID, sid)
	m := twilioMessage{
		AccountSID:      r.AccountSID,
		APIVersion:      "2010-04-01",
		Body:            r.Body,
		DateCreated:     date,
		DateUpdated:     date,
		Direction:       "outbound-api",
		NumMedia:        fmt.Sprint(len(r.MediaURL)),
		NumSegments:     fmt.Sprint(segments(r.Body)),
		PriceUnit:       "USD",
		SID:             sid,
		Status:          "queued",
		SubresourceURIs: map[string]string{"media": base + "/Media.json", "feedback": base + "/Feedback.json"},
		To:              r.To,
		URI:             base + ".json",
	}
	if r.From != "" {
		m.From = &r.From
	}
	if r.MessagingServiceSID != "" {
		// Through a Messaging Service the sender is chosen later: Twilio
		// answers "accepted" with num_segments 0.
		m.MessagingServiceSID = &r.MessagingServiceSID
		m.Status = "accepted"
		m.NumSegments = "0"
	}
	return m
}

// gsm7 is the GSM 03.38 default alphabet; gsm7Ext the extension table, whose
// characters take two septets.
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "^{}\\[~]|€\f"
)

// segments counts SMS segments the way carriers do: 160 GSM-7 septets or 70
// UCS-2 units in one segment, 153 or 67 per segment once concatenated.
func segments(body string) int {
	units, gsm := 0, true
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7, r):
			units++
		case strings.ContainsRune(gsm7Ext, r):
			units += 2
		default:
			gsm = false
		}
		if !gsm {
			break
		}
	}
	single, multi := 160, 153
	if !gsm {
		units, single, multi = len(utf16.Encode([]rune(body))), 70, 67
	}
	if units <= single {
		return 1
	}
	return (units + multi - 1) / multi
}
