package journey

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"unicode"
	"unicode/utf8"
)

// Message templates are Go templates (text/template; html/template for
// email HTML so contact data is escaped). Templates see two roots:
//
//	.contact  the contact's attributes plus id, external_id, email, phone, time_zone
//	.journey  id and version of the journey
//
// Functions: default, upper, lower, capitalize (see templateFuncs).
//
// Missing data is an error, not an empty string: "Hi ," is worse than no
// message. A field that is missing (or null) makes rendering fail with a
// *MissingDataError, unless the template says what to do without it: pipe it
// into default ({{ .contact.first_name | default "there" }}), or test it
// ({{ if .contact.first_name }}...{{ end }}, with, range).
//
// Go's missingkey=error cannot express that (it fails before default is
// called), so templates execute with missingkey=default, where a missing key
// is a nil value, and before executing, every field reference that is not
// covered by default/if/with/range is wrapped in a check that fails on nil.
// The check runs on real values, so it also works inside with and range.

// requiredFunc is the internal check wrapped around strict field references.
// The leading underscore keeps it out of the way of marketers' names; it is
// not in the functions Validate accepts, so specs cannot call it.
const requiredFunc = "_tutti_required"

// MissingDataError reports a template field that has no value for this
// contact. Activities skip the send (non-retryably) on it: the same data
// would be missing on a retry.
type MissingDataError struct {
	// Field is the template reference, for example ".contact.first_name".
	Field string
}

func (e *MissingDataError) Error() string { return "missing template data: " + e.Field }

// templateFuncs is the function map marketers can use.
var templateFuncs = map[string]any{
	"default":    defaultFunc,
	"upper":      func(v any) string { return strings.ToUpper(toString(v)) },
	"lower":      func(v any) string { return strings.ToLower(toString(v)) },
	"capitalize": func(v any) string { return capitalize(toString(v)) },
}

// renderFuncs adds the internal check to templateFuncs.
var renderFuncs = func() map[string]any {
	m := make(map[string]any, len(templateFuncs)+1)
	for k, v := range templateFuncs {
		m[k] = v
	}
	m[requiredFunc] = func(field string, v any) (any, error) {
		if isNil(v) {
			return nil, &MissingDataError{Field: field}
		}
		return v, nil
	}
	return m
}()

// defaultFunc returns the piped value, or fallback when the value is missing,
// nil or an empty string: {{ .contact.first_name | default "there" }}.
// Zero and false are real values and are kept.
func defaultFunc(fallback any, value ...any) (any, error) {
	switch len(value) {
	case 0:
		return fallback, nil
	case 1:
		if isEmpty(value[0]) {
			return fallback, nil
		}
		return value[0], nil
	}
	return nil, fmt.Errorf("default takes a fallback and one value, got %d values", len(value))
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

func isEmpty(v any) bool {
	if isNil(v) {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.String && rv.Len() == 0
}

// toString prints a template value; nil prints as "" so upper/lower/capitalize
// can sit before default in a pipeline.
func toString(v any) string {
	if isNil(v) {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// capitalize upper-cases the first letter of every word (words split on
// spaces and hyphens) and leaves the rest alone, so "mary-jane mcDonald"
// becomes "Mary-Jane McDonald": names keep their own inner capitals.
func capitalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := true
	for _, r := range s {
		if start {
			r = unicode.ToTitle(r)
		}
		start = unicode.IsSpace(r) || r == '-'
		b.WriteRune(r)
	}
	return b.String()
}

// templateKind says which template package a message field uses.
type templateKind int

const (
	textTemplate templateKind = iota
	htmlTemplate
)

// parsedTemplate is a template ready to execute, in either package.
type parsedTemplate struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

func (t parsedTemplate) tree() *parse.Tree {
	if t.html != nil {
		return t.html.Tree
	}
	return t.text.Tree
}

// definedTrees are the trees of templates the message defines with
// {{ define }} or {{ block }}, besides the message itself.
func (t parsedTemplate) definedTrees() []*parse.Tree {
	var trees []*parse.Tree
	main := t.tree()
	if t.html != nil {
		for _, d := range t.html.Templates() {
			if d.Tree != nil && d.Tree != main {
				trees = append(trees, d.Tree)
			}
		}
		return trees
	}
	for _, d := range t.text.Templates() {
		if d.Tree != nil && d.Tree != main {
			trees = append(trees, d.Tree)
		}
	}
	return trees
}

func (t parsedTemplate) execute(w io.Writer, data any) error {
	if t.html != nil {
		return t.html.Execute(w, data)
	}
	return t.text.Execute(w, data)
}

// parseTemplate parses src with the given functions. missingkey=default makes
// a missing map key a nil value (see the comment at the top of this file).
func parseTemplate(kind templateKind, src string, funcs map[string]any) (parsedTemplate, error) {
	const name = "message"
	if kind == htmlTemplate {
		t, err := htmltemplate.New(name).Option("missingkey=default").Funcs(funcs).Parse(src)
		if err != nil {
			return parsedTemplate{}, templateSyntaxError(err)
		}
		return parsedTemplate{html: t}, nil
	}
	t, err := texttemplate.New(name).Option("missingkey=default").Funcs(funcs).Parse(src)
	if err != nil {
		return parsedTemplate{}, templateSyntaxError(err)
	}
	return parsedTemplate{text: t}, nil
}

var parseErrorPrefix = regexp.MustCompile(`^template: message:(\d+):(?:\d+:)? ?`)

// templateSyntaxError drops text/template's internal template name and keeps
// the line: `invalid template (line 1): function "uper" not defined`.
func templateSyntaxError(err error) error {
	msg := err.Error()
	if m := parseErrorPrefix.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("invalid template (line %s): %s", m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("invalid template: %s", msg)
}

// compileForRender parses src and wraps its strict field references in the
// missing-data check.
func compileForRender(kind templateKind, src string) (parsedTemplate, error) {
	t, err := parseTemplate(kind, src, renderFuncs)
	if err != nil {
		return parsedTemplate{}, err
	}
	tr := t.tree()
	if tr == nil || tr.Root == nil {
		return t, nil // an empty template
	}
	w := treeWalker{tree: tr, rewrite: true}
	w.list(tr.Root, true)
	for _, d := range t.definedTrees() {
		w.tree = d
		w.list(d.Root, false) // their dot is whatever {{ template }} passes
	}
	return t, nil
}

// checkTemplate reports why src cannot be used as a message template: a
// syntax error, an unknown function, data outside .contact and .journey, or
// (for HTML) markup the escaper cannot handle. It returns nil for a usable one.
func checkTemplate(kind templateKind, src string) []string {
	t, err := parseTemplate(kind, src, templateFuncs)
	if err != nil {
		return []string{err.Error()}
	}
	tr := t.tree()
	if tr == nil || tr.Root == nil {
		return nil
	}
	w := treeWalker{tree: tr}
	w.list(tr.Root, true)
	problems := w.refProblems

	if kind == htmlTemplate && len(problems) == 0 {
		// html/template escapes on first execution, and only then reports
		// markup it cannot escape safely. Run it once on empty data: errors
		// from the data itself are expected here and ignored.
		var escErr *htmltemplate.Error
		if err := t.execute(io.Discard, TemplateData(ContactView{}, "", 0)); errors.As(err, &escErr) {
			msg := escErr.Description
			if escErr.ErrorCode == htmltemplate.ErrEndContext {
				// The package's own text dumps its parser state.
				msg = "the HTML ends inside a tag, attribute, comment or script: check for an unclosed quote or tag"
			}
			if escErr.Line > 0 {
				msg = fmt.Sprintf("invalid HTML template (line %d): %s", escErr.Line, msg)
			} else {
				msg = "invalid HTML template: " + msg
			}
			problems = append(problems, msg)
		}
	}
	return problems
}

// journeyTemplateFields are the fields TemplateData puts under .journey.
var journeyTemplateFields = map[string]bool{"id": true, "version": true}

// treeWalker visits a template's parse tree. It collects references to data
// outside .contact/.journey, and with rewrite set it wraps every field
// reference whose missing value would be printed (or passed on) in
// requiredFunc.
type treeWalker struct {
	tree        *parse.Tree
	rewrite     bool
	refProblems []string
}

// list walks a list of nodes. rootDot says whether dot is still the root
// data there (it is not inside with and range bodies).
func (w *treeWalker) list(l *parse.ListNode, rootDot bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		w.node(n, rootDot)
	}
}

// branch walks an if, with or range: its pipeline is tested (testing a
// field is how a template handles it being absent), its body runs with dot
// at the root only if bodyRootDot (with and range move dot), and its else
// branch keeps the outer dot.
func (w *treeWalker) branch(b *parse.BranchNode, rootDot, bodyRootDot bool) {
	w.pipe(b.Pipe, rootDot, true)
	w.list(b.List, bodyRootDot)
	w.list(b.ElseList, rootDot)
}

func (w *treeWalker) node(n parse.Node, rootDot bool) {
	switch n := n.(type) {
	case *parse.ActionNode:
		var source string
		if n.Pipe != nil {
			source = n.Pipe.String() // before wrapping changes it
		}
		w.pipe(n.Pipe, rootDot, false)
		w.guardOutput(n, source)
	case *parse.IfNode:
		w.branch(&n.BranchNode, rootDot, rootDot)
	case *parse.WithNode:
		w.branch(&n.BranchNode, rootDot, false)
	case *parse.RangeNode:
		w.branch(&n.BranchNode, rootDot, false)
	case *parse.TemplateNode:
		// Bodies of defined templates run with whatever dot they are given,
		// so only the argument is checked here.
		w.pipe(n.Pipe, rootDot, false)
	case *parse.ListNode:
		w.list(n, rootDot)
	}
}

// pipe walks a pipeline. tolerant means missing values are allowed in it.
func (w *treeWalker) pipe(p *parse.PipeNode, rootDot, tolerant bool) {
	if p == nil {
		return
	}
	lastDefault := -1
	for j, c := range p.Cmds {
		if isCall(c, "default") {
			lastDefault = j
		}
	}
	for j, c := range p.Cmds {
		isDefault := isCall(c, "default")
		for k, arg := range c.Args {
			argTolerant := tolerant ||
				(isDefault && k > 0) || // default "x" .contact.a
				(k == 0 && len(c.Args) == 1 && j < lastDefault) // .contact.a | upper | default "x"
			c.Args[k] = w.arg(arg, rootDot, argTolerant)
		}
	}
}

func isCall(c *parse.CommandNode, fn string) bool {
	if len(c.Args) == 0 {
		return false
	}
	id, ok := c.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == fn
}

// arg walks one argument and returns it, wrapped when it must not be missing.
func (w *treeWalker) arg(n parse.Node, rootDot, tolerant bool) parse.Node {
	switch n := n.(type) {
	case *parse.FieldNode:
		if rootDot {
			w.checkRef(n.String(), n.Ident)
		}
		return w.wrap(n, tolerant)
	case *parse.VariableNode:
		if n.Ident[0] == "$" {
			// $ is always the root data.
			if len(n.Ident) == 1 {
				w.checkRef("$", nil)
			} else {
				w.checkRef(n.String(), n.Ident[1:])
			}
		}
		if len(n.Ident) == 1 {
			return n // a plain variable was checked when it was assigned
		}
		return w.wrap(n, tolerant)
	case *parse.ChainNode:
		// (pipeline).field: the inner pipeline may be empty; the chain's
		// own value is what gets checked.
		n.Node = w.arg(n.Node, rootDot, true)
		return w.wrap(n, tolerant)
	case *parse.PipeNode:
		w.pipe(n, rootDot, tolerant)
		return n
	case *parse.DotNode:
		if rootDot {
			w.checkRef(".", nil)
		}
	}
	return n
}

// checkRef records a reference to root data other than .contact.<...> or
// .journey.id/.journey.version.
func (w *treeWalker) checkRef(ref string, idents []string) {
	const use = "use .contact.<attribute> or .journey.<field>"
	if len(idents) == 0 {
		w.refProblems = append(w.refProblems, fmt.Sprintf("template uses the whole data %q: %s", ref, use))
		return
	}
	switch idents[0] {
	case "contact":
		return
	case "journey":
		if len(idents) > 1 && !journeyTemplateFields[idents[1]] {
			w.refProblems = append(w.refProblems, fmt.Sprintf("unknown template field %q: .journey has only id and version", ref))
		}
		return
	}
	w.refProblems = append(w.refProblems, fmt.Sprintf("unknown template field %q: %s", "."+strings.Join(idents, "."), use))
}

// predefinedEscapers must stay last in an HTML pipeline for html/template
// to recognise them; guardOutput leaves those actions alone.
var predefinedEscapers = map[string]bool{"html": true, "urlquery": true, "js": true}

// guardOutput makes an action that prints a missing value fail instead of
// printing "<no value>" or "<nil>". Field references are already checked one
// by one (with a better name); this catches the rest, such as
// {{ index .contact "first_name" }}.
func (w *treeWalker) guardOutput(n *parse.ActionNode, source string) {
	p := n.Pipe
	if !w.rewrite || p == nil || len(p.Decl) > 0 || len(p.Cmds) == 0 {
		return
	}
	last := p.Cmds[len(p.Cmds)-1]
	if len(last.Args) > 0 {
		if id, ok := last.Args[0].(*parse.IdentifierNode); ok && predefinedEscapers[id.Ident] {
			return
		}
	}
	name := source
	pos := p.Position()
	p.Cmds = append(p.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{
		parse.NewIdentifier(requiredFunc).SetTree(w.tree).SetPos(pos),
		&parse.StringNode{NodeType: parse.NodeString, Pos: pos, Quoted: strconv.Quote(name), Text: name},
	}})
}

// wrap replaces a strict field reference n with (_tutti_required "n" n).
func (w *treeWalker) wrap(n parse.Node, tolerant bool) parse.Node {
	if !w.rewrite || tolerant {
		return n
	}
	pos := n.Position()
	name := n.String()
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{
		parse.NewIdentifier(requiredFunc).SetTree(w.tree).SetPos(pos),
		&parse.StringNode{NodeType: parse.NodeString, Pos: pos, Quoted: strconv.Quote(name), Text: name},
		n,
	}}
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{cmd}}
}

// runeCount is the length a person (and the SMS limit) counts.
func runeCount(s string) int { return utf8.RuneCountInString(s) }
