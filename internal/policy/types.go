package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// ConsentRecord is one current consent row (the consents table, or a
// subscription-type preference).
type ConsentRecord struct {
	// Channel the record is for. For subscription records, empty means every channel.
	Channel journey.Channel `json:"channel,omitempty"`
	// Subscription is the subscription type (newsletter, product, promotions...);
	// empty for the channel-level record.
	Subscription   string              `json:"subscription,omitempty"`
	Status         model.ConsentStatus `json:"status"`
	ConsentEventID int64               `json:"consent_event_id,omitempty"`
	At             time.Time           `json:"at"`
}

// Suppression is one suppression row.
type Suppression struct {
	// ID is optional; it is quoted in the decision's details.
	ID     string                  `json:"id,omitempty"`
	Reason model.SuppressionReason `json:"reason"`
	// JourneyID scopes the row to one journey; empty means global.
	JourneyID string `json:"journey_id,omitempty"`
	// Channel limits the row to one channel; empty means all channels.
	Channel journey.Channel `json:"channel,omitempty"`
	// ExpiresAt ends the suppression (exclusive); zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// SentMessage is one recent send (or reservation) to the contact.
type SentMessage struct {
	Channel journey.Channel `json:"channel"`
	At      time.Time       `json:"at"`
	// Class of the message; empty counts as marketing.
	Class journey.MessageClass `json:"class,omitempty"`
}

// ContactState is everything the gate knows about the contact, readable in
// one query: the contact row, its current consents, its suppressions and its
// sends within the longest cap window / cooldown.
type ContactState struct {
	// TimeZone is the contact's IANA zone, if known ("Europe/Paris").
	TimeZone string `json:"time_zone,omitempty"`
	// Phone in E.164 ("+33612345678").
	Phone string `json:"phone,omitempty"`
	// NoEmailAddress: the contact has no email address, so email cannot
	// reach them (a fallback channel may). The zero value means it has one.
	NoEmailAddress bool `json:"no_email_address,omitempty"`
	// Country is the contact's ISO 3166-1 alpha-2 country if known; it picks
	// the quiet-hours rule. Empty: the phone number's region.
	Country      string          `json:"country,omitempty"`
	Consents     []ConsentRecord `json:"consents,omitempty"`
	Suppressions []Suppression   `json:"suppressions,omitempty"`
	// RecentSends must cover at least the longest cap window and cooldown, and
	// include reserved messages that are not sent yet.
	RecentSends []SentMessage `json:"recent_sends,omitempty"`
	// LastEngagedAt is the last open, click, reply or site visit; zero if none.
	LastEngagedAt time.Time `json:"last_engaged_at,omitzero"`
	// CreatedAt starts the engagement clock for contacts who never engaged.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// AbandonmentContext describes the abandonment event an abandonment journey
// is running for.
type AbandonmentContext struct {
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
	// SMSAlreadySent: an SMS was already sent (or reserved) for EventID.
	SMSAlreadySent bool `json:"sms_already_sent"`
}

// Request is one send to decide.
type Request struct {
	Contact ContactState    `json:"contact"`
	Channel journey.Channel `json:"channel"`
	// Class of the message; empty means marketing (as in journey.Spec).
	Class       journey.MessageClass `json:"class,omitempty"`
	Journey     JourneySettings      `json:"journey"`
	JourneyID   string               `json:"journey_id,omitempty"`
	Abandonment *AbandonmentContext  `json:"abandonment,omitempty"`
	Now         time.Time            `json:"now"`
}

// Outcome is what the caller does with the send.
type Outcome string

const (
	// OutcomeAllow: send now on Decision.Channel.
	OutcomeAllow Outcome = "allow"
	// OutcomeDefer: ask again at Decision.Until (Channel says which channel
	// would be used; it is the fallback when the fallback was deferred).
	OutcomeDefer Outcome = "defer"
	// OutcomeSkip: do not send this step.
	OutcomeSkip Outcome = "skip"
	// OutcomeFallback: the primary channel is blocked; send now on
	// Decision.Channel, the fallback channel, which passed the gate.
	OutcomeFallback Outcome = "fallback"
)

// Reason codes: stable machine strings, usable as metrics labels.
const (
	CodeInvalidRequest            = "invalid_request"
	CodeNoPhone                   = "no_phone"
	CodeNoEmail                   = "no_email"
	CodeNoConsent                 = "no_consent"
	CodeConsentRevoked            = "consent_revoked"
	CodeConsentPending            = "consent_pending"
	CodeSMSPendingDoubleOptIn     = "sms_pending_double_opt_in"
	CodeSubscriptionRevoked       = "subscription_revoked"
	CodeSubscriptionPending       = "subscription_pending"
	CodeSuppressedConverted       = "suppressed:converted"
	CodeSuppressedInOpportunity   = "suppressed:in_opportunity"
	CodeSuppressedDoNotContact    = "suppressed:do_not_contact"
	CodeSuppressedHardBounce      = "suppressed:hard_bounce"
	CodeSuppressedSpamComplaint   = "suppressed:spam_complaint"
	CodeSuppressedUnengaged       = "suppressed:unengaged"
	CodeSuppressedOther           = "suppressed:other"
	CodeAbandonmentMissing        = "abandonment_context_missing"
	CodeAbandonmentSMSAlreadySent = "abandonment_sms_already_sent"
	CodeAbandonmentWindowExpired  = "abandonment_window_expired"
	CodeCapGlobal                 = "cap:global"
	CodeCooldownEmail             = "cooldown:email"
	CodeCooldownSMS               = "cooldown:sms"
	CodeCooldownAds               = "cooldown:ads"
	CodeQuietHours                = "quiet_hours"
	CodeNoSendWindow              = "no_send_window"
	CodeTransactionalBypass       = "transactional_bypass"
)

// SuppressedCode is the reason code for a suppression reason
// ("suppressed:hard_bounce"); unknown reasons map to "suppressed:other".
func SuppressedCode(r model.SuppressionReason) string {
	if !r.Valid() {
		return CodeSuppressedOther
	}
	return "suppressed:" + string(r)
}

// CooldownCode is the reason code for a channel's cooldown ("cooldown:sms").
func CooldownCode(ch journey.Channel) string { return "cooldown:" + string(ch) }

// Rule names used in Check.Rule.
const (
	RuleRequest      = "request"
	RuleSuppression  = "suppression"
	RuleAddress      = "address"
	RuleConsent      = "consent"
	RuleSubscription = "subscription"
	RuleUnengaged    = "unengaged"
	RuleAbandonment  = "abandonment"
	RuleFrequencyCap = "frequency_cap"
	RuleCooldown     = "cooldown"
	RuleQuietHours   = "quiet_hours"
	RuleFallback     = "fallback"
)

// Reason explains an outcome.
type Reason struct {
	Code    string          `json:"code"`
	Channel journey.Channel `json:"channel,omitempty"`
	Detail  string          `json:"detail"`
}

// Check is one rule as evaluated, passed or not: the trace support reads.
type Check struct {
	Channel journey.Channel `json:"channel,omitempty"`
	Rule    string          `json:"rule"`
	Passed  bool            `json:"passed"`
	Detail  string          `json:"detail"`
}

// Decision is the gate's answer.
type Decision struct {
	Outcome Outcome         `json:"outcome"`
	Channel journey.Channel `json:"channel"`
	// Until is set for OutcomeDefer.
	Until time.Time `json:"until,omitzero"`
	// Reasons explain a defer, skip or fallback (the primary's blocking
	// reasons first), or a transactional bypass on an allow.
	Reasons []Reason `json:"reasons,omitempty"`
	// Checks is every rule evaluated, in order, per channel.
	Checks []Check `json:"checks"`
	// ConsentEventID is the channel consent record that allowed the send; set
	// only when Allowed() (0 otherwise, and for a transactional send without a
	// granted record). Store 0 as NULL in messages.consent_event_id.
	ConsentEventID int64 `json:"consent_event_id,omitempty"`
}

// Allowed reports whether the message may be sent now, on d.Channel
// (OutcomeAllow or OutcomeFallback).
func (d Decision) Allowed() bool {
	return d.Outcome == OutcomeAllow || d.Outcome == OutcomeFallback
}

// ReasonCodes lists the reason codes in order (for metrics and logs).
func (d Decision) ReasonCodes() []string {
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return codes
}

// Explain renders the decision and its trace for humans (support, logs).
func (d Decision) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s", d.Outcome, d.Channel)
	if !d.Until.IsZero() {
		fmt.Fprintf(&b, " until %s", d.Until.UTC().Format(time.RFC3339))
	}
	if d.ConsentEventID != 0 {
		fmt.Fprintf(&b, " (consent event %d)", d.ConsentEventID)
	}
	b.WriteString("\n")
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "  reason %s [%s]: %s\n", r.Code, r.Channel, r.Detail)
	}
	for _, c := range d.Checks {
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s/%s: %s\n", mark, c.Channel, c.Rule, c.Detail)
	}
	return b.String()
}
