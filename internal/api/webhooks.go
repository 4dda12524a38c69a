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
// stored, whether Temporal is reachable or not. Consent changes are still
// signalled here, synchronously, as SignalConsent to the running journeys;
// they are sent for redeliveries too (journeys apply the current consent),
// so a retry after a failed signal finishes the delivery.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/webhook"
	"github.com/tutti-dev/tutti/workflows"
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

// pendingSignal is a signal for a contact's running journeys, sent once the
// update it comes from is stored: a consent change (engagement events go
// through the outbox).
type pendingSignal struct {
	contactID string
	name      string
	arg       any
}

// apply stores an update and returns whether it was new and the consent
// signals it calls for. The behaviour event, if any, is stored with its
// pending deliveries and reaches journeys through the dispatcher. For a
// redelivered event the consent signals are rebuilt from the contact's
// current consent (never the event's own status, which a later change may
// have overridden).
func (s *Server) apply(ctx context.Context, u webhook.Update) (bool, []pendingSignal, error) {
	res, err := s.store.ApplyProviderEvent(ctx, u.Event, u.Effects)
	if err != nil {
		return false, nil, err
	}
	contactID := u.Event.ContactID
	var signals []pendingSignal
	var current map[journey.Channel]storage.Consent
	for i, c := range u.Effects.Consents {
		if c.Subscription != "" {
			// Journeys track channel-level consent only; the send gate reads
			// subscription consent from Postgres before every send, so a
			// subscription opt-out still stops that subscription's messages.
			continue
		}
		var status model.ConsentStatus
		if res.New {
			status = res.Consents[i].Status
		} else {
			if current == nil {
				if current, err = s.store.Consents(ctx, contactID); err != nil {
					return false, nil, err
				}
			}
			cur, ok := current[c.Channel]
			if !ok {
				continue
			}
			status = cur.Status
		}
		signals = append(signals, pendingSignal{contactID: contactID, name: workflows.SignalConsent,
			arg: workflows.ConsentSignal{Channel: c.Channel, Status: status}})
	}
	return res.New, signals, nil
}

// deliver sends the signals, all of them within cfg.SignalTimeout.
func (s *Server) deliver(ctx context.Context, signals []pendingSignal) fanResult {
	res := fanResult{signalled: []string{}}
	if len(signals) == 0 {
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SignalTimeout)
	defer cancel()
	for _, p := range signals {
		fan := s.fanOut(ctx, p.contactID, p.name, p.arg)
		res.signalled = append(res.signalled, fan.signalled...)
		res.failed = append(res.failed, fan.failed...)
	}
	return res
}

func appliedOrDuplicate(isNew bool) string {
	if isNew {
		return "applied"
	}
	return "duplicate"
}
