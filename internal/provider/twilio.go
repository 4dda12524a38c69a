package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// TwilioBaseURL is the production Twilio REST API host, the one twilio-go
// hard-codes into every generated API service.
const TwilioBaseURL = "https://api.twilio.com"

// messagingServiceSID matches a Messaging Service SID. Matching the whole SID
// rather than the "MG" prefix keeps an alphanumeric sender ID that happens to
// start with MG from being routed as a service.
var messagingServiceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)

// Twilio sends SMS and MMS through the Twilio Messages API using twilio-go.
// It is safe for concurrent use.
//
// twilio-go hard-codes https://api.twilio.com in its generated services and
// ignores contexts (it builds every request with context.Background()). Two
// SDK seams fix that without forking it:
//
//   - the API service accepts any client.BaseClient, so rebasedClient wraps
//     the SDK's own client.Client and rewrites scheme, host and path prefix
//     to baseURL before the SDK builds the *http.Request (URL, Host header and
//     error messages all name the real target);
//   - client.Client takes an *http.Client, whose per-call RoundTripper,
//     twilioCall, attaches the caller's context so cancellation and deadlines
//     reach the socket, and keeps the response status and headers, which
//     twilio-go drops from its errors but classification needs (Retry-After,
//     the status of a proxy's non-JSON 502).
//
// twilioCall also sets the Basic auth header. twilio-go refuses, before
// sending anything, credentials that are not purely alphanumeric (error
// 21222/21224); real SIDs and tokens always are, but that local check would
// turn a stray character in configuration, or a readable test token, into an
// SDK-invented 400 instead of Twilio's own answer (401, code 20003).
type Twilio struct {
	accountSID string
	authToken  string
	// target is where requests go; nil leaves twilio-go's own URL alone,
	// including its TWILIO_EDGE/TWILIO_REGION handling.
	target    *url.URL
	transport http.RoundTripper
	timeout   time.Duration
	// configErr is a bad baseURL, reported by every send: NewTwilio has no
	// error return, and silently falling back to production would be worse.
	configErr error
}

var _ SMSSender = (*Twilio)(nil)

// NewTwilio returns a Twilio sender authenticating with HTTP Basic
// accountSID:authToken. baseURL defaults to TwilioBaseURL; point it at a fake
// (providertest.FakeTwilio) for tests and local runs. From httpClient the
// Transport and Timeout are used (nil: http.DefaultTransport, 30s); redirects
// are never followed, as in twilio-go's own default client.
func NewTwilio(accountSID, authToken, baseURL string, httpClient *http.Client) *Twilio {
	t := &Twilio{
		accountSID: accountSID,
		authToken:  authToken,
		transport:  http.DefaultTransport,
		timeout:    defaultTimeout,
	}
	if httpClient != nil {
		if httpClient.Transport != nil {
			t.transport = httpClient.Transport
		}
		t.timeout = httpClient.Timeout
	}
	baseURL = strings.TrimRight(strings.TrimSpace(baseURL), "/")
	if baseURL != "" && baseURL != TwilioBaseURL {
		u, err := url.Parse(baseURL)
		switch {
		case err != nil:
			t.configErr = fmt.Errorf("invalid Twilio base URL %q: %w", baseURL, err)
		case u.Scheme == "" || u.Host == "":
			t.configErr = fmt.Errorf("invalid Twilio base URL %q: want scheme://host", baseURL)
		default:
			t.target = u
		}
	}
	return t
}

// SendSMS creates one Message resource. m.From is sent as From, or as
// MessagingServiceSid when it is a Messaging Service SID (MG + 32 hex), in
// which case Twilio picks the sender from the service's pool. MediaURL makes
// it an MMS. messageID is not sent: the Messages API has no custom metadata,
// so delivery callbacks are tied to the ledger through the returned SID.
func (t *Twilio) SendSMS(ctx context.Context, messageID string, m SMS) (Result, error) {
	if t.configErr != nil {
		return Result{}, &Error{Provider: "twilio", Message: t.configErr.Error(), Err: t.configErr}
	}
	ctx, cancel := t.withTimeout(ctx)
	defer cancel()
	call, api := t.newCall(ctx, &writeTrace{})
	defer call.release()

	msg, err := api.CreateMessage(twilioParams(m))
	if stop := fenceStopped(ctx); stop != nil {
		return Result{}, stop
	}
	if err != nil {
		return Result{}, call.classify(err)
	}
	if msg == nil || msg.Sid == nil || *msg.Sid == "" {
		// Twilio answered 2xx, so the message is probably queued; without a
		// SID it cannot be tracked. Retrying would likely send a duplicate.
		return Result{}, &Error{Provider: "twilio", StatusCode: call.status, Message: "accepted response has no message sid"}
	}
	return Result{Provider: "twilio", ProviderMessageID: *msg.Sid, AcceptedAt: time.Now().UTC()}, nil
}

// withTimeout applies the configured timeout as a context deadline rather
// than http.Client.Timeout: twilioCall replaces the request's context, which
// would discard the deadline http.Client derives from Timeout.
func (t *Twilio) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.timeout > 0 {
		return context.WithTimeout(ctx, t.timeout)
	}
	return context.WithCancel(ctx)
}

// newCall builds the v2010 API service for one call on ctx, through the
// seams described on Twilio. trace, when not nil, follows the request so a
// transport failure can be classified as written or not; reads leave it nil,
// since reading again is always safe.
func (t *Twilio) newCall(ctx context.Context, trace *writeTrace) (*twilioCall, *openapi.ApiService) {
	next := t.transport
	if trace != nil {
		// A send: the fence its context carries runs once connected.
		next = fenceTransport{next: next}
	}
	call := &twilioCall{ctx: ctx, next: next, username: t.accountSID, password: t.authToken, trace: trace}
	c := &client.Client{
		// Empty: the SDK then neither validates nor sets credentials, and
		// twilioCall authenticates the request (see Twilio).
		Credentials: client.NewCredentials("", ""),
		HTTPClient: &http.Client{
			Transport: call,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	c.SetAccountSid(t.accountSID)
	var base client.BaseClient = c
	if t.target != nil {
		base = rebasedClient{Client: c, target: t.target}
	}
	// The v2010 service alone: twilio.NewRestClientWithParams would build all
	// ~60 API services on every call to use one.
	return call, openapi.NewApiServiceWithClient(base)
}

// twilioParams maps an SMS onto CreateMessageParams, leaving unset what the
// message does not have so the form carries only meaningful fields.
func twilioParams(m SMS) *openapi.CreateMessageParams {
	p := &openapi.CreateMessageParams{}
	p.SetTo(m.To)
	if messagingServiceSID.MatchString(m.From) {
		p.SetMessagingServiceSid(m.From)
	} else {
		p.SetFrom(m.From)
	}
	if m.Body != "" {
		p.SetBody(m.Body)
	}
	if len(m.MediaURL) > 0 {
		p.SetMediaUrl(append([]string(nil), m.MediaURL...))
	}
	if m.StatusCallback != "" {
		p.SetStatusCallback(m.StatusCallback)
	}
	return p
}

// rebasedClient is the SDK's client.Client with every request URL moved onto
// target. It runs after the SDK's edge/region host rewriting, which therefore
// has no effect on a custom base URL.
type rebasedClient struct {
	*client.Client
	target *url.URL
}

func (c rebasedClient) SendRequest(method string, rawURL string, data url.Values, headers map[string]interface{}, body ...byte) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u.Scheme = c.target.Scheme
	u.Host = c.target.Host
	u.Path = strings.TrimRight(c.target.Path, "/") + u.Path
	u.RawPath = ""
	return c.Client.SendRequest(method, u.String(), data, headers, body...)
}

// twilioCall is the per-call RoundTripper described on Twilio. One SendSMS
// makes exactly one round trip (twilio-go does not retry, and redirects are
// not followed) on the caller's goroutine. A list read makes one per page,
// one after another; twilio-go fetches the pages after the first on a
// goroutine of its own, whose end the caller waits for (ListMessage returns
// only once it has closed its channels). So the fields need no locking.
type twilioCall struct {
	ctx                context.Context
	next               http.RoundTripper
	username, password string
	// trace, for a send, tells a transport failure before the request was
	// written from one after; nil for reads.
	trace *writeTrace

	status int
	header http.Header
	resp   *http.Response
}

func (c *twilioCall) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := c.ctx
	if c.trace != nil {
		ctx = c.trace.attach(ctx)
	}
	out := req.Clone(ctx)
	out.SetBasicAuth(c.username, c.password)
	resp, err := c.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	c.status, c.header, c.resp = resp.StatusCode, resp.Header, resp
	return resp, nil
}

// release closes the response body. twilio-go closes it on success but not
// when it decodes an error body; draining a little first lets the connection
// go back to the pool.
func (c *twilioCall) release() {
	if c.resp == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, c.resp.Body, 4<<10)
	_ = c.resp.Body.Close()
}

// classify turns a twilio-go error into *Error. twilio-go returns
// *client.TwilioRestError for an error response with a JSON body; a non-JSON
// error body (a proxy's HTML page) comes back as a pkg/errors-wrapped decode
// error carrying the status only in its text; a transport failure is the bare
// *url.Error. The status seen by the RoundTripper is the authority for all of
// them. A call without a trace is a read: no failure of it is ambiguous, and
// an unreadable 2xx is worth reading again.
func (c *twilioCall) classify(err error) *Error {
	e := &Error{Provider: "twilio", StatusCode: c.status, Err: err}

	var tre *client.TwilioRestError
	var restV1 *client.RestErrorV1
	switch {
	case errors.As(err, &tre):
		e.Code, e.Message = tre.Code, tre.Message
		if e.StatusCode == 0 {
			// No response, so twilio-go made this error up itself.
			e.StatusCode = tre.Status
		}
	case errors.As(err, &restV1):
		e.Code, e.Message = restV1.Code, restV1.Message
		if e.StatusCode == 0 {
			e.StatusCode = restV1.HttpStatusCode
		}
	case e.StatusCode == 0 && c.trace != nil:
		// Nothing came back from a send: whether Twilio may have the
		// message depends on how far the request got.
		return transportError("twilio", err, c.trace.written(err))
	default:
		e.Message = err.Error()
	}
	if e.Message == "" {
		e.Message = statusMessage(e.StatusCode, "")
	}

	switch {
	case e.StatusCode == 0:
		// Nothing came back from a read, which is always safe to repeat, or
		// twilio-go failed to build the request.
		e.Retryable = true
	case e.StatusCode >= 200 && e.StatusCode < 300 && c.trace == nil:
		// An unreadable page of a read: reading again is harmless.
		e.Retryable = true
		e.Message = fmt.Sprintf("reading response: %s", e.Message)
	case e.StatusCode >= 200 && e.StatusCode < 300:
		// A 2xx whose body did not decode: as for a missing SID, the message
		// is probably queued and a retry would duplicate it.
		e.Retryable = false
		e.Message = fmt.Sprintf("reading accepted response: %s", e.Message)
	default:
		e.Retryable = RetryableStatus(e.StatusCode) || e.Code == twilioCodeTooManyRequests
	}
	if e.Retryable && c.header != nil {
		e.RetryAfter = RetryAfter(c.header, time.Now())
	}
	return e
}

// twilioCodeTooManyRequests is Twilio's concurrency-limit error, sent with
// HTTP 429; the code alone is enough to know a retry is safe.
const twilioCodeTooManyRequests = 20429

// Name implements EmailSender and SMSSender.
func (*Twilio) Name() string { return "twilio" }
