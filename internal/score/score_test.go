package score

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

const modelYAML = `
id: default
fit:
  - {id: big_company, when: 'contact.?employees.orValue(0.0) >= 200', points: 20}
  - {id: vp, when: 'contact.title.lowerAscii().contains("vp")', points: 15}
intent:
  - {id: pricing, event: page.viewed, where: {path: /pricing}, points: 10, cap: 25, half_life: 7d}
  - {id: demo, event: demo.requested, points: 40, half_life: 14d}
bands:
  intent: [{name: low, below: 20}, {name: high}]
  combined: [{name: cold, below: 30}, {name: warm, below: 60}, {name: hot}]
`

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func mustModel(t *testing.T) *Compiled {
	t.Helper()
	m, err := Parse([]byte(modelYAML))
	require.NoError(t, err)
	return m
}

func ev(id, name string, age time.Duration, props map[string]any) Event {
	return Event{ID: id, Name: name, OccurredAt: now.Add(-age), Properties: props}
}

func TestScore(t *testing.T) {
	t.Parallel()
	m := mustModel(t)
	day := 24 * time.Hour
	pricing := map[string]any{"path": "/pricing"}
	tests := []struct {
		name                 string
		contact              map[string]any
		events               []Event
		fit, intent          float64
		intentBand, combined string
		capped               bool
		unevaluated          []string
	}{
		{"nothing", map[string]any{"title": "Engineer"}, nil, 0, 0, "low", "cold", false, nil},
		// 20 + 15 fit; a fresh demo request is worth 40.
		{"fit and a fresh demo", map[string]any{"employees": 500.0, "title": "VP Sales"},
			[]Event{ev("e1", "demo.requested", 0, nil)}, 35, 40, "high", "hot", false, nil},
		// One half-life: 40 -> 20; two: 10 -> 2.5.
		{"decay by half-lives", map[string]any{"title": "cto"},
			[]Event{ev("e1", "demo.requested", 14*day, nil), ev("e2", "page.viewed", 14*day, pricing)}, 0, 22.5, "high", "cold", false, nil},
		// Three fresh pricing views are 30 points, capped at 25.
		{"cap", map[string]any{"title": "cto"},
			[]Event{ev("a", "page.viewed", 0, pricing), ev("b", "page.viewed", 0, pricing), ev("c", "page.viewed", 0, pricing)},
			0, 25, "high", "cold", true, nil},
		// Other pages, other events and events after the moment scored add nothing.
		{"filters", map[string]any{"title": "cto"},
			[]Event{ev("a", "page.viewed", 0, map[string]any{"path": "/blog"}), ev("b", "page.viewed", 0, nil),
				ev("c", "email.opened", 0, nil), ev("d", "demo.requested", -time.Hour, nil)},
			0, 0, "low", "cold", false, nil},
		// A missing attribute leaves the rule unevaluated, not an error.
		{"missing attribute", map[string]any{}, nil, 0, 0, "low", "cold", false, []string{"vp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fit, unevaluated := m.Fit(FitInput{Contact: tt.contact})
			r := m.Score(fit, unevaluated, tt.events, now)
			require.InDelta(t, tt.fit, r.Fit, 1e-9)
			require.InDelta(t, tt.intent, r.Intent, 1e-9)
			require.InDelta(t, tt.fit+tt.intent, r.Combined, 1e-9)
			require.Equal(t, tt.intentBand, r.IntentBand)
			require.Equal(t, tt.combined, r.CombinedBand)
			require.Empty(t, r.FitBand, "no fit bands in the model")
			var sum float64
			capped := false
			for _, c := range r.Contributions {
				sum += c.Value
				capped = capped || c.Capped
			}
			require.InDelta(t, r.Combined, sum, 1e-9, "the explanation adds up to the score")
			require.Equal(t, tt.capped, capped)
			require.Len(t, r.Unevaluated, len(tt.unevaluated))
			for _, id := range tt.unevaluated {
				require.Contains(t, r.Unevaluated[id], "no such key")
			}
		})
	}
}

// Decay is exact at any moment, not stepped by a job: the value of one
// event follows points × 0.5^(age/half-life) to the nanosecond.
func TestScore_decayIsExact(t *testing.T) {
	t.Parallel()
	m := mustModel(t)
	events := []Event{ev("e1", "demo.requested", 0, nil)}
	for _, age := range []time.Duration{0, time.Second, 90 * time.Minute, 3*24*time.Hour + 7*time.Second, 100 * 24 * time.Hour} {
		r := m.Score(nil, nil, events, now.Add(age))
		want := 40 * math.Pow(0.5, age.Hours()/(14*24))
		require.InDelta(t, want, r.Intent, 1e-9, age)
		require.Equal(t, age, r.Contributions[0].Age)
	}
}

// The next band change is computed, not found by a periodic job: for 15
// fit points and a demo request (40, half-life 14 days), intent drops below
// 20 just after 14 days, and combined below 30 when 40·0.5^(t/14d) < 15,
// at t = 14·log2(40/15) days.
func TestNextBandChange(t *testing.T) {
	t.Parallel()
	m := mustModel(t)
	fit, _ := m.Fit(FitInput{Contact: map[string]any{"title": "vp"}})
	events := []Event{ev("e1", "demo.requested", 0, nil)}
	r := m.Score(fit, nil, events, now)
	require.Equal(t, "high", r.IntentBand)
	require.Equal(t, "warm", r.CombinedBand)

	next, ok := m.NextBandChange(fit, events, r)
	require.True(t, ok)
	halfLife := 14 * 24 * time.Hour
	require.WithinRange(t, next, now.Add(halfLife), now.Add(halfLife+2*time.Second))
	require.Equal(t, "low", m.Score(fit, nil, events, next).IntentBand)
	require.Equal(t, "high", m.Score(fit, nil, events, next.Add(-2*time.Second)).IntentBand)

	r2 := m.Score(fit, nil, events, next)
	next2, ok := m.NextBandChange(fit, events, r2)
	require.True(t, ok)
	want := now.Add(time.Duration(float64(halfLife) * math.Log2(40.0/15)))
	require.WithinRange(t, next2, want, want.Add(2*time.Second))
	require.Equal(t, "cold", m.Score(fit, nil, events, next2).CombinedBand)

	// Cold and low already: nothing left for time to change.
	_, ok = m.NextBandChange(fit, events, m.Score(fit, nil, events, next2))
	require.False(t, ok)
}

func TestParse_problemsHavePaths(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`
id: ""
fit:
  - {id: a, when: 'contact.plan ==', points: 10}
  - {id: a, when: 'true', points: 0}
intent:
  - {id: b, event: "", points: -5, cap: -1, half_life: 30s, where: {tags: [x]}}
bands:
  combined: [{name: cold, below: 30}, {name: warm, below: 20}, {name: hot, below: 90}]
  intent: [{name: x}, {name: x}]
`))
	var ps journey.Problems
	require.True(t, errors.As(err, &ps), "%v", err)
	paths := map[string]bool{}
	for _, p := range ps {
		paths[p.Path] = true
	}
	for _, want := range []string{"id", "fit[0].when", "fit[1].id", "fit[1].points", "intent[0].event", "intent[0].points",
		"intent[0].cap", "intent[0].half_life", "intent[0].where.tags", "bands.combined[1].below", "bands.combined[2].below",
		"bands.intent[0].below", "bands.intent[1].name"} {
		require.True(t, paths[want], "missing a problem at %s in:\n%v", want, err)
	}

	// Unknown fields and wrong types are found by the shared document
	// reader, with paths too.
	_, err = Parse([]byte("id: m\nintent:\n  - {id: a, event: x, points: ten, half_life: 1d, halflife: 2d}\n"))
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Contains(t, err.Error(), "intent[0].points")
	require.Contains(t, err.Error(), "intent[0].halflife")

	var te *journey.TextError
	_, err = Parse([]byte("id: \"a\\u0000b\"\n"))
	require.True(t, errors.As(err, &te), "%v", err)
	require.Contains(t, err.Error(), "score model is not valid text")
}

func TestChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to BandSet
		want     []BandChange
	}{
		{"same", BandSet{"a", "low", "cold"}, BandSet{"a", "low", "cold"}, nil},
		{"intent and combined", BandSet{"a", "low", "cold"}, BandSet{"a", "high", "warm"},
			[]BandChange{{"intent", "low", "high"}, {"combined", "cold", "warm"}}},
		{"from nothing", BandSet{}, BandSet{Fit: "a"}, []BandChange{{"fit", "", "a"}}},
		{"down", BandSet{Combined: "hot"}, BandSet{Combined: "warm"}, []BandChange{{"combined", "hot", "warm"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Changes(tt.from, tt.to))
		})
	}
}

func TestZeroBandsAndIntentEvents(t *testing.T) {
	t.Parallel()
	m := mustModel(t)
	require.Equal(t, BandSet{Fit: "", Intent: "low", Combined: "cold"}, m.ZeroBands())
	require.Equal(t, []string{"demo.requested", "page.viewed"}, m.IntentEvents())
	m2, err := Parse([]byte("id: m\nintent:\n  - {id: a, event: x, points: 1, half_life: 1d}\n  - {id: b, event: x, points: 2, half_life: 1d}\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, m2.IntentEvents())
	require.Equal(t, map[string]any{"score": "intent", "from": "low", "to": "high"},
		BandChange{"intent", "low", "high"}.Properties())
}

func TestParse_bandChangedIsNotIntent(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("id: m\nintent:\n  - {id: a, event: score.band_changed, points: 1, half_life: 1d}\n"))
	var ps journey.Problems
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Equal(t, "intent[0].event", ps[0].Path)
}

func TestNextCheck(t *testing.T) {
	t.Parallel()
	m := mustModel(t)
	day := 24 * time.Hour
	demo := ev("e1", "demo.requested", 0, nil)
	fit, _ := m.Fit(FitInput{Contact: map[string]any{"title": "cto"}})
	tests := []struct {
		name   string
		events []Event
		want   func(next time.Time, ok bool)
	}{
		{"nothing to decay", nil, func(_ time.Time, ok bool) { require.False(t, ok) }},
		{"decay only", []Event{demo}, func(next time.Time, ok bool) {
			require.True(t, ok)
			want, _ := m.NextBandChange(fit, []Event{demo}, m.Score(fit, nil, []Event{demo}, now))
			require.Equal(t, want, next)
		}},
		{"a future event comes first", []Event{demo, ev("e2", "page.viewed", -time.Hour, map[string]any{"path": "/pricing"})},
			func(next time.Time, ok bool) {
				require.True(t, ok)
				require.Equal(t, now.Add(time.Hour), next)
			}},
		{"a future event alone", []Event{ev("e3", "demo.requested", -2*day, nil)}, func(next time.Time, ok bool) {
			require.True(t, ok)
			require.Equal(t, now.Add(2*day), next)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.want(m.NextCheck(fit, tt.events, m.Score(fit, nil, tt.events, now)))
		})
	}
}

func TestFormatAge(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                              "0m",
		30 * time.Second:               "0m",
		7 * time.Minute:                "7m",
		5*time.Hour + 12*time.Minute:   "5h12m",
		3*24*time.Hour + 4*time.Hour:   "3d4h",
		2*24*time.Hour + 5*time.Minute: "2d5m",
		-(90 * time.Minute):            "-1h30m",
		14 * 24 * time.Hour:            "14d",
	} {
		require.Equal(t, want, FormatAge(d), "%v", d)
	}
}
