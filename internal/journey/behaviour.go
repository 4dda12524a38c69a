package journey

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// Conditions over behaviour (segments, and branches) see, beside
// contact and consent, the contact's stored events and the moment of
// evaluation:
//
//	events  the contact's stored events, queried with:
//	          events.count("page.viewed", days(7))                        int
//	          events.count("page.viewed", {"path": "/pricing"}, days(7))  int
//	          events.sum("purchase", "amount", days(90))                  double
//	          events.sum("purchase", "amount", {"currency": "EUR"}, days(90))
//	          events.first("signup"), events.last("purchase")             optional timestamp
//	now     timestamp of the evaluation
//	days(n) n days as a duration (durations also take "168h" and the like)
//
// A window counts events in (now - window, now]. Property filters match
// when every property equals its value (numbers as numbers). Examples:
//
//	events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3
//	events.count("purchase", days(30)) == 0
//	events.last("email.clicked").orValue(timestamp(0)) > now - days(14)

// StoredEvent is one stored event as behaviour conditions read it.
type StoredEvent struct {
	Name       string
	OccurredAt time.Time
	Properties map[string]any
}

// Behaviour is what a behaviour condition reads besides the contact: the
// contact's events (any order) and the moment it is evaluated at.
type Behaviour struct {
	Events []StoredEvent
	Now    time.Time
}

var eventsType = cel.OpaqueType("tutti.Events")

// eventsVal is the CEL value of the events variable.
type eventsVal struct{ b *Behaviour }

func (v eventsVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("events cannot be converted to %v", t)
}

func (v eventsVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return eventsType
	}
	return types.NewErr("events cannot be converted to %s", t.TypeName())
}

func (v eventsVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(eventsVal)
	return types.Bool(ok && o.b == v.b)
}

func (v eventsVal) Type() ref.Type { return eventsType }
func (v eventsVal) Value() any     { return v.b }

var behaviourEnv = sync.OnceValues(func() (*cel.Env, error) {
	base, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	props := cel.MapType(cel.StringType, cel.DynType)
	return base.Extend(
		cel.Variable("events", eventsType),
		cel.Variable("now", cel.TimestampType),
		cel.Function("days",
			cel.Overload("days_int", []*cel.Type{cel.IntType}, cel.DurationType,
				cel.UnaryBinding(func(n ref.Val) ref.Val {
					d := int64(n.(types.Int))
					if d < 0 || d > 100*365 {
						return types.NewErr("days(%d): between 0 and 36500", d)
					}
					return types.Duration{Duration: time.Duration(d) * 24 * time.Hour}
				}))),
		cel.Function("count",
			cel.MemberOverload("events_count_window", []*cel.Type{eventsType, cel.StringType, cel.DurationType}, cel.IntType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return count(args[0], args[1], nil, args[2]) })),
			cel.MemberOverload("events_count_where_window", []*cel.Type{eventsType, cel.StringType, props, cel.DurationType}, cel.IntType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return count(args[0], args[1], args[2], args[3]) }))),
		cel.Function("sum",
			cel.MemberOverload("events_sum_window", []*cel.Type{eventsType, cel.StringType, cel.StringType, cel.DurationType}, cel.DoubleType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return sum(args[0], args[1], args[2], nil, args[3]) })),
			cel.MemberOverload("events_sum_where_window", []*cel.Type{eventsType, cel.StringType, cel.StringType, props, cel.DurationType}, cel.DoubleType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return sum(args[0], args[1], args[2], args[3], args[4]) }))),
		cel.Function("first",
			cel.MemberOverload("events_first", []*cel.Type{eventsType, cel.StringType}, cel.OptionalType(cel.TimestampType),
				cel.BinaryBinding(func(ev, name ref.Val) ref.Val { return eventAt(ev, name, false) }))),
		cel.Function("last",
			cel.MemberOverload("events_last", []*cel.Type{eventsType, cel.StringType}, cel.OptionalType(cel.TimestampType),
				cel.BinaryBinding(func(ev, name ref.Val) ref.Val { return eventAt(ev, name, true) }))),
	)
})

// CompileBehaviourCondition compiles a condition that may also use events,
// now and days (see above). Evaluate it with ConditionInput.Behaviour set.
func CompileBehaviourCondition(expr string) (*Condition, error) {
	env, err := behaviourEnv()
	if err != nil {
		return nil, fmt.Errorf("behaviour condition environment: %w", err)
	}
	return compileIn(env, expr)
}

// CompileBranchCondition compiles a journey branch's condition: contact,
// consent and the run's journey context (CompileCondition), and the
// contact's stored events, now and days (CompileBehaviourCondition). A
// branch that reads stored events is evaluated over the events the
// condition names (Condition.Behaviour), at the moment the branch runs.
func CompileBranchCondition(expr string) (*Condition, error) {
	return CompileBehaviourCondition(expr)
}

// MaxBranchEvents is the most stored events a branch condition reads for
// one contact (of the names it asks for, newest first). A contact with more
// gets no value (CondTooManyEvents, so the else path) rather than a count
// or a first time computed over part of its history.
const MaxBranchEvents = 10_000

// BehaviourReads is what a condition reads of a contact's behaviour, so
// that its caller loads only that: Reads, whether it reads events or now
// at all; Names, the event names its events.count, sum, first and last
// ask for, sorted, when every one is a literal (AllNames otherwise).
type BehaviourReads struct {
	Reads    bool
	Names    []string
	AllNames bool
}

// Behaviour says what the condition reads of the contact's behaviour.
func (c *Condition) Behaviour() BehaviourReads { return c.reads }

// ReadsVariable reports whether the condition refers to the variable (a
// segment's score, say).
func (c *Condition) ReadsVariable(name string) bool { return c.vars[name] }

// behaviourReadsOf walks a checked expression for events and now, and
// every variable it refers to.
func behaviourReadsOf(e celast.Expr) (BehaviourReads, map[string]bool) {
	var r BehaviourReads
	names := map[string]bool{}
	vars := map[string]bool{}
	var visit func(celast.Expr)
	visit = func(e celast.Expr) {
		switch e.Kind() {
		case celast.IdentKind:
			id := e.AsIdent()
			vars[id] = true
			switch id {
			case "now":
				r.Reads = true
			case "events":
				// events itself, not through one of its functions: it may
				// read anything.
				r.Reads, r.AllNames = true, true
			}
		case celast.CallKind:
			c := e.AsCall()
			if c.IsMemberFunction() {
				t := c.Target()
				if t.Kind() == celast.IdentKind && t.AsIdent() == "events" {
					vars["events"], r.Reads = true, true
					if a := c.Args(); len(a) > 0 && a[0].Kind() == celast.LiteralKind {
						if s, ok := a[0].AsLiteral().(types.String); ok {
							names[string(s)] = true
						} else {
							r.AllNames = true
						}
					} else {
						r.AllNames = true
					}
				} else {
					visit(t)
				}
			}
			for _, a := range c.Args() {
				visit(a)
			}
		case celast.SelectKind:
			visit(e.AsSelect().Operand())
		case celast.ListKind:
			for _, el := range e.AsList().Elements() {
				visit(el)
			}
		case celast.MapKind:
			for _, en := range e.AsMap().Entries() {
				me := en.AsMapEntry()
				visit(me.Key())
				visit(me.Value())
			}
		case celast.StructKind:
			for _, f := range e.AsStruct().Fields() {
				visit(f.AsStructField().Value())
			}
		case celast.ComprehensionKind:
			cm := e.AsComprehension()
			visit(cm.IterRange())
			visit(cm.AccuInit())
			visit(cm.LoopCondition())
			visit(cm.LoopStep())
			visit(cm.Result())
		}
	}
	visit(e)
	if r.AllNames {
		return BehaviourReads{Reads: true, AllNames: true}, vars
	}
	for n := range names {
		r.Names = append(r.Names, n)
	}
	slices.Sort(r.Names)
	return r, vars
}

// ExtendBehaviourEnv returns the behaviour environment with more variables
// (a segment's score and suppressions, say), for CompileIn; their values go
// in ConditionInput.Extra.
func ExtendBehaviourEnv(opts ...cel.EnvOption) (*cel.Env, error) {
	env, err := behaviourEnv()
	if err != nil {
		return nil, err
	}
	return env.Extend(opts...)
}

// CompileIn compiles a condition in an environment from ExtendBehaviourEnv.
func CompileIn(env *cel.Env, expr string) (*Condition, error) { return compileIn(env, expr) }

// matching calls fn with each event of the name, within the window (when
// window is not nil) and matching where (when not nil).
func matching(ev, name, where, window ref.Val, fn func(StoredEvent)) ref.Val {
	b := ev.(eventsVal).b
	n := string(name.(types.String))
	var filter map[string]any
	if where != nil {
		m, err := where.(traits.Mapper).ConvertToNative(reflect.TypeFor[map[string]any]())
		if err != nil {
			return types.NewErr("property filter: %v", err)
		}
		filter = m.(map[string]any)
	}
	var from time.Time
	if window != nil {
		w := window.(types.Duration).Duration
		if w <= 0 {
			return types.NewErr("window must be positive, got %v", w)
		}
		from = b.Now.Add(-w)
	}
	for _, e := range b.Events {
		if e.Name != n || e.OccurredAt.After(b.Now) || (window != nil && !e.OccurredAt.After(from)) {
			continue
		}
		if filter != nil && !PropertiesMatch(filter, e.Properties) {
			continue
		}
		fn(e)
	}
	return nil
}

func count(ev, name, where, window ref.Val) ref.Val {
	var n int64
	if err := matching(ev, name, where, window, func(StoredEvent) { n++ }); err != nil {
		return err
	}
	return types.Int(n)
}

func sum(ev, name, property, where, window ref.Val) ref.Val {
	prop := string(property.(types.String))
	var total float64
	if err := matching(ev, name, where, window, func(e StoredEvent) {
		if f, ok := asFloat(e.Properties[prop]); ok {
			total += f
		}
	}); err != nil {
		return err
	}
	return types.Double(total)
}

func eventAt(ev, name ref.Val, latest bool) ref.Val {
	var at time.Time
	found := false
	matching(ev, name, nil, nil, func(e StoredEvent) {
		if !found || (latest && e.OccurredAt.After(at)) || (!latest && e.OccurredAt.Before(at)) {
			at, found = e.OccurredAt, true
		}
	})
	if !found {
		return types.OptionalNone
	}
	return types.OptionalOf(types.Timestamp{Time: at.UTC()})
}

// PropertiesMatch reports whether props has every property of where with an
// equal value. Numbers compare as numbers, whatever their Go or JSON type.
func PropertiesMatch(where, props map[string]any) bool {
	for k, want := range where {
		got, ok := props[k]
		if !ok {
			return false
		}
		if wf, ok := asFloat(want); ok {
			gf, ok := asFloat(got)
			if !ok || gf != wf {
				return false
			}
			continue
		}
		if got != want {
			return false
		}
	}
	return true
}

func asFloat(v any) (float64, bool) {
	switch n := normalizeNumbers(v).(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// errNoBehaviour is a behaviour condition evaluated without events.
var errNoBehaviour = errors.New("this condition reads events and now: evaluate it with the contact's behaviour")

func behaviourActivation(in ConditionInput, vars map[string]any) error {
	if in.Behaviour == nil {
		return nil
	}
	if in.Behaviour.Now.IsZero() {
		return errNoBehaviour
	}
	vars["events"] = eventsVal{in.Behaviour}
	vars["now"] = in.Behaviour.Now.UTC()
	return nil
}
