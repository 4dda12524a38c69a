package activities

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/storage"
)

// WebhookInput is one webhook step for one contact: ids and the step's
// destination name and payload templates, never the rendered payload,
// which names the contact: the activity renders it.
type WebhookInput struct {
	// IdempotencyKey is the ledger's key for this visit of the step (as a
	// send's), and the post's Idempotency-Key header: the same for every
	// attempt, so the receiver can tell a retry from a new post.
	IdempotencyKey string          `json:"idempotency_key"`
	ContactID      string          `json:"contact_id"`
	JourneyID      string          `json:"journey_id"`
	JourneyVersion int             `json:"journey_version"`
	StepID         string          `json:"step_id"`
	Webhook        journey.Webhook `json:"webhook"`
	// Policy is the journey's send-gate settings (nil: workspace defaults);
	// for a webhook only its suppressions matter.
	Policy *journey.Policy `json:"policy,omitempty"`
}

// Reason codes of webhook posts skipped before the gate.
const (
	// ReasonWebhookDestinationUnknown: the step names a destination the
	// worker's TUTTI_WEBHOOK_DESTINATIONS does not have.
	ReasonWebhookDestinationUnknown = "webhook_destination_unknown"
)

// PostWebhook renders the step's payload for the contact and hands it to
// the one send path (delivery.Service.Send), on the webhook channel: the
// gate decides (suppressions only, see policy) and reserves the ledger row,
// the fence re-checks the suppressions, the post is signed and sent with
// the row's idempotency key, and the answer is recorded. A 5xx or 429
// comes back as a retry (with Retry-After) for the workflow to wait out; an
// answer the ledger could not record comes back as Unsettled, as a send's.
func (a *Activities) PostWebhook(ctx context.Context, in WebhookInput) (SendResult, error) {
	stop := heartbeat(ctx)
	defer stop()

	row := storage.Message{
		IdempotencyKey: in.IdempotencyKey,
		ContactID:      in.ContactID,
		JourneyID:      in.JourneyID,
		JourneyVersion: in.JourneyVersion,
		StepID:         in.StepID,
		Channel:        journey.ChannelWebhook,
		Class:          string(journey.ClassMarketing),
		Provider:       a.Delivery.ProviderName(journey.ChannelWebhook),
	}
	c, err := a.Store.Contact(ctx, in.ContactID)
	if errors.Is(err, storage.ErrNotFound) {
		return SendResult{Status: model.MessageSkipped, Reason: "contact_not_found"}, nil
	}
	if err != nil {
		return SendResult{}, err
	}
	if _, ok := a.Delivery.WebhookDestinations[in.Webhook.Destination]; !ok {
		a.logger().Error("webhook step names a destination that is not configured", "journey_id", in.JourneyID,
			"step_id", in.StepID, "destination", in.Webhook.Destination)
		return a.skip(ctx, row, ReasonWebhookDestinationUnknown, "destination "+in.Webhook.Destination)
	}
	payload, err := journey.RenderWebhookPayload(in.Webhook, journey.TemplateData(contactView(c), in.JourneyID, in.JourneyVersion))
	if err != nil {
		var missing *journey.MissingDataError
		if errors.As(err, &missing) {
			return a.skip(ctx, row, "missing_template_data:"+missing.Field, "")
		}
		return a.skip(ctx, row, "render_failed", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return a.skip(ctx, row, "render_failed", err.Error())
	}
	msg := delivery.Message{
		Ledger:  row,
		Journey: policy.ForJourney(in.Policy, false),
		Content: map[journey.Channel]delivery.Content{
			journey.ChannelWebhook: {Webhook: &delivery.WebhookPost{Destination: in.Webhook.Destination, Payload: body}},
		},
	}
	res, err := a.Delivery.Send(ctx, msg)
	var pending *delivery.FlightPendingError
	if errors.As(err, &pending) {
		return SendResult{}, retryAt(pending.Until, err)
	}
	return res, err
}
