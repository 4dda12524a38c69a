package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

// maxSettleRounds bounds the deferral loop (each round applies every stage B
// rule once). With the current rules two rounds settle; the bound only
// guards against a rule set that never agrees.
const maxSettleRounds = 16

// Decide is the send gate. See the package comment for the rule order and
// the documented choices. It never panics on bad input: an invalid request is
// a skip with invalid_request; invalid settings degrade to "rule disabled"
// or the UTC zone (validate them once with ValidateSettings).
func Decide(s Settings, r Request) Decision {
	g := &gate{s: s, r: r, class: r.Class}
	if g.class == "" {
		g.class = journey.ClassMarketing
	}
	primary := g.evaluate(r.Channel)
	d := Decision{
		Outcome:        primary.outcome,
		Channel:        r.Channel,
		Until:          primary.until,
		Reasons:        primary.reasons,
		Checks:         primary.checks,
		ConsentEventID: primary.consentID,
	}
	fb := r.Journey.FallbackChannel
	if primary.outcome != OutcomeSkip || fb == "" {
		return d
	}
	switch {
	case !primary.fallbackOK:
		var uncovered []string
		for _, c := range codes(primary.reasons) {
			if !fallbackCovers(c) {
				uncovered = append(uncovered, c)
			}
		}
		d.Checks = append(d.Checks, Check{Channel: r.Channel, Rule: RuleFallback, Passed: false,
			Detail: fmt.Sprintf("fallback to %s not used: %s is blocked by %s, which fallback does not cover (only consent, subscription, suppression and a missing phone do)",
				fb, r.Channel, strings.Join(uncovered, ", "))})
		return d
	case fb == r.Channel || !validChannel(fb):
		d.Checks = append(d.Checks, Check{Channel: r.Channel, Rule: RuleFallback, Passed: false,
			Detail: fmt.Sprintf("fallback channel %q is invalid for primary %q", fb, r.Channel)})
		return d
	}
	d.Checks = append(d.Checks, Check{Channel: r.Channel, Rule: RuleFallback, Passed: true,
		Detail: fmt.Sprintf("%s blocked (%s); evaluating fallback %s", r.Channel, strings.Join(codes(primary.reasons), ", "), fb)})
	second := g.evaluate(fb)
	d.Checks = append(d.Checks, second.checks...)
	d.Reasons = append(slices.Clip(d.Reasons), second.reasons...)
	switch second.outcome {
	case OutcomeAllow:
		d.Outcome, d.Channel, d.ConsentEventID = OutcomeFallback, fb, second.consentID
	case OutcomeDefer:
		d.Outcome, d.Channel, d.Until, d.ConsentEventID = OutcomeDefer, fb, second.until, 0
	default: // both channels skipped: report both
		d.ConsentEventID = 0
	}
	return d
}

func codes(rs []Reason) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if !slices.Contains(out, r.Code) {
			out = append(out, r.Code)
		}
	}
	return out
}

// gate holds one Decide call; the phone is parsed at most once.
type gate struct {
	s      Settings
	r      Request
	class  journey.MessageClass
	phone  phoneInfo
	parsed bool
}

func (g *gate) phoneInfo() phoneInfo {
	if !g.parsed {
		g.phone, g.parsed = cachedPhone(g.r.Contact.Phone, g.s.DefaultRegion), true
	}
	return g.phone
}

// result is one channel's evaluation.
type result struct {
	outcome    Outcome
	until      time.Time
	reasons    []Reason
	checks     []Check
	consentID  int64
	fallbackOK bool // every blocking reason is one fallback covers
}

type channelEval struct {
	*gate
	ch       journey.Channel
	now      time.Time
	res      result
	bypassed []string // transactional: codes that would have blocked marketing
}

func (e *channelEval) check(rule string, passed bool, format string, args ...any) {
	e.res.checks = append(e.res.checks, Check{Channel: e.ch, Rule: rule, Passed: passed, Detail: fmt.Sprintf(format, args...)})
}

// block records a blocking reason; reasons with the same code are merged so
// each code appears once per channel.
func (e *channelEval) block(code, detail string) {
	for i := range e.res.reasons {
		if e.res.reasons[i].Code == code && e.res.reasons[i].Channel == e.ch {
			e.res.reasons[i].Detail += "; " + detail
			return
		}
	}
	e.res.reasons = append(e.res.reasons, Reason{Code: code, Channel: e.ch, Detail: detail})
}

func (e *channelEval) bypass(code string) {
	if !slices.Contains(e.bypassed, code) {
		e.bypassed = append(e.bypassed, code)
	}
}

func (e *channelEval) transactional() bool { return e.class == journey.ClassTransactional }

// failMarketing records that rule failed for detail: a marketing message is
// blocked with code; a transactional one bypasses the rule, and its check
// passes, noted as bypassed (detail).
func (e *channelEval) failMarketing(rule, code, detail, bypassed string) {
	if e.transactional() {
		e.bypass(code)
		e.check(rule, true, "%s (%s)", bypassed, detail)
		return
	}
	e.check(rule, false, "%s", detail)
	e.block(code, detail)
}

func (g *gate) evaluate(ch journey.Channel) result {
	e := &channelEval{gate: g, ch: ch, now: g.r.Now}
	if !e.request() {
		e.res.outcome = OutcomeSkip
		return e.res
	}
	if ch == journey.ChannelWebhook {
		return e.webhook()
	}
	e.suppression()
	e.address()
	e.consent()
	e.subscription()
	e.unengaged()
	abandonmentOK := e.abandonment()
	if len(e.res.reasons) > 0 {
		e.res.outcome = OutcomeSkip
		e.res.consentID = 0
		e.res.fallbackOK = abandonmentOK
		for _, r := range e.res.reasons {
			if !fallbackCovers(r.Code) {
				e.res.fallbackOK = false
			}
		}
		return e.res
	}
	e.timing()
	if e.res.outcome != OutcomeAllow {
		e.res.consentID = 0 // only a send carries its consent
	}
	if e.res.outcome == OutcomeAllow && len(e.bypassed) > 0 {
		e.res.reasons = append(e.res.reasons, Reason{Code: CodeTransactionalBypass, Channel: ch,
			Detail: "transactional message; marketing rules that would have held it were not applied: " + strings.Join(e.bypassed, ", ")})
	}
	return e.res
}

// webhook evaluates a webhook step's post. It tells the workspace's own
// systems about the contact (a sales alert, a CRM task, a direct-mail
// order); it is not a message to the contact's address. So the
// suppressions that say "leave this person alone" apply (do_not_contact,
// converted, in_opportunity... global or for the journey, for every
// channel: a suppression of one channel, a bounced email address, does not
// apply), while the rules about reaching the contact on a channel do not:
// no channel consent, address, subscription, unengaged rule, frequency
// cap, cooldown or quiet hours (a sales alert at 23:00 is read in the
// morning; holding it would only make it late). Webhook posts are not
// counted under the caps either (marketingSends).
func (e *channelEval) webhook() result {
	e.suppression()
	e.check(RuleConsent, true, "webhook: a post to the workspace's destination, not to the contact: channel consent, address, subscription and the unengaged rule do not apply")
	if len(e.res.reasons) > 0 {
		e.res.outcome = OutcomeSkip
		return e.res
	}
	e.check(RuleFrequencyCap, true, "webhook: caps, cooldowns and quiet hours do not apply")
	e.res.outcome = OutcomeAllow
	return e.res
}

func fallbackCovers(code string) bool {
	switch code {
	case CodeNoPhone, CodeNoEmail, CodeNoConsent, CodeConsentRevoked, CodeConsentPending, CodeSMSPendingDoubleOptIn,
		CodeSubscriptionRevoked, CodeSubscriptionPending:
		return true
	}
	return strings.HasPrefix(code, "suppressed:")
}

// 1. request
func (e *channelEval) request() bool {
	var bad []string
	if !validChannel(e.ch) && e.ch != journey.ChannelWebhook {
		bad = append(bad, fmt.Sprintf("unknown channel %q", e.ch))
	}
	if e.class != journey.ClassMarketing && e.class != journey.ClassTransactional {
		bad = append(bad, fmt.Sprintf("unknown message class %q", e.class))
	}
	if e.now.IsZero() {
		bad = append(bad, "Now is not set")
	}
	if len(bad) > 0 {
		detail := strings.Join(bad, "; ")
		e.check(RuleRequest, false, "%s", detail)
		e.block(CodeInvalidRequest, detail)
		return false
	}
	e.check(RuleRequest, true, "%s %s message", e.class, e.ch)
	return true
}

// 2. suppression
func (e *channelEval) suppression() {
	var blocking, bypassed, inactive []string
	for _, sp := range e.r.Contact.Suppressions {
		if sp.Channel != "" && sp.Channel != e.ch {
			continue
		}
		if sp.JourneyID != "" && sp.JourneyID != e.r.JourneyID {
			continue
		}
		desc := describeSuppression(sp)
		if !sp.ExpiresAt.IsZero() && !e.now.Before(sp.ExpiresAt) {
			inactive = append(inactive, desc+" expired")
			continue
		}
		if e.transactional() && !sp.Reason.Hard() {
			bypassed = append(bypassed, desc)
			e.bypass(SuppressedCode(sp.Reason))
			continue
		}
		blocking = append(blocking, desc)
		detail := desc
		if e.transactional() {
			detail += " (blocks transactional messages too)"
		}
		e.block(SuppressedCode(sp.Reason), detail)
	}
	var parts []string
	if len(blocking) > 0 {
		parts = append(parts, "active: "+strings.Join(blocking, "; "))
	}
	if len(bypassed) > 0 {
		parts = append(parts, "bypassed for transactional: "+strings.Join(bypassed, "; "))
	}
	if len(inactive) > 0 {
		parts = append(parts, "ignored: "+strings.Join(inactive, "; "))
	}
	if len(parts) == 0 {
		parts = append(parts, "no suppression applies")
	}
	e.check(RuleSuppression, len(blocking) == 0, "%s", strings.Join(parts, "; "))
}

func describeSuppression(sp Suppression) string {
	var b strings.Builder
	b.WriteString(string(sp.Reason))
	if sp.ID != "" {
		fmt.Fprintf(&b, " #%s", sp.ID)
	}
	b.WriteString(" (")
	if sp.JourneyID == "" {
		b.WriteString("global")
	} else {
		fmt.Fprintf(&b, "journey %s", sp.JourneyID)
	}
	if sp.Channel == "" {
		b.WriteString(", all channels")
	} else {
		fmt.Fprintf(&b, ", %s", sp.Channel)
	}
	if !sp.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, ", until %s", sp.ExpiresAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(")")
	return b.String()
}

// 3. address
func (e *channelEval) address() {
	if e.ch == journey.ChannelEmail {
		if e.r.Contact.NoEmailAddress {
			e.check(RuleAddress, false, "the contact has no email address")
			e.block(CodeNoEmail, "the contact has no email address")
			return
		}
		e.check(RuleAddress, true, "email address present")
		return
	}
	if e.ch != journey.ChannelSMS {
		return
	}
	if strings.TrimSpace(e.r.Contact.Phone) == "" {
		e.check(RuleAddress, false, "the contact has no phone number")
		e.block(CodeNoPhone, "the contact has no phone number")
		return
	}
	e.check(RuleAddress, true, "phone number present")
}

// latestConsent returns the current record for (channel, subscription): the
// latest by At, then by ConsentEventID. Subscription records with an empty
// channel apply to every channel.
func (e *channelEval) latestConsent(subscription string) (ConsentRecord, bool) {
	var best ConsentRecord
	found := false
	for _, c := range e.r.Contact.Consents {
		if c.Subscription != subscription {
			continue
		}
		if c.Channel != e.ch && !(subscription != "" && c.Channel == "") {
			continue
		}
		if !found || c.At.After(best.At) || (c.At.Equal(best.At) && c.ConsentEventID > best.ConsentEventID) {
			best, found = c, true
		}
	}
	return best, found
}

func describeConsent(c ConsentRecord) string {
	return fmt.Sprintf("%s (event %d, %s)", c.Status, c.ConsentEventID, c.At.UTC().Format(time.RFC3339))
}

// 4. consent
func (e *channelEval) consent() {
	rec, ok := e.latestConsent("")
	status := model.ConsentNone
	if ok {
		status = rec.Status
	}
	if e.transactional() {
		if status == model.ConsentRevoked && (e.ch == journey.ChannelSMS || e.ch == journey.ChannelAds) {
			why := "SMS opt-out (STOP) is honoured for every SMS, transactional included"
			if e.ch == journey.ChannelAds {
				why = "ads consent revoked; there is no transactional advertising"
			}
			d := fmt.Sprintf("%s consent %s: %s", e.ch, describeConsent(rec), why)
			e.check(RuleConsent, false, "%s", d)
			e.block(CodeConsentRevoked, d)
			return
		}
		if status == model.ConsentGranted {
			e.res.consentID = rec.ConsentEventID
			e.check(RuleConsent, true, "transactional; %s consent %s", e.ch, describeConsent(rec))
			return
		}
		if code, _ := marketingConsentFailure(e.ch, status); code != "" {
			e.bypass(code)
		}
		what := "no record"
		if ok {
			what = describeConsent(rec)
		}
		e.check(RuleConsent, true, "transactional: marketing consent not required (%s consent: %s)", e.ch, what)
		return
	}
	if status == model.ConsentGranted {
		e.res.consentID = rec.ConsentEventID
		e.check(RuleConsent, true, "%s consent %s", e.ch, describeConsent(rec))
		return
	}
	code, why := marketingConsentFailure(e.ch, status)
	d := fmt.Sprintf("no %s consent record: consent is never assumed", e.ch)
	if ok {
		d = fmt.Sprintf("%s consent %s: %s", e.ch, describeConsent(rec), why)
	}
	e.check(RuleConsent, false, "%s", d)
	e.block(code, d)
}

// marketingConsentFailure maps a non-granted channel status to its code.
func marketingConsentFailure(ch journey.Channel, status model.ConsentStatus) (string, string) {
	switch status {
	case model.ConsentGranted:
		return "", ""
	case model.ConsentRevoked:
		return CodeConsentRevoked, "the contact revoked consent"
	case model.ConsentPending:
		if ch == journey.ChannelSMS {
			return CodeSMSPendingDoubleOptIn, "double opt-in pending until the contact replies YES/START"
		}
		return CodeConsentPending, "opt-in not confirmed yet"
	case model.ConsentNone, "":
		return CodeNoConsent, "no consent given"
	}
	return CodeNoConsent, fmt.Sprintf("unknown status %q is not consent", status)
}

// 5. subscription
func (e *channelEval) subscription() {
	sub := e.r.Journey.Subscription
	if sub == "" {
		return
	}
	rec, ok := e.latestConsent(sub)
	if !ok || rec.Status == model.ConsentNone || rec.Status == "" {
		e.check(RuleSubscription, true, "no %q record: inherits the %s channel consent", sub, e.ch)
		return
	}
	var code string
	switch rec.Status {
	case model.ConsentGranted:
		e.check(RuleSubscription, true, "%q %s", sub, describeConsent(rec))
		return
	case model.ConsentRevoked:
		code = CodeSubscriptionRevoked
	case model.ConsentPending:
		code = CodeSubscriptionPending
	default:
		code = CodeSubscriptionRevoked // unknown status: never assume consent
	}
	d := fmt.Sprintf("%q %s", sub, describeConsent(rec))
	e.failMarketing(RuleSubscription, code, d, "transactional: subscription preference not applied")
}

// 6. unengaged
func (e *channelEval) unengaged() {
	days := e.s.UnengagedDays
	if e.r.Journey.UnengagedDays != nil {
		days = *e.r.Journey.UnengagedDays
	}
	if days <= 0 {
		e.check(RuleUnengaged, true, "disabled")
		return
	}
	ref := e.r.Contact.LastEngagedAt
	what := "last engagement"
	if c := e.r.Contact.CreatedAt; c.After(ref) {
		ref, what = c, "creation (no later engagement)"
	}
	if ref.IsZero() {
		e.check(RuleUnengaged, true, "no engagement data; not treated as unengaged")
		return
	}
	limit := time.Duration(days) * 24 * time.Hour
	age := e.now.Sub(ref)
	if age <= limit {
		e.check(RuleUnengaged, true, "%s %s, within %d days", what, ref.UTC().Format(time.RFC3339), days)
		return
	}
	d := fmt.Sprintf("%s %s is more than %d days ago", what, ref.UTC().Format(time.RFC3339), days)
	e.failMarketing(RuleUnengaged, CodeSuppressedUnengaged, d, "transactional: bypassed")
}

func (e *channelEval) abandonmentApplies() bool {
	return e.r.Journey.Abandonment && e.ch == journey.ChannelSMS
}

func (e *channelEval) abandonmentDeadline() time.Time {
	w := e.s.AbandonmentSMSWindow
	if w <= 0 {
		w = 48 * time.Hour
	}
	return e.r.Abandonment.At.Add(w)
}

// 7. abandonment; returns false when it blocked.
func (e *channelEval) abandonment() bool {
	if !e.abandonmentApplies() {
		return true
	}
	a := e.r.Abandonment
	switch {
	case a == nil || a.EventID == "" || a.At.IsZero():
		d := "abandonment journey without the abandonment event (id and time)"
		e.check(RuleAbandonment, false, "%s", d)
		e.block(CodeAbandonmentMissing, d)
		return false
	case a.SMSAlreadySent:
		d := fmt.Sprintf("an SMS was already sent for abandonment event %s", a.EventID)
		e.check(RuleAbandonment, false, "%s", d)
		e.block(CodeAbandonmentSMSAlreadySent, d)
		return false
	case !e.now.Before(e.abandonmentDeadline()):
		d := fmt.Sprintf("abandonment event %s at %s: its SMS window ended at %s",
			a.EventID, a.At.UTC().Format(time.RFC3339), e.abandonmentDeadline().UTC().Format(time.RFC3339))
		e.check(RuleAbandonment, false, "%s", d)
		e.block(CodeAbandonmentWindowExpired, d)
		return false
	}
	e.check(RuleAbandonment, true, "first SMS for abandonment event %s, before %s",
		a.EventID, e.abandonmentDeadline().UTC().Format(time.RFC3339))
	return true
}

// constraint is one stage B rule: earliest returns the earliest instant at
// or after t that the rule allows (ok false: never).
type constraint struct {
	rule, code string
	earliest   func(t time.Time) (time.Time, bool)
	nowDetail  string // the rule's evaluation at Now
	passedNow  bool
	moved      bool
	movedFrom  time.Time
	movedTo    time.Time
	capLike    bool           // cap or cooldown: on_cap applies
	loc        *time.Location // quiet hours: details show local time
}

// 8-10. frequency cap, cooldown, quiet hours; then the abandonment deadline.
func (e *channelEval) timing() {
	cs := []*constraint{e.capConstraint(), e.cooldownConstraint(), e.quietConstraint()}

	t := e.now
	settled, never := false, (*constraint)(nil)
	for round := 0; round < maxSettleRounds && !settled && never == nil; round++ {
		settled = true
		for _, c := range cs {
			u, ok := c.earliest(t)
			if !ok {
				never = c
				break
			}
			if u.After(t) {
				if !c.moved {
					c.movedFrom = t
				}
				c.moved, c.movedTo, t, settled = true, u, u, false
			}
		}
	}

	if e.transactional() {
		for _, c := range cs {
			if !c.passedNow {
				e.bypass(c.code)
			}
			e.check(c.rule, true, "transactional: exempt (%s)", c.nowDetail)
		}
		e.res.outcome = OutcomeAllow
		return
	}

	for _, c := range cs {
		e.check(c.rule, c.passedNow && !c.moved, "%s", e.constraintDetail(c))
	}
	if never != nil || !settled {
		d := "no moment within the next week satisfies every rule"
		if never != nil {
			d = fmt.Sprintf("%s: no send window opens within %d days", never.rule, searchDays)
		}
		e.block(CodeNoSendWindow, d)
		e.res.outcome = OutcomeSkip
		return
	}

	onCap := e.r.Journey.OnCap
	capped := false
	for _, c := range cs {
		if c.capLike && !c.passedNow {
			capped = true
		}
	}
	if capped && onCap == OnCapSkip {
		for _, c := range cs {
			if !c.passedNow {
				e.block(c.code, c.nowDetail)
			}
		}
		e.block(e.capCodeForSkip(cs), fmt.Sprintf("journey on_cap=skip: skipped instead of deferring to %s", t.UTC().Format(time.RFC3339)))
		e.res.outcome = OutcomeSkip
		return
	}
	if !t.After(e.now) {
		e.res.outcome = OutcomeAllow
		return
	}
	for _, c := range cs {
		if !c.passedNow || c.moved {
			e.block(c.code, e.constraintDetail(c))
		}
	}
	if e.abandonmentApplies() && !t.Before(e.abandonmentDeadline()) {
		e.block(CodeAbandonmentWindowExpired, fmt.Sprintf("deferral to %s would pass the abandonment SMS deadline %s",
			t.UTC().Format(time.RFC3339), e.abandonmentDeadline().UTC().Format(time.RFC3339)))
		e.res.checks = append(e.res.checks, Check{Channel: e.ch, Rule: RuleAbandonment, Passed: false,
			Detail: "deferral passes the abandonment deadline"})
		e.res.outcome = OutcomeSkip
		return
	}
	e.res.outcome = OutcomeDefer
	e.res.until = t
}

// capCodeForSkip: the on_cap=skip note is merged into the first failing cap-like code.
func (e *channelEval) capCodeForSkip(cs []*constraint) string {
	for _, c := range cs {
		if c.capLike && !c.passedNow {
			return c.code
		}
	}
	return CodeCapGlobal
}

func (e *channelEval) constraintDetail(c *constraint) string {
	switch {
	case !c.moved:
		return c.nowDetail
	case c.movedFrom.Equal(e.now):
		return fmt.Sprintf("%s; allowed from %s", c.nowDetail, c.at(c.movedTo))
	default:
		return fmt.Sprintf("%s; the deferral to %s by an earlier rule is not allowed either: moved to %s",
			c.nowDetail, c.at(c.movedFrom), c.at(c.movedTo))
	}
}

// at formats an instant in UTC, and in local time for quiet hours.
func (c *constraint) at(t time.Time) string {
	if c.loc == nil {
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339), t.In(c.loc).Format("Mon 15:04 MST"))
}

// fmtDuration writes two or more whole days as "7d" and trims zero units ("16h").
func fmtDuration(d time.Duration) string {
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (e *channelEval) marketingSends() []SentMessage {
	out := make([]SentMessage, 0, len(e.r.Contact.RecentSends))
	for _, m := range e.r.Contact.RecentSends {
		// A webhook post is not a message to the contact: it takes no place under a cap.
		if m.Class != journey.ClassTransactional && m.Channel != journey.ChannelWebhook && !m.At.IsZero() {
			out = append(out, m)
		}
	}
	return out
}

// anyTime is the earliest function of a rule that allows every instant.
func anyTime(t time.Time) (time.Time, bool) { return t, true }

// notBefore is the earliest function of a rule that allows every instant
// from end on.
func notBefore(end time.Time) func(time.Time) (time.Time, bool) {
	return func(t time.Time) (time.Time, bool) {
		if t.Before(end) {
			return end, true
		}
		return t, true
	}
}

func (e *channelEval) capConstraint() *constraint {
	capSet := e.s.GlobalCap
	src := "global"
	if e.r.Journey.GlobalCap != nil {
		capSet, src = *e.r.Journey.GlobalCap, "journey"
	}
	c := &constraint{rule: RuleFrequencyCap, code: CodeCapGlobal, capLike: true, passedNow: true}
	if !capSet.enabled() {
		c.nowDetail = "no cross-channel cap"
		c.earliest = anyTime
		return c
	}
	from := e.now.Add(-capSet.Window)
	var in []time.Time
	for _, m := range e.marketingSends() {
		if m.At.After(from) {
			in = append(in, m.At)
		}
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	n := len(in)
	if n < capSet.Max {
		c.nowDetail = fmt.Sprintf("%d of %d marketing messages in the last %s (%s cap)", n, capSet.Max, fmtDuration(capSet.Window), src)
		c.earliest = anyTime
		return c
	}
	// Under the cap once the (n-Max+1) oldest counted sends have left the window.
	free := in[n-capSet.Max].Add(capSet.Window)
	c.passedNow = !e.now.Before(free)
	c.nowDetail = fmt.Sprintf("%d of %d marketing messages in the last %s (%s cap); the send at %s leaves the window at %s",
		n, capSet.Max, fmtDuration(capSet.Window), src, in[n-capSet.Max].UTC().Format(time.RFC3339), free.UTC().Format(time.RFC3339))
	c.earliest = notBefore(free)
	return c
}

func (e *channelEval) cooldownConstraint() *constraint {
	cd, src := e.s.Cooldowns[e.ch], "global"
	if v, ok := e.r.Journey.Cooldowns[e.ch]; ok {
		cd, src = v, "journey"
	}
	c := &constraint{rule: RuleCooldown, code: CooldownCode(e.ch), capLike: true, passedNow: true}
	c.earliest = anyTime
	if cd <= 0 {
		c.nowDetail = fmt.Sprintf("no %s cooldown", e.ch)
		return c
	}
	var last time.Time
	for _, m := range e.marketingSends() {
		if m.Channel == e.ch && m.At.After(last) {
			last = m.At
		}
	}
	if last.IsZero() {
		c.nowDetail = fmt.Sprintf("no recent marketing %s (%s cooldown %s)", e.ch, src, fmtDuration(cd))
		return c
	}
	end := last.Add(cd)
	c.passedNow = !e.now.Before(end)
	c.nowDetail = fmt.Sprintf("last marketing %s at %s; %s cooldown %s ends %s",
		e.ch, last.UTC().Format(time.RFC3339), src, fmtDuration(cd), end.UTC().Format(time.RFC3339))
	c.earliest = notBefore(end)
	return c
}

func (e *channelEval) quietConstraint() *constraint {
	c := &constraint{rule: RuleQuietHours, code: CodeQuietHours, passedNow: true}
	c.earliest = anyTime
	qh, ok := e.s.QuietHours[e.ch]
	if !ok {
		c.nowDetail = fmt.Sprintf("no quiet hours for %s", e.ch)
		return c
	}
	pi := e.phoneInfo()
	country, countrySrc := contactCountry(e.r.Contact, pi)
	windows, rule := qh.Default, "default rule"
	if cw, ok := qh.Countries[country]; ok && country != "" {
		windows, rule = cw, fmt.Sprintf("%s rule (country from %s)", country, countrySrc)
	}
	if len(windows) == 0 {
		c.nowDetail = fmt.Sprintf("%s for %s: no restriction", rule, e.ch)
		return c
	}
	loc, src := resolveLocation(e.r.Contact, e.s, pi)
	c.loc = loc
	if tz := strings.TrimSpace(e.r.Contact.TimeZone); tz != "" && src != SourceContact {
		src += fmt.Sprintf(", contact time zone %q invalid", tz)
	}
	c.passedNow = openAt(windows, e.now, loc)
	state := "inside"
	if !c.passedNow {
		state = "outside"
	}
	c.nowDetail = fmt.Sprintf("local time %s (zone from %s) %s %s: %s",
		localString(e.now, loc), src, state, rule, describeWindows(windows))
	c.earliest = func(t time.Time) (time.Time, bool) { return nextOpen(windows, t, loc) }
	return c
}
