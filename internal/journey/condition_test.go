package journey

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/common/types"
	"github.com/stretchr/testify/require"
)

// conditionContact decodes attributes from JSON, as storage does, so numbers
// are float64 exactly as in production.
func conditionContact(t *testing.T, attrs string) map[string]any {
	t.Helper()
	var a map[string]any
	require.NoError(t, json.Unmarshal([]byte(attrs), &a))
	data := TemplateData(ContactView{ID: "c_1", Email: "ana@example.com", Phone: "+14155550101", TimeZone: "America/New_York", Attributes: a}, "welcome", 3)
	return data["contact"].(map[string]any)
}

func TestCondition_Eval(t *testing.T) {
	entered := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	journeyCtx := map[string]any{
		"id":         "welcome",
		"version":    int64(3),
		"step":       "can_text",
		"events":     map[string]any{"email.opened": int64(2)},
		"entered_at": entered,
	}
	us := conditionContact(t, `{"country": "US", "plan": "pro", "lifetime_value": 150.5, "age": 30, "vip": true, "tags": ["beta", "newsletter"]}`)
	fr := conditionContact(t, `{"country": "FR", "lifetime_value": 99.99}`)
	granted := map[string]string{"sms": "granted", "email": "granted"}

	tests := []struct {
		name    string
		expr    string
		contact map[string]any
		consent map[string]string
		want    bool
	}{
		{"sms consent and country", `consent.sms == "granted" && contact.country == "US"`, us, granted, true},
		{"revoked sms consent", `consent.sms == "granted" && contact.country == "US"`, us, map[string]string{"sms": "revoked"}, false},
		{"missing consent reads as none", `consent.sms == "granted"`, us, nil, false},
		{"missing consent is none, not absent", `consent.ads == "none" && consent.email == "none"`, us, nil, true},
		{"has guards an optional attribute", `has(contact.plan) && contact.plan == "pro"`, us, nil, true},
		{"has is false for a missing attribute", `has(contact.plan) && contact.plan == "pro"`, fr, nil, false},
		{"optional with a fallback", `contact.?plan.orValue("free") == "free"`, fr, nil, true},
		{"event count", `journey.events["email.opened"] > 0`, us, nil, true},
		{"event never seen counts zero", `journey.events["email.clicked"] > 0`, us, nil, false},
		{"event never seen equals zero", `journey.events["email.clicked"] == 0`, us, nil, true},
		{"in tells seen from unseen", `"email.opened" in journey.events && !("email.clicked" in journey.events)`, us, nil, true},
		{"int() truncates a double", `int(contact.lifetime_value) >= 100`, us, nil, true},
		{"double against int literal", `contact.lifetime_value >= 100`, us, nil, true},
		{"double against double literal", `contact.lifetime_value >= 100.0`, fr, nil, false},
		{"JSON whole number equals int", `contact.age == 30`, us, nil, true},
		{"JSON whole number against int", `contact.age > 29 && contact.age < 31`, us, nil, true},
		{"double arithmetic", `contact.lifetime_value * 2.0 > 300.0`, us, nil, true},
		{"bool attribute as the whole condition", `contact.vip`, us, nil, true},
		{"list attribute", `"beta" in contact.tags`, us, nil, true},
		{"built-in contact fields", `contact.email.endsWith("@example.com") && contact.id == "c_1" && contact.time_zone == "America/New_York"`, us, nil, true},
		{"string extensions", `contact.email.upperAscii() == "ANA@EXAMPLE.COM"`, us, nil, true},
		{"journey fields", `journey.id == "welcome" && journey.version == 3 && journey.step == "can_text"`, us, nil, true},
		{"timestamps default to UTC", `journey.entered_at.getHours() == 23`, us, nil, true},
		{"timestamps in a time zone", `journey.entered_at.getHours("Europe/Paris") == 0`, us, nil, true},
		{"timestamp comparison", `journey.entered_at > timestamp("2026-01-01T00:00:00Z")`, us, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileCondition(tt.expr)
			require.NoError(t, err)
			got, err := c.Eval(ConditionInput{Contact: tt.contact, Consent: tt.consent, Journey: journeyCtx})
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCondition_EvalErrors(t *testing.T) {
	fr := conditionContact(t, `{"country": "FR", "vip": "yes"}`)
	tests := []struct {
		name, expr, want string
	}{
		{"missing attribute without has", `contact.plan == "pro"`, `evaluating condition "contact.plan == \"pro\"": no such key: plan (use has(contact.<attribute>) to test for an attribute the contact may not have)`},
		{"dyn result that is not a bool", `contact.vip`, `evaluating condition "contact.vip": got string yes, not true or false`},
		{"type mismatch at run time", `contact.country > 3`, `evaluating condition "contact.country > 3": no such overload`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileCondition(tt.expr)
			require.NoError(t, err)
			_, err = c.Eval(ConditionInput{Contact: fr})
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}
}

func TestCondition_EvalDoesNotModifyInput(t *testing.T) {
	c, err := CompileCondition(`consent.sms == "none" && journey.events["x"] == 0`)
	require.NoError(t, err)
	consent := map[string]string{"email": "granted"}
	jctx := map[string]any{"id": "j"}
	got, err := c.Eval(ConditionInput{Contact: map[string]any{}, Consent: consent, Journey: jctx})
	require.NoError(t, err)
	require.True(t, got)
	require.Equal(t, map[string]string{"email": "granted"}, consent)
	require.Equal(t, map[string]any{"id": "j"}, jctx)
}

func TestCondition_EventCountShapes(t *testing.T) {
	c, err := CompileCondition(`journey.events["email.opened"] == 2`)
	require.NoError(t, err)
	for _, events := range []any{
		map[string]int{"email.opened": 2},
		map[string]int64{"email.opened": 2},
		map[string]any{"email.opened": 2},
		map[string]any{"email.opened": float64(2)}, // after a JSON round trip
		map[string]any{"email.opened": json.Number("2")},
	} {
		got, err := c.Eval(ConditionInput{Journey: map[string]any{"events": events}})
		require.NoError(t, err)
		require.True(t, got, "%#v", events)
	}
	_, err = c.Eval(ConditionInput{Journey: map[string]any{"events": []string{"email.opened"}}})
	require.EqualError(t, err, "journey.events must be a map of event name to count, got []string")
}

func TestCondition_JSONNumberAttributes(t *testing.T) {
	c, err := CompileCondition(`contact.lifetime_value >= 100 && contact.orders[0].total > 10`)
	require.NoError(t, err)
	got, err := c.Eval(ConditionInput{Contact: map[string]any{
		"lifetime_value": json.Number("150"),
		"orders":         []any{map[string]any{"total": json.Number("12.5")}},
	}})
	require.NoError(t, err)
	require.True(t, got)
}

func TestCompileCondition_Errors(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		{"empty", "  ", "condition is empty"},
		{"syntax", `consent.sms == `, "invalid condition: Syntax error: mismatched input '<EOF>'"},
		{"unknown variable", `customer.plan == "pro"`, "invalid condition: undeclared reference to 'customer' (at line 1, column 1)"},
		{"not a boolean", `contact.first_name + "!"`, "condition must be true or false, but it is a string"},
		{"string consent compared to a number", `consent.sms == 1`, "invalid condition: found no matching overload for '_==_' applied to '(string, int)' (at line 1, column 13)"},
		{"single equals", `contact.country = "US"`, "invalid condition: Syntax error: token recognition error at: '= '"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCondition(tt.expr)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
		})
	}
}

func TestCachedCondition(t *testing.T) {
	const expr = `consent.email == "granted" && contact.cached_test == 1`
	var wg sync.WaitGroup
	got := make([]*Condition, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := CachedCondition(expr)
			require.NoError(t, err)
			got[i] = c
		}()
	}
	wg.Wait()
	for _, c := range got {
		require.Same(t, got[0], c)
	}
	require.Equal(t, expr, got[0].String())

	_, err := CachedCondition("nope(")
	require.Error(t, err)
	_, cached := conditionCache.Load("nope(")
	require.False(t, cached, "failures are not cached")
}

func TestEventCounts_Get(t *testing.T) {
	m, err := newEventCounts(map[string]any{"email.opened": 2})
	require.NoError(t, err)
	require.Equal(t, types.Int(2), m.Get(types.String("email.opened")))
	require.Equal(t, types.IntZero, m.Get(types.String("email.clicked")))
	require.True(t, types.IsError(m.Get(types.Int(1))), "non-string keys are still an error")
	require.Equal(t, types.False, m.Contains(types.String("email.clicked")))
}

// Every evaluation failure class gets its code, whatever the contact's
// values are; the code is what workflows record, the message (which quotes
// the values) is not.
func TestCondition_EvalErrorCodes(t *testing.T) {
	const email, phone = "jane.doe@example.com", "+14155550123"
	contact := map[string]any{"email": email, "phone": phone, "signup": email, "pattern": "(" + email,
		"zero": 0.0, "list": []any{1.0}, "prefs": map[string]any{"a": 1.0}}
	tests := []struct{ expr, code string }{
		{`timestamp(contact.signup) < timestamp("2030-01-01T00:00:00Z")`, CondInvalidTimestamp},
		{`timestamp(contact.phone) < timestamp("2030-01-01T00:00:00Z")`, CondInvalidTimestamp},
		{`journey.entered_at.getHours(contact.email) > 8`, CondInvalidTimestamp},
		{`duration(contact.email) > duration("1h")`, CondInvalidDuration},
		{`contact.email.matches(contact.pattern)`, CondInvalidRegex},
		{`contact.plan == "pro"`, CondNoSuchAttribute},
		{`contact.prefs[contact.email] > 0.0`, CondNoSuchAttribute},
		{`contact.?plan.value() == "pro"`, CondNoSuchAttribute},
		{`contact.email > 5`, CondTypeMismatch},
		{`int(contact.email) > 0`, CondTypeMismatch},
		{`1 / int(contact.zero) > 0`, CondArithmetic},
		{`9223372036854775807 + int(contact.zero + 1.0) > 0`, CondArithmetic},
		{`contact.list[5] > 0.0`, CondIndexOutOfRange},
		{`contact.email.substring(99) == ""`, CondIndexOutOfRange},
		{`contact.email`, CondNotBoolean},
		{`contact.big.all(x, contact.big.all(y, x != y || x == y))`, CondCostLimit},
	}
	big := make([]any, 3000)
	for i := range big {
		big[i] = float64(i)
	}
	contact["big"] = big
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			c, err := CompileCondition(tt.expr)
			require.NoError(t, err)
			_, err = c.Eval(ConditionInput{Contact: contact, Journey: map[string]any{"entered_at": time.Unix(0, 0)}})
			var ee *EvalError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, tt.code, ee.Code, ee.Error())
		})
	}
}

func TestEvalErrorCode_UnknownMessagesAreOther(t *testing.T) {
	for msg, want := range map[string]string{
		"something new went wrong with jane.doe@example.com": CondOther,
		"operation cancelled: actual cost limit exceeded":    CondCostLimit,
		"timezone offset hours out of range [-23, 23]: +99":  CondInvalidTimestamp,
		"time: invalid duration \"jane\"":                    CondInvalidDuration,
	} {
		require.Equal(t, want, evalErrorCode(msg), msg)
	}
}
