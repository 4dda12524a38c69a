package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
)

// SendInput is one send step for one contact. It carries ids and the step's
// templates, never the contact's address: the activity loads that itself.
type SendInput struct {
	// IdempotencyKey is workflow id + step + visit: the same for every retry of
	// this send, different for a later visit of the step in a loop.
	IdempotencyKey string               `json:"idempotency_key"`
	ContactID      string               `json:"contact_id"`
	JourneyID      string               `json:"journey_id"`
	JourneyVersion int                  `json:"journey_version"`
	StepID         string               `json:"step_id"`
	Class          journey.MessageClass `json:"class"`
	Send           journey.Send         `json:"send"`
	// Policy is the journey's send-gate settings (nil: workspace defaults).
	Policy *journey.Policy `json:"policy,omitempty"`
	// Abandonment names the abandonment event an abandonment journey runs for.
	Abandonment *AbandonmentRef `json:"abandonment,omitempty"`
}

// AbandonmentRef is the event that started an abandonment journey.
type AbandonmentRef struct {
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Send statuses returned to the workflow.
const (
	SendSent     = storage.MessageSent
	SendSkipped  = storage.MessageSkipped
	SendFailed   = storage.MessageFailed
	SendUnknown  = storage.MessageUnknown
	SendDeferred = "deferred"
)

// SendResult tells the workflow what happened to the message.
type SendResult struct {
	MessageID string `json:"message_id,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	// Channel is the channel the message went (or would go) out on: the
	// fallback channel when the gate chose it.
	Channel           journey.Channel `json:"channel,omitempty"`
	Provider          string          `json:"provider,omitempty"`
	ProviderMessageID string          `json:"provider_message_id,omitempty"`
	DeferUntil        time.Time       `json:"defer_until,omitempty"`
	// DecisionID is the gate decision behind this result (0 if none was taken).
	DecisionID int64 `json:"decision_id,omitempty"`
}

// Outcome is the one-line summary shown in the journey's steps taken.
func (r SendResult) Outcome() string {
	out := r.Status
	if r.Status == SendDeferred && !r.DeferUntil.IsZero() {
		out += " until " + r.DeferUntil.UTC().Format(time.RFC3339)
	}
	if r.Reason != "" {
		out += ": " + r.Reason
	}
	return out
}

func resultFromMessage(m storage.Message) SendResult {
	r := SendResult{
		MessageID:         m.ID,
		Status:            m.Status,
		Reason:            m.StatusReason,
		Channel:           m.Channel,
		Provider:          m.Provider,
		ProviderMessageID: m.ProviderMessageID,
	}
	if m.DecisionID != nil {
		r.DecisionID = *m.DecisionID
	}
	return r
}

// Send puts one message through the send gate and, if it may go now, sends
// it and records the result in the ledger. The gate (one Postgres
// transaction, see storage.Gate) decides from the contact's consent,
// suppressions, recent sends and local time, and reserves the ledger row for
// the idempotency key before the provider call; the row is settled after it,
// so a retried activity never sends twice. A deferral comes back to the
// workflow, which waits on a durable timer and asks again.
func (a *Activities) Send(ctx context.Context, in SendInput) (SendResult, error) {
	if prev, err := a.Store.MessageByKey(ctx, in.IdempotencyKey); err == nil && isFinal(prev.Status) {
		return resultFromMessage(prev), nil
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return SendResult{}, err
	}

	c, err := a.Store.Contact(ctx, in.ContactID)
	if errors.Is(err, storage.ErrNotFound) {
		// No contact row means no ledger row either (it references contacts).
		return SendResult{Status: SendSkipped, Reason: "contact_not_found"}, nil
	}
	if err != nil {
		return SendResult{}, err
	}

	row := storage.Message{
		IdempotencyKey: in.IdempotencyKey,
		ContactID:      in.ContactID,
		JourneyID:      in.JourneyID,
		JourneyVersion: in.JourneyVersion,
		StepID:         in.StepID,
		Channel:        in.Send.Channel,
		Class:          string(in.Class),
		Provider:       a.providerName(in.Send.Channel),
	}
	// Render before deciding: a message the contact's data cannot fill is
	// skipped without taking a slot under the caps. A missing address is
	// the gate's to decide (the fallback channel may still reach them).
	rendered := map[journey.Channel]renderedMessage{}
	primary, reason := a.render(in, in.Send.Channel, c)
	if reason != "" {
		return a.skip(ctx, row, reason)
	}
	rendered[in.Send.Channel] = primary
	fallbackAvailable := false
	if fb := fallbackChannel(in); fb != "" {
		if m, why := a.render(in, fb, c); why == "" {
			rendered[fb], fallbackAvailable = m, true
		}
	}

	settings := a.settings()
	js := policy.ForJourney(in.Policy, fallbackAvailable)
	var abandonment *policy.AbandonmentContext
	gin := storage.GateInput{
		Message: row,
		Providers: map[journey.Channel]string{
			journey.ChannelEmail: a.providerName(journey.ChannelEmail),
			journey.ChannelSMS:   a.providerName(journey.ChannelSMS),
		},
		Now:      a.now(),
		Lookback: policy.Lookback(settings, js),
	}
	if in.Abandonment != nil {
		gin.AbandonmentEventID = in.Abandonment.EventID
		abandonment = &policy.AbandonmentContext{EventID: in.Abandonment.EventID, At: in.Abandonment.OccurredAt}
	}
	started := time.Now()
	gate, err := a.Store.Gate(ctx, gin, func(st storage.GateState) policy.Decision {
		if abandonment != nil {
			abandonment.SMSAlreadySent = st.AbandonmentSMSSent
		}
		return policy.Decide(settings, policy.Request{
			Contact:     st.Contact,
			Channel:     in.Send.Channel,
			Class:       in.Class,
			Journey:     js,
			JourneyID:   in.JourneyID,
			Abandonment: abandonment,
			Now:         gin.Now,
		})
	})
	if errors.Is(err, storage.ErrNotFound) {
		return SendResult{Status: SendSkipped, Reason: "contact_not_found"}, nil
	}
	if err != nil {
		return SendResult{}, err
	}
	metrics.ObserveGate(time.Since(started))
	if gate.Decided {
		metrics.RecordDecision(in.Send.Channel, in.Class, gate.Decision)
		a.logger().Info("send gate", "contact_id", in.ContactID, "journey_id", in.JourneyID, "step_id", in.StepID,
			"outcome", gate.Decision.Outcome, "channel", gate.Decision.Channel, "reasons", gate.Decision.ReasonCodes(),
			"decision_id", gate.DecisionID)
	}
	if gate.Decided && gate.Decision.Outcome == policy.OutcomeDefer {
		return SendResult{
			Status:     SendDeferred,
			Reason:     strings.Join(gate.Decision.ReasonCodes(), ","),
			Channel:    gate.Decision.Channel,
			DeferUntil: gate.Decision.Until,
			DecisionID: gate.DecisionID,
		}, nil
	}
	if !gate.Send() {
		metrics.RecordMessage(gate.Message.Channel, gate.Message.Status)
		return resultFromMessage(gate.Message), nil
	}

	claimed := gate.Message
	res, err := a.deliver(ctx, claimed, rendered[claimed.Channel])
	if err == nil {
		m, cerr := a.Store.CompleteSend(ctx, claimed.ID, res.Provider, res.ProviderMessageID, res.AcceptedAt)
		if cerr != nil {
			// The provider has the message; leaving the row "sending" makes a
			// retry see it as ambiguous and never resend.
			return SendResult{}, cerr
		}
		metrics.RecordMessage(m.Channel, m.Status)
		return resultFromMessage(m), nil
	}
	if provider.IsRetryable(err) {
		if _, ferr := a.Store.FailSend(ctx, claimed.ID, storage.MessageRetrying, err.Error()); ferr != nil {
			return SendResult{}, errors.Join(err, ferr)
		}
		activity.GetLogger(ctx).Warn("provider call failed, retrying", "message_id", claimed.ID, "error", err)
		return SendResult{}, retryableProviderError(err)
	}
	m, ferr := a.Store.FailSend(ctx, claimed.ID, storage.MessageFailed, err.Error())
	if ferr != nil {
		return SendResult{}, ferr
	}
	metrics.RecordMessage(m.Channel, m.Status)
	a.afterPermanentFailure(ctx, in, err)
	return resultFromMessage(m), nil
}

// fallbackChannel is the journey's fallback channel when the step carries a
// message for it, or "".
func fallbackChannel(in SendInput) journey.Channel {
	if in.Policy == nil || in.Policy.FallbackChannel == "" || in.Policy.FallbackChannel == in.Send.Channel {
		return ""
	}
	switch fb := in.Policy.FallbackChannel; {
	case fb == journey.ChannelEmail && in.Send.Email != nil, fb == journey.ChannelSMS && in.Send.SMS != nil:
		return fb
	}
	return ""
}

// skip records a decision not to send. A row left retrying by an earlier
// attempt (consent revoked between retries, say) is settled as skipped.
func (a *Activities) skip(ctx context.Context, row storage.Message, reason string) (SendResult, error) {
	row.Status = storage.MessageSkipped
	row.StatusReason = reason
	m, err := a.Store.RecordSkip(ctx, row)
	if err != nil {
		return SendResult{}, err
	}
	if m.Status == storage.MessageRetrying {
		if m, err = a.Store.FailSend(ctx, m.ID, storage.MessageSkipped, reason); err != nil {
			return SendResult{}, err
		}
	}
	return resultFromMessage(m), nil
}

// afterPermanentFailure turns what the provider told us into contact state:
// Twilio 21610 means the recipient replied STOP, an SMS opt-out.
func (a *Activities) afterPermanentFailure(ctx context.Context, in SendInput, err error) {
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != provider.TwilioCodeUnsubscribed {
		return
	}
	_, _, rerr := a.Store.RecordConsent(ctx, in.ContactID, journey.ChannelSMS, storage.ConsentRevoked, "twilio:21610", time.Now())
	if rerr != nil {
		a.logger().Error("recording SMS opt-out from Twilio 21610", "contact_id", in.ContactID, "error", rerr)
	}
}

type renderedMessage struct {
	email *journey.RenderedEmail
	sms   *journey.RenderedSMS
	to    string
}

// render fills the step's templates from the contact. Missing data is a
// reason to skip, not to retry: the same data would be missing next time.
func (a *Activities) render(in SendInput, ch journey.Channel, c storage.Contact) (renderedMessage, string) {
	data := journey.TemplateData(contactView(c), in.JourneyID, in.JourneyVersion)
	var out renderedMessage
	var err error
	switch ch {
	case journey.ChannelEmail:
		if in.Send.Email == nil {
			return out, "step_has_no_email_message"
		}
		var e journey.RenderedEmail
		e, err = journey.RenderEmail(*in.Send.Email, data)
		out.email, out.to = &e, c.Email
	case journey.ChannelSMS:
		if in.Send.SMS == nil {
			return out, "step_has_no_sms_message"
		}
		var s journey.RenderedSMS
		s, err = journey.RenderSMS(*in.Send.SMS, data)
		out.sms, out.to = &s, c.Phone
	default:
		return out, "unsupported_channel:" + string(ch)
	}
	if err != nil {
		var missing *journey.MissingDataError
		if errors.As(err, &missing) {
			return out, "missing_template_data:" + missing.Field
		}
		return out, "render_failed:" + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return out, ""
}

// deliver makes the provider call for a claimed ledger row.
func (a *Activities) deliver(ctx context.Context, m storage.Message, r renderedMessage) (provider.Result, error) {
	switch {
	case r.email != nil:
		return a.Email.SendEmail(ctx, m.ID, provider.Email{
			To:           r.to,
			From:         a.Sender.EmailFrom,
			FromName:     a.Sender.EmailFromName,
			TemplateID:   r.email.TemplateID,
			TemplateData: r.email.TemplateData,
			Subject:      r.email.Subject,
			HTML:         r.email.HTML,
			Text:         r.email.Text,
			CustomArgs: map[string]string{
				"tutti_message_id": m.ID,
				"tutti_contact_id": m.ContactID,
				"tutti_journey_id": m.JourneyID,
				"tutti_step_id":    m.StepID,
			},
		})
	case r.sms != nil:
		return a.SMS.SendSMS(ctx, m.ID, provider.SMS{
			To:             r.to,
			From:           a.Sender.SMSFrom,
			Body:           r.sms.Body,
			MediaURL:       r.sms.MediaURL,
			StatusCallback: a.Sender.SMSStatusCallback,
		})
	}
	return provider.Result{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("nothing to deliver for message %s", m.ID), "NothingToDeliver", nil)
}

func (a *Activities) providerName(ch journey.Channel) string {
	switch {
	case ch == journey.ChannelEmail && a.Email != nil:
		return a.Email.Name()
	case ch == journey.ChannelSMS && a.SMS != nil:
		return a.SMS.Name()
	}
	return "unknown"
}

// isFinal reports whether a ledger status means "this key is settled".
func isFinal(status string) bool {
	switch status {
	case storage.MessageSending, storage.MessageRetrying:
		return false
	}
	return true
}
