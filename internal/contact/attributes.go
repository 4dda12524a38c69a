package contact

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckAttributes checks the attributes of one identify request against the
// limits: each name, each value, their number and their total size. A nil
// value (JSON null) asks for the attribute to be removed and is always
// accepted. Every problem is reported, in name order, each naming its field:
// "attributes" for the whole object or a bad name, "attributes.<name>" for a
// value.
func CheckAttributes(attrs map[string]any) []*Error {
	var problems []*Error
	if len(attrs) > MaxAttributes {
		problems = append(problems, &Error{Field: "attributes", Reason: fmt.Sprintf("at most %d attributes, got %d", MaxAttributes, len(attrs))})
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	total := 2 // {}
	for _, k := range names {
		if reason := attributeNameProblem(k); reason != "" {
			problems = append(problems, &Error{Field: "attributes", Reason: reason})
			continue
		}
		v := attrs[k]
		if v == nil {
			continue
		}
		field := AttributePath(k)
		raw, err := json.Marshal(v)
		if err != nil {
			problems = append(problems, &Error{Field: field, Reason: "is not a JSON value"})
			continue
		}
		if len(raw) > MaxAttributeValueBytes {
			problems = append(problems, &Error{Field: field, Reason: fmt.Sprintf("is %d bytes as JSON; an attribute value may be at most %d", len(raw), MaxAttributeValueBytes)})
			continue
		}
		if hasNUL(v) {
			problems = append(problems, &Error{Field: field, Reason: `must not contain the NUL character (\u0000)`})
			continue
		}
		total += len(strconv.Quote(k)) + 1 + len(raw) + 1
	}
	if total > MaxAttributesBytes {
		problems = append(problems, &Error{Field: "attributes", Reason: fmt.Sprintf("are %d bytes as JSON together; at most %d", total, MaxAttributesBytes)})
	}
	return problems
}

// CheckAttributeTotals checks a contact's attributes as stored after a
// merge: one request within the limits may still take the contact over them.
func CheckAttributeTotals(attrs map[string]any) *Error {
	if len(attrs) > MaxAttributes {
		return &Error{Field: "attributes", Reason: fmt.Sprintf("the contact would have %d attributes; at most %d (remove some with null values)", len(attrs), MaxAttributes)}
	}
	raw, err := json.Marshal(attrs)
	if err != nil {
		return &Error{Field: "attributes", Reason: "are not a JSON object"}
	}
	if len(raw) > MaxAttributesBytes {
		return &Error{Field: "attributes", Reason: fmt.Sprintf("the contact's attributes would be %d bytes as JSON; at most %d (remove some with null values)", len(raw), MaxAttributesBytes)}
	}
	return nil
}

// attributeNameProblem says why k cannot name an attribute, or "".
func attributeNameProblem(k string) string {
	switch n := utf8.RuneCountInString(k); {
	case k == "":
		return "attribute names must not be empty"
	case !utf8.ValidString(k):
		return "attribute names must be valid UTF-8 text"
	case n > MaxAttributeNameLength:
		return fmt.Sprintf("attribute name %s is %d characters; at most %d", quoteShort(k), n, MaxAttributeNameLength)
	case strings.ContainsFunc(k, unicode.IsControl):
		return fmt.Sprintf("attribute name %s contains a control character", quoteShort(k))
	}
	return ""
}

func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case map[string]any:
		for k, item := range v {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(item) {
				return true
			}
		}
	case []any:
		for _, item := range v {
			if hasNUL(item) {
				return true
			}
		}
	}
	return false
}

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// AttributePath is the field path of one attribute as the API reports it:
// "attributes.plan", or `attributes["first name"]` for a name that is not a
// plain identifier.
func AttributePath(name string) string {
	if plainName.MatchString(name) {
		return "attributes." + name
	}
	return "attributes[" + strconv.Quote(name) + "]"
}

// quoteShort quotes a name for a message, cut to a readable length.
func quoteShort(s string) string {
	const keep = 40
	if utf8.RuneCountInString(s) <= keep {
		return strconv.Quote(s)
	}
	r := []rune(s)
	return strconv.Quote(string(r[:keep])) + "…"
}
