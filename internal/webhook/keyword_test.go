package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClassifySMSKeyword(t *testing.T) {
	cases := []struct {
		body string
		want Keyword
	}{
		// Every keyword, upper case.
		{"STOP", KeywordOptOut},
		{"STOPALL", KeywordOptOut},
		{"UNSUBSCRIBE", KeywordOptOut},
		{"CANCEL", KeywordOptOut},
		{"END", KeywordOptOut},
		{"QUIT", KeywordOptOut},
		{"REVOKE", KeywordOptOut},
		{"OPTOUT", KeywordOptOut},
		{"START", KeywordOptIn},
		{"YES", KeywordOptIn},
		{"UNSTOP", KeywordOptIn},
		{"HELP", KeywordHelp},
		{"INFO", KeywordHelp},

		// Any ASCII case.
		{"stop", KeywordOptOut},
		{"Stop", KeywordOptOut},
		{"sToP", KeywordOptOut},
		{"StopAll", KeywordOptOut},
		{"unsubscribe", KeywordOptOut},
		{"OptOut", KeywordOptOut},
		{"revoke", KeywordOptOut},
		{"yes", KeywordOptIn},
		{"Unstop", KeywordOptIn},
		{"help", KeywordHelp},
		{"Info", KeywordHelp},

		// Surrounding whitespace, ASCII and Unicode.
		{"  Stop \n", KeywordOptOut},
		{"\tSTOP\r\n", KeywordOptOut},
		{"\v\fstop\n\n", KeywordOptOut},
		{"\u00a0STOP\u00a0", KeywordOptOut},       // no-break space
		{"\u3000STOP\u3000", KeywordOptOut},       // ideographic space
		{"\u2003\u2009STOP\u202f", KeywordOptOut}, // em, thin, narrow no-break
		{"STOP\u2028", KeywordOptOut},             // line separator
		{"STOP\u2029", KeywordOptOut},             // paragraph separator
		{"\u0085STOP", KeywordOptOut},             // next line
		{"\u1680HELP", KeywordHelp},               // ogham space mark
		{"\u200bSTOP\u200b", KeywordOptOut},       // zero width space
		{"\ufeffSTOP", KeywordOptOut},             // byte order mark
		{"STOP\u200d", KeywordOptOut},             // zero width joiner
		{"\u2060START\u200c", KeywordOptIn},       // word joiner, ZWNJ
		{" \u00a0\u200b \t yes \u3000\n", KeywordOptIn},

		// Not exactly the keyword: sentences, extra words, inner spaces.
		{"stop it", KeywordNone},
		{"please stop", KeywordNone},
		{"STOP PLEASE", KeywordNone},
		{"PLEASE CANCEL", KeywordNone},
		{"STOP STOP", KeywordNone},
		{"S T O P", KeywordNone},
		{"ST OP", KeywordNone},
		{"STOP\nSTOP", KeywordNone},
		{"OPT OUT", KeywordNone}, // Twilio: "OPTOUT" yes, "OPT OUT" no
		{"OPT-OUT", KeywordNone},
		{"stop\u00a0now", KeywordNone},
		{"yes please", KeywordNone},
		{"help me", KeywordNone},
		{"Information", KeywordNone},
		{"STOPPED", KeywordNone},
		{"stops", KeywordNone},
		{"nonstop", KeywordNone},
		{"ENDS", KeywordNone},
		{"QUITE", KeywordNone},
		{"STARTS", KeywordNone},
		{"YESS", KeywordNone},
		{"UNSUBSCRIBED", KeywordNone},

		// Punctuation makes it not the keyword (documented decision).
		{"STOP.", KeywordNone},
		{"STOP!", KeywordNone},
		{"stop!!!", KeywordNone},
		{"Stop?", KeywordNone},
		{"\"STOP\"", KeywordNone},
		{"'stop'", KeywordNone},
		{"(STOP)", KeywordNone},
		{"STOP,", KeywordNone},
		{".STOP", KeywordNone},
		{"#STOP", KeywordNone},
		{"STOP\u3002", KeywordNone}, // ideographic full stop
		{"STOP 🛑", KeywordNone},
		{"🛑", KeywordNone},
		{"Yes!", KeywordNone},
		{"HELP?", KeywordNone},

		// Look-alikes are not the keyword.
		{"ＳＴＯＰ", KeywordNone},       // fullwidth
		{"ſtop", KeywordNone},       // long s folds to s under Unicode folding
		{"SТОР", KeywordNone},       // Cyrillic Т, О, Р
		{"ЅTOP", KeywordNone},       // Cyrillic Ѕ
		{"STOP\u0301", KeywordNone}, // combining acute accent
		{"STO\u200bP", KeywordNone}, // zero-width space inside
		{"stöp", KeywordNone},
		{"HELP\x00", KeywordNone},
		{"\xffSTOP", KeywordNone}, // invalid UTF-8

		// Nothing at all.
		{"", KeywordNone},
		{"   ", KeywordNone},
		{"\u200b\ufeff", KeywordNone},
		{strings.Repeat("STOP", 1000), KeywordNone},
		{strings.Repeat(" ", 1000) + "STOP" + strings.Repeat("\n", 1000), KeywordOptOut},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, ClassifySMSKeyword(tc.body), "body %+q", tc.body)
	}
}

func TestKeywordString(t *testing.T) {
	assert.Equal(t, "none", KeywordNone.String())
	assert.Equal(t, "opt_out", KeywordOptOut.String())
	assert.Equal(t, "opt_in", KeywordOptIn.String())
	assert.Equal(t, "help", KeywordHelp.String())
	assert.Equal(t, "unknown", Keyword(99).String())
	assert.Equal(t, KeywordNone, Keyword(0), "the zero value must mean no keyword")
}
