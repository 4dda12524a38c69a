package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// naughtyStrings is a sample of the Big List of Naughty Strings
// (https://github.com/minimaxir/big-list-of-naughty-strings, MIT License,
// Copyright (c) 2015-2020 Max Woolf), one or two from each of its sections,
// plus what this API must refuse (NUL, invalid UTF-8, lone surrogates), which
// JSON cannot carry as Go strings and is sent as raw text by naughtyJSON.
var naughtyStrings = []string{
	// Reserved strings and numbers.
	"", "undefined", "null", "NULL", "(null)", "nil", "true", "False", "None", "\\", "\\\\",
	"0", "-1", "1.00", "$1.00", "1E+02", "-0", "0xffffffff", "999999999999999999999999999999", "NaN", "-Infinity",
	// Special and control characters.
	",./;'[]\\-=", "<>?:\"{}|_+", "!@#$%^&*()`~",
	"\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000e\u000f\u0010\u001f\u007f",
	"\u0080\u0081\u0082\u0083\u0085\u009f",
	// Unicode white space and invisible characters.
	"\u0009\u000b\u000c\u0020\u00a0\u1680\u2000\u2001\u200a\u2028\u2029\u202f\u205f\u3000",
	"\u00ad\u0600\u061c\u06dd\u070f\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\u2069\ufeff\ufff9",
	"\ufffe", "\U0001d173\U0001d17a", "\U000e0001\U000e0020\U000e007f",
	// Quotation marks, two-byte and astral characters, emoji.
	"\u0027", "\u201c\u201d\u2018\u2019", "\u00ab\u00bb\u2039\u203a",
	"Ω≈ç√∫˜µ≤≥÷", "åß∂ƒ©˙∆˚¬…æ", "田中さんにあげて下さい", "사회과학원 어학연구소", "𠜎𠜱𠝹𠱓",
	"😍", "👩🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇷🇺🇸", "０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩",
	// Right-to-left text, Zalgo, upside down, special Unicode fonts.
	"בְּרֵאשִׁית, בָּרָא", "مرحبًا بالعالم", "\u202eRTL override",
	"Ṱ̺̺̕o͞ ̷i̲̬͇̪͙n̝̗͕v̟̜̘̦͟o̶̙̰̠kè͚̮̺̪̹̱̤ ̖t̝͕̳̣̻̪͞h̼͓̲̦̳̘̲e͇̣̰̦̬͎ ̢̼̻̱̘h͚͎͙̜̣̲ͅi̦̲̣̰̤v̻͍e̺̭̳̪̰-m̢iͅn̖̺̞̲̯̰d̵̼̟͙̩̼̘̳",
	"˙ɐnbᴉlɐ ɐuƃɐɯ ǝɹolop ʇǝ ǝɹoqɐl ʇn ʇunpᴉpᴉɔuᴉ", "𝐓𝐡𝐞 𝐪𝐮𝐢𝐜𝐤", "ｔｅｓｔ",
	// Injection: script, SQL, server code, command, format strings, templates.
	"<script>alert(123)</script>", "<img src=x onerror=alert(1)//>", "javascript:alert(1)",
	"1;DROP TABLE contacts", "' OR 1=1 -- 1", "'; EXEC sp_MSForEachTable 'DROP TABLE ?'; --",
	"$(touch /tmp/blns.fail)", "`touch /tmp/blns.fail`", "%s%s%s%n", "%d%x%p", "{0}", "{{ .contact.email }}",
	"${7*7}", "../../../../../../etc/passwd", "C:\\Windows\\System32", "\r\nSet-Cookie: x=1",
	"Roses are \x1b[0;31mred\x1b[0m", "http://a/%%30%30", "%00", "%FF", "%ED%A0%80",
	// Email and phone look-alikes.
	"kelvin@example.com", "\u212aelvin@example.com", "alice@exa\u00admple.com", "a@b", "@", "a@b@c.com",
	"\"quoted local\"@example.com", "+1 415 555 0100 ext. 12", "+0", "+99999999999999999999", "(415) 555-0100",
	// Long.
	strings.Repeat("A", 1000), strings.Repeat("😍", 300),
}

// naughtyJSON are JSON string literals (raw text) that no Go string can
// marshal to: what encoding/json would have silently replaced.
var naughtyJSON = []string{`"\u0000"`, `"a\u0000b"`, `"\ud800"`, `"\udfff"`, `"\ude00\ud83d"`, "\"\xff\"", "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xf4\x90\x80\x80\""}

// TestNaughtyStringsNeverFail sends every naughty string in every string
// field of every JSON body, path and query: whatever the answer, it is never
// a 5xx.
func TestNaughtyStringsNeverFail(t *testing.T) {
	h, id := inputSetup(t)
	literals := append([]string{}, naughtyJSON...)
	for _, s := range naughtyStrings {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		literals = append(literals, string(b))
	}
	requireNot5xx := func(r response, what string) {
		t.Helper()
		if r.status >= 500 || r.status == 0 {
			t.Errorf("%s: %d %s", what, r.status, r.raw)
		}
	}
	for _, lit := range literals {
		for _, c := range stringFieldCases(id) {
			body := fmt.Sprintf(c.body, lit)
			requireNot5xx(h.do(c.method, c.path, body, "application/json", "Bearer "+token), fmt.Sprintf("%s %s %q", c.method, c.path, body))
		}
	}
	contact := "/v1/contacts/" + id
	for _, s := range naughtyStrings {
		p, q := url.PathEscape(s), url.QueryEscape(s)
		for _, u := range []struct{ method, path string }{
			{"GET", "/v1/contacts/" + p},
			{"GET", "/v1/contacts/" + p + "/consent"},
			{"GET", contact + "/journeys/" + p + "/steps/" + p + "/why"},
			{"POST", contact + "/journeys/" + p + "/exit"},
			{"DELETE", contact + "/suppressions/" + p},
			{"GET", "/v1/journeys/" + p},
			{"GET", "/v1/journeys/inj/versions/" + p},
			{"POST", "/v1/journeys/" + p + "/enrollments"},
			{"GET", "/v1/contacts?external_id=" + q},
			{"GET", "/v1/contacts?email=" + q},
			{"GET", "/v1/contacts?phone=" + q},
			{"GET", "/v1/sandbox/messages?contact_id=" + q},
			{"GET", contact + "/decisions?journey_id=" + q},
			{"GET", contact + "/messages?limit=" + q},
		} {
			requireNot5xx(h.do(u.method, u.path, `{"reason": "r", "contact_id": "`+id+`"}`, "application/json", "Bearer "+token), u.method+" "+u.path)
		}
	}
	// Journey specs: every naughty string as a message body, a name and an id.
	for _, lit := range literals {
		spec := `{"id": "naughty", "name": ` + lit + `, "trigger": {"type": "api"}, "reentry": {"policy": "always"},
			"steps": [{"id": "hi", "send": {"channel": "sms", "sms": {"body": ` + lit + `}}}]}`
		requireNot5xx(h.do("POST", "/v1/journeys", spec, "application/json", "Bearer "+token), "spec "+lit)
		spec = strings.Replace(spec, `"id": "naughty"`, `"id": `+lit, 1)
		requireNot5xx(h.do("POST", "/v1/journeys/validate", spec, "", "Bearer "+token), "spec id "+lit)
	}
	if t.Failed() {
		return
	}
	// And the API still works.
	h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
}
