package strictjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Problem
	}{
		{"plain object", `{"email":"a@example.com","attributes":{"plan":"pro","n":[1,2,{"x":null}]}}`, nil},
		{"escapes that are characters", `{"a":"\u00e9\ud83d\ude00\n\t\"\\"}`, nil},
		{"raw multibyte UTF-8", `{"name":"Zoë 😀 名前"}`, nil},
		{"not JSON: left to the decoder", `{"a":`, nil},
		{"two documents: left to the decoder", `{} {}`, nil},
		{"empty", ``, nil},

		{"NUL escape in a value", `{"external_id":"a\u0000b"}`, []Problem{{"external_id", MsgNUL}}},
		{"NUL in a nested value", `{"attributes":{"plan":"\u0000"}}`, []Problem{{"attributes.plan", MsgNUL}}},
		{"NUL in an array item", `{"properties":{"items":["ok","x\u0000"]}}`, []Problem{{"properties.items[1]", MsgNUL}}},
		{"NUL in an object in an array", `{"p":[{"q":"\u0000"}]}`, []Problem{{"p[0].q", MsgNUL}}},
		{"NUL in a member name: reported on the object", `{"attributes":{"pl\u0000an":1}}`,
			[]Problem{{"attributes", `member name "pl\x00an" ` + MsgNUL}}},
		{"NUL in a top-level name", `{"\u0000":1}`, []Problem{{"", `member name "\x00" ` + MsgNUL}}},
		{"every NUL is reported", `{"a":"\u0000","b":{"c":"\u0000"}}`, []Problem{{"a", MsgNUL}, {"b.c", MsgNUL}}},
		{"a key that is not an identifier is quoted", `{"attributes":{"first name":"\u0000"}}`,
			[]Problem{{`attributes["first name"]`, MsgNUL}}},
		{"a numeric member name is a name, not an index", `{"m":{"0":"\u0000"}}`, []Problem{{`m["0"]`, MsgNUL}}},

		{"invalid UTF-8 byte in a value", "{\"email\":\"a\xffb@example.com\"}", []Problem{{"email", MsgInvalidUTF8}}},
		{"invalid UTF-8 in an array", "{\"a\":[1,\"x\xff\"]}", []Problem{{"a[1]", MsgInvalidUTF8}}},
		{"encoded surrogate bytes", "{\"external_id\":\"\xed\xa0\x80\"}", []Problem{{"external_id", MsgInvalidUTF8}}},
		{"invalid UTF-8 in a member name", "{\"attributes\":{\"a\xff\":1}}", []Problem{{"attributes", MsgInvalidUTF8}}},
		{"lone high surrogate escape", `{"external_id":"\ud800"}`, []Problem{{"external_id", MsgSurrogate}}},
		{"lone low surrogate escape", `{"a":{"b":"x\udc00y"}}`, []Problem{{"a.b", MsgSurrogate}}},
		{"reversed surrogate pair", `{"a":"\ude00\ud83d"}`, []Problem{{"a", MsgSurrogate}}},
		{"NULs before a decoding failure are kept", "{\"a\":\"\\u0000\",\"b\":\"\xff\"}", []Problem{{"a", MsgNUL}, {"b", MsgInvalidUTF8}}},

		{"duplicate member", `{"email":"a@example.com","email":"b@example.com"}`, []Problem{{"email", MsgDuplicate}}},
		{"duplicate nested member", `{"attributes":{"plan":1,"plan":2}}`, []Problem{{"attributes.plan", MsgDuplicate}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Check([]byte(tt.in)))
			// The fast path answers only for documents the walk finds
			// nothing in, and must answer for well-formed ones.
			if clean([]byte(tt.in)) {
				require.Nil(t, problems([]byte(tt.in)))
				require.True(t, json.Valid([]byte(tt.in)))
			} else if tt.want == nil {
				require.False(t, json.Valid([]byte(tt.in)), "a valid document without problems must take the fast path")
			}
		})
	}
}

// FuzzCheck: the fast path (clean) never hides what the walk (problems)
// reports, and takes every valid document the walk finds nothing in.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{} {}`, `{"a":[1,{"b":"c"}]}`, `{"a":"\\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		walk := problems(data)
		if clean(data) {
			if walk != nil || !json.Valid(data) {
				t.Fatalf("clean(%q), but the walk says %v (valid %v)", data, walk, json.Valid(data))
			}
		} else if walk == nil && json.Valid(data) && !bytes.Contains(data, nulEscape) {
			t.Fatalf("%q: valid, no problems, no NUL escape, but not clean", data)
		}
	})
}

// BenchmarkCheck: a POST /v1/events body, the API's most frequent, through
// Check (one pass of the strict decoder) and through the token walk alone
// (what Check did for every document before that pass).
func BenchmarkCheck(b *testing.B) {
	doc := []byte(`{"event_id": "evt-6f1c2a9e-4b1d-4c53-9f0e-2b7d1c8a9e10", "contact_id": "c_0123456789abcdef0123456789abcdef", "name": "purchase", "properties": {"order_id": "o-1001", "total": 42.5}}`)
	for _, bc := range []struct {
		name  string
		check func([]byte) []Problem
	}{{"check", Check}, {"walk", problems}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.check(doc) != nil {
					b.Fatal("problems")
				}
			}
		})
	}
}

// A document larger than a pooled decoder reads gets the same answers.
func TestCheckLargeDocument(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", maxPooled)
	require.Nil(t, Check([]byte(`{"a":"`+big+`"}`)))
	require.True(t, clean([]byte(`{"a":"`+big+`"}`)))
	require.Equal(t, []Problem{{"b.b", MsgDuplicate}}, Check([]byte(`{"a":"`+big+`","b":{"b":1,"b":2}}`)))
	require.Equal(t, []Problem{{"c", MsgNUL}}, Check([]byte(`{"a":"`+big+`","c":"\u0000"}`)))
}
