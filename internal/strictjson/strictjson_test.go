package strictjson

import (
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
		})
	}
}

func TestCheckDeepDocument(t *testing.T) {
	t.Parallel()
	doc := strings.Repeat(`{"a":`, 100) + `"\u0000"` + strings.Repeat(`}`, 100)
	got := Check([]byte(doc))
	require.Len(t, got, 1)
	require.Equal(t, strings.TrimSuffix(strings.Repeat("a.", 100), "."), got[0].Path)
}

func TestCheckString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"c_123":          "",
		"Zoë 😀":          "",
		"c_\xff":         MsgInvalidUTF8,
		"\xed\xa0\x80":   MsgInvalidUTF8, // a surrogate encoded as UTF-8 is not UTF-8
		"a\x00b":         MsgNUL,
		"":               "",
		"tab\tand\nline": "",
	} {
		require.Equal(t, want, CheckString(in), "%q", in)
	}
}
