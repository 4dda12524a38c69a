package journey

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/strictjson"
)

const minimalYAML = `
id: hello
name: Hello
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: greet
    send:
      channel: sms
      sms: {body: "Hi"}
  - id: pause
    wait: {duration: 1d12h}
`

const minimalJSON = `{
  "id": "hello", "name": "Hello",
  "trigger": {"type": "api"}, "reentry": {"policy": "once"},
  "steps": [
    {"id": "greet", "send": {"channel": "sms", "sms": {"body": "Hi"}}},
    {"id": "pause", "wait": {"duration": "1d12h"}}
  ]
}`

func TestParse_YAMLAndJSONAgree(t *testing.T) {
	fromYAML, err := Parse([]byte(minimalYAML))
	require.NoError(t, err)
	fromJSON, err := Parse([]byte(minimalJSON))
	require.NoError(t, err)
	require.Equal(t, fromYAML, fromJSON)

	require.Equal(t, "hello", fromYAML.ID)
	require.Equal(t, TriggerAPI, fromYAML.Trigger.Type)
	require.Len(t, fromYAML.Steps, 2)
	require.Equal(t, KindSend, fromYAML.Steps[0].Kind())
	require.Equal(t, "Hi", fromYAML.Steps[0].Send.SMS.Body)
	require.Equal(t, 36*time.Hour, fromYAML.Steps[1].Wait.Duration.Std())
}

func TestParse_EmailDataKeepsArbitraryJSON(t *testing.T) {
	s, err := Parse([]byte(`
id: x
name: X
trigger: {type: api}
reentry: {policy: once}
steps:
  - id: promo
    send:
      channel: email
      email:
        template_id: d-123
        data: {name: "{{ .contact.first_name }}", items: [{sku: A1, qty: 2}], vip: true}
`))
	require.NoError(t, err)
	data := s.Steps[0].Send.Email.Data
	require.Equal(t, "{{ .contact.first_name }}", data["name"])
	require.Equal(t, true, data["vip"])
	require.Equal(t, []any{map[string]any{"sku": "A1", "qty": float64(2)}}, data["items"])
}

func TestParse_ShapeProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Problems
	}{
		{
			name: "unknown step field with a suggestion",
			doc: `
id: x
name: X
trigger: {type: api}
reentry: {policy: once}
steps:
  - {id: a, wait: {duration: 1h}}
  - {id: b, wait: {duration: 1h}}
  - {id: c, wiat: {duration: 1h}}
`,
			want: Problems{{Path: "steps[2].wiat", Message: `unknown field (did you mean "wait"?)`}},
		},
		{
			name: "field names are case-sensitive",
			doc:  `{"ID": "x"}`,
			want: Problems{{Path: "ID", Message: `unknown field (did you mean "id"?)`}},
		},
		{
			name: "unknown field with nothing close lists the fields",
			doc:  `{"trigger": {"type": "api", "schedule": "daily"}}`,
			want: Problems{{Path: "trigger.schedule", Message: "unknown field (expected one of type, event, segment, key)"}},
		},
		{
			name: "string expected",
			doc:  `{"name": 42}`,
			want: Problems{{Path: "name", Message: "must be a string, not a number (42)"}},
		},
		{
			name: "YAML booleans in a string list get a hint",
			doc:  "exit_events: [unsubscribed, no]",
			want: Problems{{Path: "exit_events[1]", Message: "must be a string, not false (in YAML, put quotes around values like yes, no, on or off)"}},
		},
		{
			name: "list expected",
			doc:  "steps: {id: a}",
			want: Problems{{Path: "steps", Message: "must be a list, not an object"}},
		},
		{
			name: "object expected",
			doc:  "steps: [{id: a, wait: 1h}]",
			want: Problems{{Path: "steps[0].wait", Message: "must be an object, not a string"}},
		},
		{
			name: "bare number duration",
			doc:  "steps: [{id: a, wait: {duration: 30}}]",
			want: Problems{{Path: "steps[0].wait.duration", Message: `duration must be a string like "30s", "12h" or "3d"`}},
		},
		{
			name: "bad duration unit",
			doc:  "reentry: {policy: cooldown, cooldown: 2w}",
			want: Problems{{Path: "reentry.cooldown", Message: `invalid duration "2w": use units like 30s, 15m, 12h, 3d`}},
		},
		{
			name: "empty duration",
			doc:  "steps: [{id: a, wait_for: {event: x, timeout: }}]",
			want: Problems{{Path: "steps[0].wait_for.timeout", Message: `must be a duration like "30s", "15m", "12h" or "3d", not empty`}},
		},
		{
			name: "every problem, in document order",
			doc: `
steps:
  - id: a
    wait: {duration: soon}
    nxt: b
name: [X]
id: x
trigger: {type: api, evnt: signup}
`,
			want: Problems{
				{Path: "name", Message: "must be a string, not a list"},
				{Path: "trigger.evnt", Message: `unknown field (did you mean "event"?)`},
				{Path: "steps[0].wait.duration", Message: `invalid duration "soon": use units like 30s, 15m, 12h, 3d`},
				{Path: "steps[0].nxt", Message: `unknown field (did you mean "next"?)`},
			},
		},
		{
			name: "not an object",
			doc:  "- id: a\n- id: b\n",
			want: Problems{{Message: "journey spec must be an object with id, name, trigger, reentry and steps, not a list"}},
		},
		{
			name: "null document",
			doc:  "~",
			want: Problems{{Message: "journey spec must be an object with id, name, trigger, reentry and steps"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var got Problems
			require.True(t, errors.As(err, &got), "want Problems, got %v", err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParse_NotYAML(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "  \n", "journey spec is empty"},
		{"bad indentation", "id: x\n  name: y\n", "journey spec is not valid YAML or JSON: yaml: line 2: mapping values are not allowed in this context"},
		{"two documents", "---\nid: a\n---\nid: b\n", `journey spec must be a single YAML document, but a second one starts with "---" on line 3: publish each journey on its own`},
		{"broken JSON", `{"id": "x",`, "journey spec is not valid YAML or JSON: yaml: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			require.EqualError(t, err, tt.want)
			var problems Problems
			require.False(t, errors.As(err, &problems))
		})
	}
}

func TestParse_NotText(t *testing.T) {
	withSMS := func(body string) string { return strings.Replace(minimalYAML, `"Hi"`, body, 1) }
	tests := []struct {
		name, doc string
		want      Problems
	}{
		{"invalid UTF-8 byte", withSMS("\"Hi \xff\""), Problems{{Path: "", Message: "is not valid UTF-8: the first invalid byte is at offset " + offsetOf(withSMS("\"Hi \xff\""), "\xff")}}},
		{"UTF-8 encoded surrogate", withSMS("\"\xed\xa0\x80\""), Problems{{Path: "", Message: "is not valid UTF-8: the first invalid byte is at offset " + offsetOf(withSMS("\"\xed\xa0\x80\""), "\xed")}}},
		{"raw NUL", withSMS("\"Hi\x00\""), Problems{{Path: "", Message: "contains a NUL byte at offset " + offsetOf(withSMS("\"Hi\x00\""), "\x00")}}},
		{"YAML \\0 escape", withSMS(`"Hi\0"`), Problems{{Path: "steps[0].send.sms.body", Message: strictjson.MsgNUL}}},
		{"YAML \\x00 escape", withSMS(`"Hi\x00"`), Problems{{Path: "steps[0].send.sms.body", Message: strictjson.MsgNUL}}},
		{"YAML \\u0000 escape in a name", strings.Replace(minimalYAML, "name: Hello", `name: "Hel\u0000lo"`, 1), Problems{{Path: "name", Message: strictjson.MsgNUL}}},
		{"JSON \\u0000 escape", strings.Replace(minimalJSON, `"Hi"`, `"Hi\u0000"`, 1), Problems{{Path: "steps[0].send.sms.body", Message: strictjson.MsgNUL}}},
		{"JSON lone surrogate", strings.Replace(minimalJSON, `"Hi"`, `"Hi\ud800"`, 1), Problems{{Path: "steps[0].send.sms.body", Message: strictjson.MsgSurrogate}}},
		{"JSON duplicate key", strings.Replace(minimalJSON, `"id": "hello",`, `"id": "hello", "id": "other",`, 1), Problems{{Path: "id", Message: strictjson.MsgDuplicate}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAndValidate([]byte(tt.doc))
			var te *TextError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tt.want, te.Problems)
			var problems Problems
			require.False(t, errors.As(err, &problems), "not a journey problem (422) but bad text (400)")
		})
	}
}

func offsetOf(doc, sub string) string { return strconv.Itoa(strings.Index(doc, sub)) }

func TestParse_LeadingDocumentMarker(t *testing.T) {
	s, err := Parse([]byte("# comment\n---\n" + minimalYAML))
	require.NoError(t, err)
	require.Equal(t, "hello", s.ID)
}

func TestParseAndValidate(t *testing.T) {
	s, err := ParseAndValidate([]byte(minimalYAML))
	require.NoError(t, err)
	require.Equal(t, "hello", s.ID)

	_, err = ParseAndValidate([]byte(`{"id": "Bad ID", "name": "x", "trigger": {"type": "api"}, "reentry": {"policy": "once"}, "steps": [{"id": "a", "wait": {"duration": "0s"}}]}`))
	require.EqualError(t, err, `id: must be 1-64 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (got "Bad ID")
steps[0].wait.duration: must be greater than 0`)
	var problems Problems
	require.ErrorAs(t, err, &problems)
	require.Len(t, problems, 2)

	// Shape problems come back the same way, before any rule is checked.
	_, err = ParseAndValidate([]byte(`{"id": "x", "nam": "x"}`))
	require.EqualError(t, err, `nam: unknown field (did you mean "name"?)`)
}

func TestComparePaths(t *testing.T) {
	ordered := []string{
		"",
		"id",
		"name",
		"trigger.type",
		"trigger.event",
		"reentry",
		"goal.event",
		"exit_events[2]",
		"exit_events[10]",
		"class",
		"steps",
		"steps[1]",
		"steps[1].id",
		"steps[1].next",
		"steps[1].send.channel",
		"steps[1].send.email.template_id",
		"steps[1].send.email.data",
		"steps[1].send.email.data.alpha",
		`steps[1].send.email.data["b c"]`,
		"steps[1].send.email.data.zeta[0]",
		"steps[1].send.email.subject",
		"steps[1].wiat",
		"steps[2]",
		"steps[10].branch.else",
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			require.Equal(t, want, comparePaths(ordered[i], ordered[j]), "%q vs %q", ordered[i], ordered[j])
		}
	}
}

// A published spec is stored and handed to workflows as JSON; it must parse
// back to the same spec.
func TestParse_RoundTripsThroughJSON(t *testing.T) {
	for _, name := range []string{"welcome.yaml", "abandoned_cart.yaml"} {
		t.Run(name, func(t *testing.T) {
			s := loadExample(t, name)
			b, err := json.Marshal(s)
			require.NoError(t, err)
			again, err := ParseAndValidate(b)
			require.NoError(t, err)
			require.Equal(t, s, again)
		})
	}
}

func TestDecodeProblem(t *testing.T) {
	var s Spec
	err := json.Unmarshal([]byte(`{"steps": [{"id": 3}]}`), &s)
	require.Equal(t, Problems{{Path: "steps.id", Message: "must be a string, not number"}}, decodeProblem(err, specDocument))

	dec := json.NewDecoder(strings.NewReader(`{"bogus": 1}`))
	dec.DisallowUnknownFields()
	require.Equal(t, Problems{{Path: "bogus", Message: "unknown field"}}, decodeProblem(dec.Decode(&s), specDocument))

	require.EqualError(t, decodeProblem(errors.New("boom"), specDocument), "journey spec: boom")
}
