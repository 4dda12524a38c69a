package segment

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/journey"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const hotLeads = `
id: hot_leads
name: Hot leads
when: >
  score.combined_band == "hot"
  && consent.ads == "granted"
  && !suppressed.?customer.orValue(false)
  && events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3
`

func views(n int) []journey.StoredEvent {
	var out []journey.StoredEvent
	for i := range n {
		out = append(out, journey.StoredEvent{Name: "page.viewed", OccurredAt: now.Add(-time.Duration(i+1) * time.Hour),
			Properties: map[string]any{"path": "/pricing"}})
	}
	return out
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(hotLeads))
	require.NoError(t, err)
	require.True(t, s.TimeDependent)
	require.Len(t, s.clauses, 4)

	hot := Scores{Combined: 72, CombinedBand: "hot"}
	tests := []struct {
		name   string
		in     Input
		member bool
		held   []bool
	}{
		{"all hold", Input{Consent: map[string]string{"ads": "granted"}, Scores: hot, Behaviour: journey.Behaviour{Now: now, Events: views(3)}},
			true, []bool{true, true, true, true}},
		{"too few views", Input{Consent: map[string]string{"ads": "granted"}, Scores: hot, Behaviour: journey.Behaviour{Now: now, Events: views(2)}},
			false, []bool{true, true, true, false}},
		{"no ads consent, warm", Input{Scores: Scores{CombinedBand: "warm"}, Behaviour: journey.Behaviour{Now: now, Events: views(5)}},
			false, []bool{false, false, true, true}},
		{"a customer", Input{Consent: map[string]string{"ads": "granted"}, Suppressed: []string{"customer"}, Scores: hot,
			Behaviour: journey.Behaviour{Now: now, Events: views(3)}}, false, []bool{true, true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.Evaluate(tt.in)
			require.Equal(t, r.Member, s.Matches(tt.in))
			require.Empty(t, r.Error)
			require.Equal(t, tt.member, r.Member)
			var held []bool
			for _, c := range r.Clauses {
				held = append(held, c.Held)
			}
			require.Equal(t, tt.held, held, "%+v", r.Clauses)
		})
	}
	require.Equal(t, `score.combined_band == "hot"`, s.Evaluate(Input{}).Clauses[0].Expr)
}

// A condition with no value for a contact (an attribute it lacks) leaves
// it out, and says why.
func TestEvaluate_errorIsNotMembership(t *testing.T) {
	t.Parallel()
	s, err := Compile(Definition{ID: "pros", Name: "Pros", When: `contact.plan == "pro"`})
	require.NoError(t, err)
	require.False(t, s.TimeDependent)
	r := s.Evaluate(Input{Contact: map[string]any{}, Behaviour: journey.Behaviour{Now: now}})
	require.False(t, r.Member)
	require.Contains(t, r.Error, "no such key")
	require.True(t, s.Evaluate(Input{Contact: map[string]any{"plan": "pro"}, Behaviour: journey.Behaviour{Now: now}}).Member)
}

func TestTimeDependent(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]bool{
		`contact.country == "FR"`:                                             false,
		`consent.email == "granted" || suppressed.customer`:                   false,
		`score.intent_band == "high"`:                                         true,
		`events.count("purchase", days(30)) == 0`:                             true,
		`timestamp(contact.trial_ends) < now`:                                 true,
		`[1, 2].exists(x, x > contact.?n.orValue(0.0) && now > timestamp(0))`: true,
	} {
		s, err := Compile(Definition{ID: "s", Name: "S", When: expr})
		require.NoError(t, err, expr)
		require.Equal(t, want, s.TimeDependent, expr)
	}
}

func TestParse_problems(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("id: Hot Leads\nname: ''\nwhen: 'events.count(\"a\") > 0'\n"))
	var ps journey.Problems
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Len(t, ps, 3)
	require.Equal(t, "id", ps[0].Path)
	require.Equal(t, "name", ps[1].Path)
	require.Equal(t, "when", ps[2].Path)

	_, err = Parse([]byte("id: a\nname: A\nwhen: 'true'\nwhere: x\n"))
	require.ErrorContains(t, err, "where")
	_, err = Parse([]byte(""))
	require.ErrorContains(t, err, "segment is empty")
}

func TestEventNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		when  string
		names []string
		all   bool
	}{
		{`contact.?plan.orValue("") == "pro"`, nil, false},
		{`events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3 && events.last("purchase").hasValue()`,
			[]string{"page.viewed", "purchase"}, false},
		{`events.sum("purchase", "total", days(30)) > 100.0 || events.count("purchase", days(1)) > 0`, []string{"purchase"}, false},
		{`events.count(contact.?fav.orValue("x"), days(7)) > 0`, nil, true},
		{`[ "a", "b" ].exists(n, events.count(n, days(7)) > 0)`, nil, true},
	}
	for _, tt := range tests {
		s, err := Compile(Definition{ID: "s", Name: "S", When: tt.when})
		require.NoError(t, err, tt.when)
		names, all := s.EventNames()
		require.Equal(t, tt.names, names, tt.when)
		require.Equal(t, tt.all, all, tt.when)
	}
}
