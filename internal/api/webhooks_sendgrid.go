package api

// POST /webhooks/sendgrid: SendGrid's Signed Event Webhook (see webhooks.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// sendGridResponse is the answer to POST /webhooks/sendgrid.
type sendGridResponse struct {
	Error      *Error `json:"error,omitempty"`
	Received   int    `json:"received"`
	Applied    int    `json:"applied"`
	Duplicates int    `json:"duplicates"`
	Ignored    int    `json:"ignored"`
	Failed     int    `json:"failed"`
	// PendingDeliveries counts the deliveries the applied events stored
	// (consent changes and behaviour events, for running journeys and
	// triggered starts); the dispatcher hands them to Temporal.
	PendingDeliveries int `json:"pending_deliveries"`
}

// sendGridWebhook receives a batch of SendGrid events. Each event is applied
// on its own, so events about messages Tutti does not know (logged and
// ignored) do not hold up the rest. An engagement event (email.opened,
// email.clicked) and a consent change (an unsubscribe, a spam report, a
// resubscribe) reach journeys through the outbox, so they need only to be
// stored, with no Temporal call here. If any event could not be stored,
// the answer is 5xx and SendGrid retries the batch: the events already
// applied are duplicates then, and only what failed is done again.
// pending_deliveries counts the deliveries the applied events stored.
func (s *Server) sendGridWebhook(w http.ResponseWriter, r *http.Request) {
	v := s.hooks.sendgrid
	if v == nil {
		writeError(w, r, webhookNotConfigured("SendGrid", "SENDGRID_WEBHOOK_PUBLIC_KEY"))
		return
	}
	log := loggerFrom(r.Context())
	// The signature covers the body byte for byte, so it is read raw.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sig, ts := r.Header.Get(webhook.SendGridSignatureHeader), r.Header.Get(webhook.SendGridTimestampHeader)
	if err := v.Verify(sig, ts, body, s.now()); err != nil {
		metrics.RecordWebhook(webhook.ProviderSendGrid, "request", "invalid")
		log.Warn("api: SendGrid webhook rejected", "error", err)
		writeError(w, r, webhookError(err))
		return
	}
	events, err := webhook.ParseSendGridEvents(body)
	if err != nil {
		metrics.RecordWebhook(webhook.ProviderSendGrid, "request", "malformed")
		writeError(w, r, webhookError(err))
		return
	}

	ctx := r.Context()
	resp := sendGridResponse{Received: len(events)}
	for i, e := range events {
		u, skip, err := s.sendGridUpdate(ctx, e)
		isNew := false
		if err == nil && skip == nil {
			var stored int
			isNew, stored, err = s.apply(ctx, u)
			resp.PendingDeliveries += stored
		}
		switch {
		case err != nil:
			resp.Failed++
			metrics.RecordWebhook(webhook.ProviderSendGrid, e.Event, "error")
			log.Error("api: SendGrid event not applied", "index", i, "sg_event_id", e.SGEventID, "event", e.Event, "error", err)
		case skip != nil:
			resp.Ignored++
			metrics.RecordWebhook(webhook.ProviderSendGrid, e.Event, skip.result)
			log.Info("api: SendGrid event ignored", "index", i, "sg_event_id", e.SGEventID, "event", e.Event, "why", skip.why)
		case isNew:
			resp.Applied++
			metrics.RecordWebhook(webhook.ProviderSendGrid, e.Event, "applied")
		default:
			resp.Duplicates++
			metrics.RecordWebhook(webhook.ProviderSendGrid, e.Event, "duplicate")
		}
	}
	if resp.Failed > 0 {
		resp.Error = &Error{Status: http.StatusInternalServerError, Code: "events_not_applied",
			Message: fmt.Sprintf("%d of %d events could not be stored; retry the batch (applied events are deduplicated)", resp.Failed, resp.Received)}
		writeJSON(w, resp.Error.Status, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// skipped says why an event is ignored; result is its metrics label.
type skipped struct{ result, why string }

// sendGridUpdate looks up the message and contact an event is about and
// asks webhook.SendGridUpdate what it changes. A non-nil skip says why the
// event is ignored: a kind Tutti does not act on, no sg_event_id to
// deduplicate on, or no message or contact to tie it to.
func (s *Server) sendGridUpdate(ctx context.Context, e webhook.SendGridEvent) (webhook.Update, *skipped, error) {
	if why := e.Ignored(); why != "" {
		return webhook.Update{}, &skipped{"ignored", why}, nil
	}
	// The message, through the custom args the send activity set.
	var msg *storage.Message
	if id := e.MessageID(); id != "" {
		m, err := s.store.Message(ctx, id)
		switch {
		case err == nil && m.Channel == journey.ChannelEmail:
			msg = &m
		case err == nil, errors.Is(err, storage.ErrNotFound):
		default:
			return webhook.Update{}, nil, err
		}
	}
	var contactID string
	if msg != nil {
		contactID = msg.ContactID
	} else {
		// Without a Tutti message, the contact with that email, for what
		// the recipient asked about their address.
		if !e.AboutAddress() {
			return webhook.Update{}, &skipped{"unknown_message", "no Tutti message (custom arg " + webhook.CustomArgMessageID + ") for this event"}, nil
		}
		email, err := contact.NormalizeEmail(e.Email)
		if err != nil {
			return webhook.Update{}, &skipped{"unknown_message", "no Tutti message and no usable email address"}, nil
		}
		c, err := s.store.ContactByEmail(ctx, email)
		if errors.Is(err, storage.ErrNotFound) {
			return webhook.Update{}, &skipped{"unknown_message", "no Tutti message and no contact with this email"}, nil
		}
		if err != nil {
			return webhook.Update{}, nil, err
		}
		contactID = c.ID
	}
	return webhook.SendGridUpdate(e, msg, contactID, s.now(), s.cfg.SendGridASMGroups), nil, nil
}
