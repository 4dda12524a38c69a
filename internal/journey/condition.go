package journey

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"

	"github.com/tutti-dev/tutti/internal/model"
)

// Branch conditions are CEL expressions (https://cel.dev) over three variables:
//
//	contact  map(string, dyn)     attributes plus id, external_id, email, phone, time_zone
//	consent  map(string, string)  channel -> "granted" | "revoked" | "pending" | "none"
//	journey  map(string, dyn)     id, version, step, events (map of event name -> count
//	                              seen in this run), entered_at (timestamp)
//
// Examples marketers write:
//
//	consent.sms == "granted" && contact.country == "US"
//	has(contact.plan) && contact.plan == "pro"
//	journey.events["email.opened"] > 0
//	contact.lifetime_value >= 100
//
// How values behave:
//   - Attributes come from JSON, so every number is a double (float64).
//     Comparisons across number types are enabled, so contact.ltv >= 100 and
//     contact.ltv >= 100.0 both work, and 30.0 == 30 is true. Arithmetic does
//     not mix types: write contact.ltv * 2.0, or int(contact.ltv) * 2
//     (int() truncates toward zero).
//   - Reading an attribute the contact does not have is an evaluation error
//     ("no such key"); guard optional attributes with has(contact.plan), or
//     use contact.?plan.orValue("free").
//   - consent always has email, sms and ads ("none" when never recorded), so
//     consent.sms == "granted" never fails.
//   - journey.events[name] is 0 for an event not seen in this run (so has()
//     is always true there: compare the count instead).
//   - Timestamps use UTC unless a time zone is given: journey.entered_at.getHours("Europe/Paris").
//   - The string extensions are available: contact.email.lowerAscii().endsWith("@example.com").

// ConditionInput is the data a condition is evaluated against.
type ConditionInput struct {
	Contact map[string]any
	Consent map[string]string
	Journey map[string]any
	// Behaviour is the contact's stored events and the moment of
	// evaluation, for conditions compiled with CompileBehaviourCondition.
	Behaviour *Behaviour
	// Extra are the values of the variables an ExtendBehaviourEnv added.
	Extra map[string]any
}

// Condition is a compiled branch condition. It is safe for concurrent use.
type Condition struct {
	expr  string
	prg   cel.Program
	reads BehaviourReads
	vars  map[string]bool // the variables it refers to
}

// conditionCostLimit bounds the work one evaluation may do. Marketers'
// conditions cost a few dozen units; the limit only stops a pathological
// comprehension over a huge attribute list from hogging a worker.
const conditionCostLimit = 1_000_000

// consentChannels always appear in consent, defaulting to "none".
var consentChannels = []Channel{ChannelEmail, ChannelSMS, ChannelAds}

var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("contact", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("consent", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("journey", cel.MapType(cel.StringType, cel.DynType)),
		// JSON numbers are doubles; without this, contact.ltv >= 100
		// type-checks but fails at run time with "no such overload".
		cel.CrossTypeNumericComparisons(true),
		// Workers may run in any time zone; conditions must not depend on it.
		cel.DefaultUTCTimeZone(true),
		cel.OptionalTypes(),
		ext.Strings(),
	)
})

// CompileCondition parses and type-checks a branch condition. It must be a
// boolean expression; an expression whose type is only known at run time
// (such as contact.vip, where attributes are dyn) is accepted and checked
// when evaluated.
func CompileCondition(expr string) (*Condition, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, fmt.Errorf("condition environment: %w", err)
	}
	return compileIn(env, expr)
}

func compileIn(env *cel.Env, expr string) (*Condition, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("condition is empty")
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%s (at line %d, column %d)", e.Message, e.Location.Line(), e.Location.Column()+1))
		}
		return nil, fmt.Errorf("invalid condition: %s", strings.Join(msgs, "; "))
	}
	if out := ast.OutputType(); !out.IsExactType(types.BoolType) && !out.IsExactType(types.DynType) {
		return nil, fmt.Errorf("condition must be true or false, but it is a %s", out)
	}
	prg, err := env.Program(ast, cel.CostLimit(conditionCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("invalid condition: %w", err)
	}
	reads, vars := behaviourReadsOf(ast.NativeRep().Expr())
	return &Condition{expr: expr, prg: prg, reads: reads, vars: vars}, nil
}

// String returns the condition's source.
func (c *Condition) String() string { return c.expr }

// Condition error codes: why a condition has no value for a contact. A
// workflow records the code (in the branch step's outcome, which is in its
// Temporal history), never the evaluator's message, because the message
// quotes the values it choked on: `invalid RFC 3339 timestamp
// "jane@example.com"`, `no such key: <a map key taken from an attribute>`,
// `error parsing regexp: ... <a pattern taken from an attribute>`.
const (
	CondNoSuchAttribute  = "no_such_attribute"  // an attribute (or map key, or optional) that is not there
	CondTypeMismatch     = "type_mismatch"      // no such overload, or a value that does not convert (int("abc"))
	CondInvalidTimestamp = "invalid_timestamp"  // timestamp() of a string that is not RFC 3339, an unknown time zone
	CondInvalidDuration  = "invalid_duration"   // duration() of a string that is not a duration
	CondInvalidRegex     = "invalid_regex"      // matches() with a pattern that does not compile
	CondArithmetic       = "arithmetic"         // division or modulus by zero, overflow
	CondIndexOutOfRange  = "index_out_of_range" // a list index or substring past the end
	CondNotBoolean       = "not_boolean"        // the condition's value is not true or false
	CondCostLimit        = "cost_limit"         // the evaluation did too much work
	CondTooManyEvents    = "too_many_events"    // the contact has more stored events than a branch reads (MaxBranchEvents)
	CondOther            = "other"              // anything else
)

// EvalError is a condition that could not be evaluated for a contact. Code
// is one of the Cond* codes and is safe to record anywhere. Error() is the
// evaluator's full message, which may quote the contact's data: show it to
// a person who may see the contact, but keep it out of Temporal history and
// logs.
type EvalError struct {
	Code string
	msg  string
}

func (e *EvalError) Error() string { return e.msg }

// evalErrorCodes maps fragments of cel-go's evaluation messages to codes, in
// the order they are tried. cel-go's errors carry no type to branch on, and
// its messages are stable; a message none of these match is CondOther, so a
// new message never leaks into a code.
var evalErrorCodes = []struct{ fragment, code string }{
	{"no such key", CondNoSuchAttribute},
	{"no such attribute", CondNoSuchAttribute},
	{"no such field", CondNoSuchAttribute},
	{"optional.none() dereference", CondNoSuchAttribute},
	{"rfc 3339 timestamp", CondInvalidTimestamp},
	{"unsupported timestamp", CondInvalidTimestamp},
	{"timestamp overflow", CondInvalidTimestamp},
	{"timezone offset", CondInvalidTimestamp},
	{"unknown time zone", CondInvalidTimestamp},
	{"to 'google.protobuf.duration'", CondInvalidDuration},
	{"time: invalid duration", CondInvalidDuration},
	{"time: unknown unit", CondInvalidDuration},
	{"time: missing unit", CondInvalidDuration},
	{"error parsing regexp", CondInvalidRegex},
	{"regex program size", CondInvalidRegex},
	{"division by zero", CondArithmetic},
	{"modulus by zero", CondArithmetic},
	{"overflow", CondArithmetic},
	{"nan values cannot be ordered", CondArithmetic},
	{"index out of", CondIndexOutOfRange},
	{"out of range", CondIndexOutOfRange},
	{"substring range", CondIndexOutOfRange},
	{"no such overload", CondTypeMismatch},
	{"type conversion error", CondTypeMismatch},
	{"unsupported conversion", CondTypeMismatch},
	{"unsupported type conversion", CondTypeMismatch},
	{"cost limit", CondCostLimit},
}

// evalErrorCode classifies an evaluation message.
func evalErrorCode(msg string) string {
	lower := strings.ToLower(msg)
	for _, c := range evalErrorCodes {
		if strings.Contains(lower, c.fragment) {
			return c.code
		}
	}
	return CondOther
}

// Eval evaluates the condition. Inputs are not modified. An evaluation
// failure is an *EvalError.
func (c *Condition) Eval(in ConditionInput) (bool, error) {
	consent := make(map[string]string, len(in.Consent)+len(consentChannels))
	maps.Copy(consent, in.Consent)
	for _, ch := range consentChannels {
		if consent[string(ch)] == "" {
			consent[string(ch)] = string(model.ConsentNone)
		}
	}
	contact := make(map[string]any, len(in.Contact))
	for k, v := range in.Contact {
		contact[k] = normalizeNumbers(v)
	}
	journey := make(map[string]any, len(in.Journey)+1)
	maps.Copy(journey, in.Journey)
	events, err := newEventCounts(in.Journey["events"])
	if err != nil {
		return false, &EvalError{Code: CondOther, msg: err.Error()}
	}
	journey["events"] = events

	vars := map[string]any{"contact": contact, "consent": consent, "journey": journey}
	for k, v := range in.Extra {
		vars[k] = v
	}
	if err := behaviourActivation(in, vars); err != nil {
		return false, &EvalError{Code: CondOther, msg: err.Error()}
	}
	out, _, err := c.prg.Eval(vars)
	if err != nil {
		msg := err.Error()
		code := evalErrorCode(msg)
		if strings.Contains(msg, "no such key") {
			msg += " (use has(contact.<attribute>) to test for an attribute the contact may not have)"
		}
		return false, &EvalError{Code: code, msg: fmt.Sprintf("evaluating condition %q: %s", c.expr, msg)}
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, &EvalError{Code: CondNotBoolean,
			msg: fmt.Sprintf("evaluating condition %q: got %s %v, not true or false", c.expr, out.Type(), out.Value())}
	}
	return bool(b), nil
}

// normalizeNumbers turns json.Number (from decoders using UseNumber) into
// float64, so attributes behave the same whichever way they were decoded.
func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return f
		}
		return v.String()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = normalizeNumbers(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = normalizeNumbers(item)
		}
		return out
	}
	return v
}

// eventCounts is journey.events: a map of event name to count that reads 0
// for events not seen, so journey.events["email.opened"] > 0 works before
// the first open instead of failing with "no such key".
type eventCounts struct {
	traits.Mapper
}

func newEventCounts(v any) (eventCounts, error) {
	counts := map[string]any{}
	add := func(name string, n any) error {
		switch n := n.(type) {
		case int:
			counts[name] = int64(n)
		case int32:
			counts[name] = int64(n)
		case int64:
			counts[name] = n
		case uint32:
			counts[name] = int64(n)
		case float64:
			counts[name] = int64(n)
		case json.Number:
			i, err := n.Int64()
			if err != nil {
				return fmt.Errorf("journey.events[%q]: count %q is not a whole number", name, n)
			}
			counts[name] = i
		default:
			return fmt.Errorf("journey.events[%q]: count must be a number, got %T", name, n)
		}
		return nil
	}
	switch v := v.(type) {
	case nil:
	case map[string]int:
		for k, n := range v {
			counts[k] = int64(n)
		}
	case map[string]int64:
		for k, n := range v {
			counts[k] = n
		}
	case map[string]any:
		for k, n := range v {
			if err := add(k, n); err != nil {
				return eventCounts{}, err
			}
		}
	default:
		return eventCounts{}, fmt.Errorf("journey.events must be a map of event name to count, got %T", v)
	}
	return eventCounts{types.NewStringInterfaceMap(types.DefaultTypeAdapter, counts)}, nil
}

// Find reports 0 for an absent event name instead of "not found".
func (m eventCounts) Find(key ref.Val) (ref.Val, bool) {
	if v, found := m.Mapper.Find(key); found || types.IsError(v) {
		return v, found
	}
	if _, ok := key.(types.String); ok {
		return types.IntZero, true
	}
	return nil, false
}

// Get is Find for index expressions the interpreter does not plan as attributes.
func (m eventCounts) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.Mapper.Get(key)
}

// conditionCache holds compiled conditions by source. Published specs are
// few and immutable, so it only grows with distinct conditions ever seen by
// this process; failures are not cached (validation rejects them at publish).
var conditionCache sync.Map // string -> *Condition

// CachedCondition is CompileBranchCondition with a process-wide cache, so
// an activity evaluating the same branch for every contact compiles it once.
func CachedCondition(expr string) (*Condition, error) {
	if c, ok := conditionCache.Load(expr); ok {
		return c.(*Condition), nil
	}
	c, err := CompileBranchCondition(expr)
	if err != nil {
		return nil, err
	}
	actual, _ := conditionCache.LoadOrStore(expr, c)
	return actual.(*Condition), nil
}
