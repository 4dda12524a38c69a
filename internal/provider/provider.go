// Package provider sends rendered messages through SendGrid (email) and Twilio
// (SMS/MMS) with their official Go SDKs, or records them in sandbox mode. It
// classifies provider failures so the caller knows whether a retry can help.
package provider

import (
	"context"
	"errors"
	"fmt"
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

// Error is a classified provider failure.
type Error struct {
	Provider string
	// StatusCode is the HTTP status, 0 for a transport failure.
	StatusCode int
	// Code is the provider's own error code where it has one (Twilio 21610...).
	Code int
	// Message is the provider's explanation.
	Message string
	// Retryable: 429, 5xx and transport failures are; other 4xx are not.
	Retryable bool
	// Ambiguous: the request was written and no answer came back.
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

// Twilio error codes with a meaning of their own.
const (
	TwilioCodeUnsubscribed   = 21610 // recipient replied STOP: an SMS opt-out
	TwilioCodeInvalidTo      = 21211
	TwilioCodeNotMobile      = 21614
	TwilioCodeInvalidFromNum = 21606
)

// IsRetryable reports whether err is worth retrying. Unclassified errors are
// treated as retryable (a network failure is the common case).
func IsRetryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable
	}
	return err != nil
}

// TEMPORARY (replaced by the provider branch): ambiguity and read-back.

// IsAmbiguous reports whether err is a call whose request was written and
// never answered: the provider may have the message.
func IsAmbiguous(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Ambiguous
}

// ReasonCode is a short code for the failure without free text.
func (e *Error) ReasonCode() string {
	switch {
	case e.Ambiguous:
		return e.Provider + ":ambiguous"
	case e.Code != 0:
		return fmt.Sprintf("%s:%d", e.Provider, e.Code)
	case e.StatusCode != 0:
		return fmt.Sprintf("%s:http_%d", e.Provider, e.StatusCode)
	}
	return e.Provider + ":transport"
}

// Reconciler finds out whether the provider accepted a message whose send was ambiguous.
type Reconciler interface {
	FindSMS(ctx context.Context, messageID string, m SMS, since time.Time) (res Result, found bool, err error)
}

// EmailReconciler is Reconciler for email.
type EmailReconciler interface {
	FindEmail(ctx context.Context, messageID string, since time.Time) (res Result, found bool, err error)
}
