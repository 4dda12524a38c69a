// Package audience is what Tutti sends to ad platforms about a contact:
// identifiers normalised by each platform's documented rules, hashed with
// SHA-256, and cut into batches no larger than the platform accepts. A
// contact's email or phone never leaves Tutti in clear for an ad audience.
package audience

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"
)

// Destination is an ad platform an audience can live on.
type Destination string

// The destinations.
const (
	// Meta Custom Audiences (Marketing API, /{audience}/users).
	Meta Destination = "meta"
	// Google Customer Match through the Data Manager API.
	Google Destination = "google"
	// LinkedIn DMP segments (matched audiences).
	LinkedIn Destination = "linkedin"
)

// Destinations lists them all.
var Destinations = []Destination{Meta, Google, LinkedIn}

// MaxBatch is the most members one request may carry, per destination:
// 10,000 for Meta's users endpoint and the Data Manager API's ingest and
// remove; LinkedIn's user batches are kept to the same size.
func (d Destination) MaxBatch() int { return 10_000 }

// Kind is the kind of an identifier.
type Kind string

// The identifier kinds Tutti holds and every destination matches on.
const (
	Email Kind = "email"
	Phone Kind = "phone"
)

// Why an identifier cannot be sent: recorded per member, never a failed batch.
var (
	ErrEmpty       = errors.New("empty")
	ErrNotAnEmail  = errors.New("not an email address")
	ErrNotE164     = errors.New("not an E.164 phone number (+ and 8 to 15 digits)")
	ErrNotSupplied = errors.New("this destination does not match on this kind of identifier")
)

// Normalize applies a destination's documented normalisation to one
// identifier, as stored by Tutti (emails already validated and lowercased
// by internal/contact, phones in E.164); it also tolerates values that are
// not yet normalised (case, surrounding white space, phone punctuation).
//
//   - Every destination: email trimmed and lowercased.
//   - Google (Data Manager API, "Format user data"): white space removed
//     anywhere in an email; for gmail.com and googlemail.com, the dots of
//     the local part and anything from a "+" on are removed; phones in
//     E.164 with the "+".
//   - Meta (Custom Audiences, PHONE): digits only with the country code,
//     no "+", no symbols, no leading zeros.
//   - LinkedIn: emails only.
func Normalize(d Destination, k Kind, value string) (string, error) {
	switch k {
	case Email:
		return normalizeEmail(d, value)
	case Phone:
		if d == LinkedIn {
			return "", ErrNotSupplied
		}
		return normalizePhone(d, value)
	}
	return "", ErrNotSupplied
}

func normalizeEmail(d Destination, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	upper, space := scanEmail(s)
	if upper {
		s = strings.ToLower(s)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || !utf8.ValidString(s) {
		return "", ErrNotAnEmail
	}
	if d != Google {
		return s, nil
	}
	if space {
		s = strings.Join(strings.Fields(s), "")
		at = strings.LastIndexByte(s, '@')
	}
	local, domain := s[:at], s[at+1:]
	if domain != "gmail.com" && domain != "googlemail.com" {
		return s, nil
	}
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	local = strings.ReplaceAll(local, ".", "")
	if local == "" {
		return "", ErrNotAnEmail
	}
	return local + "@" + domain, nil
}

// scanEmail reports whether s may have upper-case letters (any non-ASCII
// byte counts) and whether it has ASCII white space, in one pass, so that
// the common case (an address Tutti already stored normalised) costs no
// allocation.
func scanEmail(s string) (upper, space bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf || ('A' <= c && c <= 'Z'):
			upper = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
		}
	}
	return upper, space
}

func normalizePhone(d Destination, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	// Keep the digits; a stored E.164 number is already just "+" and digits.
	digits := s
	if !isE164(s) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if c := s[i]; '0' <= c && c <= '9' {
				b.WriteByte(c)
			}
		}
		if s[0] != '+' && !strings.HasPrefix(s, "00") {
			// A national number: which country is unknown, and Meta and
			// Google both need the country code.
			return "", ErrNotE164
		}
		digits = "+" + strings.TrimLeft(b.String(), "0")
		if !isE164(digits) {
			return "", ErrNotE164
		}
	}
	if d == Meta {
		return digits[1:], nil
	}
	return digits, nil
}

// isE164 reports whether s is "+" then 8 to 15 digits, the first not 0.
func isE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Digest is the SHA-256 of a normalised identifier. The zero Digest means
// "none": no real identifier hashes to 32 zero bytes.
type Digest [sha256.Size]byte

// HashOf hashes a normalised identifier.
func HashOf(normalized string) Digest { return sha256.Sum256([]byte(normalized)) }

// IsZero reports whether d is "none".
func (d Digest) IsZero() bool { return d == Digest{} }

// AppendHex appends d in lowercase hex, the form all three destinations
// accept, so a request body is written without a string per member.
func (d Digest) AppendHex(dst []byte) []byte { return hex.AppendEncode(dst, d[:]) }

// String is d in lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText writes d in lowercase hex ("" for none is not written: use omitzero).
func (d Digest) MarshalText() ([]byte, error) { return d.AppendHex(nil), nil }
