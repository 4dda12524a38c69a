package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/mail"
)

// SendGridBaseURL is the production SendGrid API host.
const SendGridBaseURL = "https://api.sendgrid.com"

// CustomArgMessageID is the custom_args key carrying Tutti's message ID.
// SendGrid echoes custom_args on every Event Webhook event, so this is how a
// delivered/bounced/opened event finds its ledger row without depending on
// X-Message-Id having been stored.
const CustomArgMessageID = "tutti_message_id"

// sendGridMailSendPath is the v3 Mail Send endpoint.
const sendGridMailSendPath = "/v3/mail/send"

// SendGrid sends email through the SendGrid v3 Mail Send API using the
// official SDK. It is safe for concurrent use.
type SendGrid struct {
	apiKey  string
	baseURL string
	// client carries the caller's *http.Client. The SDK's
	// sendgrid.MakeRequestWithContext always goes through the package-global
	// rest.DefaultClient (an http.Client with no timeout), so we call the
	// identical rest.Client.SendWithContext on our own instance instead.
	client *rest.Client
}

var _ EmailSender = (*SendGrid)(nil)

// NewSendGrid returns a SendGrid sender. baseURL defaults to SendGridBaseURL;
// point it at a fake (providertest.FakeSendGrid) for tests and local runs.
// httpClient's Timeout, Transport and redirect policy are honoured; nil means
// a client with a 30s timeout.
func NewSendGrid(apiKey, baseURL string, httpClient *http.Client) *SendGrid {
	baseURL = strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if baseURL == "" {
		baseURL = SendGridBaseURL
	}
	hc := http.Client{Timeout: defaultTimeout}
	if httpClient != nil {
		hc = *httpClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	// A send's context may carry a Fence: it runs once connected (fence.go).
	hc.Transport = fenceTransport{next: next}
	return &SendGrid{apiKey: apiKey, baseURL: baseURL, client: &rest.Client{HTTPClient: &hc}}
}

// SendEmail sends m as one v3 mail/send request. A 2xx is acceptance (202
// normally; 200 when the account has sandbox mode on), with the message ID
// taken from the X-Message-Id header. Failures come back as *Error.
func (s *SendGrid) SendEmail(ctx context.Context, messageID string, m Email) (Result, error) {
	body, err := json.Marshal(buildSGMail(messageID, m))
	if err != nil {
		// Only TemplateData can fail to marshal (a func or channel value, say).
		// mail.GetRequestBody would log and send an empty body instead, which
		// SendGrid rejects with a 400 that hides the real cause.
		return Result{}, &Error{Provider: "sendgrid", Message: "encoding mail/send body: " + err.Error(), Err: err}
	}

	req := sendgrid.GetRequest(s.apiKey, sendGridMailSendPath, s.baseURL)
	req.Method = rest.Post
	req.Body = body // rest sets Content-Type: application/json for a non-empty body

	// SendWithContext builds the *http.Request with this context, which is
	// how the trace sees the call.
	var trace writeTrace
	resp, err := s.client.SendWithContext(trace.attach(ctx), req)
	if stop := fenceStopped(ctx); stop != nil {
		return Result{}, stop
	}
	if resp == nil {
		// No response at all. Before the request was written (DNS, connect,
		// TLS, cancelled) a resend is safe; after it, SendGrid may have queued
		// the mail, and with no way to read it back the outcome stays unknown.
		return Result{}, transportError("sendgrid", err, trace.written(err))
	}
	// resp != nil with err != nil means the body could not be read in full.
	// The status line and headers arrived, which is all acceptance needs.
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return Result{
			Provider:          "sendgrid",
			ProviderMessageID: http.Header(resp.Headers).Get("X-Message-Id"),
			AcceptedAt:        time.Now().UTC(),
		}, nil
	}
	return Result{}, sendGridError(resp, err, time.Now())
}

// buildSGMail maps an Email onto the SDK's v3 model: one personalization
// addressed to m.To; dynamic_template_data when a template is used, otherwise
// subject plus content, text/plain before text/html as SendGrid requires.
func buildSGMail(messageID string, m Email) *mail.SGMailV3 {
	sg := mail.NewV3Mail()
	sg.SetFrom(mail.NewEmail(m.FromName, m.From))

	p := mail.NewPersonalization()
	p.AddTos(mail.NewEmail("", m.To))
	if m.TemplateID != "" {
		sg.SetTemplateID(m.TemplateID)
		for k, v := range m.TemplateData {
			p.SetDynamicTemplateData(k, v)
		}
	} else {
		sg.Subject = m.Subject
		if m.Text != "" {
			sg.AddContent(mail.NewContent("text/plain", m.Text))
		}
		if m.HTML != "" {
			sg.AddContent(mail.NewContent("text/html", m.HTML))
		}
	}
	sg.AddPersonalizations(p)

	for k, v := range m.CustomArgs {
		sg.SetCustomArg(k, v)
	}
	// Set last so a caller-supplied key of the same name cannot break the
	// webhook-to-ledger link.
	sg.SetCustomArg(CustomArgMessageID, messageID)
	return sg
}

// sendGridErrorBody is SendGrid's error envelope. field and help are null for
// errors not tied to a field; help is documented as an object but is a URL
// string in practice, so it is kept raw and never decoded.
type sendGridErrorBody struct {
	Errors []struct {
		Message string          `json:"message"`
		Field   string          `json:"field"`
		Help    json.RawMessage `json:"help"`
	} `json:"errors"`
}

// sendGridError classifies a non-2xx response.
func sendGridError(resp *rest.Response, readErr error, now time.Time) *Error {
	e := &Error{
		Provider:   "sendgrid",
		StatusCode: resp.StatusCode,
		Retryable:  RetryableStatus(resp.StatusCode),
		Err:        readErr,
	}

	var parsed sendGridErrorBody
	if json.Unmarshal([]byte(resp.Body), &parsed) == nil && len(parsed.Errors) > 0 {
		msgs := make([]string, 0, len(parsed.Errors))
		for _, pe := range parsed.Errors {
			msg := strings.TrimSpace(pe.Message)
			if pe.Field != "" {
				msg = pe.Field + ": " + msg
			}
			msgs = append(msgs, msg)
		}
		e.Message = strings.Join(msgs, "; ")
	} else {
		e.Message = statusMessage(resp.StatusCode, resp.Body)
	}

	if e.Retryable {
		h := http.Header(resp.Headers)
		e.RetryAfter = RetryAfter(h, now)
		if e.RetryAfter == 0 && resp.StatusCode == http.StatusTooManyRequests {
			// SendGrid's rate-limit responses carry X-RateLimit-Reset (a Unix
			// time) rather than Retry-After; the SDK's own retry loop uses it.
			e.RetryAfter = rateLimitReset(h, now)
		}
	}
	return e
}

// rateLimitReset reads SendGrid's X-RateLimit-Reset (Unix seconds).
func rateLimitReset(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("X-RateLimit-Reset"))
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	if d := time.Unix(secs, 0).Sub(now); d > 0 {
		return d
	}
	return 0
}

// Name implements EmailSender and SMSSender.
func (*SendGrid) Name() string { return "sendgrid" }
