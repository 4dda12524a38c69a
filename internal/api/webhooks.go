package api

// Provider webhooks (webhooks_sendgrid.go, webhooks_twilio.go): SendGrid's
// Signed Event Webhook and Twilio's inbound message and status callbacks.
// They are not behind the API token; each request must carry the provider's
// signature instead, checked before anything is parsed, and a request
// without a valid one changes nothing (401 missing, 403 wrong or stale). A
// webhook whose secret is not configured answers 503: unsigned events are
// never accepted.
//
// What each provider event changes (ledger status, engagement, suppression,
// consent, a behaviour event) is decided in internal/webhook
// (webhook.SendGridUpdate, TwilioInboundUpdate, TwilioStatusUpdate); the
// handlers look up the message and contact it is about, and store the event
// in provider_events together with its effects in one transaction
// (storage.ApplyProviderEvent), so a redelivered webhook changes nothing.
// The behaviour event (email.opened, sms.replied, ...) is stored there with
// its pending deliveries, exactly as POST /v1/events stores one: the
// dispatcher (dispatch.go) signals the contact's running journeys and starts
// the journeys it triggers, so the webhook is answered once the event is
// stored, whether Temporal is reachable or not. A consent change (a STOP,
// an unsubscribe, a resubscribe) is stored the same way, with a 'consent'
// delivery carrying the consent then in force, in the webhook's own
// transaction: the dispatcher tells the running journeys after every
// delivery stored before it for the contact. A redelivered webhook changes
// nothing and stores nothing: the first one's deliveries are in the outbox.
// The send gate reads consent from PostgreSQL before every send, so an
// opt-out is final once stored; the delivery only ends the runs early.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// webhookVerifiers are built once from the configuration; nil means the
// webhook is not configured.
type webhookVerifiers struct {
	sendgrid *webhook.SendGridVerifier
	twilio   *webhook.TwilioVerifier
}

func newWebhookVerifiers(cfg config.Config, log *slog.Logger) webhookVerifiers {
	var v webhookVerifiers
	if cfg.SendGridWebhookPublicKey != "" {
		maxAge := cfg.SendGridWebhookMaxAge
		if maxAge <= 0 {
			maxAge = config.DefaultSendGridWebhookMaxAge
		}
		sg, err := webhook.NewSendGridVerifier(cfg.SendGridWebhookPublicKey, maxAge)
		if err != nil {
			// config.Load rejects a bad key; a hand-built Config might not.
			log.Error("api: SendGrid webhook verification key unusable; POST /webhooks/sendgrid will answer 503", "error", err)
		} else {
			v.sendgrid = sg
		}
	}
	if cfg.TwilioAuthToken != "" {
		tw, err := webhook.NewTwilioVerifier(cfg.TwilioAuthToken)
		if err != nil {
			log.Error("api: Twilio auth token unusable; Twilio webhooks will answer 503", "error", err)
		} else {
			v.twilio = tw
		}
	}
	return v
}

func webhookNotConfigured(what, setting string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "webhook_not_configured",
		Message: what + " webhook is not configured: set " + setting + " so its requests can be verified; unsigned events are never accepted"}
}

// webhookError maps a verification or parsing failure to its answer.
func webhookError(err error) error {
	switch {
	case errors.Is(err, webhook.ErrMissingSignature):
		return &Error{Status: http.StatusUnauthorized, Code: "missing_signature", Message: err.Error()}
	case errors.Is(err, webhook.ErrStaleTimestamp):
		return &Error{Status: http.StatusForbidden, Code: "stale_timestamp", Message: err.Error()}
	case errors.Is(err, webhook.ErrBadSignature):
		return &Error{Status: http.StatusForbidden, Code: "invalid_signature", Message: err.Error()}
	case errors.Is(err, webhook.ErrMalformedPayload):
		return &Error{Status: http.StatusBadRequest, Code: "malformed_payload", Message: err.Error()}
	}
	return err
}

// apply stores an update with its effects and their pending deliveries
// (storage.ApplyProviderEvent) and returns whether it was new and how many
// deliveries it stored.
func (s *Server) apply(ctx context.Context, u webhook.Update) (bool, int, error) {
	res, err := s.store.ApplyProviderEvent(ctx, u.Event, u.Effects)
	if err != nil {
		return false, 0, err
	}
	return res.New, res.Deliveries, nil
}

func appliedOrDuplicate(isNew bool) string {
	if isNew {
		return "applied"
	}
	return "duplicate"
}
