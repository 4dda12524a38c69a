package journey

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBehaviourCondition(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ev := func(name string, ago time.Duration, props map[string]any) StoredEvent {
		return StoredEvent{Name: name, OccurredAt: now.Add(-ago), Properties: props}
	}
	pricing := map[string]any{"path": "/pricing"}
	b := &Behaviour{Now: now, Events: []StoredEvent{
		ev("page.viewed", 1*day, pricing),
		ev("page.viewed", 3*day, pricing),
		ev("page.viewed", 6*day, pricing),
		ev("page.viewed", 7*day, pricing), // exactly at the window's edge: out of a 7-day window
		ev("page.viewed", 2*day, map[string]any{"path": "/blog"}),
		ev("purchase", 40*day, map[string]any{"amount": 30.0, "currency": "EUR"}),
		ev("purchase", 10*day, map[string]any{"amount": json.Number("12.5"), "currency": "USD"}),
		ev("purchase", 5*day, map[string]any{"amount": "n/a"}),
		ev("email.clicked", -time.Hour, nil), // in the future: not yet happened
	}}
	tests := []struct {
		expr string
		want bool
	}{
		// "Viewed pricing at least 3 times in 7 days".
		{`events.count("page.viewed", {"path": "/pricing"}, days(7)) == 3`, true},
		{`events.count("page.viewed", {"path": "/pricing"}, days(8)) == 4`, true},
		{`events.count("page.viewed", days(7)) == 4`, true},
		// "No purchase in 30 days" is false: one 10 and one 5 days ago.
		{`events.count("purchase", days(30)) == 0`, false},
		{`events.count("purchase", duration("120h")) == 0`, true},
		// Sums skip values that are not numbers; filters compare numbers as numbers.
		{`events.sum("purchase", "amount", days(60)) == 42.5`, true},
		{`events.sum("purchase", "amount", {"currency": "EUR"}, days(60)) == 30.0`, true},
		{`events.count("purchase", {"amount": 30}, days(60)) == 1`, true},
		{`events.last("purchase").value() == now - days(5)`, true},
		{`events.first("purchase").value() == now - days(40)`, true},
		{`!events.last("refund").hasValue()`, true},
		{`!events.first("email.clicked").hasValue()`, true},
		{`events.last("refund").orValue(timestamp(0)) < now - days(14)`, true},
		// Contact attributes still work beside behaviour.
		{`contact.plan == "pro" && events.count("page.viewed", days(1)) == 0`, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			c, err := CompileBehaviourCondition(tt.expr)
			require.NoError(t, err)
			got, err := c.Eval(ConditionInput{Contact: map[string]any{"plan": "pro"}, Behaviour: b})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestBehaviourCondition_errors(t *testing.T) {
	t.Parallel()
	// Wrong argument types are refused when the condition is compiled.
	for _, expr := range []string{
		`events.count("a") > 0`,
		`events.count("a", 7) > 0`,
		`events.sum("a", days(7)) > 0.0`,
		`events.nope("a")`,
	} {
		_, err := CompileBehaviourCondition(expr)
		require.Error(t, err, expr)
	}
	// Fit rules and other plain conditions do not see events.
	_, err := CompileCondition(`events.count("a", days(7)) > 0`)
	require.ErrorContains(t, err, "undeclared reference to 'events'")

	c, err := CompileBehaviourCondition(`events.count("a", duration("-1h")) > 0`)
	require.NoError(t, err)
	_, err = c.Eval(ConditionInput{Behaviour: &Behaviour{Now: time.Now()}})
	require.ErrorContains(t, err, "window must be positive")

	_, err = c.Eval(ConditionInput{})
	require.Error(t, err, "no behaviour given")
	_, err = c.Eval(ConditionInput{Behaviour: &Behaviour{}})
	require.ErrorContains(t, err, "evaluate it with the contact's behaviour")

	c, err = CompileBehaviourCondition(`now - days(36501) < now`)
	require.NoError(t, err)
	_, err = c.Eval(ConditionInput{Behaviour: &Behaviour{Now: time.Now()}})
	require.ErrorContains(t, err, "days(36501)")
}

// A branch condition sees stored events beside the run's own context, and
// says which event names it reads so that only those are loaded.
func TestBranchCondition_behaviourReads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want BehaviourReads
	}{
		{`contact.plan == "pro"`, BehaviourReads{}},
		{`journey.events["purchase"] > 0`, BehaviourReads{}},
		{`now > timestamp("2020-01-01T00:00:00Z")`, BehaviourReads{Reads: true}},
		{`events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3`, BehaviourReads{Reads: true, Names: []string{"page.viewed"}}},
		{`events.count("purchase", days(30)) == 0 || events.last("email.clicked").hasValue() || events.count("purchase", days(1)) > 2`,
			BehaviourReads{Reads: true, Names: []string{"email.clicked", "purchase"}}},
		{`events.sum("purchase", "amount", days(90)) > 100.0 && journey.events["purchase"] == 0`,
			BehaviourReads{Reads: true, Names: []string{"purchase"}}},
		// A name that is not a literal: every event must be read.
		{`events.count(contact.favourite_event, days(7)) > 0`, BehaviourReads{Reads: true, AllNames: true}},
		{`["a", "b"].exists(n, events.count(n, days(7)) > 0)`, BehaviourReads{Reads: true, AllNames: true}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			c, err := CompileBranchCondition(tt.expr)
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Behaviour())
		})
	}
	// A spec with such a branch validates.
	spec := Spec{ID: "j", Name: "J", Trigger: Trigger{Type: TriggerAPI}, Reentry: Reentry{Policy: ReentryOnce}, Steps: []Step{
		{ID: "b", Branch: &Branch{Condition: `events.count("purchase", days(30)) == 0`, Then: "x", Else: "x"}},
		{ID: "x", Exit: &Exit{Reason: "done"}},
	}}
	require.Empty(t, Validate(spec))
	spec.Steps[0].Branch.Condition = `events.count("purchase") == 0`
	problems := Validate(spec)
	require.Len(t, problems, 1)
	require.Equal(t, "steps[0].branch.condition", problems[0].Path)
}
