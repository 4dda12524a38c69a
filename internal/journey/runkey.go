package journey

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// One run per key value: a journey whose trigger names a key (`key:
// cart_id`) runs once per value of that property of its triggering event.
// The value may be anything a client sends (a cart id, an order number,
// an email address), so it never leaves PostgreSQL as is: the run is named
// by RunKeyDigest, a keyed hash of it, in its workflow id, its enrollment
// row and wherever Temporal sees it.

// keyPattern is a top-level event property name: what CEL and the
// templates can name too.
var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

const keyRule = `must be the name of a property of the triggering event: 1-64 characters of A-Z, a-z, 0-9 and "_", not starting with a digit`

// MaxRunKeyLen bounds a key value: longer values are not ids.
const MaxRunKeyLen = 256

// RunKeyOf is the value of the key property in an event's properties, as
// the text that names the run, and whether the event carries one. A
// string counts trimmed and non-empty; a number by its shortest decimal
// form, so cart 123 posted as 123 and as "123" is one cart (JSON numbers
// arrive as float64). Anything else (absent, null, a boolean, an object,
// an empty or overlong string) is no key value.
func RunKeyOf(props map[string]any, key string) (string, bool) {
	if key == "" {
		return "", false
	}
	switch v := props[key].(type) {
	case string:
		v = strings.TrimSpace(v)
		if v == "" || len(v) > MaxRunKeyLen || !utf8.ValidString(v) {
			return "", false
		}
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// RunKeyDigestLen is the length of a digest in hex: 128 bits, more than
// enough to keep two key values of one contact apart.
const RunKeyDigestLen = 32

// IsRunKeyDigest reports whether s has the form of a RunKeyDigest.
func IsRunKeyDigest(s string) bool {
	if len(s) != RunKeyDigestLen {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// RunKeyDigest names the run of one key value: HMAC-SHA256 with secret
// over the key property's name and the value, truncated to 128 bits, in
// hex. Keyed, not a plain hash: key values are often guessable (sequential
// cart and order ids, email addresses), and a plain SHA-256 of each
// candidate would find them from a workflow id. The secret (see
// storage.RunKeySecret) lives in PostgreSQL, next to the raw values in the
// events, and never reaches Temporal, so whoever sees only Temporal
// (its UI, visibility store, logs, a cloud operator) learns nothing from a
// digest but that two runs are of the same value. The property name is in
// the message so cart_id 7 and order_id 7 are different runs.
func RunKeyDigest(secret []byte, key, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:RunKeyDigestLen/2])
}
