package attribution

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

func TestTally(t *testing.T) {
	t.Parallel()
	h := time.Hour
	at := func(before time.Duration) time.Time { return conv.Add(-before) }
	// Conversion 1: an email sent 48h before, opened 24h before, an SMS at
	// the conversion, and an email of 8 days before (out of the window).
	one := []Touch{
		{ID: "s1", Channel: "sms", Journey: "promo", Step: "nudge", Kind: KindSend, At: at(0)},
		{ID: "e1", Channel: "email", Journey: "welcome", Step: "hello", Kind: KindSend, At: at(48 * h)},
		{ID: "e2", Channel: "email", Journey: "welcome", Step: "hello", Kind: KindOpen, At: at(24 * h)},
		{ID: "old", Channel: "email", Journey: "welcome", Step: "hello", Kind: KindSend, At: at(8 * 24 * h)},
	}
	// Conversion 2: an audience membership from no journey, still open.
	two := []Touch{{ID: "ad", Channel: "ads", Kind: KindAudience, At: at(72 * h)}}
	// Conversion 3: only a touchpoint out of the window: unattributed.
	three := []Touch{{ID: "late", Channel: "email", Journey: "welcome", Step: "hello", Kind: KindClick, At: at(-h)}}

	tally, err := NewTally(nil, Options{})
	require.NoError(t, err)
	require.Equal(t, Models, tally.Models)
	for _, ts := range [][]Touch{one, two, three} {
		require.NoError(t, tally.Add(conv, ts))
	}
	require.Equal(t, 3, tally.Conversions)
	require.Equal(t, 1, tally.Unattributed)
	require.Equal(t, map[string]int{KindSend: 2, KindOpen: 1, KindAudience: 1}, tally.ByKind)

	// Conversion 1 in time order e1, e2, s1: first touch e1; last s1;
	// linear a third each; time decay 1/7, 2/7, 4/7 (see TestAttribute);
	// U-shaped 0.4, 0.2, 0.4. Conversion 2 is all ads in every model.
	email := map[Model]float64{FirstTouch: 1, Linear: 2.0 / 3, TimeDecay: 3.0 / 7, UShaped: 0.6}
	sms := map[Model]float64{LastTouch: 1, Linear: 1.0 / 3, TimeDecay: 4.0 / 7, UShaped: 0.4}
	ads := map[Model]float64{FirstTouch: 1, LastTouch: 1, Linear: 1, TimeDecay: 1, UShaped: 1}
	near := func(want map[Model]float64, got *Line, touchpoints, touched int) {
		t.Helper()
		require.NotNil(t, got)
		require.Len(t, got.Credit, len(want), "%v", got.Credit)
		for m, x := range want {
			require.InDelta(t, x, got.Credit[m], 1e-12, m)
		}
		require.Equal(t, touchpoints, got.Touchpoints)
		require.Equal(t, touched, got.Touched)
	}
	near(email, tally.ByChannel[journey.ChannelEmail], 2, 1)
	near(sms, tally.ByChannel[journey.ChannelSMS], 1, 1)
	near(ads, tally.ByChannel[journey.ChannelAds], 1, 1)
	require.Len(t, tally.ByChannel, 3)
	near(email, tally.ByJourney["welcome"], 2, 1)
	near(sms, tally.ByJourney["promo"], 1, 1)
	near(ads, tally.ByJourney[""], 1, 1)
	near(email, tally.ByStep[StepKey{"welcome", "hello"}], 2, 1)
	near(sms, tally.ByStep[StepKey{"promo", "nudge"}], 1, 1)
	near(ads, tally.ByStep[StepKey{}], 1, 1)
	// Every model credits exactly the attributed conversions.
	for _, m := range Models {
		var sum float64
		for _, l := range tally.ByChannel {
			sum += l.Credit[m]
		}
		require.InDelta(t, float64(tally.Conversions-tally.Unattributed), sum, 1e-12, m)
	}

	// A shorter lookback and one model.
	short, err := NewTally([]Model{FirstTouch}, Options{Lookback: 36 * h})
	require.NoError(t, err)
	require.NoError(t, short.Add(conv, one))
	near(map[Model]float64{FirstTouch: 1}, short.ByChannel[journey.ChannelEmail], 1, 1) // e2 only
	require.Nil(t, short.ByJourney[""])

	_, err = NewTally([]Model{"last_click"}, Options{})
	require.ErrorContains(t, err, "last_click")
}
