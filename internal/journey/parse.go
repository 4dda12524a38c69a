package journey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/tutti-dev/tutti/internal/strictjson"
)

// Parse reads a journey spec written in YAML or JSON (JSON is valid YAML).
//
// It checks the shape of the document only: unknown fields, values of the
// wrong type and malformed durations come back together as Problems, each at
// its path (for example "steps[2].wiat: unknown field (did you mean \"wait\"?)"),
// so a marketer sees every mistake at once. A document that is not YAML at
// all comes back as a plain error. Parse does not check the rules of a
// journey (references, loops, templates...): call Validate, or use
// ParseAndValidate, before publishing.
//
// A document that is not text Tutti can store comes back as a *TextError:
// bytes that are not UTF-8, a NUL character anywhere (raw, or written as
// "\0", "\x00" or "\u0000"), and, in a JSON document, a lone surrogate
// escape or a key given twice.
func Parse(data []byte) (Spec, error) {
	var s Spec
	if err := ParseDocument(data, specDocument, &s); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// DocumentKind names a kind of declarative document (a journey spec, a
// score model, a segment) in ParseDocument's messages.
type DocumentKind struct {
	// Name is what the document is called: "journey spec".
	Name string
	// Shape says what the top level must be: "an object with id, name, ...".
	Shape string
	// OnePer tells what to do with several documents in one text.
	OnePer string
}

var specDocument = DocumentKind{
	Name:   "journey spec",
	Shape:  "an object with id, name, trigger, reentry and steps",
	OnePer: "publish each journey on its own",
}

// ParseDocument reads a YAML or JSON document into v, a pointer to a
// struct, with Parse's checks: text Tutti cannot store is a *TextError, and
// every unknown field and type mismatch is reported as Problems with its
// path, in document order, before anything is decoded.
func ParseDocument(data []byte, kind DocumentKind, v any) error {
	err := parseDocument(data, kind, v)
	var te *TextError
	if errors.As(err, &te) && kind.Name != specDocument.Name {
		te.Document = kind.Name
	}
	return err
}

func parseDocument(data []byte, kind DocumentKind, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New(kind.Name + " is empty")
	}
	if err := checkRawText(data); err != nil {
		return err
	}
	if line := secondDocument(data); line > 0 {
		// YAMLToJSON would silently keep only the first document.
		return fmt.Errorf("%s must be a single YAML document, but a second one starts with \"---\" on line %d: %s", kind.Name, line, kind.OnePer)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		return fmt.Errorf("%s is not valid YAML or JSON: %s", kind.Name, msg)
	}

	// YAML escapes can spell a NUL that the raw check cannot see, and the
	// conversion writes it as \u0000; its path is the document's path.
	if problems := strictjson.Check(js); len(problems) > 0 {
		return textError(problems)
	}

	// encoding/json stops at the first unknown field, names it without its
	// path, matches field names case-insensitively and loses the path of
	// errors from Duration.UnmarshalJSON. A shape check over the token stream
	// first reports all of those precisely; the decoder below then only ever
	// sees documents it accepts.
	if problems := checkShape(js, reflect.TypeOf(v).Elem(), kind); len(problems) > 0 {
		return problems
	}

	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// Unreachable unless checkShape and encoding/json disagree; still
		// give the caller the best path available.
		return decodeProblem(err, kind)
	}
	return nil
}

// ParseAndValidate parses data and validates the result. The error is
// Problems or a *TextError (use errors.As), or a plain error when data is not
// YAML or JSON.
func ParseAndValidate(data []byte) (Spec, error) {
	s, err := Parse(data)
	if err != nil {
		return Spec{}, err
	}
	if problems := Validate(s); len(problems) > 0 {
		return Spec{}, problems
	}
	return s, nil
}

// TextError is a spec that is not text Tutti can store or read the same way
// twice (see Parse). It is not a mistake in the journey, and the API answers
// it with 400 rather than 422; each problem names its path, "" for the
// document as a whole.
type TextError struct {
	Problems Problems
	// Document names the document for ParseDocument's other kinds; empty
	// means a journey spec.
	Document string
}

func (e *TextError) Error() string {
	name := e.Document
	if name == "" {
		name = specDocument.Name
	}
	return name + " is not valid text: " + e.Problems.Error()
}

func textError(ps []strictjson.Problem) *TextError {
	out := make(Problems, len(ps))
	for i, p := range ps {
		out[i] = Problem{Path: p.Path, Message: p.Message}
	}
	return &TextError{Problems: out}
}

// checkRawText refuses bytes that are not UTF-8 and raw NULs, which the YAML
// parser would report without saying where, and, for a JSON document, what
// the JSON-to-YAML reading would silently change.
func checkRawText(data []byte) error {
	if !utf8.Valid(data) {
		return &TextError{Problems: Problems{{Message: fmt.Sprintf("is not valid UTF-8: the first invalid byte is at offset %d", invalidUTF8Offset(data))}}}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return &TextError{Problems: Problems{{Message: fmt.Sprintf("contains a NUL byte at offset %d", i)}}}
	}
	if problems := strictjson.Check(data); len(problems) > 0 {
		return textError(problems)
	}
	return nil
}

func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// secondDocument returns the line number of a "---" marker that starts a
// second YAML document, or 0. A marker at the start of a line cannot be part
// of a scalar in a mapping document, so this line scan is exact enough.
func secondDocument(data []byte) int {
	content := false
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if rest, ok := strings.CutPrefix(line, "---"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			if content {
				return i + 1
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && trimmed[0] != '#' && trimmed[0] != '%' {
			content = true
		}
	}
	return 0
}

// decodeProblem turns an encoding/json error into a Problem with a path.
func decodeProblem(err error, kind DocumentKind) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return Problems{{Path: typeErr.Field, Message: "must be " + describeKind(typeErr.Type) + ", not " + typeErr.Value}}
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		name, uerr := strconv.Unquote(strings.TrimPrefix(msg, unknown))
		if uerr == nil {
			return Problems{{Path: name, Message: "unknown field"}}
		}
	}
	return fmt.Errorf("%s: %w", kind.Name, err)
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	specType        = reflect.TypeFor[Spec]()
)

// checkShape walks the JSON document against the Spec type and reports every
// unknown field and type mismatch, sorted in document order.
func checkShape(js []byte, t reflect.Type, kind DocumentKind) Problems {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	w := shapeWalker{dec: dec, kind: kind}
	if err := w.value("", t); err != nil {
		// YAMLToJSON produced the input, so a syntax error here is a bug in
		// that conversion rather than in the marketer's document.
		return Problems{{Message: kind.Name + " could not be read: " + err.Error()}}
	}
	w.problems.sort()
	return w.problems
}

type shapeWalker struct {
	dec      *json.Decoder
	kind     DocumentKind
	problems Problems
}

func (w *shapeWalker) add(path, msg string) {
	w.problems = append(w.problems, Problem{Path: path, Message: msg})
}

// value consumes one JSON value that should decode into t. It returns an
// error only when the token stream itself is broken.
func (w *shapeWalker) value(path string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// Types that decode themselves (Duration) are handed the raw value so
	// their own error message is reported at this path.
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		var raw json.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			return err
		}
		if string(raw) == "null" {
			if t == reflect.TypeFor[Duration]() {
				w.add(path, `must be a duration like "30s", "15m", "12h" or "3d", not empty`)
			}
			return nil
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			w.add(path, err.Error())
		}
		return nil
	}

	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		// null leaves the zero value, as encoding/json does; YAML writes an
		// empty value ("next:") as null. Validate reports required fields.
		if path == "" {
			w.add("", w.kind.Name+" must be "+w.kind.Shape)
		}
		return nil
	}

	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			if path == "" {
				w.add("", w.kind.Name+" must be "+w.kind.Shape+", not "+describeToken(tok))
				return w.skip(tok)
			}
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
		fields := jsonFields(t)
		return w.members(func(key string) error {
			f, ok := fields[key]
			if !ok {
				w.add(joinField(path, key), unknownFieldMessage(key, t))
				return w.skipValue()
			}
			return w.value(joinField(path, key), f.Type)
		})

	case reflect.Slice:
		if tok != json.Delim('[') {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(path+"["+strconv.Itoa(i)+"]", t.Elem()); err != nil {
				return err
			}
		}
		_, err := w.dec.Token() // ']'
		return err

	case reflect.Map:
		if tok != json.Delim('{') {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
		return w.members(func(key string) error { return w.value(joinKey(path, key), t.Elem()) })

	case reflect.Interface:
		return w.skip(tok) // any JSON value is acceptable

	case reflect.String:
		if _, ok := tok.(string); !ok {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
			w.add(path, "must be a whole number, not "+n.String())
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := tok.(json.Number); !ok {
			w.mismatch(path, t, tok)
			return w.skip(tok)
		}
	default:
		return w.skip(tok)
	}
	return nil
}

// skip consumes the rest of a value whose first token was tok.
// members walks the members of an object whose '{' was read: fn gets each
// key and reads its value; the closing '}' is read last.
func (w *shapeWalker) members(fn func(key string) error) error {
	for w.dec.More() {
		keyTok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := keyTok.(string)
		if err := fn(key); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	return err
}

func (w *shapeWalker) skip(tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || (d != '{' && d != '[') {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := w.dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

// skipValue consumes the next whole value.
func (w *shapeWalker) skipValue() error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	return w.skip(tok)
}

func (w *shapeWalker) mismatch(path string, t reflect.Type, tok json.Token) {
	msg := "must be " + describeKind(t) + ", not " + describeToken(tok)
	if _, isBool := tok.(bool); isBool && t.Kind() == reflect.String {
		// YAML 1.1 reads yes/no/on/off as booleans, a classic trap.
		msg += ` (in YAML, put quotes around values like yes, no, on or off)`
	}
	w.add(path, msg)
}

// describeKind names what a Go type expects, in a marketer's words.
func describeKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// describeToken names what the document holds, in a marketer's words.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return "a number (" + v.String() + ")"
	case nil:
		return "empty"
	}
	return fmt.Sprint(tok)
}

// jsonFields maps the exact JSON names of a struct's fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for _, f := range reflect.VisibleFields(t) {
		if name, ok := jsonName(f); ok {
			fields[name] = f
		}
	}
	return fields
}

// jsonName is the name encoding/json uses for f, and false for skipped fields.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() || f.Anonymous {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

// orderedJSONNames lists a struct's JSON field names in declaration order.
func orderedJSONNames(t reflect.Type) []string {
	var names []string
	for _, f := range reflect.VisibleFields(t) {
		if name, ok := jsonName(f); ok {
			names = append(names, name)
		}
	}
	return names
}

// unknownFieldMessage suggests the closest known field for typos and case slips.
func unknownFieldMessage(key string, t reflect.Type) string {
	best, bestDist := "", 3 // suggest only close matches
	for _, name := range orderedJSONNames(t) {
		d := editDistance(strings.ToLower(key), name)
		if d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field (did you mean %q?)", best)
	}
	return "unknown field (expected one of " + strings.Join(orderedJSONNames(t), ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
