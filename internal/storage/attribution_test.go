package storage_test

import (
	"context"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/attribution"
	"github.com/tutti-dev/tutti/internal/journey"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// The seeded touchpoints (storagetest.SeedAttribution), read back from
// SQL and credited by every model, against credits worked out by hand.
func TestAttribution(t *testing.T) {
	t.Parallel()
	s := storagetest.New(t)
	seed := storagetest.SeedAttribution(t, s)
	ctx := context.Background()
	q := storage.AttributionQuery{Event: seed.Event, From: seed.From, To: seed.To, Lookback: 7 * 24 * time.Hour}

	// The touchpoints each conversion is given, by id (repeated opens are
	// both there: the model keeps the latest).
	got := map[string][]string{}
	require.NoError(t, s.AttributionConversions(ctx, q, func(c attribution.Conversion) error {
		var ids []string
		for _, tc := range c.Touches {
			ids = append(ids, tc.ID+"@"+tc.Journey+"/"+tc.Step)
		}
		sort.Strings(ids)
		got[c.At.Format(time.RFC3339)] = ids
		return nil
	}))
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	require.Equal(t, map[string][]string{
		at(seed.A): {"click:m_attr_a_hello@welcome/hello", "open:m_attr_a_hello@welcome/hello", "open:m_attr_a_hello@welcome/hello",
			"send:m_attr_a_hello@welcome/hello", "send:m_attr_a_nudge@promo/nudge"},
		at(seed.B1): {"audience:attr_meta:" + ledgerID(t, s, seed.B1.Add(-100*time.Hour)) + "@promo/retarget",
			"reply:twilio:SM_b_reply@promo/nudge", "send:m_attr_b_nudge@promo/nudge"},
		at(seed.B2): {"audience:attr_meta:" + ledgerID(t, s, seed.B1.Add(-100*time.Hour)) + "@promo/retarget"},
		at(seed.C):  nil,
		at(seed.D):  {"audience:attr_meta:" + ledgerID(t, s, seed.D.Add(-24*time.Hour)) + "@/", "reply:twilio:SM_d_reply@/"},
		at(seed.E):  {"send:m_attr_e_hello@welcome/hello"},
	}, got)

	tot, err := s.Attribution(ctx, q, nil, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, 6, tot.Conversions)
	require.Equal(t, 5, tot.Contacts)
	require.Equal(t, 1, tot.Unattributed, "Carol")
	// Sends: Alice's email and SMS, Bob's SMS, Erin's email; one open
	// (Alice's two are one); Bob's and Dave's replies; the audience at
	// B1, B2 and D.
	require.Equal(t, map[string]int{"send": 4, "open": 1, "click": 1, "reply": 2, "audience": 3}, tot.ByKind)

	// Per conversion, in time order, with each model's shares:
	//
	//   A: email send -48h, open -20h, click -19h, SMS -6h.
	//      first email; last SMS; linear 3/4 email, 1/4 SMS; U-shaped
	//      0.4 + 0.1 + 0.1 = 0.6 email, 0.4 SMS; time decay (half-life
	//      24h) weighs 2^-2, 2^(-20/24), 2^(-19/24), 2^(-6/24).
	//   B1: SMS -30h, reply -10h (credited to promo/nudge, the SMS
	//      before it), the audience (open: counts as of B1, age 0).
	//      first SMS; last ads; linear 2/3 SMS, 1/3 ads; U 0.6 SMS, 0.4
	//      ads; time decay 2^(-30/24), 2^(-10/24), 1.
	//   B2: the audience, removed 2 days before: all ads.
	//   C:  nothing in the window: unattributed.
	//   D:  reply -2h (no SMS before it: no journey), the audience since
	//      -1d (segment vip: no journey). first SMS, last ads, linear
	//      and U half each; time decay 2^(-2/24), 1.
	//   E:  the email at the conversion itself: all email.
	tdA := []float64{math.Exp2(-2), math.Exp2(-20.0 / 24), math.Exp2(-19.0 / 24), math.Exp2(-6.0 / 24)}
	tdB1 := []float64{math.Exp2(-30.0 / 24), math.Exp2(-10.0 / 24), 1}
	tdD := []float64{math.Exp2(-2.0 / 24), 1}
	sum := func(ws []float64) float64 {
		var s float64
		for _, w := range ws {
			s += w
		}
		return s
	}
	aEmail, aSMS := (tdA[0]+tdA[1]+tdA[2])/sum(tdA), tdA[3]/sum(tdA)
	b1SMS, b1Ads := (tdB1[0]+tdB1[1])/sum(tdB1), tdB1[2]/sum(tdB1)
	dSMS, dAds := tdD[0]/sum(tdD), tdD[1]/sum(tdD)
	type credit = map[attribution.Model]float64
	const (
		first, last, linear, decay, u = attribution.FirstTouch, attribution.LastTouch, attribution.Linear, attribution.TimeDecay, attribution.UShaped
	)
	wantChannel := map[journey.Channel]credit{
		// first: A, E; linear: 3/4 + 1; U: 0.6 + 1.
		journey.ChannelEmail: {first: 2, linear: 1.75, u: 1.6, decay: aEmail + 1},
		// first: B1, D; last: A; linear 1/4 + 2/3 + 1/2; U 0.4 + 0.6 + 0.5.
		journey.ChannelSMS: {first: 2, last: 1, linear: 0.25 + 2.0/3 + 0.5, u: 1.5, decay: aSMS + b1SMS + dSMS},
		// first: B2; last: B1, B2, D; linear 1/3 + 1 + 1/2; U 0.4 + 1 + 0.5.
		journey.ChannelAds: {first: 1, last: 3, linear: 1.0/3 + 1 + 0.5, u: 1.9, decay: b1Ads + 1 + dAds},
	}
	// Erin's email is last touch for E.
	wantChannel[journey.ChannelEmail][last] = 1
	wantJourney := map[string]credit{
		"welcome": wantChannel[journey.ChannelEmail],
		// A's SMS, all of B1 and B2.
		"promo": {first: 2, last: 3, linear: 0.25 + 1 + 1, u: 0.4 + 1 + 1, decay: aSMS + 1 + 1},
		// D.
		"": {first: 1, last: 1, linear: 1, u: 1, decay: 1},
	}
	wantStep := map[attribution.StepKey]credit{
		{Journey: "welcome", Step: "hello"}: wantChannel[journey.ChannelEmail],
		// A's SMS, B1's SMS and reply.
		{Journey: "promo", Step: "nudge"}: {first: 1, last: 1, linear: 0.25 + 2.0/3, u: 0.4 + 0.6, decay: aSMS + b1SMS},
		// B1's and B2's audience.
		{Journey: "promo", Step: "retarget"}: {first: 1, last: 2, linear: 1.0/3 + 1, u: 0.4 + 1, decay: b1Ads + 1},
		{}:                                   wantJourney[""],
	}
	check := func(what string, want credit, got *attribution.Line) {
		t.Helper()
		require.NotNil(t, got, what)
		for _, m := range attribution.Models {
			require.InDelta(t, want[m], got.Credit[m], 1e-9, "%s %s", what, m)
		}
	}
	require.Len(t, tot.ByChannel, len(wantChannel))
	for k, w := range wantChannel {
		check(string(k), w, tot.ByChannel[k])
	}
	require.Len(t, tot.ByJourney, len(wantJourney))
	for k, w := range wantJourney {
		check("journey "+k, w, tot.ByJourney[k])
	}
	require.Len(t, tot.ByStep, len(wantStep))
	for k, w := range wantStep {
		check("step "+k.Journey+"/"+k.Step, w, tot.ByStep[k])
	}
	// Touchpoints and conversions touched, by channel: email A's three
	// and E's one (A, E); SMS A's one, B1's two, D's one (A, B1, D); ads
	// B1, B2, D.
	for ch, want := range map[journey.Channel][2]int{journey.ChannelEmail: {4, 2}, journey.ChannelSMS: {4, 3}, journey.ChannelAds: {3, 3}} {
		require.Equal(t, want, [2]int{tot.ByChannel[ch].Touchpoints, tot.ByChannel[ch].Touched}, ch)
	}

	// A shorter lookback (1 day): A keeps the open, click and SMS; B1 the
	// reply and the audience; B2 nothing (removed 2 days before) and
	// becomes unattributed.
	q.Lookback = 24 * time.Hour
	short, err := s.Attribution(ctx, q, []attribution.Model{attribution.FirstTouch}, 0)
	require.NoError(t, err)
	require.Equal(t, 2, short.Unattributed, "Carol, and B2")
	require.Equal(t, []attribution.Model{attribution.FirstTouch}, short.Models)
	// First touch: A's open (email), B1's reply (SMS), D's reply, E's email.
	require.InDelta(t, 2, short.ByChannel[journey.ChannelEmail].Credit[first], 1e-12)
	require.InDelta(t, 2, short.ByChannel[journey.ChannelSMS].Credit[first], 1e-12)
	require.InDelta(t, 0, short.ByChannel[journey.ChannelAds].Credit[first], 1e-12)

	// A period with none of the event: no conversions.
	none, err := s.Attribution(ctx, storage.AttributionQuery{Event: "refund", From: seed.From, To: seed.To}, nil, 0)
	require.NoError(t, err)
	require.Zero(t, none.Conversions)
	require.Empty(t, none.ByChannel)
}

// ledgerID is the id of the applied add recorded at at.
func ledgerID(t *testing.T, s *storage.Store, at time.Time) string {
	t.Helper()
	var id string
	require.NoError(t, s.Pool().QueryRow(context.Background(),
		`SELECT id::text FROM audience_ledger WHERE at = $1 AND action = 'add' AND result = 'applied'`, at).Scan(&id))
	return id
}
