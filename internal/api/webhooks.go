package api

// Provider webhooks: SendGrid's Signed Event Webhook and Twilio's inbound
// message and status callbacks. They are not behind the API token; each
// request must carry the provider's signature instead, checked before
// anything is parsed, and a request without a valid one changes nothing
// (401 missing, 403 wrong or stale). A webhook whose secret is not
// configured answers 503: unsigned events are never accepted.
//
// Each provider event is stored in provider_events together with what it
// changes (ledger status, engagement, suppression, consent, a behaviour
// event) in one transaction (storage.ApplyProviderEvent), so a redelivered
// webhook changes nothing. Then the contact's running journeys are told:
// consent changes as SignalConsent, engagement as SignalEvent with the
// stored behaviour event, exactly as POST /v1/events does. Signals are sent
// for redeliveries too (journeys drop an event id they have seen), so a
// retry after a failed signal finishes the delivery.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/webhook"
	"github.com/tutti-dev/tutti/workflows"
)

// Provider names, as stored in provider_events and on ledger rows.
const (
	providerSendGrid = "sendgrid"
	providerTwilio   = "twilio"
)

// Behaviour event names provider webhooks produce, for journeys to wait for.
const (
	EventEmailOpened  = webhook.KindEmailOpened  // email.opened (a person opened it)
	EventEmailClicked = webhook.KindEmailClicked // email.clicked
	EventSMSReplied   = "sms.replied"            // an inbound SMS that is not a keyword
	// kindMachineOpen is the provider_events kind of an open SendGrid
	// attributes to a machine (Apple Mail Privacy Protection prefetching
	// the tracking pixel). It is recorded, and counts as delivery, but it
	// is not engagement: no email.opened event is stored or signalled, so
	// a journey's wait_for email.opened is not fooled by it.
	kindMachineOpen = "email.opened.machine"
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

// providerUpdate is one provider event and what it changes.
type providerUpdate struct {
	event   storage.ProviderEvent
	effects storage.ProviderEffects
}

// pendingSignal is a signal for a contact's running journeys, sent once the
// update it comes from is stored.
type pendingSignal struct {
	contactID string
	name      string
	arg       any
	include   func(storage.Enrollment) bool
}

// apply stores an update and returns whether it was new and the signals it
// calls for. For a redelivered event the signals are rebuilt from what is
// stored: the behaviour event as first stored, and the contact's current
// consent (never the event's own status, which a later change may have
// overridden).
func (s *Server) apply(ctx context.Context, u providerUpdate) (bool, []pendingSignal, error) {
	res, err := s.store.ApplyProviderEvent(ctx, u.event, u.effects)
	if err != nil {
		return false, nil, err
	}
	contactID := u.event.ContactID
	var signals []pendingSignal
	if u.effects.Event != nil {
		ev := res.Event
		if !res.New {
			stored, err := s.store.Event(ctx, u.effects.Event.ID)
			switch {
			case err == nil:
				ev = &stored
			case !errors.Is(err, storage.ErrNotFound):
				return false, nil, err
			}
		}
		if ev != nil {
			received := ev.ReceivedAt
			signals = append(signals, pendingSignal{contactID: contactID, name: workflows.SignalEvent,
				arg: workflows.EventSignal{EventID: ev.ID, Name: ev.Name, OccurredAt: ev.OccurredAt},
				// As for POST /v1/events: only runs that were active when
				// the event was received see it.
				include: func(e storage.Enrollment) bool { return received.IsZero() || !e.StartedAt.After(received) }})
		}
	}
	var current map[journey.Channel]storage.Consent
	for i, c := range u.effects.Consents {
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
		fan := s.fanOut(ctx, p.contactID, p.name, p.arg, p.include)
		res.signalled = append(res.signalled, fan.signalled...)
		res.failed = append(res.failed, fan.failed...)
	}
	return res
}

// ---------------------------------------------------------------------------
// SendGrid

// sendGridResponse is the answer to POST /webhooks/sendgrid.
type sendGridResponse struct {
	Error      *Error `json:"error,omitempty"`
	Received   int    `json:"received"`
	Applied    int    `json:"applied"`
	Duplicates int    `json:"duplicates"`
	Ignored    int    `json:"ignored"`
	Failed     int    `json:"failed"`
	Signalled  int    `json:"signalled"`
}

// sendGridWebhook receives a batch of SendGrid events. Each event is applied
// on its own, so events about messages Tutti does not know (logged and
// ignored) do not hold up the rest. If any event could not be stored, or a
// running journey could not be signalled, the answer is 5xx and SendGrid
// retries the batch: the events already applied are duplicates then, and
// only what failed is done again.
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
		metrics.RecordWebhook(providerSendGrid, "request", "invalid")
		log.Warn("api: SendGrid webhook rejected", "error", err)
		writeError(w, r, webhookError(err))
		return
	}
	events, err := webhook.ParseSendGridEvents(body)
	if err != nil {
		metrics.RecordWebhook(providerSendGrid, "request", "malformed")
		writeError(w, r, webhookError(err))
		return
	}

	ctx := r.Context()
	resp := sendGridResponse{Received: len(events)}
	var signals []pendingSignal
	for i, e := range events {
		u, skip, err := s.sendGridUpdate(ctx, e)
		isNew := false
		if err == nil && skip == nil {
			var sigs []pendingSignal
			isNew, sigs, err = s.apply(ctx, u)
			if err == nil {
				signals = append(signals, sigs...)
			}
		}
		switch {
		case err != nil:
			resp.Failed++
			metrics.RecordWebhook(providerSendGrid, e.Event, "error")
			log.Error("api: SendGrid event not applied", "index", i, "sg_event_id", e.SGEventID, "event", e.Event, "error", err)
		case skip != nil:
			resp.Ignored++
			metrics.RecordWebhook(providerSendGrid, e.Event, skip.result)
			log.Info("api: SendGrid event ignored", "index", i, "sg_event_id", e.SGEventID, "event", e.Event, "why", skip.why)
		case isNew:
			resp.Applied++
			metrics.RecordWebhook(providerSendGrid, e.Event, "applied")
		default:
			resp.Duplicates++
			metrics.RecordWebhook(providerSendGrid, e.Event, "duplicate")
		}
	}
	fan := s.deliver(ctx, signals)
	resp.Signalled = len(fan.signalled)

	switch {
	case resp.Failed > 0:
		resp.Error = &Error{Status: http.StatusInternalServerError, Code: "events_not_applied",
			Message: fmt.Sprintf("%d of %d events could not be stored; retry the batch (applied events are deduplicated)", resp.Failed, resp.Received)}
		writeJSON(w, resp.Error.Status, resp)
	case len(fan.failed) > 0:
		log.Warn("api: SendGrid event signals not delivered", "failed", fan.failed)
		resp.Error = &Error{Status: http.StatusServiceUnavailable, Code: "delivery_incomplete",
			Message: fmt.Sprintf("events are stored, but %d journey signals failed; retry the batch to finish them", len(fan.failed))}
		writeJSON(w, resp.Error.Status, resp)
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// skipped says why an event is ignored; result is its metrics label.
type skipped struct{ result, why string }

// sendGridUpdate works out what one event changes. A non-nil skip says why
// the event is ignored: a kind Tutti does not act on, no sg_event_id to
// deduplicate on, or no message or contact to tie it to.
func (s *Server) sendGridUpdate(ctx context.Context, e webhook.SendGridEvent) (providerUpdate, *skipped, error) {
	kind := e.Kind()
	switch {
	case kind == "":
		return providerUpdate{}, &skipped{"ignored", "event type " + strconv.Quote(e.Event) + " is not handled"}, nil
	case e.SGEventID == "":
		return providerUpdate{}, &skipped{"ignored", "no sg_event_id to deduplicate on"}, nil
	}
	occurred := s.now().UTC()
	if e.Timestamp > 0 {
		occurred = e.Time()
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
			return providerUpdate{}, nil, err
		}
	}
	var contactID string
	if msg != nil {
		contactID = msg.ContactID
	} else {
		// Without a Tutti message only what the recipient asked for about
		// their address is acted on (an unsubscribe or spam report from
		// mail sent outside Tutti on the same account still means it),
		// through the contact with that email. Delivery and engagement of
		// mail Tutti did not send are not its business.
		switch e.Event {
		case "bounce", "spamreport", "unsubscribe", "group_unsubscribe":
		default:
			return providerUpdate{}, &skipped{"unknown_message", "no Tutti message (custom arg " + webhook.CustomArgMessageID + ") for this event"}, nil
		}
		email, err := contact.NormalizeEmail(e.Email)
		if err != nil {
			return providerUpdate{}, &skipped{"unknown_message", "no Tutti message and no usable email address"}, nil
		}
		c, err := s.store.ContactByEmail(ctx, email)
		if errors.Is(err, storage.ErrNotFound) {
			return providerUpdate{}, &skipped{"unknown_message", "no Tutti message and no contact with this email"}, nil
		}
		if err != nil {
			return providerUpdate{}, nil, err
		}
		contactID = c.ID
	}

	u := providerUpdate{event: storage.ProviderEvent{
		Provider: providerSendGrid, EventID: e.SGEventID, Kind: kind, ContactID: contactID, OccurredAt: occurred,
		Payload: sendGridPayload(e),
	}}
	fx := &u.effects
	if msg != nil {
		u.event.MessageID = msg.ID
	}
	setStatus := func(status model.MessageStatus, reason string) {
		if msg != nil {
			fx.MessageStatus, fx.StatusReason = status, reason
		}
	}
	engagement := func(name string, props map[string]any) {
		fx.Engaged = true
		if msg != nil {
			props["message_id"], props["journey_id"], props["step_id"] = msg.ID, msg.JourneyID, msg.StepID
		}
		fx.Event = &storage.Event{ID: "sendgrid:" + e.SGEventID, Name: name, Properties: props, OccurredAt: occurred}
	}
	revokeEmail := func(subscription, source string) {
		fx.Consents = append(fx.Consents, storage.ConsentChange{Channel: journey.ChannelEmail, Subscription: subscription,
			Status: model.ConsentRevoked, Source: source, OccurredAt: occurred})
	}

	switch e.Event {
	case "processed":
		// Settles a row a crash left unknown; a sent row stays sent.
		setStatus(model.MessageSent, "")
	case "delivered":
		setStatus(model.MessageDelivered, "")
	case "deferred":
		// Recorded only: SendGrid keeps trying, and says so when it stops.
	case "open":
		if e.IsMachineOpen() {
			// See kindMachineOpen: delivery, not engagement; nothing is
			// signalled to journeys.
			u.event.Kind = kindMachineOpen
			setStatus(model.MessageDelivered, "")
			break
		}
		setStatus(model.MessageOpened, "")
		engagement(EventEmailOpened, map[string]any{})
	case "click":
		setStatus(model.MessageClicked, "")
		engagement(EventEmailClicked, map[string]any{"url": e.URL})
	case "bounce":
		reason := strings.TrimSpace(strings.Join(nonEmpty(e.Type, e.Status, e.Reason), ": "))
		setStatus(model.MessageBounced, reason)
		// Only a hard bounce (the address itself was rejected) suppresses
		// it; a block is about the message or sending reputation.
		if e.HardBounce() {
			fx.Suppression = &storage.Suppression{Reason: model.SuppressHardBounce, Channel: journey.ChannelEmail,
				Source: "sendgrid:bounce", Note: reason}
		}
	case "dropped":
		setStatus(model.MessageDropped, e.Reason)
	case "spamreport":
		setStatus(model.MessageComplained, "spam report")
		fx.Suppression = &storage.Suppression{Reason: model.SuppressSpamComplaint, Channel: journey.ChannelEmail,
			Source: "sendgrid:spamreport"}
		revokeEmail("", "sendgrid:spamreport")
	case "unsubscribe":
		revokeEmail("", "sendgrid:unsubscribe")
	case "group_unsubscribe":
		// An unsubscribe group configured as a subscription type
		// (SENDGRID_ASM_GROUP_SUBSCRIPTIONS) revokes just that
		// subscription; any other group revokes email marketing as a
		// whole, since not knowing what the contact left must not mean
		// mailing them anyway.
		if sub := s.cfg.SendGridASMGroups[e.ASMGroupID]; sub != "" {
			revokeEmail(sub, "sendgrid:group_unsubscribe")
		} else {
			revokeEmail("", "sendgrid:group_unsubscribe")
		}
	}
	return u, nil, nil
}

// sendGridPayload is what provider_events keeps of a SendGrid event: the
// fields support needs, not the address (the ledger and contact have it).
func sendGridPayload(e webhook.SendGridEvent) map[string]any {
	p := map[string]any{"event": e.Event}
	for k, v := range map[string]string{
		"sg_message_id": e.SGMessageID, "type": e.Type, "reason": e.Reason, "status": e.Status,
		"bounce_classification": e.BounceClassification, "url": e.URL,
	} {
		if v != "" {
			p[k] = v
		}
	}
	if e.ASMGroupID != 0 {
		p["asm_group_id"] = e.ASMGroupID
	}
	if e.SGMachineOpen {
		p["sg_machine_open"] = true
	}
	return p
}

func appliedOrDuplicate(isNew bool) string {
	if isNew {
		return "applied"
	}
	return "duplicate"
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Twilio

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
		metrics.RecordWebhook(providerTwilio, "request", "invalid")
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
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	if message != "" {
		b.WriteString("<Message>")
		_ = xml.EscapeText(&b, []byte(message))
		b.WriteString("</Message>")
	}
	b.WriteString("</Response>")
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}

// keywordText is the keyword an inbound body consists of, upper case, for
// the consent source ("sms:STOP"). Call only when ClassifySMSKeyword found
// one: keywords are ASCII letters, and the rest is padding.
func keywordText(body string) string {
	var b strings.Builder
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteRune(c)
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - ('a' - 'A'))
		}
	}
	return b.String()
}

// twilioInbound receives an inbound SMS. A body that is exactly a carrier
// keyword changes SMS consent: an opt-out keyword revokes it, an opt-in
// keyword grants it (which also confirms a pending double opt-in, and
// re-subscribes after a STOP), and every running journey of the contact is
// told. HELP and INFO get TUTTI_SMS_HELP_REPLY as the reply, whoever sends
// them. Anything else is a reply: stored as the event sms.replied, signalled
// to running journeys, and counted as engagement. A number that is no
// contact's changes nothing. Opt-out and opt-in get no reply from here:
// Twilio's opt-out handling sends the carrier-required confirmation itself.
//
// Once the message is stored the answer is 200 even if a signal failed:
// Twilio does not retry inbound messages, and the send gate reads consent
// from Postgres before every send, so a lost consent signal cannot lead to a
// message being sent.
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
			metrics.RecordWebhook(providerTwilio, "inbound", "unknown_contact")
			log.Info("api: inbound SMS from a number that is no contact's; ignored", "message_sid", in.MessageSid, "keyword", kw.String())
			writeTwiML(w, reply)
			return
		}
		writeError(w, r, err)
		return
	}

	u := providerUpdate{event: storage.ProviderEvent{
		Provider: providerTwilio, EventID: in.MessageSid, ContactID: c.ID, OccurredAt: s.now().UTC(),
		Payload: map[string]any{"keyword": kw.String(), "num_media": in.NumMedia},
	}}
	switch kw {
	case webhook.KeywordOptOut, webhook.KeywordOptIn:
		status, kind := model.ConsentRevoked, "sms.opt_out"
		if kw == webhook.KeywordOptIn {
			status, kind = model.ConsentGranted, "sms.opt_in"
		}
		u.event.Kind = kind
		u.effects.Consents = []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: status,
			Source: "sms:" + keywordText(in.Body), OccurredAt: u.event.OccurredAt}}
	case webhook.KeywordHelp:
		u.event.Kind = "sms.help"
	default:
		u.event.Kind = EventSMSReplied
		u.effects.Engaged = true
		u.effects.Event = &storage.Event{ID: "twilio:" + in.MessageSid, Name: EventSMSReplied, OccurredAt: u.event.OccurredAt,
			Properties: map[string]any{"body": in.Body, "num_media": in.NumMedia, "message_sid": in.MessageSid}}
	}
	isNew, signals, err := s.apply(ctx, u)
	if err != nil {
		metrics.RecordWebhook(providerTwilio, "inbound", "error")
		writeError(w, r, err)
		return
	}
	metrics.RecordWebhook(providerTwilio, "inbound", appliedOrDuplicate(isNew))
	if fan := s.deliver(ctx, signals); len(fan.failed) > 0 {
		log.Warn("api: inbound SMS signals not delivered", "message_sid", in.MessageSid, "failed", fan.failed)
	}
	log.Info("api: inbound SMS", "message_sid", in.MessageSid, "contact_id", c.ID, "keyword", kw.String(), "duplicate", !isNew)
	writeTwiML(w, reply)
}

// twilioStatus receives a message status callback: sent, delivered,
// undelivered and failed move the ledger row (never backwards; undelivered
// is recorded as failed), deduplicated on MessageSid and status. Error 21610
// means the recipient had replied STOP: SMS consent is revoked as for an
// inbound STOP, for the message's contact or, for a message Tutti does not
// know, the contact with that number.
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
	m, err := s.store.MessageByProviderID(ctx, providerTwilio, st.MessageSid)
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
	} else if st.ErrorCode == provider.TwilioCodeUnsubscribed {
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
		metrics.RecordWebhook(providerTwilio, st.MessageStatus, "unknown_message")
		log.Info("api: Twilio status for a message Tutti does not know; ignored", "message_sid", st.MessageSid, "status", st.MessageStatus)
		w.WriteHeader(http.StatusNoContent)
		return
	}

	status := strings.ToLower(st.MessageStatus)
	u := providerUpdate{event: storage.ProviderEvent{
		Provider: providerTwilio, EventID: st.MessageSid + ":" + status, Kind: "sms." + status,
		ContactID: contactID, OccurredAt: s.now().UTC(),
		Payload: map[string]any{"message_status": st.MessageStatus, "error_code": st.ErrorCode},
	}}
	if msg != nil {
		u.event.MessageID = msg.ID
		reason := ""
		if st.ErrorCode != 0 {
			reason = fmt.Sprintf("twilio %s, error %d", status, st.ErrorCode)
		}
		switch status {
		case "sent":
			u.effects.MessageStatus = model.MessageSent
		case "delivered":
			u.effects.MessageStatus = model.MessageDelivered
		case "undelivered", "failed":
			u.effects.MessageStatus, u.effects.StatusReason = model.MessageFailed, reason
		}
	}
	if st.ErrorCode == provider.TwilioCodeUnsubscribed {
		u.effects.Consents = []storage.ConsentChange{{Channel: journey.ChannelSMS, Status: model.ConsentRevoked,
			Source: provider.TwilioOptOutSource, OccurredAt: u.event.OccurredAt}}
	}
	isNew, signals, err := s.apply(ctx, u)
	if err != nil {
		metrics.RecordWebhook(providerTwilio, status, "error")
		writeError(w, r, err)
		return
	}
	metrics.RecordWebhook(providerTwilio, status, appliedOrDuplicate(isNew))
	if fan := s.deliver(ctx, signals); len(fan.failed) > 0 {
		log.Warn("api: Twilio status signals not delivered", "message_sid", st.MessageSid, "failed", fan.failed)
	}
	w.WriteHeader(http.StatusNoContent)
}
