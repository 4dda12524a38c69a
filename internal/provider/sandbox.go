package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
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
}

// Sandbox is the local-mode provider: instead of sending, it hands the full
// rendered message to a Recorder so a person can read exactly what would have
// gone out. It implements EmailSender and SMSSender.
type Sandbox struct {
	rec Recorder
}

var (
	_ EmailSender = (*Sandbox)(nil)
	_ SMSSender   = (*Sandbox)(nil)
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
	if err := s.rec.RecordSandbox(ctx, messageID, channel, recipient, payload); err != nil {
		// Left unclassified on purpose: a recorder failure is almost always
		// the database being briefly unreachable, and IsRetryable treats
		// unclassified errors as retryable.
		return Result{}, fmt.Errorf("sandbox: recording %s message %s: %w", channel, messageID, err)
	}
	return Result{
		Provider:          "sandbox",
		ProviderMessageID: "sandbox-" + uuid.NewString(),
		AcceptedAt:        time.Now().UTC(),
	}, nil
}

// Name implements EmailSender and SMSSender.
func (*Sandbox) Name() string { return "sandbox" }
