// Package provider sends rendered messages through SendGrid (email) and Twilio
// (SMS/MMS) with their official Go SDKs, or records them in sandbox mode. It
// classifies provider failures so the caller knows whether a retry can help,
// and whether the provider may already have the message (an ambiguous call),
// which a Reconciler can settle by reading the provider's records back.
package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Email is a rendered email, ready to send. Either TemplateID (a SendGrid
// dynamic template, with TemplateData) or Subject plus HTML and/or Text.
type Email struct {
	To           string
	From         string
	FromName     string
	TemplateID   string
	TemplateData map[string]any
	Subject      string
	HTML         string
	Text         string
	// CustomArgs travel with the message and come back on provider webhooks,
	// which is how events are tied to ledger rows (message_id, journey, step).
	CustomArgs map[string]string
}

// SMS is a rendered SMS or MMS.
type SMS struct {
	To       string // E.164
	From     string // E.164 sender or a Messaging Service SID (MG...)
	Body     string
	MediaURL []string
	// StatusCallback, when set, is where Twilio posts delivery status updates.
	StatusCallback string
}

// Result is a provider's acceptance of a message.
type Result struct {
	Provider          string // "sendgrid", "twilio", "sandbox"
	ProviderMessageID string
	AcceptedAt        time.Time
}

// EmailSender sends email. Implementations: SendGrid, Sandbox.
type EmailSender interface {
	// Name is the provider recorded on ledger rows before the call is made.
	Name() string
	SendEmail(ctx context.Context, messageID string, m Email) (Result, error)
}

// SMSSender sends SMS. Implementations: Twilio, Sandbox.
type SMSSender interface {
	// Name is the provider recorded on ledger rows before the call is made.
	Name() string
	SendSMS(ctx context.Context, messageID string, m SMS) (Result, error)
}

// Reconciler finds out whether the provider accepted a message whose send was
// ambiguous. Implementations: Twilio, Sandbox.
type Reconciler interface {
	// FindSMS looks for an SMS to m.To (from m.From, same body) created at or
	// after since. found=false with err=nil means the provider certainly has
	// no such message.
	FindSMS(ctx context.Context, messageID string, m SMS, since time.Time) (res Result, found bool, err error)
}

// EmailReconciler is Reconciler for email. Implementations: Sandbox. SendGrid
// has no read-back of sent mail (its Email Activity feed is a paid add-on,
// eventually consistent, and cannot prove absence), so an ambiguous SendGrid
// send stays unknown and must not be resent.
type EmailReconciler interface {
	// FindEmail looks for the email sent for messageID at or after since.
	// found=false with err=nil means the provider certainly has no such
	// message.
	FindEmail(ctx context.Context, messageID string, since time.Time) (res Result, found bool, err error)
}

// Error is a classified provider failure.
type Error struct {
	Provider string
	// StatusCode is the HTTP status, 0 for a transport failure.
	StatusCode int
	// Code is the provider's own error code where it has one (Twilio 21610...).
	Code int
	// Message is the provider's explanation.
	Message string
	// Retryable: 429, 5xx and transport failures that happened before the
	// request was written in full (connection refused, DNS, TLS handshake,
	// cancelled or reset mid-write) are; other 4xx are not, nor is an
	// Ambiguous failure.
	Retryable bool
	// Ambiguous: the request was written in full and no answer came back (a
	// timeout or reset while waiting for the response): the provider may have
	// accepted it; never retry blindly. Settle it with a Reconciler, or
	// record the outcome as unknown. Ambiguous and Retryable are never both
	// set.
	Ambiguous bool
	// RetryAfter is the provider's Retry-After hint, if it sent one.
	RetryAfter time.Duration
	// Err is the underlying failure when there is one (a transport error, a
	// response that could not be read), so errors.Is(err,
	// context.DeadlineExceeded) and friends see through the classification.
	Err error
}

func (e *Error) Error() string {
	if e.StatusCode == 0 && e.Code == 0 {
		// No HTTP response (transport failure, request never built): "HTTP 0"
		// would only mislead.
		return fmt.Sprintf("%s: %s", e.Provider, e.Message)
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s: HTTP %d, code %d: %s", e.Provider, e.StatusCode, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.StatusCode, e.Message)
}

// Unwrap exposes the underlying failure, if any.
func (e *Error) Unwrap() error { return e.Err }

// ReasonCode is a short, stable code for the failure, made only of the
// provider's name and numbers: "twilio:21211", "sendgrid:http_400",
// "twilio:transport", "sendgrid:ambiguous", "twilio:not_sent" (failed before
// anything was sent, and a retry would fail the same way). Unlike Error() it
// never carries the provider's free text, which can quote a phone number or
// an address (Twilio's 21211 does), so it is what may go into Temporal
// history and metrics labels.
func (e *Error) ReasonCode() string {
	p := codeToken(e.Provider)
	switch {
	case e.Ambiguous:
		return p + ":ambiguous"
	case e.Code != 0:
		return p + ":" + strconv.Itoa(e.Code)
	case e.StatusCode != 0:
		return p + ":http_" + strconv.Itoa(e.StatusCode)
	case e.Retryable:
		return p + ":transport"
	default:
		return p + ":not_sent"
	}
}

// codeToken keeps a provider name to [a-z0-9_], so a ReasonCode is safe
// whatever a caller put in Error.Provider.
func codeToken(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return -1
	}, s)
	if s == "" {
		return "provider"
	}
	return s
}

// Twilio error codes with a meaning of their own.
const (
	TwilioCodeUnsubscribed   = 21610 // recipient replied STOP: an SMS opt-out
	TwilioCodeInvalidTo      = 21211
	TwilioCodeNotMobile      = 21614
	TwilioCodeInvalidFromNum = 21606
)

// TwilioOptOutSource is the consent source of an SMS opt-out learnt from
// TwilioCodeUnsubscribed, whether a send failed with it or a status
// callback reported it: the ReasonCode such a failure has.
const TwilioOptOutSource = "twilio:21610"

// IsRetryable reports whether err is worth retrying. Unclassified errors are
// treated as retryable (a network failure is the common case). An ambiguous
// failure is not retryable: see IsAmbiguous.
func IsRetryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable
	}
	return err != nil
}

// IsAmbiguous reports whether err is a provider call that was written in full
// and got no answer, so the provider may have accepted the message. Resending
// could deliver it twice; ask a Reconciler, or record the outcome as unknown.
// Unclassified errors are not ambiguous.
func IsAmbiguous(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Ambiguous
}
