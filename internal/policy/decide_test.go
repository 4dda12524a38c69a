package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/model"
)

const (
	email = journey.ChannelEmail
	sms   = journey.ChannelSMS
	ads   = journey.ChannelAds

	marketing     = journey.ClassMarketing
	transactional = journey.ClassTransactional

	day = 24 * time.Hour
)

var (
	nyLoc    = mustLocation("America/New_York")
	parisLoc = mustLocation("Europe/Paris")
	// wed is Wednesday 2025-06-11 14:00 in New York: inside every SMS window.
	wed = time.Date(2025, 6, 11, 14, 0, 0, 0, nyLoc)
	// t0 is when the base consents were given.
	t0 = time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)
)

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func ny(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, nyLoc)
}

func paris(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, parisLoc)
}

// baseRequest: a New York contact (phone 212) with every channel granted,
// engaged 3 days ago, no sends, a marketing SMS at wed.
func baseRequest() Request {
	return Request{
		Contact: ContactState{
			Phone: "+12125551234",
			Consents: []ConsentRecord{
				{Channel: email, Status: model.ConsentGranted, ConsentEventID: 11, At: t0},
				{Channel: sms, Status: model.ConsentGranted, ConsentEventID: 12, At: t0},
				{Channel: ads, Status: model.ConsentGranted, ConsentEventID: 13, At: t0},
			},
			LastEngagedAt: wed.Add(-3 * day),
			CreatedAt:     wed.AddDate(-1, 0, 0),
		},
		Channel:   sms,
		Class:     marketing,
		JourneyID: "welcome",
		Now:       wed,
	}
}

// setConsent replaces the channel-level record of ch (status "" removes it).
func setConsent(r *Request, ch journey.Channel, status model.ConsentStatus, id int64) {
	var out []ConsentRecord
	for _, c := range r.Contact.Consents {
		if c.Channel == ch && c.Subscription == "" {
			continue
		}
		out = append(out, c)
	}
	if status != "" {
		out = append(out, ConsentRecord{Channel: ch, Status: status, ConsentEventID: id, At: t0.Add(time.Hour)})
	}
	r.Contact.Consents = out
}

func sends(ch journey.Channel, times ...time.Time) []SentMessage {
	out := make([]SentMessage, len(times))
	for i, at := range times {
		out[i] = SentMessage{Channel: ch, At: at, Class: marketing}
	}
	return out
}

// capSends returns 7 marketing ads sends (ads has no cooldown) whose oldest is
// at oldest and the others spread over the following days, all before now.
func capSends(oldest, now time.Time) []SentMessage {
	times := []time.Time{oldest}
	step := now.Sub(oldest) / 7
	for i := 1; i < 7; i++ {
		times = append(times, oldest.Add(time.Duration(i)*step))
	}
	return sends(ads, times...)
}

func frContact(r *Request) {
	r.Contact.Phone = "+33612345678"
}

type decideCase struct {
	name     string
	settings func(*Settings)
	req      func(*Request)

	want        Outcome
	wantChannel journey.Channel // default: the request channel for allow/defer/skip
	wantUntil   time.Time
	wantCodes   []string // exact, in order
	wantConsent int64
	wantFailed  []string // "channel/rule" checks that must have failed
	wantDetail  string   // substring of some reason or check detail
	// noReplay disables the deferral exactness invariant (state that changes with time).
	noReplay bool
}

func runDecideCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			if tc.settings != nil {
				tc.settings(&s)
			}
			require.NoError(t, ValidateSettings(s))
			r := baseRequest()
			if tc.req != nil {
				tc.req(&r)
			}
			d := Decide(s, r)
			msg := d.Explain()

			assert.Equal(t, tc.want, d.Outcome, msg)
			wantCh := tc.wantChannel
			if wantCh == "" {
				wantCh = r.Channel
			}
			assert.Equal(t, wantCh, d.Channel, msg)
			if tc.wantCodes == nil {
				tc.wantCodes = []string{}
			}
			assert.Equal(t, tc.wantCodes, d.ReasonCodes(), msg)
			assert.Equal(t, tc.wantConsent, d.ConsentEventID, msg)
			if !tc.wantUntil.IsZero() {
				assert.True(t, tc.wantUntil.Equal(d.Until), "until %s, want %s\n%s", d.Until.UTC(), tc.wantUntil.UTC(), msg)
			}
			for _, f := range tc.wantFailed {
				assert.True(t, hasFailedCheck(d, f), "want failed check %s\n%s", f, msg)
			}
			if tc.wantDetail != "" {
				assert.Contains(t, msg, tc.wantDetail)
			}
			assertInvariants(t, s, r, d, !tc.noReplay)
		})
	}
}

func hasFailedCheck(d Decision, chRule string) bool {
	for _, c := range d.Checks {
		if string(c.Channel)+"/"+c.Rule == chRule && !c.Passed {
			return true
		}
	}
	return false
}

// assertInvariants holds for every decision.
func assertInvariants(t *testing.T, s Settings, r Request, d Decision, replay bool) {
	t.Helper()
	msg := d.Explain()
	assert.Equal(t, d.Outcome == OutcomeAllow || d.Outcome == OutcomeFallback, d.Allowed())
	require.NotEmpty(t, d.Checks, msg)
	for _, c := range d.Checks {
		assert.NotEmpty(t, c.Rule)
		assert.NotEmpty(t, c.Detail)
	}
	for _, rs := range d.Reasons {
		assert.NotEmpty(t, rs.Code)
		assert.NotEmpty(t, rs.Detail)
		assert.NotContains(t, rs.Code, " ", "codes are label-safe")
	}
	switch d.Outcome {
	case OutcomeDefer:
		assert.True(t, d.Until.After(r.Now), msg)
		assert.NotEmpty(t, d.Reasons, msg)
		assert.Zero(t, d.ConsentEventID)
	case OutcomeSkip:
		assert.True(t, d.Until.IsZero(), msg)
		assert.NotEmpty(t, d.Reasons, msg)
		assert.Zero(t, d.ConsentEventID)
	case OutcomeFallback:
		assert.True(t, d.Until.IsZero(), msg)
		assert.NotEqual(t, r.Channel, d.Channel)
		assert.NotEmpty(t, d.Reasons, msg)
	case OutcomeAllow:
		assert.True(t, d.Until.IsZero(), msg)
		assert.Equal(t, r.Channel, d.Channel)
	default:
		t.Fatalf("unknown outcome %q", d.Outcome)
	}
	switch {
	case d.Channel == journey.ChannelWebhook:
		assert.Zero(t, d.ConsentEventID, "a webhook post rests on no consent: %s", msg)
	case r.Class != transactional && d.Allowed():
		assert.NotZero(t, d.ConsentEventID, "marketing sends carry their consent: %s", msg)
	}
	// Deterministic.
	assert.Equal(t, d, Decide(s, r))
	// A deferral is exact: at Until the send is allowed, one second before it
	// is still deferred to the same instant.
	if d.Outcome == OutcomeDefer && replay {
		at := r
		at.Now = d.Until
		again := Decide(s, at)
		assert.True(t, again.Allowed(), "at Until: %s", again.Explain())
		assert.Equal(t, d.Channel, again.Channel)
		at.Now = d.Until.Add(-time.Second)
		if at.Now.After(r.Now) {
			before := Decide(s, at)
			assert.Equal(t, OutcomeDefer, before.Outcome, "one second before Until: %s", before.Explain())
			assert.True(t, d.Until.Equal(before.Until), "one second before Until: %s", before.Explain())
		}
	}
}

func TestDecideConsent(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "marketing sms granted", want: OutcomeAllow, wantConsent: 12},
		{name: "marketing email granted", req: func(r *Request) { r.Channel = email }, want: OutcomeAllow, wantConsent: 11},
		{name: "marketing ads granted", req: func(r *Request) { r.Channel = ads }, want: OutcomeAllow, wantConsent: 13},
		{name: "empty class is marketing", req: func(r *Request) { r.Class = ""; setConsent(r, sms, "", 0) },
			want: OutcomeSkip, wantCodes: []string{CodeNoConsent}},
		{name: "no sms record: never assumed", req: func(r *Request) { setConsent(r, sms, "", 0) },
			want: OutcomeSkip, wantCodes: []string{CodeNoConsent}, wantFailed: []string{"sms/consent"}, wantDetail: "never assumed"},
		{name: "status none", req: func(r *Request) { setConsent(r, sms, model.ConsentNone, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeNoConsent}},
		{name: "unknown status is not consent", req: func(r *Request) { setConsent(r, sms, "maybe", 20) },
			want: OutcomeSkip, wantCodes: []string{CodeNoConsent}, wantDetail: `unknown status "maybe"`},
		{name: "sms revoked", req: func(r *Request) { setConsent(r, sms, model.ConsentRevoked, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}},
		{name: "email revoked", req: func(r *Request) { r.Channel = email; setConsent(r, email, model.ConsentRevoked, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}},
		{name: "sms pending double opt-in", req: func(r *Request) { setConsent(r, sms, model.ConsentPending, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeSMSPendingDoubleOptIn}, wantDetail: "YES/START"},
		{name: "email pending", req: func(r *Request) { r.Channel = email; setConsent(r, email, model.ConsentPending, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeConsentPending}},
		{name: "another channel's consent does not count", req: func(r *Request) { setConsent(r, sms, "", 0); r.Channel = sms },
			want: OutcomeSkip, wantCodes: []string{CodeNoConsent}},
		{name: "latest record wins: revoked after granted", req: func(r *Request) {
			r.Contact.Consents = append(r.Contact.Consents, ConsentRecord{Channel: sms, Status: model.ConsentRevoked, ConsentEventID: 30, At: t0.Add(day)})
		}, want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}},
		{name: "latest record wins: granted again after revoked", req: func(r *Request) {
			r.Contact.Consents = append(r.Contact.Consents,
				ConsentRecord{Channel: sms, Status: model.ConsentRevoked, ConsentEventID: 30, At: t0.Add(day)},
				ConsentRecord{Channel: sms, Status: model.ConsentGranted, ConsentEventID: 31, At: t0.Add(2 * day)})
		}, want: OutcomeAllow, wantConsent: 31},
		{name: "same instant: higher event id wins", req: func(r *Request) {
			r.Contact.Consents = append(r.Contact.Consents, ConsentRecord{Channel: sms, Status: model.ConsentRevoked, ConsentEventID: 40, At: t0})
		}, want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}},
	})
}

func TestDecideSubscription(t *testing.T) {
	sub := func(ch journey.Channel, name string, st model.ConsentStatus, id int64) ConsentRecord {
		return ConsentRecord{Channel: ch, Subscription: name, Status: st, ConsentEventID: id, At: t0.Add(day)}
	}
	promo := func(r *Request) { r.Journey.Subscription = "promotions" }
	runDecideCases(t, []decideCase{
		{name: "no subscription record inherits granted channel", req: promo, want: OutcomeAllow, wantConsent: 12},
		{name: "subscription revoked blocks despite granted channel", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentRevoked, 50))
		}, want: OutcomeSkip, wantCodes: []string{CodeSubscriptionRevoked}, wantFailed: []string{"sms/subscription"}},
		{name: "subscription pending blocks", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentPending, 50))
		}, want: OutcomeSkip, wantCodes: []string{CodeSubscriptionPending}},
		{name: "subscription none inherits", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentNone, 50))
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "subscription granted does not replace a missing channel consent", req: func(r *Request) {
			promo(r)
			setConsent(r, sms, "", 0)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentGranted, 50))
		}, want: OutcomeSkip, wantCodes: []string{CodeNoConsent}},
		{name: "subscription granted: consent id is the channel record", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentGranted, 50))
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "all-channel subscription revocation applies to sms", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub("", "promotions", model.ConsentRevoked, 50))
		}, want: OutcomeSkip, wantCodes: []string{CodeSubscriptionRevoked}},
		{name: "email-only subscription revocation does not apply to sms", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(email, "promotions", model.ConsentRevoked, 50))
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "another subscription type's revocation does not apply", req: func(r *Request) {
			promo(r)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "newsletter", model.ConsentRevoked, 50))
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "regranted subscription wins over older revocation", req: func(r *Request) {
			promo(r)
			regrant := sub(sms, "promotions", model.ConsentGranted, 51)
			regrant.At = t0.Add(2 * day)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentRevoked, 50), regrant)
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "journey without subscription ignores subscription records", req: func(r *Request) {
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentRevoked, 50))
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "channel revoked and subscription revoked: both reported", req: func(r *Request) {
			promo(r)
			setConsent(r, sms, model.ConsentRevoked, 20)
			r.Contact.Consents = append(r.Contact.Consents, sub(sms, "promotions", model.ConsentRevoked, 50))
		}, want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked, CodeSubscriptionRevoked}},
	})
}

func TestDecideTransactional(t *testing.T) {
	tx := func(r *Request) { r.Class = transactional }
	runDecideCases(t, []decideCase{
		{name: "granted, nothing bypassed: no reason", req: tx, want: OutcomeAllow, wantConsent: 12},
		{name: "no sms consent: allowed, bypass explained", req: func(r *Request) { tx(r); setConsent(r, sms, "", 0) },
			want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantDetail: CodeNoConsent},
		{name: "sms pending: allowed", req: func(r *Request) { tx(r); setConsent(r, sms, model.ConsentPending, 20) },
			want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantDetail: CodeSMSPendingDoubleOptIn},
		{name: "sms STOP blocks transactional too", req: func(r *Request) { tx(r); setConsent(r, sms, model.ConsentRevoked, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}, wantDetail: "STOP"},
		{name: "ads revoked blocks transactional", req: func(r *Request) { tx(r); r.Channel = ads; setConsent(r, ads, model.ConsentRevoked, 20) },
			want: OutcomeSkip, wantCodes: []string{CodeConsentRevoked}},
		{name: "email unsubscribe does not block transactional email", req: func(r *Request) {
			tx(r)
			r.Channel = email
			setConsent(r, email, model.ConsentRevoked, 20)
		}, want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantDetail: CodeConsentRevoked},
		{name: "subscription revocation bypassed", req: func(r *Request) {
			tx(r)
			r.Journey.Subscription = "promotions"
			r.Contact.Consents = append(r.Contact.Consents, ConsentRecord{Channel: sms, Subscription: "promotions", Status: model.ConsentRevoked, ConsentEventID: 50, At: t0})
		}, want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantConsent: 12, wantDetail: CodeSubscriptionRevoked},
		{name: "quiet hours do not apply", req: func(r *Request) { tx(r); r.Now = ny(2025, 6, 11, 23, 30) },
			want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantConsent: 12, wantDetail: CodeQuietHours},
		{name: "cap and cooldown do not apply", req: func(r *Request) {
			tx(r)
			r.Contact.RecentSends = append(capSends(wed.Add(-6*day), wed), sends(sms, wed.Add(-time.Hour))...)
		}, want: OutcomeAllow, wantCodes: []string{CodeTransactionalBypass}, wantConsent: 12, wantDetail: "cap:global, cooldown:sms"},
		{name: "transactional sends do not count toward caps", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
			r.Contact.RecentSends[3].Class = transactional
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "transactional sends do not start a cooldown", req: func(r *Request) {
			r.Contact.RecentSends = []SentMessage{{Channel: sms, At: wed.Add(-time.Hour), Class: transactional}}
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "sends without class count as marketing", req: func(r *Request) {
			r.Contact.RecentSends = []SentMessage{{Channel: sms, At: wed.Add(-time.Hour)}}
		}, want: OutcomeDefer, wantUntil: wed.Add(23 * time.Hour), wantCodes: []string{CodeCooldownSMS}},
	})
}

func TestDecideSuppression(t *testing.T) {
	var cases []decideCase
	reasons := []struct {
		reason model.SuppressionReason
		code   string
		hard   bool
	}{
		{model.SuppressConverted, CodeSuppressedConverted, false},
		{model.SuppressInOpportunity, CodeSuppressedInOpportunity, false},
		{model.SuppressUnengaged, CodeSuppressedUnengaged, false},
		{model.SuppressDoNotContact, CodeSuppressedDoNotContact, true},
		{model.SuppressHardBounce, CodeSuppressedHardBounce, true},
		{model.SuppressSpamComplaint, CodeSuppressedSpamComplaint, true},
		{"legal_hold", CodeSuppressedOther, true},
	}
	for _, rs := range reasons {
		for _, class := range []journey.MessageClass{marketing, transactional} {
			for _, ch := range []journey.Channel{email, sms} {
				c := decideCase{
					name: fmt.Sprintf("%s/%s/%s", rs.reason, class, ch),
					req: func(r *Request) {
						r.Class, r.Channel = class, ch
						r.Contact.Suppressions = []Suppression{{ID: "s1", Reason: rs.reason}}
					},
				}
				switch {
				case class == marketing || rs.hard:
					c.want, c.wantCodes = OutcomeSkip, []string{rs.code}
					c.wantFailed = []string{string(ch) + "/suppression"}
				default:
					c.want, c.wantCodes = OutcomeAllow, []string{CodeTransactionalBypass}
					c.wantConsent = map[journey.Channel]int64{email: 11, sms: 12}[ch]
				}
				cases = append(cases, c)
			}
		}
	}
	hb := func(mut func(*Suppression)) func(*Request) {
		return func(r *Request) {
			s := Suppression{Reason: model.SuppressHardBounce}
			mut(&s)
			r.Contact.Suppressions = []Suppression{s}
		}
	}
	cases = append(cases,
		decideCase{name: "email-only hard bounce does not block sms", req: hb(func(s *Suppression) { s.Channel = email }), want: OutcomeAllow, wantConsent: 12},
		decideCase{name: "sms-only suppression blocks sms", req: hb(func(s *Suppression) { s.Channel = sms }), want: OutcomeSkip, wantCodes: []string{CodeSuppressedHardBounce}},
		decideCase{name: "other journey's suppression does not apply", req: hb(func(s *Suppression) { s.JourneyID = "winback" }), want: OutcomeAllow, wantConsent: 12},
		decideCase{name: "this journey's suppression applies", req: hb(func(s *Suppression) { s.JourneyID = "welcome" }), want: OutcomeSkip, wantCodes: []string{CodeSuppressedHardBounce}, wantDetail: "journey welcome"},
		decideCase{name: "expired exactly now", req: hb(func(s *Suppression) { s.ExpiresAt = wed }), want: OutcomeAllow, wantConsent: 12},
		decideCase{name: "expires in a nanosecond", req: hb(func(s *Suppression) { s.ExpiresAt = wed.Add(time.Nanosecond) }), want: OutcomeSkip, wantCodes: []string{CodeSuppressedHardBounce}},
		decideCase{name: "same reason twice: one code", req: func(r *Request) {
			r.Contact.Suppressions = []Suppression{{ID: "a", Reason: model.SuppressConverted}, {ID: "b", Reason: model.SuppressConverted, JourneyID: "welcome"}}
		}, want: OutcomeSkip, wantCodes: []string{CodeSuppressedConverted}, wantDetail: "converted #b"},
		decideCase{name: "suppression and missing consent: both, rule order", req: func(r *Request) {
			setConsent(r, sms, "", 0)
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressInOpportunity}, {Reason: model.SuppressDoNotContact}}
		}, want: OutcomeSkip, wantCodes: []string{CodeSuppressedInOpportunity, CodeSuppressedDoNotContact, CodeNoConsent}},
		decideCase{name: "sms without a phone", req: func(r *Request) { r.Contact.Phone = "" },
			want: OutcomeSkip, wantCodes: []string{CodeNoPhone}, wantFailed: []string{"sms/address"}},
		decideCase{name: "email needs no phone", req: func(r *Request) { r.Contact.Phone = ""; r.Channel = email },
			want: OutcomeAllow, wantConsent: 11},
		decideCase{name: "email without an address", req: func(r *Request) { r.Contact.NoEmailAddress = true; r.Channel = email },
			want: OutcomeSkip, wantCodes: []string{CodeNoEmail}, wantFailed: []string{"email/address"}},
		decideCase{name: "sms needs no email address", req: func(r *Request) { r.Contact.NoEmailAddress = true },
			want: OutcomeAllow, wantConsent: 12},
	)
	runDecideCases(t, cases)
}

func TestDecideUnengaged(t *testing.T) {
	days := func(n int) *int { return &n }
	runDecideCases(t, []decideCase{
		{name: "engaged 180 days ago exactly: still engaged", req: func(r *Request) { r.Contact.LastEngagedAt = wed.Add(-180 * day) },
			want: OutcomeAllow, wantConsent: 12},
		{name: "engaged 180 days and a second ago", req: func(r *Request) { r.Contact.LastEngagedAt = wed.Add(-180*day - time.Second) },
			want: OutcomeSkip, wantCodes: []string{CodeSuppressedUnengaged}, wantFailed: []string{"sms/unengaged"}},
		{name: "journey disables the rule (winback)", req: func(r *Request) {
			r.Contact.LastEngagedAt = wed.Add(-400 * day)
			r.Contact.CreatedAt = time.Time{}
			r.Journey.UnengagedDays = days(0)
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "journey tightens to 30 days", req: func(r *Request) {
			r.Contact.LastEngagedAt = wed.Add(-31 * day)
			r.Journey.UnengagedDays = days(30)
		}, want: OutcomeSkip, wantCodes: []string{CodeSuppressedUnengaged}},
		{name: "settings disable the rule", settings: func(s *Settings) { s.UnengagedDays = 0 },
			req: func(r *Request) { r.Contact.LastEngagedAt = wed.Add(-400 * day) }, want: OutcomeAllow, wantConsent: 12},
		{name: "never engaged, created 10 days ago", req: func(r *Request) {
			r.Contact.LastEngagedAt = time.Time{}
			r.Contact.CreatedAt = wed.Add(-10 * day)
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "never engaged, created 200 days ago", req: func(r *Request) {
			r.Contact.LastEngagedAt = time.Time{}
			r.Contact.CreatedAt = wed.Add(-200 * day)
		}, want: OutcomeSkip, wantCodes: []string{CodeSuppressedUnengaged}, wantDetail: "creation"},
		{name: "no engagement data at all", req: func(r *Request) {
			r.Contact.LastEngagedAt, r.Contact.CreatedAt = time.Time{}, time.Time{}
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "transactional bypasses unengaged", req: func(r *Request) {
			r.Class = transactional
			r.Contact.LastEngagedAt = wed.Add(-400 * day)
			r.Contact.CreatedAt = time.Time{}
		}, want: OutcomeAllow, wantConsent: 12, wantCodes: []string{CodeTransactionalBypass}, wantDetail: CodeSuppressedUnengaged},
	})
}

func TestDecideCaps(t *testing.T) {
	w := 7 * day
	runDecideCases(t, []decideCase{
		{name: "six in the window: allowed", req: func(r *Request) { r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)[1:] },
			want: OutcomeAllow, wantConsent: 12},
		{name: "seven in the window: deferred until the oldest leaves", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
		}, want: OutcomeDefer, wantUntil: wed.Add(day), wantCodes: []string{CodeCapGlobal}, wantFailed: []string{"sms/frequency_cap"}},
		{name: "boundary: oldest exactly one window ago no longer counts", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-w), wed)
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "boundary: oldest one second inside the window", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-w+time.Second), wed)
		}, want: OutcomeDefer, wantUntil: wed.Add(time.Second), wantCodes: []string{CodeCapGlobal}},
		{name: "over the cap: the second oldest must leave too", settings: func(s *Settings) { s.GlobalCap.Max = 6 }, req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed) // 7 sends, max 6
		}, want: OutcomeDefer, wantUntil: wed.Add(-6 * day).Add(6 * day / 7).Add(w), wantCodes: []string{CodeCapGlobal}},
		{name: "unsorted sends", req: func(r *Request) {
			s := capSends(wed.Add(-6*day), wed)
			s[0], s[6] = s[6], s[0]
			s[2], s[4] = s[4], s[2]
			r.Contact.RecentSends = s
		}, want: OutcomeDefer, wantUntil: wed.Add(day), wantCodes: []string{CodeCapGlobal}},
		{name: "cap counts every channel (email sends hold an sms)", req: func(r *Request) {
			s := capSends(wed.Add(-6*day), wed)
			for i := range s {
				s[i].Channel = email
			}
			r.Contact.RecentSends = s
		}, want: OutcomeDefer, wantUntil: wed.Add(day), wantCodes: []string{CodeCapGlobal}},
		{name: "on_cap skip", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
			r.Journey.OnCap = OnCapSkip
		}, want: OutcomeSkip, wantCodes: []string{CodeCapGlobal}, wantDetail: "on_cap=skip"},
		{name: "journey tightens the cap", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)[4:] // 3 sends
			r.Journey.GlobalCap = &FrequencyCap{Max: 2, Window: 7 * day}
		}, want: OutcomeDefer, wantCodes: []string{CodeCapGlobal}},
		{name: "journey disables the cap", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
			r.Journey.GlobalCap = &FrequencyCap{}
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "sms cooldown: deferred to its end", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, wed.Add(-23*time.Hour))
		}, want: OutcomeDefer, wantUntil: wed.Add(time.Hour), wantCodes: []string{CodeCooldownSMS}, wantFailed: []string{"sms/cooldown"}},
		{name: "sms cooldown ended exactly now", req: func(r *Request) { r.Contact.RecentSends = sends(sms, wed.Add(-24*time.Hour)) },
			want: OutcomeAllow, wantConsent: 12},
		{name: "email cooldown 16h", req: func(r *Request) {
			r.Channel = email
			r.Contact.RecentSends = sends(email, wed.Add(-10*time.Hour))
		}, want: OutcomeDefer, wantUntil: wed.Add(6 * time.Hour), wantCodes: []string{CodeCooldownEmail}},
		{name: "cooldown is per channel", req: func(r *Request) { r.Contact.RecentSends = sends(email, wed.Add(-time.Hour)) },
			want: OutcomeAllow, wantConsent: 12},
		{name: "last send decides the cooldown", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, wed.Add(-30*time.Hour), wed.Add(-2*time.Hour), wed.Add(-26*time.Hour))
		}, want: OutcomeDefer, wantUntil: wed.Add(22 * time.Hour), wantCodes: []string{CodeCooldownSMS}},
		{name: "journey disables the sms cooldown", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, wed.Add(-time.Hour))
			r.Journey.Cooldowns = map[journey.Channel]time.Duration{sms: 0}
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "journey lengthens the sms cooldown", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, wed.Add(-30*time.Hour))
			r.Journey.Cooldowns = map[journey.Channel]time.Duration{sms: 48 * time.Hour}
		}, want: OutcomeDefer, wantUntil: wed.Add(18 * time.Hour), wantCodes: []string{CodeCooldownSMS}},
		{name: "on_cap skip with cooldown", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, wed.Add(-time.Hour))
			r.Journey.OnCap = OnCapSkip
		}, want: OutcomeSkip, wantCodes: []string{CodeCooldownSMS}},
		{name: "cap and cooldown: the later wins, both reported", req: func(r *Request) {
			s := capSends(wed.Add(-7*day+2*time.Hour), wed.Add(-day))[:6]
			r.Contact.RecentSends = append(s, sends(sms, wed.Add(-20*time.Hour))...)
		}, want: OutcomeDefer, wantUntil: wed.Add(4 * time.Hour), wantCodes: []string{CodeCapGlobal, CodeCooldownSMS}},
		{name: "ads have no cooldown by default", req: func(r *Request) {
			r.Channel = ads
			r.Contact.RecentSends = sends(ads, wed.Add(-time.Minute))
		}, want: OutcomeAllow, wantConsent: 13},
	})
}

func TestDecideQuietHours(t *testing.T) {
	emailQuiet := func(s *Settings) {
		s.QuietHours[email] = QuietHours{Default: []SendWindow{{Start: Clock(9, 0), End: Clock(18, 0)}}}
	}
	runDecideCases(t, []decideCase{
		{name: "NY 21:30: deferred to 08:00 next day", req: func(r *Request) { r.Now = ny(2025, 6, 11, 21, 30) },
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}, wantFailed: []string{"sms/quiet_hours"},
			wantDetail: "zone from phone:US"},
		{name: "NY 21:00 is closed (end exclusive)", req: func(r *Request) { r.Now = ny(2025, 6, 11, 21, 0) },
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "NY 20:59 open", req: func(r *Request) { r.Now = ny(2025, 6, 11, 20, 59) }, want: OutcomeAllow, wantConsent: 12},
		{name: "NY 08:00 open", req: func(r *Request) { r.Now = ny(2025, 6, 11, 8, 0) }, want: OutcomeAllow, wantConsent: 12},
		{name: "NY 07:59 waits a minute", req: func(r *Request) { r.Now = ny(2025, 6, 11, 7, 59) },
			want: OutcomeDefer, wantUntil: ny(2025, 6, 11, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "after midnight: same day 08:00", req: func(r *Request) { r.Now = ny(2025, 6, 12, 2, 0) },
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "LA number judged in LA time", req: func(r *Request) {
			r.Contact.Phone = "+14155550100"
			r.Now = ny(2025, 6, 11, 23, 30) // 20:30 in Los Angeles
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "contact time zone beats the phone's", req: func(r *Request) {
			r.Contact.TimeZone = "America/Los_Angeles"
			r.Now = ny(2025, 6, 11, 23, 30)
		}, want: OutcomeAllow, wantConsent: 12},
		{name: "invalid contact time zone: phone's zone, noted", req: func(r *Request) {
			r.Contact.TimeZone = "Nowhere/City"
			r.Now = ny(2025, 6, 11, 23, 30)
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}, wantDetail: `contact time zone "Nowhere/City" invalid`},
		{name: "email has no quiet hours by default", req: func(r *Request) { r.Channel = email; r.Now = ny(2025, 6, 11, 23, 30) },
			want: OutcomeAllow, wantConsent: 11},
		{name: "email quiet hours when configured", settings: emailQuiet,
			req:  func(r *Request) { r.Channel = email; r.Now = ny(2025, 6, 11, 18, 30) },
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 9, 0), wantCodes: []string{CodeQuietHours}},
		{name: "email without phone or zone uses the default zone", settings: func(s *Settings) {
			emailQuiet(s)
			s.DefaultTimeZone = "Europe/Paris"
		}, req: func(r *Request) {
			r.Channel = email
			r.Contact.Phone = ""
			r.Now = paris(2025, 6, 11, 8, 0)
		}, want: OutcomeDefer, wantUntil: paris(2025, 6, 11, 9, 0), wantCodes: []string{CodeQuietHours}, wantDetail: "zone from default"},
		{name: "FR Saturday 21:59 open", req: func(r *Request) { frContact(r); r.Now = paris(2025, 6, 14, 21, 59) },
			want: OutcomeAllow, wantConsent: 12},
		{name: "FR Saturday 22:30: never on Sunday, Monday 08:00", req: func(r *Request) { frContact(r); r.Now = paris(2025, 6, 14, 22, 30) },
			want: OutcomeDefer, wantUntil: paris(2025, 6, 16, 8, 0), wantCodes: []string{CodeQuietHours}, wantDetail: "FR rule (country from phone)"},
		{name: "FR Sunday noon: Monday 08:00", req: func(r *Request) { frContact(r); r.Now = paris(2025, 6, 15, 12, 0) },
			want: OutcomeDefer, wantUntil: paris(2025, 6, 16, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "US default rule allows Sunday", req: func(r *Request) { r.Now = ny(2025, 6, 15, 12, 0) }, want: OutcomeAllow, wantConsent: 12},
		{name: "contact country picks the rule (DE), zone from contact", req: func(r *Request) {
			r.Contact.Country = "DE"
			r.Contact.TimeZone = "Europe/Berlin"
			r.Now = paris(2025, 6, 11, 20, 30)
		}, want: OutcomeDefer, wantUntil: paris(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}, wantDetail: "DE rule (country from contact)"},
		{name: "country without a rule: default window in its zone", req: func(r *Request) {
			r.Contact.Phone = "+61412345678" // Sydney
			r.Now = time.Date(2025, 6, 11, 22, 0, 0, 0, mustLocation("Australia/Sydney"))
		}, want: OutcomeDefer, wantUntil: time.Date(2025, 6, 12, 8, 0, 0, 0, mustLocation("Australia/Sydney")), wantCodes: []string{CodeQuietHours}, wantDetail: "default rule"},
		{name: "CA weekend opens at 10:00", req: func(r *Request) {
			r.Contact.Phone = "+16135551234" // Ottawa, America/Toronto
			r.Now = ny(2025, 6, 14, 9, 0)
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 14, 10, 0), wantCodes: []string{CodeQuietHours}},
		{name: "an empty country rule lifts the default", settings: func(s *Settings) {
			s.QuietHours[sms].Countries["US"] = nil
		}, req: func(r *Request) { r.Now = ny(2025, 6, 11, 23, 30) }, want: OutcomeAllow, wantConsent: 12},
		{name: "DST spring forward (NY): Sat 22:00 EST to Sun 08:00 EDT", req: func(r *Request) { r.Now = ny(2025, 3, 8, 22, 0) },
			want: OutcomeDefer, wantUntil: time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC), wantCodes: []string{CodeQuietHours}},
		{name: "DST fall back (NY): Sat 22:00 EDT to Sun 08:00 EST", req: func(r *Request) { r.Now = ny(2025, 11, 1, 22, 0) },
			want: OutcomeDefer, wantUntil: time.Date(2025, 11, 2, 13, 0, 0, 0, time.UTC), wantCodes: []string{CodeQuietHours}},
		{name: "DST spring forward (FR) over a Sunday: Monday 08:00 CEST", req: func(r *Request) { frContact(r); r.Now = paris(2025, 3, 29, 22, 30) },
			want: OutcomeDefer, wantUntil: time.Date(2025, 3, 31, 6, 0, 0, 0, time.UTC), wantCodes: []string{CodeQuietHours}},
		{name: "no window ever opens: skipped", settings: func(s *Settings) {
			s.QuietHours[sms] = QuietHours{Default: []SendWindow{{Days: []time.Weekday{time.Sunday}, Start: Clock(2, 0), End: Clock(2, 30)}}}
			s.DefaultTimeZone = "America/New_York"
		}, req: func(r *Request) { r.Contact.Phone = "+18005551234"; r.Now = ny(2025, 3, 3, 12, 0) }, // only window: the DST gap of Mar 9
			want: OutcomeSkip, wantCodes: []string{CodeNoSendWindow}},
	})
}

// Deferral must satisfy caps, cooldowns and quiet hours together.
func TestDecideCombinedDeferral(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "cap frees at 22:00 NY: next window opening", req: func(r *Request) {
			r.Contact.RecentSends = capSends(wed.Add(-7*day+8*time.Hour), wed)
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeCapGlobal, CodeQuietHours},
			wantFailed: []string{"sms/frequency_cap", "sms/quiet_hours"}, wantDetail: "(Wed 22:00 EDT) by an earlier rule is not allowed either: moved to 2025-06-12T12:00:00Z (Thu 08:00 EDT)"},
		{name: "FR: cap frees Saturday 23:00: Monday 08:00", req: func(r *Request) {
			frContact(r)
			now := paris(2025, 6, 14, 15, 0)
			r.Now = now
			r.Contact.RecentSends = capSends(now.Add(-7*day+8*time.Hour), now)
		}, want: OutcomeDefer, wantUntil: paris(2025, 6, 16, 8, 0), wantCodes: []string{CodeCapGlobal, CodeQuietHours}},
		{name: "in quiet hours, cap frees after the opening: the cap's time", req: func(r *Request) {
			r.Now = ny(2025, 6, 11, 23, 0)
			r.Contact.RecentSends = capSends(ny(2025, 6, 12, 10, 0).Add(-7*day), r.Now)
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 10, 0), wantCodes: []string{CodeCapGlobal, CodeQuietHours}},
		{name: "cooldown ends 21:30: next opening", req: func(r *Request) {
			r.Contact.RecentSends = sends(sms, ny(2025, 6, 10, 21, 30))
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeCooldownSMS, CodeQuietHours}},
		{name: "cap, cooldown and quiet hours", req: func(r *Request) {
			s := capSends(wed.Add(-7*day+2*time.Hour), wed.Add(-2*day))[:6]
			r.Contact.RecentSends = append(s, sends(sms, ny(2025, 6, 10, 22, 0))...)
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeCapGlobal, CodeCooldownSMS, CodeQuietHours}},
		{name: "DST: cap frees Saturday 23:00 EST before spring forward", req: func(r *Request) {
			r.Now = ny(2025, 3, 8, 12, 0)
			r.Contact.RecentSends = capSends(ny(2025, 3, 8, 23, 0).Add(-7*day), r.Now)
		}, want: OutcomeDefer, wantUntil: time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC), wantCodes: []string{CodeCapGlobal, CodeQuietHours}},
		{name: "on_cap skip wins over quiet-hours deferral", req: func(r *Request) {
			r.Now = ny(2025, 6, 11, 23, 0)
			r.Contact.RecentSends = sends(sms, r.Now.Add(-time.Hour))
			r.Journey.OnCap = OnCapSkip
		}, want: OutcomeSkip, wantCodes: []string{CodeCooldownSMS, CodeQuietHours}},
		{name: "quiet hours alone with on_cap skip still defer", req: func(r *Request) {
			r.Now = ny(2025, 6, 11, 23, 0)
			r.Journey.OnCap = OnCapSkip
		}, want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}},
	})
}

func TestDecideAbandonment(t *testing.T) {
	ab := func(at time.Time, sent bool) func(*Request) {
		return func(r *Request) {
			r.Journey.Abandonment = true
			r.Abandonment = &AbandonmentContext{EventID: "cart-1", At: at, SMSAlreadySent: sent}
		}
	}
	then := func(fs ...func(*Request)) func(*Request) {
		return func(r *Request) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	runDecideCases(t, []decideCase{
		{name: "first SMS within 48h", req: ab(wed.Add(-time.Hour), false), want: OutcomeAllow, wantConsent: 12},
		{name: "one second before 48h", req: ab(wed.Add(-48*time.Hour+time.Second), false), want: OutcomeAllow, wantConsent: 12},
		{name: "exactly 48h: expired", req: ab(wed.Add(-48*time.Hour), false),
			want: OutcomeSkip, wantCodes: []string{CodeAbandonmentWindowExpired}, wantFailed: []string{"sms/abandonment"}},
		{name: "SMS already sent for the event", req: ab(wed.Add(-time.Hour), true),
			want: OutcomeSkip, wantCodes: []string{CodeAbandonmentSMSAlreadySent}},
		{name: "missing abandonment context", req: func(r *Request) { r.Journey.Abandonment = true },
			want: OutcomeSkip, wantCodes: []string{CodeAbandonmentMissing}},
		{name: "missing event id", req: then(ab(wed.Add(-time.Hour), false), func(r *Request) { r.Abandonment.EventID = "" }),
			want: OutcomeSkip, wantCodes: []string{CodeAbandonmentMissing}},
		{name: "email is not limited", req: then(ab(wed.Add(-72*time.Hour), true), func(r *Request) { r.Channel = email }),
			want: OutcomeAllow, wantConsent: 11},
		{name: "non-abandonment journey ignores the context", req: then(ab(wed.Add(-72*time.Hour), true), func(r *Request) { r.Journey.Abandonment = false }),
			want: OutcomeAllow, wantConsent: 12},
		{name: "configured window", settings: func(s *Settings) { s.AbandonmentSMSWindow = 24 * time.Hour },
			req: ab(wed.Add(-25*time.Hour), false), want: OutcomeSkip, wantCodes: []string{CodeAbandonmentWindowExpired}},
		{name: "quiet-hours deferral within the deadline", req: then(ab(ny(2025, 6, 11, 21, 0), false), func(r *Request) { r.Now = ny(2025, 6, 11, 22, 0) }),
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "quiet-hours deferral past the deadline: skipped", req: then(ab(ny(2025, 6, 9, 23, 0), false), func(r *Request) { r.Now = ny(2025, 6, 11, 22, 0) }),
			want: OutcomeSkip, wantCodes: []string{CodeQuietHours, CodeAbandonmentWindowExpired}, wantDetail: "would pass the abandonment SMS deadline"},
		{name: "deferral landing exactly on the deadline: skipped", req: then(ab(ny(2025, 6, 10, 8, 0), false), func(r *Request) { r.Now = ny(2025, 6, 11, 22, 0) }),
			want: OutcomeSkip, wantCodes: []string{CodeQuietHours, CodeAbandonmentWindowExpired}},
		{name: "already sent and no consent: both, no fallback", req: then(ab(wed.Add(-time.Hour), true), func(r *Request) {
			setConsent(r, sms, "", 0)
			r.Journey.FallbackChannel = email
		}), want: OutcomeSkip, wantCodes: []string{CodeNoConsent, CodeAbandonmentSMSAlreadySent}, wantFailed: []string{"sms/fallback"}},
		{name: "transactional abandonment SMS still limited", req: then(ab(wed.Add(-time.Hour), true), func(r *Request) { r.Class = transactional }),
			want: OutcomeSkip, wantCodes: []string{CodeAbandonmentSMSAlreadySent}},
	})
}

func TestDecideFallback(t *testing.T) {
	fb := func(r *Request) { r.Journey.FallbackChannel = email }
	then := func(fs ...func(*Request)) func(*Request) {
		return func(r *Request) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	runDecideCases(t, []decideCase{
		{name: "no fallback needed", req: fb, want: OutcomeAllow, wantConsent: 12},
		{name: "sms without consent: email", req: then(fb, func(r *Request) { setConsent(r, sms, "", 0) }),
			want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeNoConsent}, wantConsent: 11},
		{name: "sms pending double opt-in: email", req: then(fb, func(r *Request) { setConsent(r, sms, model.ConsentPending, 20) }),
			want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeSMSPendingDoubleOptIn}, wantConsent: 11},
		{name: "no phone: email", req: then(fb, func(r *Request) { r.Contact.Phone = "" }),
			want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeNoPhone}, wantConsent: 11},
		{name: "no phone and no email address: skip with both", req: then(fb, func(r *Request) { r.Contact.Phone = ""; r.Contact.NoEmailAddress = true }),
			want: OutcomeSkip, wantChannel: sms, wantCodes: []string{CodeNoPhone, CodeNoEmail}},
		{name: "sms-only suppression: email", req: then(fb, func(r *Request) {
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressSpamComplaint, Channel: sms}}
		}), want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeSuppressedSpamComplaint}, wantConsent: 11},
		{name: "subscription revoked on sms only: email", req: then(fb, func(r *Request) {
			r.Journey.Subscription = "promotions"
			r.Contact.Consents = append(r.Contact.Consents, ConsentRecord{Channel: sms, Subscription: "promotions", Status: model.ConsentRevoked, ConsentEventID: 50, At: t0})
		}), want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeSubscriptionRevoked}, wantConsent: 11},
		{name: "fallback fails too: skip with both reasons", req: then(fb, func(r *Request) {
			setConsent(r, sms, model.ConsentRevoked, 20)
			setConsent(r, email, model.ConsentPending, 21)
		}), want: OutcomeSkip, wantChannel: sms, wantCodes: []string{CodeConsentRevoked, CodeConsentPending},
			wantFailed: []string{"sms/consent", "email/consent"}},
		{name: "global do_not_contact: both blocked", req: then(fb, func(r *Request) {
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressDoNotContact}}
		}), want: OutcomeSkip, wantCodes: []string{CodeSuppressedDoNotContact, CodeSuppressedDoNotContact}},
		{name: "fallback in cooldown: deferred on email", req: then(fb, func(r *Request) {
			setConsent(r, sms, "", 0)
			r.Contact.RecentSends = sends(email, wed.Add(-10*time.Hour))
		}), want: OutcomeDefer, wantChannel: email, wantUntil: wed.Add(6 * time.Hour), wantCodes: []string{CodeNoConsent, CodeCooldownEmail}},
		{name: "fallback capped by the cross-channel cap", req: then(fb, func(r *Request) {
			setConsent(r, sms, "", 0)
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
		}), want: OutcomeDefer, wantChannel: email, wantUntil: wed.Add(day), wantCodes: []string{CodeNoConsent, CodeCapGlobal}},
		{name: "fallback capped with on_cap skip", req: then(fb, func(r *Request) {
			setConsent(r, sms, "", 0)
			r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
			r.Journey.OnCap = OnCapSkip
		}), want: OutcomeSkip, wantChannel: sms, wantCodes: []string{CodeNoConsent, CodeCapGlobal}},
		{name: "quiet hours do not trigger fallback", req: then(fb, func(r *Request) { r.Now = ny(2025, 6, 11, 23, 0) }),
			want: OutcomeDefer, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeQuietHours}},
		{name: "caps do not trigger fallback", req: then(fb, func(r *Request) { r.Contact.RecentSends = sends(sms, wed.Add(-time.Hour)) }),
			want: OutcomeDefer, wantUntil: wed.Add(23 * time.Hour), wantCodes: []string{CodeCooldownSMS}},
		{name: "transactional SMS after STOP: transactional email", req: then(fb, func(r *Request) {
			r.Class = transactional
			setConsent(r, sms, model.ConsentRevoked, 20)
			setConsent(r, email, "", 0)
		}), want: OutcomeFallback, wantChannel: email, wantCodes: []string{CodeConsentRevoked, CodeTransactionalBypass}},
		{name: "email primary falls back to sms, sms quiet hours defer", req: func(r *Request) {
			r.Channel = email
			r.Journey.FallbackChannel = sms
			setConsent(r, email, model.ConsentRevoked, 20)
			r.Now = ny(2025, 6, 11, 22, 0)
		}, want: OutcomeDefer, wantChannel: sms, wantUntil: ny(2025, 6, 12, 8, 0), wantCodes: []string{CodeConsentRevoked, CodeQuietHours}},
		{name: "abandonment rules apply to an sms fallback", req: func(r *Request) {
			r.Channel = email
			r.Journey.FallbackChannel = sms
			r.Journey.Abandonment = true
			r.Abandonment = &AbandonmentContext{EventID: "cart-1", At: wed.Add(-time.Hour), SMSAlreadySent: true}
			setConsent(r, email, model.ConsentRevoked, 20)
		}, want: OutcomeSkip, wantChannel: email, wantCodes: []string{CodeConsentRevoked, CodeAbandonmentSMSAlreadySent}},
		{name: "fallback equal to primary is ignored", req: func(r *Request) {
			r.Journey.FallbackChannel = sms
			setConsent(r, sms, "", 0)
		}, want: OutcomeSkip, wantCodes: []string{CodeNoConsent}, wantFailed: []string{"sms/fallback"}},
		{name: "invalid request does not fall back", req: then(fb, func(r *Request) { r.Channel = "fax" }),
			want: OutcomeSkip, wantCodes: []string{CodeInvalidRequest}, wantFailed: []string{"fax/fallback"}},
		{name: "unengaged falls back and fails again", req: then(fb, func(r *Request) {
			r.Contact.LastEngagedAt = wed.Add(-400 * day)
			r.Contact.CreatedAt = time.Time{}
		}), want: OutcomeSkip, wantCodes: []string{CodeSuppressedUnengaged, CodeSuppressedUnengaged}},
	})
}

func TestDecideInvalidRequest(t *testing.T) {
	runDecideCases(t, []decideCase{
		{name: "unknown channel", req: func(r *Request) { r.Channel = "fax" }, want: OutcomeSkip, wantCodes: []string{CodeInvalidRequest}},
		{name: "empty channel", req: func(r *Request) { r.Channel = "" }, want: OutcomeSkip, wantCodes: []string{CodeInvalidRequest}},
		{name: "unknown class", req: func(r *Request) { r.Class = "urgent" }, want: OutcomeSkip, wantCodes: []string{CodeInvalidRequest}},
		{name: "zero now", req: func(r *Request) { r.Now = time.Time{} }, want: OutcomeSkip, wantCodes: []string{CodeInvalidRequest}},
	})
}

// TestDecideMatrix crosses consent x class x suppression x cap x quiet hours
// x fallback and checks each combination against an independent statement
// of the rules.
func TestDecideMatrix(t *testing.T) {
	s := DefaultSettings()
	quietNow := ny(2025, 6, 11, 23, 0)
	n := 0
	for _, consent := range []model.ConsentStatus{model.ConsentGranted, model.ConsentPending, model.ConsentRevoked, ""} {
		for _, class := range []journey.MessageClass{marketing, transactional} {
			for _, sup := range []model.SuppressionReason{"", model.SuppressConverted, model.SuppressHardBounce} {
				for _, capped := range []bool{false, true} {
					for _, quiet := range []bool{false, true} {
						for _, fallback := range []bool{false, true} {
							n++
							r := baseRequest()
							r.Class = class
							setConsent(&r, sms, consent, 20)
							if sup != "" {
								r.Contact.Suppressions = []Suppression{{Reason: sup, Channel: sms}}
							}
							if quiet {
								r.Now = quietNow
							}
							if capped {
								r.Contact.RecentSends = capSends(r.Now.Add(-6*day), r.Now)
							}
							if fallback {
								r.Journey.FallbackChannel = email
							}
							name := fmt.Sprintf("consent=%s/%s/sup=%s/capped=%v/quiet=%v/fallback=%v", consent, class, sup, capped, quiet, fallback)
							d := Decide(s, r)
							assertInvariants(t, s, r, d, true)

							// Independent expectation.
							blocked := sup == model.SuppressHardBounce ||
								(class == marketing && (consent != model.ConsentGranted || sup == model.SuppressConverted)) ||
								(class == transactional && consent == model.ConsentRevoked)
							timed := class == marketing && (capped || quiet)
							var want Outcome
							var wantCh journey.Channel = sms
							switch {
							case blocked && fallback && class == marketing && timed:
								want, wantCh = OutcomeDefer, email // email: no quiet hours, but the cap is cross-channel
								if !capped {
									want = OutcomeFallback
								}
							case blocked && fallback:
								want, wantCh = OutcomeFallback, email
							case blocked:
								want = OutcomeSkip
							case timed:
								want = OutcomeDefer
							default:
								want = OutcomeAllow
							}
							assert.Equal(t, want, d.Outcome, "%s\n%s", name, d.Explain())
							assert.Equal(t, wantCh, d.Channel, "%s\n%s", name, d.Explain())
						}
					}
				}
			}
		}
	}
	assert.Equal(t, 4*2*3*2*2*2, n)
}

func TestDecideTrace(t *testing.T) {
	s := DefaultSettings()
	r := baseRequest()
	r.Journey.Subscription = "promotions"
	r.Journey.Abandonment = true
	r.Abandonment = &AbandonmentContext{EventID: "cart-1", At: wed.Add(-time.Hour)}
	d := Decide(s, r)
	require.Equal(t, OutcomeAllow, d.Outcome, d.Explain())
	var rules []string
	for _, c := range d.Checks {
		assert.True(t, c.Passed, c.Rule)
		assert.Equal(t, sms, c.Channel)
		rules = append(rules, c.Rule)
	}
	assert.Equal(t, []string{RuleRequest, RuleSuppression, RuleAddress, RuleConsent, RuleSubscription, RuleUnengaged,
		RuleAbandonment, RuleFrequencyCap, RuleCooldown, RuleQuietHours}, rules)

	// Fallback traces both channels, primary first.
	r = baseRequest()
	r.Journey.FallbackChannel = email
	setConsent(&r, sms, "", 0)
	d = Decide(s, r)
	require.Equal(t, OutcomeFallback, d.Outcome)
	var chans []string
	for _, c := range d.Checks {
		chans = append(chans, string(c.Channel)+"/"+c.Rule)
	}
	assert.Contains(t, chans, "sms/fallback")
	assert.Equal(t, "sms/request", chans[0])
	assert.Equal(t, "email/quiet_hours", chans[len(chans)-1])

	// JSON form for the ledger and logs.
	b, err := json.Marshal(d)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"outcome":"fallback"`)
	assert.Contains(t, string(b), `"code":"no_consent"`)
	assert.Contains(t, string(b), `"consent_event_id":11`)
	assert.NotContains(t, string(b), `"until"`)
	assert.True(t, strings.HasPrefix(d.Explain(), "fallback on email (consent event 11)\n"))
}

// Decide must not modify its input.
func TestDecideDoesNotMutate(t *testing.T) {
	s := DefaultSettings()
	r := baseRequest()
	r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)
	r.Contact.RecentSends[0], r.Contact.RecentSends[6] = r.Contact.RecentSends[6], r.Contact.RecentSends[0]
	before, err := json.Marshal(r)
	require.NoError(t, err)
	sBefore, err := json.Marshal(s)
	require.NoError(t, err)
	Decide(s, r)
	after, _ := json.Marshal(r)
	sAfter, _ := json.Marshal(s)
	assert.JSONEq(t, string(before), string(after))
	assert.JSONEq(t, string(sBefore), string(sAfter))
}

func BenchmarkDecide(b *testing.B) {
	s := DefaultSettings()
	b.Run("allow", func(b *testing.B) {
		r := baseRequest()
		r.Contact.RecentSends = capSends(wed.Add(-6*day), wed)[2:]
		for b.Loop() {
			Decide(s, r)
		}
	})
	b.Run("defer_cap_quiet_FR", func(b *testing.B) {
		r := baseRequest()
		frContact(&r)
		r.Now = paris(2025, 6, 14, 15, 0)
		r.Contact.RecentSends = capSends(r.Now.Add(-7*day+8*time.Hour), r.Now)
		for b.Loop() {
			Decide(s, r)
		}
	})
	b.Run("fallback", func(b *testing.B) {
		r := baseRequest()
		r.Journey.FallbackChannel = email
		setConsent(&r, sms, "", 0)
		for b.Loop() {
			Decide(s, r)
		}
	})
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * day: "7d", 2 * day: "2d", day: "24h", 16 * time.Hour: "16h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 0: "0s",
	} {
		assert.Equal(t, want, fmtDuration(d))
	}
}

// Decide is safe for concurrent use (the zone cache is shared).
func TestDecideConcurrent(t *testing.T) {
	s := DefaultSettings()
	phones := []string{"+12125551234", "+33612345678", "+4915112345678", "+19075551234", "+61412345678"}
	done := make(chan Decision, 64)
	for i := range 64 {
		go func() {
			r := baseRequest()
			r.Contact.Phone = phones[i%len(phones)]
			r.Now = wed.Add(time.Duration(i) * time.Hour)
			done <- Decide(s, r)
		}()
	}
	for range 64 {
		d := <-done
		assert.NotEmpty(t, d.Outcome)
	}
}

// A webhook post tells the workspace's systems about the contact: the
// suppressions that say "leave this person alone" hold it back; consent,
// address, the unengaged rule, caps, cooldowns and quiet hours do not. And
// webhook posts take no place under a cap.
func TestDecideWebhook(t *testing.T) {
	const webhook = journey.ChannelWebhook
	hook := func(mut func(*Request)) func(*Request) {
		return func(r *Request) {
			r.Channel = webhook
			mut(r)
		}
	}
	webhookSends := func(r *Request) {
		s := capSends(wed.Add(-6*day), wed)
		for i := range s {
			s[i].Channel = webhook
		}
		r.Contact.RecentSends = s
	}
	runDecideCases(t, []decideCase{
		{name: "no consent, no address, 03:00 local, over the cap, unengaged: posted", req: hook(func(r *Request) {
			r.Contact.Consents = nil
			r.Contact.Phone = ""
			r.Contact.NoEmailAddress = true
			r.Now = ny(2025, 6, 11, 3, 0)
			r.Contact.LastEngagedAt = r.Now.AddDate(-2, 0, 0)
			r.Contact.CreatedAt = r.Now.AddDate(-3, 0, 0)
			r.Contact.RecentSends = capSends(r.Now.Add(-6*day), r.Now)
		}), want: OutcomeAllow},
		{name: "do_not_contact holds it", req: hook(func(r *Request) {
			r.Contact.Suppressions = []Suppression{{ID: "s1", Reason: model.SuppressDoNotContact}}
		}), want: OutcomeSkip, wantCodes: []string{CodeSuppressedDoNotContact}, wantFailed: []string{"webhook/suppression"}},
		{name: "this journey's converted suppression holds it", req: hook(func(r *Request) {
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressConverted, JourneyID: "welcome"}}
		}), want: OutcomeSkip, wantCodes: []string{CodeSuppressedConverted}},
		{name: "in_opportunity holds it", req: hook(func(r *Request) {
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressInOpportunity}}
		}), want: OutcomeSkip, wantCodes: []string{CodeSuppressedInOpportunity}},
		{name: "an email-only hard bounce does not", req: hook(func(r *Request) {
			r.Contact.Suppressions = []Suppression{{Reason: model.SuppressHardBounce, Channel: email}}
		}), want: OutcomeAllow},
		{name: "seven webhook posts in the window do not hold an sms", req: webhookSends, want: OutcomeAllow, wantConsent: 12},
		{name: "nor an email cooldown", req: func(r *Request) {
			r.Channel = email
			r.Contact.RecentSends = sends(webhook, wed.Add(-time.Hour))
		}, want: OutcomeAllow, wantConsent: 11},
	})
}
