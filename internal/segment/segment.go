// Package segment is Tutti's shared segments: declarative definitions
// ("hot leads", "no purchase in 30 days") over a contact's attributes,
// consent, suppressions, scores and stored behaviour, evaluated by a pure
// function that also says which clause held.
package segment

import (
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"

	"github.com/tutti-dev/tutti/internal/journey"
)

// Definition is a segment, written in YAML or JSON:
//
//	id: hot_leads
//	name: Hot leads
//	when: >
//	  score.combined_band == "hot"
//	  && consent.ads == "granted"
//	  && events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 3
//
// when is a condition over contact, consent (as in journey branches),
// suppressed (map of active suppression reason -> true), score (fit,
// intent, combined and their _band), and events, now and days (see
// journey.CompileBehaviourCondition).
type Definition struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	When        string `json:"when"`
}

var document = journey.DocumentKind{
	Name:   "segment",
	Shape:  "an object with id, name and when",
	OnePer: "define each segment on its own",
}

// Segment is a validated, compiled definition. It is safe for concurrent use.
type Segment struct {
	Definition
	cond    *journey.Condition
	clauses []clause
	// TimeDependent: membership can change with time alone (it reads now,
	// a window of events, or intent, which decays), so the sweep must
	// look at it; other segments change only when their contact does.
	TimeDependent bool
	// events names the stored events the condition reads (sorted), and
	// allEvents says it may read any (a name that is not a literal).
	events    []string
	allEvents bool
}

// EventNames says which of a contact's stored events an evaluation needs:
// the names the condition's events.count/sum/first/last calls give, or
// all (true) when one of them is not a literal string. A segment that
// reads no events needs none.
func (s *Segment) EventNames() (names []string, all bool) {
	return s.events, s.allEvents
}

type clause struct {
	expr string
	cond *journey.Condition
}

var env = sync.OnceValues(func() (*cel.Env, error) {
	return journey.ExtendBehaviourEnv(
		cel.Variable("score", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("suppressed", cel.MapType(cel.StringType, cel.BoolType)),
	)
})

// Parse reads and compiles a definition; problems come with their paths.
func Parse(data []byte) (*Segment, error) {
	var d Definition
	if err := journey.ParseDocument(data, document, &d); err != nil {
		return nil, err
	}
	return Compile(d)
}

// Compile validates and compiles a definition.
func Compile(d Definition) (*Segment, error) {
	var ps journey.Problems
	if !journey.SegmentIDPattern.MatchString(d.ID) {
		ps = append(ps, journey.Problem{Path: "id", Message: journey.SegmentIDRule})
	}
	if strings.TrimSpace(d.Name) == "" {
		ps = append(ps, journey.Problem{Path: "name", Message: "required"})
	}
	e, err := env()
	if err != nil {
		return nil, err
	}
	s := &Segment{Definition: d}
	if s.cond, err = journey.CompileIn(e, d.When); err != nil {
		ps = append(ps, journey.Problem{Path: "when", Message: err.Error()})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	checked, iss := e.Compile(d.When)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	// Windows end now, and intent decays: such segments change with time.
	reads := s.cond.Behaviour()
	s.TimeDependent = reads.Reads || s.cond.ReadsVariable("score")
	s.events, s.allEvents = reads.Names, reads.AllNames
	for _, part := range conjuncts(checked.NativeRep().Expr()) {
		src, err := cel.ExprToString(part, checked.NativeRep().SourceInfo())
		if err != nil {
			continue // an explanation is a courtesy; membership does not need it
		}
		c, err := journey.CompileIn(e, src)
		if err != nil {
			continue
		}
		s.clauses = append(s.clauses, clause{expr: src, cond: c})
	}
	return s, nil
}

// conjuncts splits the top-level && (or ||) of a condition into its parts,
// the clauses an explanation reports on.
func conjuncts(e ast.Expr) []ast.Expr {
	if e.Kind() == ast.CallKind {
		call := e.AsCall()
		if fn := call.FunctionName(); fn == operators.LogicalAnd || fn == operators.LogicalOr {
			var out []ast.Expr
			for _, a := range call.Args() {
				if a.Kind() == ast.CallKind && a.AsCall().FunctionName() == fn {
					out = append(out, conjuncts(a)...)
				} else {
					out = append(out, a)
				}
			}
			return out
		}
	}
	return []ast.Expr{e}
}

// Scores is a contact's scores as segments see them.
type Scores struct {
	Fit, Intent, Combined             float64
	FitBand, IntentBand, CombinedBand string
}

// Input is everything a segment reads about one contact.
type Input struct {
	Contact    map[string]any
	Consent    map[string]string
	Suppressed []string // active suppression reasons
	Scores     Scores
	Behaviour  journey.Behaviour
}

// Clause is one top-level part of the condition and whether it held.
type Clause struct {
	Expr  string `json:"expr"`
	Held  bool   `json:"held"`
	Error string `json:"error,omitempty"`
}

// Result is a segment's verdict on a contact, with the why.
type Result struct {
	Member bool `json:"member"`
	// Error: the condition had no value for the contact (a missing
	// attribute, say); the contact is then not a member. It may quote
	// the contact's data: keep it out of Temporal.
	Error   string   `json:"error,omitempty"`
	Clauses []Clause `json:"clauses"`
}

func (in Input) condition() journey.ConditionInput {
	sup := make(map[string]bool, len(in.Suppressed))
	for _, r := range in.Suppressed {
		sup[r] = true
	}
	b := in.Behaviour
	return journey.ConditionInput{Contact: in.Contact, Consent: in.Consent, Behaviour: &b, Extra: map[string]any{
		"suppressed": sup,
		"score": map[string]any{
			"fit": in.Scores.Fit, "intent": in.Scores.Intent, "combined": in.Scores.Combined,
			"fit_band": in.Scores.FitBand, "intent_band": in.Scores.IntentBand, "combined_band": in.Scores.CombinedBand,
		},
	}}
}

// Evaluate decides membership for one contact.
func (s *Segment) Evaluate(in Input) Result {
	ci := in.condition()
	r := Result{Clauses: make([]Clause, 0, len(s.clauses))}
	ok, err := s.cond.Eval(ci)
	if err != nil {
		r.Error = err.Error()
	}
	r.Member = ok && err == nil
	for _, c := range s.clauses {
		held, err := c.cond.Eval(ci)
		cl := Clause{Expr: c.expr, Held: held && err == nil}
		if err != nil {
			cl.Error = err.Error()
		}
		r.Clauses = append(r.Clauses, cl)
	}
	return r
}

// Matches is Evaluate's Member alone, without the clauses' explanation:
// what recording membership needs, at a clause's cost less.
func (s *Segment) Matches(in Input) bool {
	ok, err := s.cond.Eval(in.condition())
	return ok && err == nil
}

// String names the segment for logs.
func (s *Segment) String() string { return fmt.Sprintf("segment %s", s.ID) }
