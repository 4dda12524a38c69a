package api

// Twilio's messaging webhooks: POST /webhooks/twilio/inbound and
// /webhooks/twilio/status (see webhooks.go).

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/webhook"
)

// twilioForm parses and verifies a Twilio webhook. Twilio signs the URL it
// requested, so the URL is rebuilt: from TUTTI_PUBLIC_URL when set (behind a
// proxy the request's own host and scheme are not what Twilio saw), else from
// the request, honouring X-Forwarded-Proto and X-Forwarded-Host. A forged
// host cannot forge a signature, which needs the auth token.
func (s *Server) twilioForm(w http.ResponseWriter, r *http.Request) bool {
	v := s.hooks.twilio
	if v == nil {
		writeError(w, r, webhookNotConfigured("Twilio", "TWILIO_AUTH_TOKEN"))
		return false
	}
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			err = invalid(FieldError{Path: "", Message: "body is not a form: " + err.Error()})
		}
		writeError(w, r, err)
		return false
	}
	if err := v.Verify(s.webhookURL(r), r.PostForm, r.Header.Get(webhook.TwilioSignatureHeader)); err != nil {
		metrics.RecordWebhook(webhook.ProviderTwilio, "request", "invalid")
		loggerFrom(r.Context()).Warn("api: Twilio webhook rejected", "path", r.URL.Path, "error", err)
		writeError(w, r, webhookError(err))
		return false
	}
	return true
}

// webhookURL is the URL the provider requested, as it signed it.
func (s *Server) webhookURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/") + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := firstHeaderValue(r, "X-Forwarded-Proto"); p != "" {
		scheme = strings.ToLower(p)
	}
	host := r.Host
	if h := firstHeaderValue(r, "X-Forwarded-Host"); h != "" {
		host = h
	}
	return scheme + "://" + host + r.URL.RequestURI()
}

// firstHeaderValue is the first entry of a comma-separated header (the one
// the outermost proxy set).
func firstHeaderValue(r *http.Request, name string) string {
	v, _, _ := strings.Cut(r.Header.Get(name), ",")
	return strings.TrimSpace(v)
}

// writeTwiML answers Twilio with a reply message, or none.
func writeTwiML(w http.ResponseWriter, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, webhook.TwiMLReply(message))
}

// twilioInbound receives an inbound SMS. What it changes is
// webhook.TwilioInboundUpdate's: a carrier keyword changes SMS consent,
// stored with a delivery that tells every running journey of the contact;
// anything but a keyword is a reply, stored as the event sms.replied with
// its pending deliveries: the dispatcher signals running journeys and
// starts journeys it triggers.
// HELP and INFO get TUTTI_SMS_HELP_REPLY as the reply, whoever sends them.
// A number that is no contact's changes nothing. Opt-out and opt-in get no
// reply from here: Twilio's opt-out handling sends the carrier-required
// confirmation itself.
//
// The answer is 200 once the message and its deliveries are stored; no
// Temporal call is made here. The send gate reads consent from Postgres
// before every send, so a STOP is final once stored, before any run hears
// of it.
func (s *Server) twilioInbound(w http.ResponseWriter, r *http.Request) {
	if !s.twilioForm(w, r) {
		return
	}
	in, err := webhook.ParseTwilioInbound(r.PostForm)
	if err != nil {
		writeError(w, r, webhookError(err))
		return
	}
	ctx, log := r.Context(), loggerFrom(r.Context())
	kw := webhook.ClassifySMSKeyword(in.Body)
	reply := ""
	if kw == webhook.KeywordHelp {
		reply = s.cfg.SMSHelpReply
		if strings.TrimSpace(reply) == "" {
			reply = config.DefaultSMSHelpReply
		}
	}

	var c storage.Contact
	phone, err := contact.NormalizePhone(in.From, s.cfg.DefaultRegion)
	if err == nil {
		c, err = s.store.ContactByPhone(ctx, phone)
	}
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) || phone == "" {
			metrics.RecordWebhook(webhook.ProviderTwilio, "inbound", "unknown_contact")
			log.Info("api: inbound SMS from a number that is no contact's; ignored", "message_sid", in.MessageSid, "keyword", kw.String())
			writeTwiML(w, reply)
			return
		}
		writeError(w, r, err)
		return
	}

	u := webhook.TwilioInboundUpdate(in, c.ID, s.now())
	if c.Phone != phone {
		// The number belongs to a contact merged into c, which is texted
		// at its own number: a START from the other one grants nothing.
		u = u.ViaAlias()
	}
	isNew, stored, err := s.apply(ctx, u)
	if err != nil {
		metrics.RecordWebhook(webhook.ProviderTwilio, "inbound", "error")
		writeError(w, r, err)
		return
	}
	metrics.RecordWebhook(webhook.ProviderTwilio, "inbound", appliedOrDuplicate(isNew))
	log.Info("api: inbound SMS", "message_sid", in.MessageSid, "contact_id", c.ID, "keyword", kw.String(), "duplicate", !isNew,
		"deliveries", stored)
	writeTwiML(w, reply)
}

// twilioStatus receives a message status callback. What it changes is
// webhook.TwilioStatusUpdate's: the ledger row of the message moves, and
// error 21610 (the recipient had replied STOP) revokes SMS consent as an
// inbound STOP does (with its delivery to running journeys), for the
// message's contact or, for a message Tutti does not know, the contact
// with that number.
func (s *Server) twilioStatus(w http.ResponseWriter, r *http.Request) {
	if !s.twilioForm(w, r) {
		return
	}
	st, err := webhook.ParseTwilioStatus(r.PostForm)
	if err != nil {
		writeError(w, r, webhookError(err))
		return
	}
	ctx, log := r.Context(), loggerFrom(r.Context())

	var msg *storage.Message
	m, err := s.store.MessageByProviderID(ctx, webhook.ProviderTwilio, st.MessageSid)
	switch {
	case err == nil:
		msg = &m
	case !errors.Is(err, storage.ErrNotFound):
		writeError(w, r, err)
		return
	}
	contactID := ""
	if msg != nil {
		contactID = msg.ContactID
	} else if st.RecipientOptedOut() {
		if phone, err := contact.NormalizePhone(st.To, s.cfg.DefaultRegion); err == nil {
			c, err := s.store.ContactByPhone(ctx, phone)
			switch {
			case err == nil:
				contactID = c.ID
			case !errors.Is(err, storage.ErrNotFound):
				writeError(w, r, err)
				return
			}
		}
	}
	if contactID == "" {
		metrics.RecordWebhook(webhook.ProviderTwilio, st.MessageStatus, "unknown_message")
		log.Info("api: Twilio status for a message Tutti does not know; ignored", "message_sid", st.MessageSid, "status", st.MessageStatus)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	status := st.Status()
	u := webhook.TwilioStatusUpdate(st, msg, contactID, s.now())
	isNew, _, err := s.apply(ctx, u)
	if err != nil {
		metrics.RecordWebhook(webhook.ProviderTwilio, status, "error")
		writeError(w, r, err)
		return
	}
	metrics.RecordWebhook(webhook.ProviderTwilio, status, appliedOrDuplicate(isNew))
	w.WriteHeader(http.StatusNoContent)
}
