package attribution

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

var conv = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func touch(id string, channel journey.Channel, before time.Duration) Touch {
	return Touch{ID: id, Channel: channel, Journey: "welcome", Step: id, Kind: "sent", At: conv.Add(-before)}
}

func shares(cs []Credit) map[string]float64 {
	out := map[string]float64{}
	for _, c := range cs {
		out[c.Touch.ID] += c.Share
	}
	return out
}

func TestAttribute(t *testing.T) {
	t.Parallel()
	h := time.Hour
	three := []Touch{touch("c", "sms", 0), touch("a", "email", 48*h), touch("b", "email", 24*h)}
	four := append([]Touch{touch("d", "ads", 72*h)}, three...)
	tests := []struct {
		name    string
		model   Model
		touches []Touch
		opts    Options
		want    map[string]float64
	}{
		{"first touch", FirstTouch, three, Options{}, map[string]float64{"a": 1}},
		{"last touch", LastTouch, three, Options{}, map[string]float64{"c": 1}},
		{"linear", Linear, three, Options{}, map[string]float64{"a": 1.0 / 3, "b": 1.0 / 3, "c": 1.0 / 3}},
		// Ages 48h, 24h, 0h at a 24h half-life weigh 1/4, 1/2, 1: of 7/4,
		// that is 1/7, 2/7 and 4/7.
		{"time decay", TimeDecay, three, Options{}, map[string]float64{"a": 1.0 / 7, "b": 2.0 / 7, "c": 4.0 / 7}},
		// A 48h half-life: 1/2, 1/sqrt(2), 1.
		{"time decay, longer half-life", TimeDecay, three, Options{HalfLife: 48 * h},
			map[string]float64{"a": 0.5 / 2.2071067811865475, "b": 0.7071067811865476 / 2.2071067811865475, "c": 1 / 2.2071067811865475}},
		{"u-shaped, four", UShaped, four, Options{}, map[string]float64{"d": 0.4, "a": 0.1, "b": 0.1, "c": 0.4}},
		{"u-shaped, three", UShaped, three, Options{}, map[string]float64{"a": 0.4, "b": 0.2, "c": 0.4}},
		{"u-shaped, two", UShaped, three[:2], Options{}, map[string]float64{"a": 0.5, "c": 0.5}},
		{"u-shaped, one", UShaped, three[:1], Options{}, map[string]float64{"c": 1}},
		// The window is (conversion - lookback, conversion]: a touch exactly
		// a lookback before is out, one at the conversion is in, and one
		// after it cannot have caused it.
		{"window bounds", Linear, []Touch{touch("edge", "email", 7*24*h), touch("at", "sms", 0), touch("after", "sms", -h), touch("in", "email", 7*24*h-time.Second)},
			Options{}, map[string]float64{"at": 0.5, "in": 0.5}},
		{"shorter lookback", FirstTouch, three, Options{Lookback: 36 * h}, map[string]float64{"b": 1}},
		// A membership period counts as of its latest moment in the window:
		// one still running counts as of the conversion, one that ended
		// before the window not at all.
		{"audience periods", LastTouch, []Touch{
			touch("email", "email", h),
			{ID: "meta", Channel: "ads", Kind: KindAudience, At: conv.Add(-30 * 24 * h)},
			{ID: "old", Channel: "ads", Kind: KindAudience, At: conv.Add(-30 * 24 * h), Until: conv.Add(-8 * 24 * h)},
		}, Options{}, map[string]float64{"meta": 1}},
		{"audience period that ended in the window", FirstTouch, []Touch{
			touch("email", "email", h),
			{ID: "google", Channel: "ads", Kind: KindAudience, At: conv.Add(-30 * 24 * h), Until: conv.Add(-2 * h)},
		}, Options{}, map[string]float64{"google": 1}},
		{"audience period that began after", Linear, []Touch{
			touch("email", "email", h),
			{ID: "late", Channel: "ads", Kind: KindAudience, At: conv.Add(h)},
		}, Options{}, map[string]float64{"email": 1}},
		// One id is one touchpoint, as of its latest moment in the window:
		// an email opened 30h and 2h before (and 1h after) is one open at
		// 2h, after the SMS at 3h, and gets half, not two thirds.
		{"repeated touchpoint counts once", Linear, []Touch{
			touch("open", "email", 30*h), touch("sms", "sms", 3*h), touch("open", "email", 2*h), touch("open", "email", -h),
		}, Options{}, map[string]float64{"open": 0.5, "sms": 0.5}},
		{"repeated touchpoint, last touch", LastTouch, []Touch{
			touch("open", "email", 30*h), touch("sms", "sms", 3*h), touch("open", "email", 2*h),
		}, Options{}, map[string]float64{"open": 1}},
		// Same moment: the order (and so first/last) is by id.
		{"ties are broken by id", FirstTouch, []Touch{touch("z", "sms", h), touch("y", "email", h)}, Options{}, map[string]float64{"y": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Attribute(tt.model, tt.touches, conv, tt.opts)
			require.NoError(t, err)
			gs := shares(got)
			require.Len(t, gs, len(tt.want), "credited: %v", gs)
			var sum float64
			for id, w := range tt.want {
				require.InDelta(t, w, gs[id], 1e-12, id)
				sum += gs[id]
			}
			require.InDelta(t, 1, sum, 1e-12)
		})
	}
}

func TestAttribute_noTouchpointIsNoCredit(t *testing.T) {
	t.Parallel()
	for _, m := range Models {
		got, err := Attribute(m, []Touch{touch("old", "email", 30*24*time.Hour)}, conv, Options{})
		require.NoError(t, err)
		require.Nil(t, got, m)
	}
	_, err := Attribute("w_shaped", []Touch{touch("a", "email", time.Hour)}, conv, Options{})
	require.ErrorContains(t, err, "w_shaped")
}

func TestSum(t *testing.T) {
	t.Parallel()
	h := time.Hour
	convs := []Conversion{
		{At: conv, Touches: []Touch{touch("a", "email", 48*h), touch("b", "sms", h)}},
		{At: conv, Touches: []Touch{touch("c", "email", h)}},
		{At: conv, Touches: nil},
		{At: conv, Touches: []Touch{touch("d", "email", 10*24*h)}},
	}
	got, err := Sum(Linear, convs, ByChannel, Options{})
	require.NoError(t, err)
	require.Equal(t, 4, got.Conversions)
	require.Equal(t, 2, got.Unattributed)
	require.InDelta(t, 1.5, got.Credit["email"], 1e-12)
	require.InDelta(t, 0.5, got.Credit["sms"], 1e-12)

	byStep, err := Sum(LastTouch, convs, ByStep, Options{})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"welcome/b": 1, "welcome/c": 1}, byStep.Credit)

	// Every model gives away exactly the attributed conversions.
	for _, m := range Models {
		tot, err := Sum(m, convs, ByJourney, Options{})
		require.NoError(t, err)
		require.InDelta(t, float64(tot.Conversions-tot.Unattributed), tot.Credit["welcome"], 1e-12, m)
	}
}
