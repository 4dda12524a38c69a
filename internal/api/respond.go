package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tutti-dev/tutti/internal/contact"
	"github.com/tutti-dev/tutti/internal/storage"
	"github.com/tutti-dev/tutti/internal/strictjson"
)

// Error is an API error. It is written as
//
//	{"error": {"code": "...", "message": "...", "fields": [{"path": "...", "message": "..."}]}}
//
// Code is stable and meant for programs; Message is for people. Fields names
// the offending request fields, so a caller can point at them.
type Error struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
	// EligibleAt is set on reentry_cooldown: when the contact may enter again.
	EligibleAt *time.Time `json:"eligible_at,omitempty"`
	// IdempotencyKey is set on start_outcome_unknown: retry with this key
	// in the Idempotency-Key header to get the run if it started.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// FieldError names one invalid request field. Path is the JSON path as the
// caller wrote it ("email", "attributes.plan"); for a journey spec it is the
// validator's path ("steps[2].wait.duration").
type FieldError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

var errInternal = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the API log"}

// invalid is a 400 naming one or more fields.
func invalid(fields ...FieldError) *Error {
	msg := "invalid request"
	if len(fields) == 1 {
		msg = fields[0].Path + ": " + fields[0].Message
	} else if len(fields) > 1 {
		msg = fmt.Sprintf("invalid request: %d problems, see fields", len(fields))
	}
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: msg, Fields: fields}
}

// notFound is a 404 that says what was not found; field, when set, names
// the request field that referred to it.
func notFound(what, id, field string) *Error {
	e := &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s %q not found", what, id)}
	if field != "" {
		e.Fields = []FieldError{{Path: field, Message: what + " not found"}}
	}
	return e
}

func conflict(code, msg string, fields ...FieldError) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Message: msg, Fields: fields}
}

// unavailable is a 503 for a dependency (Temporal, Postgres) failing mid-request.
func unavailable(msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: msg}
}

// fieldErrors collects problems so a request reports all of them at once.
type fieldErrors []FieldError

func (f *fieldErrors) add(path, format string, args ...any) {
	*f = append(*f, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// err returns nil or a 400 naming every collected field.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return invalid(f...)
}

// responseBuffers are writeJSON's, reused: most answers are small, and
// the API answers thousands a second. A buffer grown past maxPooledResponse
// (a large page of a list) is left to the collector rather than kept.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledResponse = 64 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := responseBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledResponse {
			responseBuffers.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a programming error (an unencodable type) gets here.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"encoding the response failed"}}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers with err: an *Error as is, known sentinel and transport
// errors mapped to their status, anything else logged and hidden behind a 500.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := apiError(r, err)
	writeJSON(w, ae.Status, ErrorEnvelope{Error: ae})
}

func apiError(r *http.Request, err error) *Error {
	var ae *Error
	var ce *contact.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ce):
		// A domain rule found late, e.g. attribute limits after the merge.
		return invalid(FieldError{Path: ce.Field, Message: ce.Reason})
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, storage.ErrNotFound):
		// Handlers name what was missing; this is the fallback.
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, storage.ErrIdentityConflict), errors.Is(err, storage.ErrEventConflict), errors.Is(err, storage.ErrAlreadyActive):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case r.Context().Err() != nil:
		// The client went away or its deadline passed; nobody reads this.
		return &Error{Status: 499, Code: "canceled", Message: "request canceled"}
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable("a dependency did not answer in time; retry")
	default:
		loggerFrom(r.Context()).Error("api: internal error", "method", r.Method, "route", r.Pattern, "error", err)
		return errInternal
	}
}

// decodeJSON reads one JSON object into dst, refusing unknown fields,
// trailing data and bodies over the size limit. Errors name the field.
//
// It is strict about text, for every body at once: bytes that are not UTF-8,
// lone surrogate escapes and a member given twice would be silently replaced
// or dropped by encoding/json (so two different inputs could land on one
// contact), and a NUL in any string would be refused by PostgreSQL as a 500;
// all of them are a 400 naming the field (see package strictjson).
func decodeJSON(r *http.Request, dst any) error {
	if r.Body == nil {
		return invalid(FieldError{Path: "", Message: "request body is required"})
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err // *http.MaxBytesError: 413
	}
	return decodeStrict(data, dst)
}

// decodeStrict is decodeJSON over bytes already read: one item of a batch.
func decodeStrict(data []byte, dst any) error {
	if problems := strictjson.Check(data); len(problems) > 0 {
		fields := make([]FieldError, len(problems))
		for i, p := range problems {
			fields[i] = FieldError{Path: p.Path, Message: p.Message}
		}
		return invalid(fields...)
	}
	return decodeChecked(data, dst)
}

// decodeChecked decodes data, whose text strictjson has checked, into dst:
// unknown fields and trailing data refused, errors naming the field.
func decodeChecked(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return invalid(FieldError{Path: "", Message: "request body must be a single JSON object"})
	}
	return nil
}

func jsonError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return invalid(FieldError{Path: "", Message: "request body is required (a JSON object)"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(FieldError{Path: "", Message: "request body is truncated JSON"})
	case errors.As(err, &syntax):
		return invalid(FieldError{Path: "", Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)})
	case errors.As(err, &typ):
		path := typ.Field
		if path == "" {
			return invalid(FieldError{Path: "", Message: "request body must be a JSON object"})
		}
		return invalid(FieldError{Path: path, Message: "must be " + jsonTypeName(typ.Type.Kind().String()) + ", got " + typ.Value})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return invalid(FieldError{Path: name, Message: "unknown field"})
	default:
		return invalid(FieldError{Path: "", Message: "invalid JSON: " + err.Error()})
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	default:
		return "a " + kind
	}
}

// parseTime parses an optional RFC 3339 timestamp field; empty means def.
// Request structs carry timestamps as strings so a bad one is reported
// with its field name, which the JSON decoder cannot do for time.Time.
func parseTime(fe *fieldErrors, path, raw string, def time.Time) time.Time {
	if raw == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		fe.add(path, "must be an RFC 3339 timestamp like 2024-05-01T12:00:00Z")
		return def
	}
	return t.UTC()
}

// checkRequestText refuses path segments and query parameters that are not
// text: bytes that are not UTF-8 (c_%FF, %ED%A0%80, an encoded surrogate) or
// a NUL (%00). PostgreSQL refuses both with an error that would otherwise be
// a 500, and no stored id can equal them. Path segments are ids, so they are
// also held to maxIDLen. A query string that does not parse is refused rather
// than read in part, as url.Values would. It runs before every handler, so
// none reads unchecked text.
func checkRequestText(r *http.Request, pathParams []string) error {
	var fe fieldErrors
	for _, name := range pathParams {
		v := r.PathValue(name)
		if msg := strictjson.CheckString(v); msg != "" {
			fe.add(name, "%s", msg)
		} else if n := utf8.RuneCountInString(v); n > maxIDLen {
			fe.add(name, "at most %d characters", maxIDLen)
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fe.add("", "the query string is malformed: %v", err)
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if msg := strictjson.CheckString(k); msg != "" {
			fe.add("", "a query parameter name %s", msg)
			continue
		}
		for _, v := range query[k] {
			if msg := strictjson.CheckString(v); msg != "" {
				fe.add(k, "%s", msg)
				break
			}
		}
	}
	return fe.err()
}

// pathParams lists the wildcards of a ServeMux pattern ("{id}", "{rest...}").
func pathParams(pattern string) []string {
	var out []string
	for _, seg := range strings.Split(pattern, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			if name != "$" {
				out = append(out, name)
			}
		}
	}
	return out
}

// limitParam parses ?limit= with a default and a ceiling.
func limitParam(r *http.Request, def, maxLimit int) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalid(FieldError{Path: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", maxLimit)})
	}
	return n, nil
}
