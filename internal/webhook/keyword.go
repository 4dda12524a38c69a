package webhook

import (
	"strings"
	"unicode"
)

// Keyword is the carrier-defined meaning of an inbound SMS, if any.
type Keyword int

const (
	// KeywordNone is an ordinary message (including ones that merely mention
	// a keyword, like "please stop").
	KeywordNone Keyword = iota
	// KeywordOptOut: the sender withdraws consent; stop all marketing SMS.
	KeywordOptOut
	// KeywordOptIn: the sender (re)grants consent after opting out.
	KeywordOptIn
	// KeywordHelp: the sender asks for program information.
	KeywordHelp
)

// String returns a stable lowercase name, suitable for logs and metrics.
func (k Keyword) String() string {
	switch k {
	case KeywordNone:
		return "none"
	case KeywordOptOut:
		return "opt_out"
	case KeywordOptIn:
		return "opt_in"
	case KeywordHelp:
		return "help"
	default:
		return "unknown"
	}
}

// smsKeywords are the US carrier / CTIA keywords as Twilio's default SMS
// Stop Filtering applies them. REVOKE and OPTOUT were added in May 2025 for the
// FCC's consent-revocation rule; Twilio matches "OPTOUT" but not "OPT OUT"
// (its keywords cannot contain spaces), and so does this table.
var smsKeywords = map[string]Keyword{
	"STOP":        KeywordOptOut,
	"STOPALL":     KeywordOptOut,
	"UNSUBSCRIBE": KeywordOptOut,
	"CANCEL":      KeywordOptOut,
	"END":         KeywordOptOut,
	"QUIT":        KeywordOptOut,
	"REVOKE":      KeywordOptOut,
	"OPTOUT":      KeywordOptOut,
	"START":       KeywordOptIn,
	"YES":         KeywordOptIn,
	"UNSTOP":      KeywordOptIn,
	"HELP":        KeywordHelp,
	"INFO":        KeywordHelp,
}

// longestSMSKeyword bounds the work done on long message bodies.
const longestSMSKeyword = len("UNSUBSCRIBE")

// ClassifySMSKeyword reports whether an inbound SMS body is exactly one of
// the carrier keywords. Matching follows the carriers' and Twilio's rule that
// only a message consisting of the keyword alone counts:
//
//   - Leading and trailing whitespace is ignored, including Unicode spaces
//     (no-break space, ideographic space, line/paragraph separators) and the
//     invisible zero-width characters (U+200B/C/D, U+2060, U+FEFF BOM) that
//     phone keyboards and copy-paste sometimes add: a person who typed
//     "STOP" meant STOP, and missing an opt-out is the costly mistake.
//   - Case is ignored for ASCII letters only ("Stop", "sToP"). Non-ASCII
//     look-alikes (fullwidth "ＳＴＯＰ", "ſtop" with a long s, Cyrillic
//     letters) are not the keyword; Unicode case folding would otherwise
//     equate "ſ" with "s".
//   - Anything else in the message makes it not a keyword: "stop it",
//     "please stop", "S T O P", and also punctuation — "STOP." and "STOP!"
//     are KeywordNone. Carriers match the exact keyword and Twilio only
//     blocks single-word messages; treating "STOP." as an opt-out here would
//     make Tutti disagree with Twilio's own opt-out list about whether the
//     number is still reachable. Such messages still reach the inbox for a
//     person to act on.
func ClassifySMSKeyword(body string) Keyword {
	word := strings.TrimFunc(body, isSMSPadding)
	if len(word) == 0 || len(word) > longestSMSKeyword {
		return KeywordNone
	}
	upper := make([]byte, len(word))
	for i := 0; i < len(word); i++ {
		c := word[i]
		switch {
		case c >= 'a' && c <= 'z':
			upper[i] = c - ('a' - 'A')
		case c < 0x80:
			upper[i] = c
		default:
			return KeywordNone // non-ASCII: never a keyword
		}
	}
	return smsKeywords[string(upper)]
}

// isSMSPadding reports whether r may surround a keyword without changing it.
func isSMSPadding(r rune) bool {
	if unicode.IsSpace(r) {
		return true
	}
	switch r {
	case '\u200B', // zero width space
		'\u200C', // zero width non-joiner
		'\u200D', // zero width joiner
		'\u2060', // word joiner
		'\uFEFF': // zero width no-break space / byte order mark
		return true
	}
	return false
}

// keywordText is the keyword an inbound body consists of, upper case, for
// the consent source ("sms:STOP"). Call only when ClassifySMSKeyword found
// one: keywords are ASCII letters, and the rest is padding.
func keywordText(body string) string {
	var b strings.Builder
	for _, c := range body {
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteRune(c)
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - ('a' - 'A'))
		}
	}
	return b.String()
}
