// Package strictjson finds what encoding/json would accept in a JSON document
// but change or lose on the way in, and what PostgreSQL cannot store:
//
//   - bytes that are not UTF-8 and lone UTF-16 surrogate escapes ("\ud800"),
//     which encoding/json silently replaces with U+FFFD, so two different
//     inputs would decode to one string (and match one contact);
//   - a member name given twice in one object, of which encoding/json keeps
//     the last without a word;
//   - NUL (U+0000) in any string, name or value, which PostgreSQL text and
//     jsonb refuse (SQLSTATE 22021 / 22P05), turning bad input into a 500.
//
// Each problem is reported at its path, in the form the API uses for field
// errors ("attributes.plan", "properties.items[2]", `attributes["first name"]`).
//
// The strict reading is the RFC 8259 / RFC 7493 (I-JSON) one implemented by
// github.com/go-json-experiment/json/jsontext, the module that mirrors Go's
// encoding/json/jsontext (standard from Go 1.27): the check is that
// decoder's, not a hand-written scanner.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Problem is one place where the document is not strict JSON text.
type Problem struct {
	// Path is the offending value, "" for the document itself. For a bad
	// member name it is the object holding the member.
	Path    string
	Message string
}

// Messages, so callers and tests can tell the classes apart.
const (
	MsgInvalidUTF8 = "is not valid UTF-8 text"
	MsgSurrogate   = `contains a lone UTF-16 surrogate escape (\ud800-\udfff without its pair), which is not a character`
	MsgDuplicate   = "is given more than once in the same object"
	MsgNUL         = `must not contain the NUL character (\u0000)`
)

// Check reports every NUL in the document and, since decoding cannot go on
// past it, the first invalid UTF-8 sequence, lone surrogate or duplicate
// member name. A document that is not JSON at all (or holds more than one
// value) gets no problems: the caller's decoder reports its syntax error, in
// encoding/json's words.
func Check(data []byte) []Problem {
	if clean(data) {
		return nil
	}
	return problems(data)
}

// nulEscape is how a NUL can appear in JSON text: a raw NUL byte is not
// JSON at all.
var nulEscape = []byte(`\u0000`)

// clean says that data is a single strict JSON value with no NUL escape in
// it: the common case, answered by one pass of the strict decoder over the
// whole value instead of the token by token walk (problems) that says
// where each problem is. false says only that the walk must look.
func clean(data []byte) bool {
	if bytes.Contains(data, nulEscape) {
		return false
	}
	var d *pooledDecoder
	if len(data) <= maxPooled {
		d = decoders.Get().(*pooledDecoder)
		defer decoders.Put(d)
	} else {
		d = new(pooledDecoder)
	}
	d.r.Reset(data)
	d.dec.Reset(&d.r) // default options: strict, as in problems
	defer d.r.Reset(nil)
	if _, err := d.dec.ReadValue(); err != nil {
		return false
	}
	_, err := d.dec.ReadToken()
	return errors.Is(err, io.EOF)
}

// pooledDecoder is clean's decoder with its reader, reused: a decoder's
// buffers cost more to allocate than the pass over a small document.
type pooledDecoder struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(pooledDecoder) }}

// maxPooled is the largest document a pooled decoder reads: its buffer
// grows to the document's size and stays, so a batch of megabytes gets a
// decoder of its own.
const maxPooled = 64 << 10

// problems is Check's walk: every NUL, then the first strict failure.
func problems(data []byte) []Problem {
	if !json.Valid(data) {
		return nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data)) // default options: strict UTF-8, unique names
	var problems []Problem
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return problems
		}
		if err != nil {
			var se *jsontext.SyntacticError
			if !errors.As(err, &se) {
				return append(problems, Problem{Message: err.Error()})
			}
			return append(problems, Problem{Path: pathOf(dec, se.JSONPointer), Message: message(se.Err)})
		}
		if tok.Kind() != jsontext.KindString || strings.IndexByte(tok.String(), 0) < 0 {
			continue
		}
		ptr := dec.StackPointer()
		if isName(dec) {
			problems = append(problems, Problem{Path: pathOf(dec, ptr.Parent()),
				Message: "member name " + strconv.Quote(tok.String()) + " " + MsgNUL})
			continue
		}
		problems = append(problems, Problem{Path: pathOf(dec, ptr), Message: MsgNUL})
	}
}

// isName says whether the string token just read is an object member name:
// the innermost level is an object that has read an odd number of names and
// values.
func isName(dec *jsontext.Decoder) bool {
	kind, n := dec.StackIndex(dec.StackDepth())
	return kind == jsontext.KindBeginObject && n%2 == 1
}

// message words the decoder's strict-only failures. The document passed
// encoding/json's own syntax check, so the failure is one of these; the
// decoder's words are the fallback.
func message(err error) string {
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return MsgDuplicate
	case strings.Contains(err.Error(), "surrogate"):
		return MsgSurrogate
	case strings.Contains(err.Error(), "UTF-8"):
		return MsgInvalidUTF8
	default:
		return err.Error()
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pathOf spells a JSON Pointer into the decoder's current value the API's
// way. Pointer token i lies in stack level i+1, which says whether it is an
// array index or a member name.
func pathOf(dec *jsontext.Decoder, ptr jsontext.Pointer) string {
	var b strings.Builder
	level := 0
	for tok := range ptr.Tokens() {
		level++
		kind := jsontext.KindBeginObject
		if level <= dec.StackDepth() {
			kind, _ = dec.StackIndex(level)
		}
		switch {
		case kind == jsontext.KindBeginArray:
			b.WriteString("[" + tok + "]")
		case plainKey.MatchString(tok):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		default:
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return b.String()
}

// CheckString reports whether s could be a string of a strict document:
// valid UTF-8 without NUL. It is the same rule for text that does not come in
// as JSON (path segments, query parameters); the answer is the reason it
// cannot, or "".
func CheckString(s string) string {
	switch {
	case !utf8.ValidString(s):
		return MsgInvalidUTF8
	case strings.IndexByte(s, 0) >= 0:
		return MsgNUL
	}
	return ""
}
