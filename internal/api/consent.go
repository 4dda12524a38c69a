package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/delivery"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/storage"
)

// subscriptionPattern is a subscription type: the same rule journey specs
// use for policy.subscription, so every recorded type can be named by one.
var subscriptionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const (
	// confirmSendTimeout bounds the provider call and ledger updates for the
	// prompt; they run even if the client hangs up, so the row settles.
	confirmSendTimeout = 15 * time.Second
)

type consentRequest struct {
	Channel      string              `json:"channel"`
	Subscription string              `json:"subscription"`
	Status       model.ConsentStatus `json:"status"`
	Source       string              `json:"source"`
	OccurredAt   string              `json:"occurred_at"`
	// DoubleOptInConfirmed says the caller already ran its own SMS
	// confirmation, so a channel-level SMS grant is recorded as granted.
	DoubleOptInConfirmed bool `json:"double_opt_in_confirmed"`
}

// Double opt-in statuses.
const (
	optInPending         = "pending"
	optInConfirmedCaller = "confirmed_by_caller"
	optInAlreadyGranted  = "already_granted"
)

// recordConsent appends to the consent history and, in the same
// transaction, stores the change's delivery to the contact's running
// journeys (storage.TrackConsentChange); it answers once PostgreSQL has
// committed, with no Temporal call in the request, and the dispatcher
// (dispatch.go) signals the runs after every delivery stored before it for
// the contact. The signal only ends or updates runs early: the send gate
// reads consent from Postgres before every marketing send, and an opt-out's
// sends already in flight are settled before the answer, so an opt-out is
// final when it is answered, whether Temporal is up or not.
//
// SMS double opt-in: a channel-level SMS grant is recorded as pending and the
// contact is texted a confirmation prompt; replying YES or START (the Twilio
// inbound webhook) makes it granted. The caller can say it already confirmed
// (double_opt_in_confirmed), and a contact whose SMS consent is already
// granted stays granted.
func (s *Server) recordConsent(w http.ResponseWriter, r *http.Request) {
	var req consentRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var fe fieldErrors
	channel := journey.Channel(req.Channel)
	switch channel {
	case journey.ChannelEmail, journey.ChannelSMS, journey.ChannelAds:
	case "":
		fe.add("channel", "required: email, sms or ads")
	default:
		fe.add("channel", "must be email, sms or ads")
	}
	subscription := strings.ToLower(strings.TrimSpace(req.Subscription))
	if subscription != "" && !subscriptionPattern.MatchString(subscription) {
		fe.add("subscription", "must be 1 to 64 lower-case letters, digits, _ or -, starting with a letter or digit (e.g. newsletter); omit it for the channel-level consent")
	}
	switch {
	case req.Status == "":
		fe.add("status", "required: granted, revoked or pending")
	case !req.Status.Recordable():
		fe.add("status", "must be granted, revoked or pending")
	}
	source := strings.TrimSpace(req.Source)
	switch {
	case source == "":
		fe.add("source", "required: where the consent came from, e.g. signup-form")
	case len(source) > maxSourceLen:
		fe.add("source", "at most %d characters", maxSourceLen)
	}
	now := s.now().UTC()
	occurred := parseTime(&fe, "occurred_at", req.OccurredAt, now)
	s.checkNotFuture(&fe, "occurred_at", occurred, now)
	smsGrant := channel == journey.ChannelSMS && subscription == "" && req.Status == model.ConsentGranted
	if req.DoubleOptInConfirmed && !smsGrant {
		fe.add("double_opt_in_confirmed", "only applies when granting channel-level sms consent (channel sms, status granted, no subscription)")
	}
	if err := fe.err(); err != nil {
		writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	c, err := s.contactByID(r.Context(), id, "")
	if err != nil {
		writeError(w, r, err)
		return
	}

	status := req.Status
	var dbl *DoubleOptIn
	if smsGrant {
		dbl, err = s.smsOptIn(r.Context(), id, req.DoubleOptInConfirmed)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if dbl.Status == optInPending {
			status = model.ConsentPending
		}
	}

	ev, current, pending, err := s.store.TrackConsentChange(r.Context(), storage.ConsentChange{
		ContactID: id, Channel: channel, Subscription: subscription,
		Status: status, Source: source, OccurredAt: occurred,
	})
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, r, notFound("contact", id, ""))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if dbl != nil && dbl.Status == optInPending {
		if current.ConsentEventID == ev.ID {
			dbl.Prompt = s.sendConfirmPrompt(r.Context(), c, ev)
		} else {
			// A change dated later is in force (a STOP, say): prompting now
			// would text someone about a decision they have since replaced.
			dbl.Prompt = &ConfirmPrompt{Error: fmt.Sprintf("not sent: a later consent change (status %s, consent event %d) is in force", current.Status, current.ConsentEventID)}
		}
	}

	writeJSON(w, http.StatusOK, ConsentAnswer{
		Consent:           current,
		DoubleOptIn:       dbl,
		HistoryID:         ev.ID,
		PendingDeliveries: pending,
		RecordedStatus:    ev.Status,
		RequestedStatus:   req.Status,
	})
}

// smsOptIn decides how a channel-level SMS grant is recorded.
func (s *Server) smsOptIn(ctx context.Context, contactID string, confirmed bool) (*DoubleOptIn, error) {
	if confirmed {
		return &DoubleOptIn{Status: optInConfirmedCaller,
			Reason: "double_opt_in_confirmed was set: the caller confirmed the opt-in itself, so it is recorded as granted"}, nil
	}
	cur, err := s.store.Consents(ctx, contactID)
	if err != nil {
		return nil, err
	}
	if sms, ok := cur[journey.ChannelSMS]; ok && sms.Status == model.ConsentGranted {
		return &DoubleOptIn{Status: optInAlreadyGranted,
			Reason: fmt.Sprintf("the contact's SMS consent is already granted (consent event %d), so it stays granted and no confirmation is asked again", sms.ConsentEventID)}, nil
	}
	return &DoubleOptIn{Status: optInPending,
		Reason: "SMS opt-ins need double opt-in: the consent is recorded as pending, and no marketing SMS is sent, " +
			"until the contact replies YES or START to the confirmation prompt. " +
			"Set double_opt_in_confirmed to true if your system already confirmed it."}, nil
}

// sendConfirmPrompt texts the contact the double opt-in prompt through the
// send path every message takes (decide, deliver, settle): a transactional
// SMS citing the pending consent event, with a ledger row. It reports what
// happened rather than failing the request: the consent is recorded either
// way.
func (s *Server) sendConfirmPrompt(ctx context.Context, c storage.Contact, ev storage.ConsentEvent) *ConfirmPrompt {
	switch {
	case s.delivery == nil || s.delivery.SMS == nil:
		return &ConfirmPrompt{Error: "no SMS sender is configured for the API; the prompt was not sent"}
	case c.Phone == "":
		return &ConfirmPrompt{Error: "the contact has no phone number; identify it with one and record the opt-in again"}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmSendTimeout)
	defer cancel()
	body := s.cfg.SMSConfirmPrompt
	res, err := s.delivery.Send(ctx, delivery.OptInPrompt(c, ev.ID, body))
	if err != nil {
		loggerFrom(ctx).Error("api: SMS confirmation prompt not sent", "contact_id", c.ID, "error", err)
		return &ConfirmPrompt{Error: "the prompt could not be sent now (see the API log); record the opt-in again to retry"}
	}
	out := &ConfirmPrompt{MessageID: res.MessageID, Provider: res.Provider}
	switch res.Status {
	case model.MessageSent:
		out.Sent, out.Body = true, body
	case delivery.StatusDeferred, model.MessageSkipped:
		out.Error = "the send gate did not allow it: " + res.Reason
	case model.MessageFailed:
		out.Body, out.Error = body, "the provider refused it ("+res.Reason+"); the ledger row has its explanation"
	default:
		out.Error = "not sent: " + string(res.Status)
		if res.Reason != "" {
			out.Error += " (" + res.Reason + ")"
		}
	}
	return out
}

// consentHistory returns every current consent of the contact (channel-level
// and subscription-type) and every change ever recorded, newest first.
func (s *Server) consentHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.contactByID(r.Context(), id, ""); err != nil {
		writeError(w, r, err)
		return
	}
	current, err := s.store.AllConsents(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	history, err := s.store.ConsentHistory(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if current == nil {
		current = []storage.Consent{}
	}
	if history == nil {
		history = []storage.ConsentEvent{}
	}
	writeJSON(w, http.StatusOK, ConsentHistory{Consents: current, History: history})
}
