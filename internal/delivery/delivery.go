// Package delivery is the one path every message takes to a provider:
// decide (the send gate reserves the ledger row or says why not), deliver
// (the fence re-checks consent under the contact's lock, then the provider
// call) and settle (the provider's answer goes into the ledger). Journey
// sends (through the send activity) and the SMS double opt-in prompt (from
// the API) both go through Service.Send, so every message is decided,
// counted and recorded the same way.
//
// What the ledger row says is what is known about the provider call:
//
//	reserved   allowed by the gate; no request written. A retry decides again.
//	in_flight  a request is being written. Until it settles the provider may
//	           have the message: a retry asks the provider (Twilio's Messages
//	           list, the sandbox's record) and sends only if it has nothing,
//	           or, where the provider cannot be asked (SendGrid), records
//	           unknown and never resends.
//	retrying   the provider refused it in a way a retry can fix, or the
//	           request was never written.
//	sent, failed, skipped, unknown ...  settled.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/metrics"
	"github.com/tutti-dev/tutti/internal/model"
	"github.com/tutti-dev/tutti/internal/policy"
	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/ratelimit"
	"github.com/tutti-dev/tutti/internal/storage"
)

// webhookProvider is the provider named on webhook posts' ledger rows and
// in their reason codes (webhook:http_422); the destination is the step's.
const webhookProvider = "webhook"

// DefaultFlightWindow bounds one provider call: its request is written within
// this time of entering flight, or never. An opt-out waits at most this long
// for a send already in flight (usually it waits for nothing).
const DefaultFlightWindow = 15 * time.Second

// flightSkew is added to the flight deadline stored in Postgres, whose clock
// is not the sender's: the sender's own deadline always ends first.
const flightSkew = 2 * time.Second

// Identity is who messages come from.
type Identity struct {
	EmailFrom     string
	EmailFromName string
	SMSFrom       string
	// SMSStatusCallback, when set, is the URL Twilio posts delivery updates to.
	SMSStatusCallback string
}

// Service decides, delivers and settles messages.
type Service struct {
	Store *storage.Store
	Email provider.EmailSender
	SMS   provider.SMSSender
	// Webhook posts webhook steps' payloads to WebhookDestinations (by
	// name); nil posts with a default client. Posts go out in every
	// provider mode: a destination is the workspace's own system, named in
	// configuration.
	Webhook             *provider.Webhook
	WebhookDestinations map[string]provider.WebhookDestination
	Sender              Identity
	// Policy is the workspace's send-gate settings.
	Policy policy.Settings
	Logger *slog.Logger
	// Now is the clock the gate decides with; nil means time.Now.
	Now func() time.Time
	// FlightWindow overrides DefaultFlightWindow (tests make it short).
	FlightWindow time.Duration
	// Limits are the providers' rate limits (TUTTI_RATE_LIMITS): a send
	// under one takes a slot first and waits for it (ratelimit.go).
	Limits ratelimit.Limits

	// Faults are fault points for tests that stop a send between its steps,
	// the way a GC pause or a stalled worker would; nil in production.
	Faults *Faults
}

// Faults are called, when set, at two points of a send: AfterReserve once the
// gate reserved the ledger row, before the fence; BeforeWrite once the fence
// let it fly, inside the provider call: the connection is up and the request
// is about to be written.
type Faults struct {
	AfterReserve, BeforeWrite func(context.Context, storage.Message)
}

// Content is a rendered message for one channel, addressed: exactly one of
// Email, SMS and Webhook is set. The service fills in the sender and the ids
// that tie provider events back to the ledger.
type Content struct {
	Email   *provider.Email
	SMS     *provider.SMS
	Webhook *WebhookPost
}

// WebhookPost is a webhook step's post: the configured destination it goes
// to and the JSON body, signed when it is sent. The ledger row's
// idempotency key is its Idempotency-Key header, the same for every attempt.
type WebhookPost struct {
	Destination string
	Payload     []byte
}

// Message is one message to send.
type Message struct {
	// Ledger names the send: IdempotencyKey, ContactID, JourneyID,
	// JourneyVersion, StepID, Channel (requested), Class, and optionally
	// ConsentEventID (the consent change a transactional message answers)
	// and Subscription.
	Ledger storage.Message
	// Journey is the journey's gate settings.
	Journey policy.JourneySettings
	// Abandonment is set for sends of abandonment journeys.
	Abandonment *policy.AbandonmentContext
	// Content holds the rendered message per channel: the requested one and,
	// if the journey has one and it could be rendered, the fallback.
	Content map[journey.Channel]Content
}

// Statuses of a Result besides the ledger's own. They have the ledger
// status's type so that Result.Status has one, but they are never written
// to the ledger (model.MessageStatus.Valid is false for them).
const (
	// StatusDeferred: the gate said not yet; ask again at DeferUntil.
	StatusDeferred model.MessageStatus = "deferred"
	// StatusRetry: the provider did not take it (throttled, down, or the
	// request never left); ask again after a backoff no shorter than
	// RetryAfter.
	StatusRetry model.MessageStatus = "retry"
)

// Result is what happened to a message: ids and codes only, never an
// address or a provider's words, since it goes into workflow history.
type Result struct {
	MessageID string `json:"message_id,omitempty"`
	// Status is a ledger status (sent, skipped, failed, unknown...),
	// StatusDeferred or StatusRetry.
	Status model.MessageStatus `json:"status"`
	// Reason is a code: a gate reason, a provider code (twilio:21211), ...
	Reason string `json:"reason,omitempty"`
	// Channel is the channel the message went (or would go) out on: the
	// fallback channel when the gate chose it.
	Channel           journey.Channel `json:"channel,omitempty"`
	Provider          string          `json:"provider,omitempty"`
	ProviderMessageID string          `json:"provider_message_id,omitempty"`
	DeferUntil        time.Time       `json:"defer_until,omitempty"`
	// RetryAfter is the provider's own floor for the next attempt.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// DecisionID is the gate decision behind this result (0 if none was taken).
	DecisionID int64 `json:"decision_id,omitempty"`
	// Unsettled is set when the provider answered but the ledger could not
	// be written (the database was unreachable): the caller must record it
	// with Settle, retrying until the database is back.
	Unsettled *Settlement `json:"unsettled,omitempty"`
}

// Outcome is the one-line summary shown in a journey's steps taken.
func (r Result) Outcome() string {
	out := string(r.Status)
	if r.Status == StatusDeferred && !r.DeferUntil.IsZero() {
		out += " until " + r.DeferUntil.UTC().Format(time.RFC3339)
	}
	if r.Reason != "" {
		out += ": " + r.Reason
	}
	return out
}

// Settlement is a provider answer still to be written to the ledger.
type Settlement struct {
	MessageID         string              `json:"message_id"`
	Channel           journey.Channel     `json:"channel"`
	Status            model.MessageStatus `json:"status"` // sent, retrying or failed
	Reason            string              `json:"reason,omitempty"`
	Provider          string              `json:"provider,omitempty"`
	ProviderMessageID string              `json:"provider_message_id,omitempty"`
	At                time.Time           `json:"at,omitempty"`
}

// FlightPendingError says the key's last attempt is in flight and may still
// write its request until Until: ask again after that.
type FlightPendingError struct {
	MessageID string
	Until     time.Time
}

func (e *FlightPendingError) Error() string {
	return fmt.Sprintf("message %s: an earlier attempt may still be writing its request until %s",
		e.MessageID, e.Until.UTC().Format(time.RFC3339Nano))
}

// AmbiguousError says the request was written and no answer came back. The
// ledger row stays in flight; the next attempt finds out what happened.
type AmbiguousError struct {
	MessageID string
	Until     time.Time // the flight deadline
	Err       error
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("message %s: request written, no answer: %v", e.MessageID, e.Err)
}

func (e *AmbiguousError) Unwrap() error { return e.Err }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) window() time.Duration {
	if s.FlightWindow > 0 {
		return s.FlightWindow
	}
	return DefaultFlightWindow
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ProviderName is the provider recorded on ledger rows for ch.
func (s *Service) ProviderName(ch journey.Channel) string {
	switch {
	case ch == journey.ChannelEmail && s.Email != nil:
		return s.Email.Name()
	case ch == journey.ChannelSMS && s.SMS != nil:
		return s.SMS.Name()
	case ch == journey.ChannelWebhook:
		return webhookProvider
	}
	return "unknown"
}

// Send decides, delivers and settles msg. An error means nothing is known
// to have reached the provider that the ledger does not show, and the call
// may be repeated with the same idempotency key: a *FlightPendingError or
// *AmbiguousError says when; any other error is a passing failure (the
// database, say).
func (s *Service) Send(ctx context.Context, msg Message) (Result, error) {
	msg.Ledger.Provider = s.ProviderName(msg.Ledger.Channel)
	for reconciled := false; ; reconciled = true {
		gate, err := s.decide(ctx, msg)
		if err != nil {
			return Result{}, err
		}
		switch {
		case gate.Decided && gate.Decision.Outcome == policy.OutcomeDefer:
			return Result{
				Status:     StatusDeferred,
				Reason:     strings.Join(gate.Decision.ReasonCodes(), ","),
				Channel:    gate.Decision.Channel,
				DeferUntil: gate.Decision.Until,
				DecisionID: gate.DecisionID,
			}, nil
		case gate.Claim == storage.ClaimInFlight && reconciled:
			// Another attempt flew it after the read-back: its own answer settles it.
			return Result{}, &FlightPendingError{MessageID: gate.Message.ID, Until: time.Now().Add(s.window() + flightSkew)}
		case gate.Claim == storage.ClaimInFlight:
			res, again, err := s.reconcile(ctx, msg, gate.Message)
			if err != nil || !again {
				return res, err
			}
			continue // the provider has nothing: decide and send again
		case !gate.Send():
			metrics.RecordMessage(gate.Message.Channel, gate.Message.Status)
			return resultOf(gate.Message), nil
		}
		slot, wait, err := s.rateSlot(ctx, gate)
		if err != nil || wait != nil {
			return s.withDecision(deref(wait), gate), err
		}
		return s.deliver(ctx, msg, gate, slot)
	}
}

// decide puts msg through the send gate.
func (s *Service) decide(ctx context.Context, msg Message) (storage.GateResult, error) {
	settings := s.Policy
	now := s.now()
	in := storage.GateInput{
		Message: msg.Ledger,
		Providers: map[journey.Channel]string{
			journey.ChannelEmail: s.ProviderName(journey.ChannelEmail),
			journey.ChannelSMS:   s.ProviderName(journey.ChannelSMS),
		},
		Now:      now,
		Lookback: policy.Lookback(settings, msg.Journey),
	}
	if msg.Abandonment != nil {
		in.AbandonmentEventID = msg.Abandonment.EventID
	}
	req := policy.Request{
		Channel:   msg.Ledger.Channel,
		Class:     journey.MessageClass(msg.Ledger.Class),
		Journey:   msg.Journey,
		JourneyID: msg.Ledger.JourneyID,
		Now:       now,
	}
	started := time.Now()
	gate, err := s.Store.Gate(ctx, in, func(st storage.GateState) policy.Decision {
		// Pure: a copy of the request per call (the gate may call it twice).
		r := req
		r.Contact = st.Contact
		if msg.Abandonment != nil {
			ab := *msg.Abandonment
			ab.SMSAlreadySent = st.AbandonmentSMSSent
			r.Abandonment = &ab
		}
		return policy.Decide(settings, r)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.GateResult{Decided: false, Claim: storage.ClaimDone,
			Message: storage.Message{Status: model.MessageSkipped, StatusReason: "contact_not_found"}}, nil
	}
	if err != nil {
		return storage.GateResult{}, err
	}
	metrics.ObserveGate(time.Since(started))
	if gate.Decided {
		metrics.RecordDecision(msg.Ledger.Channel, journey.MessageClass(msg.Ledger.Class), gate.Decision)
		s.logger().Info("send gate", "contact_id", msg.Ledger.ContactID, "journey_id", msg.Ledger.JourneyID,
			"step_id", msg.Ledger.StepID, "outcome", gate.Decision.Outcome, "channel", gate.Decision.Channel,
			"reasons", gate.Decision.ReasonCodes(), "decision_id", gate.DecisionID)
	}
	return gate, nil
}

// deliver flies a reserved row: the fence, the provider call, the ledger.
func (s *Service) deliver(ctx context.Context, msg Message, gate storage.GateResult, slot *rateSlot) (Result, error) {
	reserved := gate.Message
	if s.Faults != nil && s.Faults.AfterReserve != nil {
		s.Faults.AfterReserve(ctx, reserved)
	}
	content, ok := msg.Content[reserved.Channel]
	if !ok {
		// The gate only picks a fallback the caller rendered; this is a bug.
		m, err := s.Store.FailSend(ctx, reserved.ID, model.MessageFailed, "nothing_to_deliver", "")
		if err != nil {
			return Result{}, err
		}
		return s.withDecision(resultOf(m), gate), nil
	}
	window := s.window()
	// Taken before the fence's transaction starts, so this deadline ends
	// before the one the fence stores (which counts from its commit).
	deadline := time.Now().Add(window)
	callCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	// The fence runs inside the provider call, once the connection to the
	// provider is up and right before the request is written (see
	// provider.Fence): a worker killed before it leaves the row reserved,
	// to be sent by the retry, and connecting is not part of the window in
	// which a kill leaves a row in flight that no request left for.
	flying := reserved
	fence := provider.NewFence(func() error {
		if slot != nil && !slot.limit.Usable(slot.at, s.now()) {
			// Connecting took the send past its slot's window: begin it
			// in a window of its own, not in the next one's count.
			return errSlotMissed
		}
		// The activity's context, not the call's: a transaction cut by the
		// call's deadline might commit without our knowing.
		m, o, err := s.Store.BeginFlight(ctx, reserved.ID, window+flightSkew)
		if err != nil {
			return err
		}
		flying = m
		if o != storage.FlightGo {
			return errFenced
		}
		if s.Faults != nil && s.Faults.BeforeWrite != nil {
			s.Faults.BeforeWrite(ctx, m)
		}
		if callCtx.Err() != nil {
			// Paused past the deadline (a GC pause, a stalled machine): an
			// opt-out may already have stopped waiting for this send.
			return errWindowPassed
		}
		if slot != nil && !slot.limit.Usable(slot.at, s.now()) {
			// Paused past the slot's window: written now, the request
			// would count in a window that did not give it a slot.
			return errSlotPassed
		}
		return nil
	})
	pres, err := s.call(provider.WithFence(callCtx, fence), reserved, content)
	cancel()

	var stopped *provider.FenceError
	switch {
	case !fence.Ran() && err == nil:
		// A sender that ignores the fence. It sent: record that.
		s.logger().Error("provider sent without running the fence", "message_id", reserved.ID, "provider", reserved.Provider)
	case !errors.As(err, &stopped):
		// Answered, written and unanswered, or never connected (the
		// classifier sees that the fence never ran: retryable; the row is
		// still reserved): settle says which.
	case errors.Is(err, errFenced):
		metrics.RecordMessage(flying.Channel, flying.Status)
		return s.withDecision(resultOf(flying), gate), nil
	case errors.Is(err, errSlotMissed):
		// Still reserved: a new slot, and the run waits for it (or, if
		// the new one is usable already, asks again at once).
		next, wait, err := s.rateSlot(ctx, gate)
		if err == nil && wait == nil {
			wait = s.rateWait(gate.Message, next.limit, next.at)
		}
		return s.withDecision(deref(wait), gate), err
	case errors.Is(err, errSlotPassed):
		// In flight, and certainly not written: back to retrying, with a
		// new slot to wait for.
		st := Settlement{MessageID: reserved.ID, Channel: reserved.Channel, Status: model.MessageRetrying, Reason: "rate_slot_passed"}
		if _, err := s.settleNotWritten(ctx, st, gate); err != nil {
			return Result{}, err
		}
		next, wait, err := s.rateSlot(ctx, gate)
		if err == nil && wait == nil {
			wait = s.rateWait(gate.Message, next.limit, next.at)
		}
		return s.withDecision(deref(wait), gate), err
	case errors.Is(err, errWindowPassed):
		// In flight, and certainly not written: back to retrying, so the
		// next attempt decides again.
		st := Settlement{MessageID: reserved.ID, Channel: reserved.Channel, Status: model.MessageRetrying, Reason: "flight_window_passed"}
		return s.settleNotWritten(ctx, st, gate)
	default:
		// The fence could not reach the database (its only other way to
		// refuse). If BeginFlight committed
		// unseen, the row is in flight and the retry reconciles it.
		return Result{}, stopped.Err
	}
	return s.settle(ctx, msg, flying, gate, pres, err)
}

// Errors the fence stops a request with.
var (
	errFenced       = errors.New("consent changed since the decision")
	errWindowPassed = errors.New("flight window passed before the request was written")
	errSlotMissed   = errors.New("the rate limit slot's window passed before the request was written")
	errSlotPassed   = errors.New("the rate limit slot's window passed in flight, before the request was written")
)

// settleNotWritten records st for a request that was never written.
func (s *Service) settleNotWritten(ctx context.Context, st Settlement, gate storage.GateResult) (Result, error) {
	settled, err := s.write(ctx, st, "")
	if err != nil {
		return Result{}, err
	}
	metrics.RecordMessage(settled.Channel, settled.Status)
	res := resultOf(settled)
	res.Status = StatusRetry
	return s.withDecision(res, gate), nil
}

// call makes the provider call for an in-flight row.
func (s *Service) call(ctx context.Context, m storage.Message, c Content) (provider.Result, error) {
	switch {
	case c.Email != nil && s.Email != nil:
		e := *c.Email
		e.From, e.FromName = s.Sender.EmailFrom, s.Sender.EmailFromName
		e.CustomArgs = map[string]string{
			"tutti_message_id": m.ID,
			"tutti_contact_id": m.ContactID,
			"tutti_journey_id": m.JourneyID,
			"tutti_step_id":    m.StepID,
		}
		return s.Email.SendEmail(ctx, m.ID, e)
	case c.SMS != nil && s.SMS != nil:
		return s.SMS.SendSMS(ctx, m.ID, s.sms(*c.SMS))
	case c.Webhook != nil:
		dest, ok := s.WebhookDestinations[c.Webhook.Destination]
		if !ok {
			// Checked before the gate; a destination removed since is permanent.
			return provider.Result{}, &provider.Error{Provider: webhookProvider,
				Message: "webhook destination " + c.Webhook.Destination + " is not configured"}
		}
		hook := s.Webhook
		if hook == nil {
			hook = &provider.Webhook{}
		}
		return hook.Post(ctx, dest, m.IdempotencyKey, c.Webhook.Payload)
	}
	return provider.Result{}, &provider.Error{Provider: m.Provider, Message: "no sender for channel " + string(m.Channel)}
}

func (s *Service) sms(m provider.SMS) provider.SMS {
	m.From, m.StatusCallback = s.Sender.SMSFrom, s.Sender.SMSStatusCallback
	return m
}

// settle writes the provider's answer to the ledger. If that write fails,
// the answer is returned unsettled for the caller to record.
func (s *Service) settle(ctx context.Context, msg Message, m storage.Message, gate storage.GateResult, pres provider.Result, callErr error) (Result, error) {
	var st Settlement
	retryAfter := time.Duration(0)
	switch {
	case callErr == nil:
		st = Settlement{MessageID: m.ID, Channel: m.Channel, Status: model.MessageSent,
			Provider: pres.Provider, ProviderMessageID: pres.ProviderMessageID, At: pres.AcceptedAt}
	case provider.IsAmbiguous(callErr):
		// The row stays in flight: the next attempt finds out.
		s.logger().Warn("provider call unanswered after the request was written", "message_id", m.ID,
			"provider", m.Provider, "code", reasonCode(m.Provider, callErr))
		until := time.Now().Add(s.window() + flightSkew)
		if m.FlightDeadline != nil {
			until = *m.FlightDeadline
		}
		return Result{}, &AmbiguousError{MessageID: m.ID, Until: until, Err: errors.New(reasonCode(m.Provider, callErr))}
	case provider.IsRetryable(callErr):
		st = Settlement{MessageID: m.ID, Channel: m.Channel, Status: model.MessageRetrying,
			Reason: reasonCode(m.Provider, callErr)}
		var pe *provider.Error
		if errors.As(callErr, &pe) {
			retryAfter = pe.RetryAfter
		}
	default:
		st = Settlement{MessageID: m.ID, Channel: m.Channel, Status: model.MessageFailed,
			Reason: reasonCode(m.Provider, callErr)}
	}
	settled, err := s.write(ctx, st, detailOf(callErr))
	res := Result{}
	if err != nil {
		s.logger().Error("provider answered but the ledger could not be written; the caller settles it later",
			"message_id", m.ID, "status", st.Status, "error", err)
		res = Result{MessageID: m.ID, Status: st.Status, Reason: st.Reason, Channel: m.Channel, Provider: st.Provider,
			ProviderMessageID: st.ProviderMessageID, Unsettled: &st}
	} else {
		metrics.RecordMessage(settled.Channel, settled.Status)
		res = resultOf(settled)
	}
	if st.Status == model.MessageRetrying {
		res.Status, res.RetryAfter = StatusRetry, retryAfter
	}
	if callErr != nil && !provider.IsRetryable(callErr) {
		s.afterPermanentFailure(ctx, msg, callErr)
	}
	return s.withDecision(res, gate), nil
}

// Settle records a provider answer that Send could not write (see
// Result.Unsettled). It is idempotent: a row already settled is left as is.
func (s *Service) Settle(ctx context.Context, st Settlement) error {
	m, err := s.write(ctx, st, "")
	if err == nil {
		metrics.RecordMessage(m.Channel, m.Status)
	}
	return err
}

func (s *Service) write(ctx context.Context, st Settlement, detail string) (storage.Message, error) {
	switch st.Status {
	case model.MessageSent:
		return s.Store.CompleteSend(ctx, st.MessageID, st.Provider, st.ProviderMessageID, st.At)
	case model.MessageRetrying, model.MessageFailed:
		return s.Store.FailSend(ctx, st.MessageID, st.Status, st.Reason, detail)
	}
	return storage.Message{}, fmt.Errorf("settle %s: status %q cannot be settled", st.MessageID, st.Status)
}

// reconcile finds out what became of an attempt left in flight. again
// reports that the provider certainly has nothing, the row is retrying, and
// the send should be decided again.
func (s *Service) reconcile(ctx context.Context, msg Message, m storage.Message) (res Result, again bool, err error) {
	if m.FlightDeadline != nil && time.Now().Before(*m.FlightDeadline) {
		return Result{}, false, &FlightPendingError{MessageID: m.ID, Until: *m.FlightDeadline}
	}
	// Read back from a minute before the attempt: clocks differ.
	since := m.UpdatedAt.Add(-time.Minute)
	var (
		found   bool
		pres    provider.Result
		canFind = true
	)
	switch c := msg.Content[m.Channel]; {
	case m.Channel == journey.ChannelSMS && c.SMS != nil:
		if r, ok := s.SMS.(provider.Reconciler); ok {
			pres, found, err = r.FindSMS(ctx, m.ID, s.sms(*c.SMS), since)
		} else {
			canFind = false
		}
	case m.Channel == journey.ChannelEmail:
		if r, ok := s.Email.(provider.EmailReconciler); ok {
			pres, found, err = r.FindEmail(ctx, m.ID, since)
		} else {
			canFind = false
		}
	case m.Channel == journey.ChannelWebhook:
		// Nothing to read back, and nothing needed: the receiver
		// deduplicates by the Idempotency-Key, which every attempt of
		// the post carries, so posting it again is safe.
	default:
		canFind = false
	}
	if err != nil {
		// The error goes into workflow history as the activity's failure:
		// the code only, since the provider's words may quote the number.
		s.logger().Warn("read-back failed; retried", "message_id", m.ID, "provider", m.Provider, "error", err)
		return Result{}, false, fmt.Errorf("reading back message %s from %s: %s", m.ID, m.Provider, reasonCode(m.Provider, err))
	}
	switch {
	case !canFind:
		u, err := s.Store.MarkUnknown(ctx, m.ID, storage.ReasonAmbiguousCall)
		if err != nil {
			return Result{}, false, err
		}
		metrics.RecordMessage(u.Channel, u.Status)
		s.logger().Warn("ambiguous provider call recorded as unknown; not resent", "message_id", m.ID, "provider", m.Provider)
		return resultOf(u), false, nil
	case found:
		sent, err := s.Store.CompleteSend(ctx, m.ID, pres.Provider, pres.ProviderMessageID, pres.AcceptedAt)
		if err != nil {
			return Result{}, false, err
		}
		metrics.RecordMessage(sent.Channel, sent.Status)
		return resultOf(sent), false, nil
	}
	if _, err := s.Store.ReleaseFlight(ctx, m.ID); err != nil {
		return Result{}, false, err
	}
	return Result{}, true, nil
}

// afterPermanentFailure turns what the provider told us into contact state:
// Twilio 21610 means the recipient replied STOP, an SMS opt-out.
func (s *Service) afterPermanentFailure(ctx context.Context, msg Message, err error) {
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != provider.TwilioCodeUnsubscribed {
		return
	}
	_, _, rerr := s.Store.RecordConsent(ctx, msg.Ledger.ContactID, journey.ChannelSMS, model.ConsentRevoked, provider.TwilioOptOutSource, time.Now())
	if rerr != nil {
		s.logger().Error("recording SMS opt-out from Twilio 21610", "contact_id", msg.Ledger.ContactID, "error", rerr)
	}
}

func (s *Service) withDecision(r Result, gate storage.GateResult) Result {
	if r.DecisionID == 0 {
		r.DecisionID = gate.DecisionID
	}
	return r
}

// resultOf is the Result a ledger row stands for.
func resultOf(m storage.Message) Result {
	r := Result{
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

// reasonCode is the code for a provider failure: no free text, which may
// quote the address.
func reasonCode(providerName string, err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe.ReasonCode()
	}
	return providerName + ":error"
}

// detailOf is the provider's own words, kept in Postgres only.
func detailOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
