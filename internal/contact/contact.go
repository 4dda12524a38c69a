// Package contact normalises and validates the identifiers a contact is known
// by. Contacts are matched on these values (email, phone), so every way into
// storage goes through here first: "Alice@Example.com " and "alice@example.com"
// must be one person, as must "(415) 555-0100" and "+14155550100" — and
// "\u212Aelvin@example.com" (KELVIN SIGN) must not be kelvin@example.com.
// It also holds the limits on what a contact may carry (limits.go).
package contact

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Error is a validation failure of one input field. The API reports Field back
// to the caller, so it is the field's external name ("email", "phone",
// "time_zone").
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// NormalizeEmail returns the one stored form of an email address, so that
// every spelling of one mailbox finds one contact and no spelling of one
// mailbox finds another person's:
//
//   - white space around the address is trimmed;
//   - the address is put in Unicode NFC, so precomposed and decomposed
//     accents ("é" and "e"+U+0301) are one address;
//   - the domain is converted with IDNA (UTS 46 lookup mapping, then
//     Punycode), so it is stored in ASCII and lower case
//     ("Bücher.DE" → "xn--bcher-kva.de");
//   - the local part is lower-cased with Unicode's default (language-neutral)
//     lower-case mapping. RFC 5321 allows case-sensitive local parts, but no
//     mainstream mailbox provider uses them, and treating "Alice@" and
//     "alice@" (or "MÜLLER@" and "müller@") as two contacts is the worse
//     failure. The mapping is the full, language-neutral one: Turkish "İ"
//     becomes "i̇" (i and U+0307), never the ASCII "i" of another person's
//     address, and no character that is not ASCII is mapped onto one that is
//     (those few are refused, below).
//
// Refused, with the code point named: characters that are invisible or
// only steer formatting (zero-width space and joiners, soft hyphen, bidi
// controls, variation selectors: Unicode Default_Ignorable_Code_Point and
// general category Cf), other control, private-use and unassigned
// characters, white space other than ASCII (which the addr-spec rules
// cover), fullwidth and halfwidth forms
// ("ａｌｉｃｅ"), and characters that NFC itself turns into ASCII (U+212A
// KELVIN SIGN is "K"). Each of these either looks like an address it is
// not or would silently become one; none is part of a real mailbox name.
//
// The address must then be a bare addr-spec: display-name forms ("Alice
// <alice@example.com>"), angle brackets, comments, address literals and
// domains without a dot are refused. They are either not an address we can
// store as an identifier or not one we can deliver to.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid("email", "required")
	}
	if len(s) > 4*MaxEmailLength {
		// Bound the work below; no real address comes near this.
		return "", invalid("email", "longer than %d characters", MaxEmailLength)
	}
	if !utf8.ValidString(s) {
		return "", invalid("email", "is not valid UTF-8 text")
	}
	for _, r := range s {
		if reason := emailRuneProblem(r); reason != "" {
			return "", invalid("email", "%s", reason)
		}
	}
	s = norm.NFC.String(s)
	if n := utf8.RuneCountInString(s); n > MaxEmailLength {
		return "", invalid("email", "longer than %d characters", MaxEmailLength)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return "", invalid("email", "not a valid email address")
	}
	// ParseAddress accepts "Name <a@b>" and "a@b (comment)"; only the bare
	// address is an identifier.
	if addr.Name != "" || addr.Address != s {
		return "", invalid("email", "must be a bare address like alice@example.com, without a display name")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := lowerLocal(s[:at]), s[at+1:]
	if strings.HasPrefix(domain, "[") {
		return "", invalid("email", "domain %q cannot receive internet mail", domain)
	}
	ascii, err := emailDomain.ToASCII(domain)
	if err != nil {
		return "", invalid("email", "domain %q is not a valid internet domain name", domain)
	}
	if !strings.Contains(ascii, ".") || strings.HasPrefix(ascii, ".") || strings.HasSuffix(ascii, ".") {
		return "", invalid("email", "domain %q cannot receive internet mail", ascii)
	}
	out := local + "@" + ascii
	if n := utf8.RuneCountInString(out); n > MaxEmailLength {
		// Punycode is longer than the Unicode it spells.
		return "", invalid("email", "longer than %d characters once the domain is in its ASCII (Punycode) form", MaxEmailLength)
	}
	return out, nil
}

// emailDomain is IDNA's lookup processing (RFC 5891 §5 with the UTS 46
// mapping, non-transitional, as browsers use it) with DNS length checks: one
// domain however it is written, in the form DNS and SMTP use.
var emailDomain = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false), idna.VerifyDNSLength(true))

// emailRuneProblem says why r cannot be part of an email address, or "".
// ASCII is left to the address parser, which knows where a space or a quote
// may stand.
func emailRuneProblem(r rune) string {
	if r < utf8.RuneSelf {
		return ""
	}
	name := fmt.Sprintf("U+%04X", r)
	switch {
	case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || unicode.Is(unicode.Variation_Selector, r):
		return "contains " + name + ", an invisible or formatting character (zero-width characters, soft hyphens, bidi controls and the like are not part of an address); remove it"
	case unicode.IsSpace(r):
		return "contains " + name + ", a white space character"
	case !unicode.IsGraphic(r):
		return "contains " + name + ", a control, private-use or unassigned character"
	}
	if k := width.LookupRune(r).Kind(); k == width.EastAsianFullwidth || k == width.EastAsianHalfwidth {
		return "contains " + name + ", a fullwidth or halfwidth form; type the address in ordinary characters"
	}
	if nfc := norm.NFC.String(string(r)); isASCII(nfc) {
		return fmt.Sprintf("contains %s, which stands for the ASCII character %q; type %q instead", name, nfc, nfc)
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lowerLocal lower-cases a local part that emailRuneProblem accepted. A
// Caser keeps state, so each call makes its own.
func lowerLocal(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return norm.NFC.String(cases.Lower(language.Und).String(s))
}

// NormalizePhone parses a phone number written in any common format and
// returns it in E.164 ("+14155550100"). Numbers without a leading + are read
// as national numbers of defaultRegion (ISO 3166-1 alpha-2, e.g. "US"); with
// no default region only international numbers are accepted. A number with
// an extension ("+1 415 555 0100 ext. 12") is refused rather than stored
// without it. Numbers that
// parse but cannot exist (wrong length, unassigned prefix) are rejected, so a
// typo fails at the API instead of as an undeliverable SMS later.
func NormalizePhone(s, defaultRegion string) (string, error) {
	s = strings.TrimSpace(s)
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if s == "" {
		return "", invalid("phone", "required")
	}
	notValid := func() error {
		if region == "" {
			return invalid("phone", "not a valid international phone number (expected +<country code><number>, e.g. +14155550100)")
		}
		return invalid("phone", "not a valid phone number for region %s", region)
	}
	parseRegion := region
	if parseRegion == "" {
		parseRegion = "ZZ" // unknown region: only +<country code> numbers parse
	}
	num, err := phonenumbers.Parse(s, parseRegion)
	if err != nil {
		return "", notValid()
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", notValid()
	}
	if num.GetExtension() != "" {
		// E.164 has no extension, and a text cannot reach one: storing the
		// number without it would quietly change who it reaches.
		return "", invalid("phone", "has an extension; SMS cannot reach an extension, so give the number without it")
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// ValidateTimeZone checks that s is an IANA time zone name such as
// "Europe/Paris". Empty is valid: it means "not known". "Local" is refused
// because it would mean whatever zone the server happens to run in.
func ValidateTimeZone(s string) error {
	if s == "" {
		return nil
	}
	if s == "Local" || strings.TrimSpace(s) != s {
		return invalid("time_zone", "%q is not an IANA time zone name (e.g. Europe/Paris)", s)
	}
	if _, err := time.LoadLocation(s); err != nil {
		return invalid("time_zone", "%q is not an IANA time zone name (e.g. Europe/Paris)", s)
	}
	return nil
}

// TimeZonesForPhone returns the IANA time zones a phone number (E.164) may be
// in, from libphonenumber's prefix-to-zone mapping, or nil if the number does
// not parse or its zone is unknown. Geographic numbers usually map to one zone
// ("+33..." → Europe/Paris); numbers whose prefix carries no location (mobile
// or toll-free numbers in large countries) map to every zone of the country,
// so callers wanting a single zone should only trust a one-element answer.
func TimeZonesForPhone(e164 string) []string {
	num, err := phonenumbers.Parse(strings.TrimSpace(e164), "ZZ")
	if err != nil {
		return nil
	}
	zones, err := phonenumbers.GetTimezonesForNumber(num)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(zones))
	for _, z := range zones {
		if z != "" && z != phonenumbers.UNKNOWN_TIMEZONE {
			out = append(out, z)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// ValidateExternalID checks an external id (the customer's own user id).
// External ids are opaque: they are stored and matched byte for byte, with no
// trimming, case folding or Unicode normalisation, because only the system
// that issued them knows what makes two of them equal. So what cannot be
// matched reliably is refused instead of changed: leading or trailing white
// space (which an earlier version trimmed silently), control characters
// (NUL, tab, line breaks), invalid UTF-8, and more than MaxExternalIDLength
// characters. Empty is valid: it means "not given".
func ValidateExternalID(s string) error {
	switch {
	case s == "":
		return nil
	case !utf8.ValidString(s):
		return invalid("external_id", "is not valid UTF-8 text")
	case utf8.RuneCountInString(s) > MaxExternalIDLength:
		return invalid("external_id", "at most %d characters", MaxExternalIDLength)
	case strings.TrimSpace(s) != s:
		return invalid("external_id", "has leading or trailing white space; external ids are matched exactly, so send it without")
	case strings.ContainsFunc(s, unicode.IsControl):
		return invalid("external_id", "contains a control character (NUL, tab, line break...)")
	}
	return nil
}
