package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Channel names passed to Recorder.RecordSandbox; they match journey.Channel.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Recorder stores what the sandbox would have sent. payload is JSON-friendly
// (strings, string slices, string maps and the caller's template data).
type Recorder interface {
	RecordSandbox(ctx context.Context, messageID string, channel string, recipient string, payload map[string]any) error
	// SandboxMessageByID reports whether a message was recorded for
	// messageID, and when (the earliest, if more than one).
	SandboxMessageByID(ctx context.Context, messageID string) (recordedAt time.Time, found bool, err error)
}

// Sandbox is the local-mode provider: instead of sending, it hands the full
// rendered message to a Recorder so a person can read exactly what would have
// gone out. It implements EmailSender and SMSSender.
type Sandbox struct {
	rec Recorder
}

var (
	_ EmailSender     = (*Sandbox)(nil)
	_ SMSSender       = (*Sandbox)(nil)
	_ Reconciler      = (*Sandbox)(nil)
	_ EmailReconciler = (*Sandbox)(nil)
)

// NewSandbox returns a Sandbox recording into rec.
func NewSandbox(rec Recorder) *Sandbox {
	return &Sandbox{rec: rec}
}

// SendEmail records m. The payload carries the custom_args exactly as
// SendGrid would receive them, tutti_message_id included.
func (s *Sandbox) SendEmail(ctx context.Context, messageID string, m Email) (Result, error) {
	customArgs := make(map[string]string, len(m.CustomArgs)+1)
	maps.Copy(customArgs, m.CustomArgs)
	customArgs[CustomArgMessageID] = messageID

	templateData := maps.Clone(m.TemplateData)
	if templateData == nil {
		templateData = map[string]any{} // a stable shape for readers: {} rather than null
	}
	payload := map[string]any{
		"to":            m.To,
		"from":          m.From,
		"from_name":     m.FromName,
		"template_id":   m.TemplateID,
		"template_data": templateData,
		"subject":       m.Subject,
		"html":          m.HTML,
		"text":          m.Text,
		"custom_args":   customArgs,
	}
	return s.record(ctx, messageID, ChannelEmail, m.To, payload)
}

// SendSMS records m.
func (s *Sandbox) SendSMS(ctx context.Context, messageID string, m SMS) (Result, error) {
	media := slices.Clone(m.MediaURL)
	if media == nil {
		media = []string{} // a stable shape for readers: [] rather than null
	}
	payload := map[string]any{
		"to":              m.To,
		"from":            m.From,
		"body":            m.Body,
		"media_url":       media,
		"status_callback": m.StatusCallback,
	}
	return s.record(ctx, messageID, ChannelSMS, m.To, payload)
}

func (s *Sandbox) record(ctx context.Context, messageID, channel, recipient string, payload map[string]any) (Result, error) {
	if err := PassFence(ctx); err != nil {
		return Result{}, err
	}
	if err := s.rec.RecordSandbox(ctx, messageID, channel, recipient, payload); err != nil {
		// Left unclassified on purpose: a recorder failure is almost always
		// the database being briefly unreachable, and IsRetryable treats
		// unclassified errors as retryable.
		return Result{}, fmt.Errorf("sandbox: recording %s message %s: %w", channel, messageID, err)
	}
	return Result{
		Provider:          "sandbox",
		ProviderMessageID: sandboxMessageID(messageID),
		AcceptedAt:        time.Now().UTC(),
	}, nil
}

// sandboxMessageID is the sandbox's id for a message: derived from Tutti's
// own, so a read-back names a message exactly as its send did.
func sandboxMessageID(messageID string) string { return "sandbox-" + messageID }

// FindSMS answers exactly from the Recorder: the sandbox "accepted" the
// message if and only if it recorded it under messageID. m and since are not
// needed.
func (s *Sandbox) FindSMS(ctx context.Context, messageID string, _ SMS, _ time.Time) (Result, bool, error) {
	return s.find(ctx, messageID)
}

// FindEmail answers exactly from the Recorder, as FindSMS does.
func (s *Sandbox) FindEmail(ctx context.Context, messageID string, _ time.Time) (Result, bool, error) {
	return s.find(ctx, messageID)
}

func (s *Sandbox) find(ctx context.Context, messageID string) (Result, bool, error) {
	at, found, err := s.rec.SandboxMessageByID(ctx, messageID)
	if err != nil {
		// Unclassified, hence retryable, like a recording failure.
		return Result{}, false, fmt.Errorf("sandbox: looking up message %s: %w", messageID, err)
	}
	if !found {
		return Result{}, false, nil
	}
	return Result{Provider: "sandbox", ProviderMessageID: sandboxMessageID(messageID), AcceptedAt: at.UTC()}, true, nil
}

// Name implements EmailSender and SMSSender.
func (*Sandbox) Name() string { return "sandbox" }
