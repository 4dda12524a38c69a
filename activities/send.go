package activities

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
)

// SendInput is one send step for one contact. It carries ids and the step's
// templates, never the contact's address: the activity loads that itself.
type SendInput struct {
	// IdempotencyKey is enrollment (run) id + step + visit: the same for every
	// retry of this send, different for a later visit of the step in a loop
	// and for every new run of the journey (re-entry).
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
	// EnrollmentID is the run's, recorded with a control group membership
	// first decided at this send.
	EnrollmentID string `json:"enrollment_id,omitempty"`
	// Withhold is why this marketing message must not be sent to the
	// contact, as a reason code: journey.GroupHoldout for a contact in the
	// journey's holdout. The send is recorded as skipped with it.
	Withhold string `json:"withhold,omitempty"`
}

// AbandonmentRef is the event that started an abandonment journey.
type AbandonmentRef struct {
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"`
}

// SendResult tells the workflow what happened to the message: ids and
// codes only (see delivery.Result).
type SendResult = delivery.Result

// heartbeatEvery is how often Send tells Temporal it is alive while it waits
// on the database or a provider, so that a worker that died is noticed
// within the activity's heartbeat timeout instead of its start-to-close one.
const heartbeatEvery = 2 * time.Second

// Send renders the step's message for the contact and hands it to the one
// send path (delivery.Service.Send): the send gate decides and reserves the
// ledger row, the fence re-checks consent, the provider is called, and its
// answer is recorded. A deferral or a provider that asks to be retried later
// comes back to the workflow, which waits on a durable timer and asks again;
// an answer the ledger could not record comes back as Unsettled, for the
// workflow to record with SettleSend.
func (a *Activities) Send(ctx context.Context, in SendInput) (SendResult, error) {
	stop := heartbeat(ctx)
	defer stop()

	c, err := a.Store.Contact(ctx, in.ContactID)
	if errors.Is(err, storage.ErrNotFound) {
		// No contact row means no ledger row either (it references contacts).
		return SendResult{Status: model.MessageSkipped, Reason: "contact_not_found"}, nil
	}
	if err != nil {
		return SendResult{}, err
	}
	msg := delivery.Message{
		Ledger: storage.Message{
			IdempotencyKey: in.IdempotencyKey,
			ContactID:      in.ContactID,
			JourneyID:      in.JourneyID,
			JourneyVersion: in.JourneyVersion,
			StepID:         in.StepID,
			Channel:        in.Send.Channel,
			Class:          string(in.Class),
		},
		Content: map[journey.Channel]delivery.Content{},
	}
	if in.Policy != nil {
		msg.Ledger.Subscription = in.Policy.Subscription
	}
	// Held out of marketing (the journey's holdout, the workspace control
	// group): recorded as skipped with the reason, before the gate, so the
	// message takes no slot under the caps and the ledger says why.
	if in.Class == journey.ClassMarketing {
		withhold := in.Withhold
		if withhold == "" {
			control, err := a.inControlGroup(ctx, in)
			if err != nil {
				return SendResult{}, err
			}
			if control {
				withhold = journey.GroupControlGroup
			}
		}
		if withhold != "" {
			row := msg.Ledger
			row.Provider = a.Delivery.ProviderName(row.Channel)
			return a.skip(ctx, row, withhold, "")
		}
	}
	// Render before deciding: a message the contact's data cannot fill is
	// skipped without taking a slot under the caps. A missing address is
	// the gate's to decide (the fallback channel may still reach them).
	primary, reason, detail := render(in, in.Send.Channel, c)
	if reason != "" {
		row := msg.Ledger
		row.Provider = a.Delivery.ProviderName(row.Channel)
		return a.skip(ctx, row, reason, detail)
	}
	msg.Content[in.Send.Channel] = primary
	fallbackAvailable := false
	if fb := fallbackChannel(in); fb != "" {
		if m, why, _ := render(in, fb, c); why == "" {
			msg.Content[fb], fallbackAvailable = m, true
		}
	}
	msg.Journey = policy.ForJourney(in.Policy, fallbackAvailable)
	if in.Abandonment != nil {
		msg.Abandonment = &policy.AbandonmentContext{EventID: in.Abandonment.EventID, At: in.Abandonment.OccurredAt}
	}

	res, err := a.Delivery.Send(ctx, msg)
	var pending *delivery.FlightPendingError
	var ambiguous *delivery.AmbiguousError
	switch {
	case errors.As(err, &pending):
		return SendResult{}, retryAt(pending.Until, err)
	case errors.As(err, &ambiguous):
		// Asked again once the attempt's request can no longer be written;
		// the next attempt reads back or records unknown.
		return SendResult{}, retryAt(ambiguous.Until, err)
	}
	return res, err
}

// SettleSend records a provider answer that Send could not write to the
// ledger (SendResult.Unsettled). The workflow runs it as a local activity,
// retried until the database is back.
func (a *Activities) SettleSend(ctx context.Context, st delivery.Settlement) error {
	return a.Delivery.Settle(ctx, st)
}

// retryAt is a retryable activity error whose next attempt is not before t.
func retryAt(t time.Time, err error) error {
	delay := max(time.Until(t), 0) + 100*time.Millisecond
	return temporal.NewApplicationErrorWithOptions(err.Error(), "SendPending", temporal.ApplicationErrorOptions{
		NextRetryDelay: delay,
	})
}

// heartbeat records a heartbeat now and every heartbeatEvery until stop is
// called. Outside an activity (a plain unit test) it does nothing.
func heartbeat(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	activity.RecordHeartbeat(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
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

// skip records a decision not to send (a message the contact's data cannot
// fill). A row left retrying by an earlier attempt is settled as skipped.
func (a *Activities) skip(ctx context.Context, row storage.Message, reason, detail string) (SendResult, error) {
	row.Status = model.MessageSkipped
	row.StatusReason, row.StatusDetail = reason, detail
	m, err := a.Store.RecordSkip(ctx, row)
	if err != nil {
		return SendResult{}, err
	}
	if m.Status == model.MessageRetrying || m.Status == model.MessageReserved {
		if m, err = a.Store.FailSend(ctx, m.ID, model.MessageSkipped, reason, detail); err != nil {
			return SendResult{}, err
		}
	}
	return SendResult{MessageID: m.ID, Status: m.Status, Reason: m.StatusReason, Channel: m.Channel, Provider: m.Provider}, nil
}

// Render is what Send renders for channel ch of the step for contact c, for
// a preview (internal/preview), with render's reason and detail.
func Render(in SendInput, ch journey.Channel, c storage.Contact) (delivery.Content, string, string) {
	return render(in, ch, c)
}

// FallbackChannel is the channel Send would fall back to for in, or "".
func FallbackChannel(in SendInput) journey.Channel { return fallbackChannel(in) }

// render fills the step's templates from the contact. Missing data is a
// reason to skip, not to retry: the same data would be missing next time.
// reason is a code for history; detail, the template engine's words, may
// quote the contact's data and goes to Postgres only.
func render(in SendInput, ch journey.Channel, c storage.Contact) (out delivery.Content, reason, detail string) {
	data := journey.TemplateData(contactView(c), in.JourneyID, in.JourneyVersion)
	var err error
	switch ch {
	case journey.ChannelEmail:
		if in.Send.Email == nil {
			return out, "step_has_no_email_message", ""
		}
		var e journey.RenderedEmail
		e, err = journey.RenderEmail(*in.Send.Email, data)
		out.Email = &provider.Email{To: c.Email, TemplateID: e.TemplateID, TemplateData: e.TemplateData,
			Subject: e.Subject, HTML: e.HTML, Text: e.Text}
	case journey.ChannelSMS:
		if in.Send.SMS == nil {
			return out, "step_has_no_sms_message", ""
		}
		var s journey.RenderedSMS
		s, err = journey.RenderSMS(*in.Send.SMS, data)
		out.SMS = &provider.SMS{To: c.Phone, Body: s.Body, MediaURL: s.MediaURL}
	default:
		return out, "unsupported_channel", ""
	}
	if err != nil {
		var missing *journey.MissingDataError
		if errors.As(err, &missing) {
			return out, "missing_template_data:" + missing.Field, ""
		}
		return out, "render_failed", strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return out, "", ""
}
