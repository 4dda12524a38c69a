// Package contact normalises and validates the identifiers a contact is known
// by. Contacts are matched on these values (email, phone), so every way into
// storage goes through here first: "Alice@Example.com " and "alice@example.com"
// must be one person, as must "(415) 555-0100" and "+14155550100".
package contact

import (
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
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

// maxEmailLen is the longest address SMTP can carry (RFC 5321 path limit
// minus the angle brackets).
const maxEmailLen = 254

// NormalizeEmail trims and lower-cases an email address and checks that it is
// a bare addr-spec. Display-name forms ("Alice <alice@example.com>"), angle
// brackets, comments and domains without a dot are rejected: they are either
// not an address we can store as an identifier or not one we can deliver to.
//
// The whole address is lower-cased, local part included. RFC 5321 allows
// case-sensitive local parts, but no mainstream mailbox provider uses them,
// and treating "Alice@" and "alice@" as two contacts is the worse failure.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", invalid("email", "required")
	}
	if len(s) > maxEmailLen {
		return "", invalid("email", "longer than %d characters", maxEmailLen)
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
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", invalid("email", "domain %q cannot receive internet mail", domain)
	}
	return s, nil
}

// NormalizePhone parses a phone number written in any common format and
// returns it in E.164 ("+14155550100"). Numbers without a leading + are read
// as national numbers of defaultRegion (ISO 3166-1 alpha-2, e.g. "US"); with
// no default region only international numbers are accepted. Numbers that
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
