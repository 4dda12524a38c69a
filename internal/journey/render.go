package journey

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ContactView is the part of a contact that templates and conditions see.
type ContactView struct {
	ID         string
	ExternalID string
	Email      string
	Phone      string
	TimeZone   string
	// Attributes are the contact's custom attributes, as decoded from JSON
	// (strings, float64 numbers, bools, lists, objects).
	Attributes map[string]any
}

// TemplateData builds the data templates execute against:
//
//	{"contact": {<attributes>..., "id", "external_id", "email", "phone", "time_zone"},
//	 "journey": {"id", "version"}}
//
// The built-in contact fields are always present (possibly "") and win over
// attributes of the same name, so an imported attribute called "email" can
// never redirect what a template (or a condition) believes the address is.
// The attribute map is copied, not shared.
func TemplateData(c ContactView, journeyID string, version int) map[string]any {
	contact := make(map[string]any, len(c.Attributes)+5)
	for k, v := range c.Attributes {
		contact[k] = v
	}
	contact["id"] = c.ID
	contact["external_id"] = c.ExternalID
	contact["email"] = c.Email
	contact["phone"] = c.Phone
	contact["time_zone"] = c.TimeZone
	return map[string]any{
		"contact": contact,
		"journey": map[string]any{"id": journeyID, "version": version},
	}
}

// RenderedEmail is an email ready for the provider: either a SendGrid dynamic
// template (TemplateID with TemplateData) or a subject with HTML and/or text.
type RenderedEmail struct {
	TemplateID string
	// TemplateData is the step's data with every string rendered; SendGrid
	// escapes it again when it substitutes it into its own template.
	TemplateData map[string]any
	Subject      string
	HTML         string
	Text         string
}

// RenderedSMS is an SMS (or MMS when MediaURL is set) ready to send.
type RenderedSMS struct {
	Body     string
	MediaURL []string
}

// Limits on a rendered message, in characters. Specs are checked against
// them when published (a subject or body without template actions); a
// template can still render over them when a contact's attribute is long, and
// rendering then fails with a *TooLongError. The attribute limits themselves
// are in package contact.
const (
	// MaxSMSBodyLength is the longest SMS body. Twilio rejects longer
	// bodies; at this size a message is already ten segments.
	MaxSMSBodyLength = 1600
	// MaxEmailSubjectLength is the longest email subject: RFC 5322's limit
	// on one header line (998 characters). A longer subject has to be folded
	// over several lines, which mail clients show inconsistently, and is a
	// sign of data that does not belong in a subject.
	MaxEmailSubjectLength = 998
)

// ErrSMSTooLong is matched (errors.Is) by the *TooLongError of an SMS body
// over MaxSMSBodyLength.
var ErrSMSTooLong = errors.New("SMS body too long")

// TooLongError is a rendered part of a message over its limit, usually
// because a long attribute value pushed a valid template over it. Sending
// should skip the message rather than retry it: the same data renders the
// same way. It carries no contact data, only the part and the lengths.
type TooLongError struct {
	Channel Channel
	// Field is the part of the message: "subject" (email) or "body" (SMS).
	Field  string
	Length int // characters rendered
	Limit  int // characters allowed
}

func (e *TooLongError) Error() string {
	part := "email " + e.Field
	if e.Channel == ChannelSMS {
		part = "SMS " + e.Field
	}
	return fmt.Sprintf("rendering %s: %s too long: %d characters, the limit is %d", part, part, e.Length, e.Limit)
}

// Is lets errors.Is(err, ErrSMSTooLong) keep working for SMS bodies.
func (e *TooLongError) Is(target error) bool {
	return target == ErrSMSTooLong && e.Channel == ChannelSMS && e.Field == "body"
}

// RenderEmail renders an email step's templates for one contact. A field with
// no value comes back as a *MissingDataError and a subject over
// MaxEmailSubjectLength as a *TooLongError (use errors.As); other failures
// name the part of the message that failed.
func RenderEmail(m EmailMessage, data map[string]any) (RenderedEmail, error) {
	out := RenderedEmail{TemplateID: m.TemplateID}
	if m.Data != nil {
		rendered, err := renderValue(m.Data, data, "data")
		if err != nil {
			return RenderedEmail{}, err
		}
		out.TemplateData = rendered.(map[string]any)
	}
	var err error
	if out.Subject, err = renderString(textTemplate, m.Subject, data, "subject"); err != nil {
		return RenderedEmail{}, err
	}
	// A line break in a subject is at best ignored and at worst rejected by
	// the provider; attribute values are the usual source.
	out.Subject = strings.TrimSpace(subjectBreaks.Replace(out.Subject))
	if n := runeCount(out.Subject); n > MaxEmailSubjectLength {
		return RenderedEmail{}, &TooLongError{Channel: ChannelEmail, Field: "subject", Length: n, Limit: MaxEmailSubjectLength}
	}
	if out.HTML, err = renderString(htmlTemplate, m.HTML, data, "html"); err != nil {
		return RenderedEmail{}, err
	}
	if out.Text, err = renderString(textTemplate, m.Text, data, "text"); err != nil {
		return RenderedEmail{}, err
	}
	return out, nil
}

// RenderSMS renders an SMS step's body for one contact. Media URLs are passed
// through as written. A field with no value comes back as a *MissingDataError;
// a body over MaxSMSBodyLength characters as a *TooLongError (which also
// matches ErrSMSTooLong).
func RenderSMS(m SMSMessage, data map[string]any) (RenderedSMS, error) {
	body, err := renderString(textTemplate, m.Body, data, "body")
	if err != nil {
		return RenderedSMS{}, err
	}
	if n := runeCount(body); n > MaxSMSBodyLength {
		return RenderedSMS{}, &TooLongError{Channel: ChannelSMS, Field: "body", Length: n, Limit: MaxSMSBodyLength}
	}
	return RenderedSMS{Body: body, MediaURL: slices.Clone(m.MediaURL)}, nil
}

var subjectBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// renderString renders one template; where names it in errors.
func renderString(kind templateKind, src string, data map[string]any, where string) (string, error) {
	if !strings.Contains(src, "{{") {
		return src, nil // plain text: nothing to render, nothing to escape
	}
	t, err := compileForRender(kind, src)
	if err != nil {
		return "", fmt.Errorf("rendering %s: %w", where, err)
	}
	var b strings.Builder
	if err := t.execute(&b, data); err != nil {
		var missing *MissingDataError
		if errors.As(err, &missing) {
			// Keep the error exactly as typed: callers report missing.Field.
			return "", missing
		}
		return "", fmt.Errorf("rendering %s: %w", where, err)
	}
	return b.String(), nil
}

// renderValue copies v, rendering every string in it as a text template.
func renderValue(v any, data map[string]any, where string) (any, error) {
	switch v := v.(type) {
	case string:
		return renderString(textTemplate, v, data, where)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			r, err := renderValue(item, data, joinKey(where, k))
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			r, err := renderValue(item, data, indexPath(where, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// RenderWebhookPayload renders a webhook step's payload for one contact:
// every string in it is a text template, as in an email's template data. A
// field with no value comes back as a *MissingDataError.
func RenderWebhookPayload(w Webhook, data map[string]any) (map[string]any, error) {
	rendered, err := renderValue(w.Payload, data, "payload")
	if err != nil {
		return nil, err
	}
	out, _ := rendered.(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}
