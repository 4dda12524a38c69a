package contact

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "  Alice@Example.COM \n", want: "alice@example.com"},
		{in: "first.last+tag@sub.example.co.uk", want: "first.last+tag@sub.example.co.uk"},
		{in: "", wantErr: "email: required"},
		{in: "   ", wantErr: "email: required"},
		{in: "alice", wantErr: "email: not a valid email address"},
		{in: "alice@", wantErr: "email: not a valid email address"},
		{in: "@example.com", wantErr: "email: not a valid email address"},
		{in: "alice@@example.com", wantErr: "email: not a valid email address"},
		{in: "Alice <alice@example.com>", wantErr: "email: must be a bare address"},
		{in: "<alice@example.com>", wantErr: "email: must be a bare address"},
		{in: "alice@example.com (Alice)", wantErr: "email: must be a bare address"},
		{in: "alice@example.com, bob@example.com", wantErr: "email: not a valid email address"},
		{in: "alice@localhost", wantErr: `email: domain "localhost" cannot receive internet mail`},
		{in: strings.Repeat("a", 250) + "@example.com", wantErr: "email: longer than 254 characters"},

		// One form for one address: NFC, IDNA for the domain, lower case.
		{in: "jose\u0301@example.com", want: "jos\u00e9@example.com"}, // NFD → NFC
		{in: "jos\u00e9@example.com", want: "jos\u00e9@example.com"},
		{in: "J\u00d6RG@example.com", want: "j\u00f6rg@example.com"},
		{in: "JO\u0308RG@EXAMPLE.COM", want: "j\u00f6rg@example.com"},
		{in: "sam@B\u00fccher.DE", want: "sam@xn--bcher-kva.de"},
		{in: "sam@xn--bcher-kva.de", want: "sam@xn--bcher-kva.de"},
		{in: "sam@bu\u0308cher.de", want: "sam@xn--bcher-kva.de"},
		{in: "\u4f8b@\u4f8b\u3048.\u30c6\u30b9\u30c8", want: "\u4f8b@xn--r8jz45g.xn--zckzah"},
		{in: "stra\u00dfe@example.com", want: "stra\u00dfe@example.com"}, // lower-cased, not case-folded to "ss"

		// Never onto another person's ASCII address.
		{in: "\u212Aelvin@example.com", wantErr: "U+212A, which stands for the ASCII character \"K\""},
		{in: "kelvin@\u212Aelvin.com", wantErr: "U+212A"},
		{in: "\u0130nfo@example.com", want: "i\u0307nfo@example.com"}, // not info@
		{in: "\u0131nfo@example.com", want: "\u0131nfo@example.com"},  // dotless i stays
		{in: "a\u037Eb@example.com", wantErr: "U+037E"},

		// Invisible and formatting characters.
		{in: "ali\u200Bce@example.com", wantErr: "U+200B, an invisible or formatting character"}, // zero-width space
		{in: "ali\u200Dce@example.com", wantErr: "U+200D, an invisible or formatting character"}, // zero-width joiner
		{in: "ali\u00ADce@example.com", wantErr: "U+00AD, an invisible or formatting character"}, // soft hyphen
		{in: "alice@exam\u00ADple.com", wantErr: "U+00AD, an invisible or formatting character"}, // IDNA would drop it
		{in: "\u202Eecila@example.com", wantErr: "U+202E, an invisible or formatting character"}, // right-to-left override
		{in: "alice\u200E@example.com", wantErr: "U+200E, an invisible or formatting character"}, // left-to-right mark
		{in: "\u2066alice\u2069@example.com", wantErr: "U+2066, an invisible or formatting character"},
		{in: "\uFEFFalice@example.com", wantErr: "U+FEFF, an invisible or formatting character"}, // BOM
		{in: "alice\uFE0F@example.com", wantErr: "U+FE0F, an invisible or formatting character"}, // variation selector
		{in: "alice\u034F@example.com", wantErr: "U+034F, an invisible or formatting character"}, // combining grapheme joiner
		{in: "\u3164alice@example.com", wantErr: "U+3164, an invisible or formatting character"}, // Hangul filler
		{in: "ali\u00A0ce@example.com", wantErr: "U+00A0, a white space character"},
		{in: "ali\u0085ce@example.com", wantErr: "U+0085, a white space character"},
		{in: "ali\u009Fce@example.com", wantErr: "U+009F, a control"},
		{in: "ali\uE000ce@example.com", wantErr: "U+E000, a control, private-use or unassigned"},
		{in: "ali\U000E0001ce@example.com", wantErr: "U+E0001, an invisible"},

		// Fullwidth and halfwidth forms are refused, not folded onto ASCII.
		{in: "\uff41\uff4c\uff49\uff43\uff45@example.com", wantErr: "U+FF41, a fullwidth or halfwidth form"},
		{in: "alice\uff20example.com", wantErr: "U+FF20, a fullwidth or halfwidth form"},
		{in: "alice@\uff45xample.com", wantErr: "U+FF45, a fullwidth or halfwidth form"},
		{in: "\uff71@example.com", wantErr: "U+FF71, a fullwidth or halfwidth form"},

		// Not text, or not a domain.
		{in: "ali\xffce@example.com", wantErr: "email: is not valid UTF-8"},
		{in: "ali\x00ce@example.com", wantErr: "email: not a valid email address"},
		{in: "alice@exa_mple.com", wantErr: `email: domain "exa_mple.com" is not a valid internet domain name`},
		{in: "alice@-example.com", wantErr: "is not a valid internet domain name"},
		{in: "alice@[192.0.2.1]", wantErr: "cannot receive internet mail"},
		{in: "alice@example.com.", wantErr: "not a valid email address"},
		{in: strings.Repeat("a", 210) + "@" + strings.Repeat(strings.Repeat("\u00e9", 10)+".", 3) + "com", wantErr: "once the domain is in its ASCII (Punycode) form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.wantErr)
				var fe *Error
				require.True(t, errors.As(err, &fe))
				require.Equal(t, "email", fe.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, region string
		want       string
		wantErr    string
	}{
		{in: "+14155550100", region: "US", want: "+14155550100"},
		{in: "(415) 555-0100", region: "US", want: "+14155550100"},
		{in: "415.555.0100", region: "us", want: "+14155550100"},
		{in: "1 415 555 0100", region: "US", want: "+14155550100"},
		{in: "06 12 34 56 78", region: "FR", want: "+33612345678"},
		{in: "+33 6 12 34 56 78", region: "US", want: "+33612345678"},
		{in: "+44 20 7946 0958", region: "", want: "+442079460958"},
		{in: "", region: "US", wantErr: "phone: required"},
		{in: "hello", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "555-0100", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "+1 415 555 01000", region: "US", wantErr: "phone: not a valid phone number for region US"},
		{in: "(415) 555-0100", region: "", wantErr: "phone: not a valid international phone number"},
		{in: "+1 415 555 0100 ext. 123", region: "US", wantErr: "phone: has an extension"},
		{in: "(415) 555-0100 x12", region: "US", wantErr: "phone: has an extension"},
		{in: "+44 20 7946 0958;ext=7", region: "", wantErr: "phone: has an extension"},
		{in: "+1 415 555 0100\x00", region: "US", wantErr: "phone: "},
		{in: "+1 415 555 \xff0100", region: "US", wantErr: "phone: "},
	}
	for _, tt := range tests {
		t.Run(tt.region+"/"+tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tt.in, tt.region)
			if tt.wantErr != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.wantErr)
				var fe *Error
				require.True(t, errors.As(err, &fe))
				require.Equal(t, "phone", fe.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestValidateTimeZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"UTC", true},
		{"Europe/Paris", true},
		{"America/Los_Angeles", true},
		{"Local", false},
		{"Mars/Olympus_Mons", false},
		{" Europe/Paris", false},
		{"europe/paris!", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			err := ValidateTimeZone(tt.in)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "time_zone: ")
		})
	}
}

func TestTimeZonesForPhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"+33142685300", []string{"Europe/Paris"}},
		{"+442079460958", []string{"Europe/London"}},
		{"+12125550100", []string{"America/New_York"}},
		{"+14155550100", []string{"America/Los_Angeles"}},
		{"not a number", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, TimeZonesForPhone(tt.in))
		})
	}
	// A prefix with no location maps to every zone of the country.
	require.Greater(t, len(TimeZonesForPhone("+18005550100")), 1)
}

// TestNormalizeEmailOneForm checks the property the rules are for: spellings
// of one address give one stored form, and lookalikes of an address never
// give that address.
func TestNormalizeEmailOneForm(t *testing.T) {
	t.Parallel()
	same := map[string][]string{
		"j\u00f6rg@xn--bcher-kva.de": {"j\u00f6rg@b\u00fccher.de", "JO\u0308RG@BU\u0308CHER.DE", " J\u00d6RG@xn--bcher-kva.de\t", "j\u00f6rg@XN--BCHER-KVA.DE"},
		"alice@example.com":          {"ALICE@EXAMPLE.COM", "Alice@Example.Com"},
	}
	for want, spellings := range same {
		for _, in := range spellings {
			got, err := NormalizeEmail(in)
			require.NoError(t, err, "%q", in)
			require.Equal(t, want, got, "%q", in)
		}
	}
	for _, lookalike := range []string{
		"\u212Aelvin@example.com", "kelvin@example.com\u200B", "\u0130nfo@example.com", "\uff4belvin@example.com",
		"ke\u00ADlvin@example.com", "kelvin\u202C@example.com",
	} {
		got, err := NormalizeEmail(lookalike)
		if err == nil {
			require.NotEqual(t, "kelvin@example.com", got, "%q", lookalike)
			require.NotEqual(t, "info@example.com", got, "%q", lookalike)
		}
	}
}

func TestValidateExternalID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string
	}{
		{in: ""},
		{in: "user-42"},
		{in: "auth0|5f7c8ec7c33c6c004bbafe82"},
		{in: "Jos\u00e9 Garc\u00eda"}, // inner spaces and any script: opaque
		{in: "jose\u0301"},            // not normalised: the issuer decides equality
		{in: strings.Repeat("\u00e9", 200)},
		{in: strings.Repeat("x", 201), wantErr: "at most 200 characters"},
		{in: " user-42", wantErr: "leading or trailing white space"},
		{in: "user-42\n", wantErr: "leading or trailing white space"},
		{in: "user-42\u3000", wantErr: "leading or trailing white space"},
		{in: "\u00a0user-42", wantErr: "leading or trailing white space"},
		{in: "user\x00-42", wantErr: "control character"},
		{in: "user\t42", wantErr: "control character"},
		{in: "user-\xff", wantErr: "not valid UTF-8"},
		{in: "\xed\xa0\x80", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			err := ValidateExternalID(tt.in)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			var fe *Error
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, "external_id", fe.Field)
			require.Contains(t, fe.Reason, tt.wantErr)
		})
	}
}
