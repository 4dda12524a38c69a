// Package policy is the send gate: one pure decision, taken before every send
// on every channel (email, sms, ads), that says whether a message may go out
// now, later, on another channel, or not at all, and why.
//
// # Why pure
//
// Decide is a function of its arguments only: no clock (the caller passes
// Request.Now), no database, no network, no Temporal. That makes every rule
// exhaustively table-testable, makes a decision reproducible from its logged
// input (support can replay "why wasn't contact X sent step Y"), and lets the
// caller wrap it in one database transaction: read the contact's consents,
// suppressions and recent sends (ContactState is shaped to be filled from that
// one read), call Decide, then record the outcome and reservation in the
// message ledger (Decision.ConsentEventID references the consent row that made
// a send lawful). Two internal caches (loaded *time.Location values, and
// what a phone number says about its region and zones) only memoize pure
// functions of their keys and do not change results.
//
// Time-zone data is embedded (import _ "time/tzdata", about 450 KB): worker
// images are often distroless/scratch without /usr/share/zoneinfo, and
// without it every LoadLocation would fail and quiet hours would silently be
// computed in the default zone. Go still prefers the system database when
// there is one, so keep worker images' tzdata reasonably current.
//
// # Rule order
//
// Each channel is evaluated in this order. Stage A rules are "is this send
// allowed at all"; every stage A rule is evaluated (so the trace lists all
// problems, not only the first) and any failure skips. Stage B rules are
// "when": they run only when stage A passed.
//
//	Stage A (skip)
//	 1. request       channel and class known, Now set            invalid_request
//	 2. suppression   active rows for the channel/journey         suppressed:<reason>
//	 3. address       an SMS needs a phone number, an email an    no_phone, no_email
//	                  email address
//	 4. consent       channel consent                             no_consent, consent_revoked,
//	                                                              consent_pending, sms_pending_double_opt_in
//	 5. subscription  the journey's subscription type             subscription_revoked, subscription_pending
//	 6. unengaged     last engagement older than N days           suppressed:unengaged
//	 7. abandonment   abandonment journeys, SMS only              abandonment_context_missing,
//	                                                              abandonment_sms_already_sent,
//	                                                              abandonment_window_expired
//	Stage B (defer, or skip with on_cap=skip)
//	 8. frequency_cap cross-channel marketing cap, rolling window cap:global
//	 9. cooldown      per-channel time since last marketing send  cooldown:<channel>
//	10. quiet_hours   recipient's local time, per channel/country quiet_hours, no_send_window
//	    then the abandonment deadline again: a deferral past it    abandonment_window_expired
//	Fallback (only when the primary was skipped in stage A)
//	11. fallback      evaluate the fallback channel with rules 1-10
//
// A webhook step's post (channel webhook) is evaluated with rules 1 and 2
// only: it goes to the workspace's own systems, not to the contact, so the
// suppressions apply and the rules about reaching the contact do not (see
// channelEval.webhook). Webhook posts do not count under the caps.
//
// A deferral is the earliest moment at which every stage B rule passes: each
// rule maps a candidate time to the earliest time at or after it that it
// allows, and the candidate is advanced until no rule moves it (bounded; a
// cap that frees at 23:00 local therefore lands on the next window opening).
//
// # Documented choices
//
//   - Consent is never assumed: no record, status "none" or an unknown status
//     is no_consent. The latest record (by At, then ConsentEventID) per
//     (channel, subscription) wins.
//   - Subscription types: a revoked (or pending) record for the journey's
//     subscription type blocks marketing even when the channel is granted; a
//     granted record or no record inherits the channel status (the channel must
//     still be granted). A subscription record with an empty Channel applies to
//     every channel. ConsentEventID is the channel-level record's id: the
//     channel opt-in is the legal basis for the send.
//   - Transactional messages need no marketing consent and bypass the
//     converted, in_opportunity and unengaged suppressions, frequency caps,
//     cooldowns and quiet hours (receipts and password resets are expected at
//     once; quiet-hour rules govern marketing). They still respect hard blocks:
//     do_not_contact, hard_bounce and spam_complaint suppressions, and a
//     revoked channel consent on sms (a STOP must be honoured for every SMS,
//     carriers require it) and on ads (there is no transactional advertising).
//     A revoked email consent is a marketing unsubscribe and does not block
//     transactional email. When a bypass actually mattered, the allow decision
//     carries a transactional_bypass reason listing what was bypassed.
//   - Suppression rows with an unknown reason block every class (code
//     suppressed:other): never guess that a block is soft.
//   - Unengaged: the contact is unengaged when the later of LastEngagedAt and
//     CreatedAt is more than N days (N*24h) before Now; with neither known the
//     rule passes (no data is not disengagement). Journeys can override N, and
//     0 disables the rule (winback journeys target exactly those contacts).
//   - Caps count marketing sends (a SentMessage with an empty Class counts as
//     marketing) on every channel. The window is half-open (Now-Window, Now]:
//     a send exactly Window ago no longer counts. Cooldowns end exactly at
//     last send + cooldown. Callers must include reserved, not yet sent
//     messages in RecentSends.
//   - Quiet hours are evaluated in the recipient's zone (ResolveLocation) with
//     the rule of the contact's country (ContactState.Country, else the phone
//     number's region), else the channel default. A window is [Start, End) in
//     local wall-clock time on its days. Email and ads have no quiet hours by
//     default. Country rules are data (DefaultSettings) and are conservative
//     practice, not legal advice; public holidays and US state rules are not
//     modelled.
//   - Sends in quiet hours are deferred to the next window opening, never
//     dropped, except on abandonment journeys when the deferral would pass the
//     abandonment deadline.
//   - Fallback is used only when the primary channel is blocked for this
//     contact (consent, subscription, suppression, missing phone): caps,
//     cooldowns and quiet hours are temporary, and switching channel to dodge
//     them would defeat them (the global cap is cross-channel anyway). The
//     abandonment rules do not trigger fallback either (an email after an
//     already-sent or expired abandonment SMS is a separate journey step). The
//     fallback channel must pass the whole gate itself; there is no chaining.
package policy

import (
	// Embed the IANA time-zone database: see the package comment.
	_ "time/tzdata"
)
