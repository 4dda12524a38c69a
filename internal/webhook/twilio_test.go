package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	twilioclient "github.com/twilio/twilio-go/client"
)

// twilioSign is an independent, deliberately naive implementation of
// Twilio's scheme for single-valued parameters, used to sign test requests.
func twilioSign(token, fullURL string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	s := fullURL
	for _, name := range names {
		s += name + params[name]
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func formOf(params map[string]string) url.Values {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	return form
}

func mustTwilioVerifier(t *testing.T, token string, previous ...string) *TwilioVerifier {
	t.Helper()
	v, err := NewTwilioVerifier(token, previous...)
	require.NoError(t, err)
	return v
}

// Vectors published by Twilio: in the "Webhooks security" docs and in the
// official SDKs' RequestValidator tests. All use auth token "12345".
const twilioVectorURL = "https://mycompany.com/myapp.php?foo=1&bar=2"

func TestTwilioVerify_PublishedVectors(t *testing.T) {
	v := mustTwilioVerifier(t, "12345")

	docsParams := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	sdkParams := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
	// twilio-go's vector: "Reason" must sort before "ReasonConferenceEnded"
	// (by name), not after it (as sorting name+value strings would do).
	goSDKParams := url.Values{
		"Digits":                {"1234"},
		"CallSid":               {"CA1234567890ABCDE"},
		"To":                    {"+18005551212"},
		"Caller":                {"+14158675309"},
		"From":                  {"+14158675309"},
		"ReasonConferenceEnded": {"test"},
		"Reason":                {"Participant"},
	}
	// twilio-python/php/node shared vector for a repeated parameter: values
	// sorted and de-duplicated, so the signed string has Digits1234Digits5678.
	repeatedParams := url.Values{
		"Sid":        {"CA123"},
		"SidAccount": {"AC123"},
		"Digits":     {"5678", "1234", "1234"},
	}

	valid := []struct {
		name, url string
		params    url.Values
		sig       string
	}{
		{"Twilio docs example", twilioVectorURL, docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"SDK example", twilioVectorURL, sdkParams, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"SDK example, host case kept as sent", "https://MyCompany.com/myapp.php?foo=1&bar=2", sdkParams, "g9IN/x4Cft2g517EjYvEvM/W7LU="},
		{"repeated parameter", twilioVectorURL, repeatedParams, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"repeated parameter in another order", twilioVectorURL, url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"1234", "5678"}}, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"name-prefix sorting", twilioVectorURL, goSDKParams, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"https URL with a port, signed without it", "https://mycompany.com:1234/myapp.php?foo=1&bar=2", goSDKParams, "vOEb5UThFn24KEfnOFLQY2AE5FY="},
		{"http URL", "http://mycompany.com/myapp.php?foo=1&bar=2", goSDKParams, "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
		{"http URL with a port, signed without it", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", goSDKParams, "n2xBNyzSW7rfYStDtOFiFMv7qNo="},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			assert.NoError(t, v.Verify(tc.url, tc.params, tc.sig))
		})
	}

	invalid := []struct {
		name, url string
		params    url.Values
		sig       string
	}{
		// Signed with ReasonConferenceEnded sorted before Reason.
		{"name+value sorting", twilioVectorURL, goSDKParams, "95+Bu0JVPi0r/SsESZCVf0dWAjw="},
		{"docs example with a changed digit", twilioVectorURL, withParam(docsParams, "Digits", "1235"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"docs example with an extra parameter", twilioVectorURL, withParam(docsParams, "Body", "STOP"), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"docs example with a changed query", "https://mycompany.com/myapp.php?foo=1&bar=3", docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"docs example with reordered query", "https://mycompany.com/myapp.php?bar=2&foo=1", docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"docs example over http", "http://mycompany.com/myapp.php?foo=1&bar=2", docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"repeated parameter with a different value", twilioVectorURL, url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234", "9999"}}, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"signature with padding stripped", twilioVectorURL, docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ"},
		{"signature in lower case", twilioVectorURL, docsParams, strings.ToLower("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, v.Verify(tc.url, tc.params, tc.sig), ErrBadSignature)
		})
	}

	t.Run("another auth token", func(t *testing.T) {
		other := mustTwilioVerifier(t, "54321")
		assert.ErrorIs(t, other.Verify(twilioVectorURL, docsParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="), ErrBadSignature)
	})
}

func withParam(form url.Values, name, value string) url.Values {
	out := url.Values{}
	for k, vs := range form {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(name, value)
	return out
}

func TestTwilioVerifyBody_PublishedVectors(t *testing.T) {
	v := mustTwilioVerifier(t, "12345")
	jsonBody := []byte(`{"property": "value", "boolean": true}`)
	const bodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"

	sum := sha256.Sum256(jsonBody)
	require.Equal(t, bodyHash, hex.EncodeToString(sum[:]))

	t.Run("JSON body with bodySHA256", func(t *testing.T) {
		assert.NoError(t, v.VerifyBody(twilioVectorURL+"&bodySHA256="+bodyHash, jsonBody, "a9nBmqA0ju/hNViExpshrM61xv4="))
	})
	t.Run("JSON body, bodySHA256 the only query parameter", func(t *testing.T) {
		assert.NoError(t, v.VerifyBody("https://mycompany.com/myapp.php?bodySHA256="+bodyHash, jsonBody, "y77kIzt2vzLz71DgmJGsen2scGs="))
	})
	t.Run("JSON body tampered", func(t *testing.T) {
		err := v.VerifyBody(twilioVectorURL+"&bodySHA256="+bodyHash, []byte(`{"property": "evil", "boolean": true}`), "a9nBmqA0ju/hNViExpshrM61xv4=")
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("JSON body with bodySHA256 swapped for its hash", func(t *testing.T) {
		evil := []byte(`{"property": "evil"}`)
		evilSum := sha256.Sum256(evil)
		err := v.VerifyBody(twilioVectorURL+"&bodySHA256="+hex.EncodeToString(evilSum[:]), evil, "a9nBmqA0ju/hNViExpshrM61xv4=")
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("JSON body without bodySHA256 is read as a form and fails", func(t *testing.T) {
		assert.ErrorIs(t, v.VerifyBody(twilioVectorURL, jsonBody, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), ErrBadSignature)
	})
	t.Run("form body", func(t *testing.T) {
		assert.NoError(t, v.VerifyBody(twilioVectorURL, []byte("property=value&boolean=true"), "NBdBDr/T/lgjI+tlgpXjKZQZs/k="))
	})
	t.Run("form body with repeated parameter", func(t *testing.T) {
		assert.NoError(t, v.VerifyBody(twilioVectorURL, []byte("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234"), "IK+Dwps556ElfBT0I3Rgjkr1wJU="))
	})
	t.Run("missing header", func(t *testing.T) {
		assert.ErrorIs(t, v.VerifyBody(twilioVectorURL, jsonBody, ""), ErrMissingSignature)
	})
	t.Run("unparseable URL", func(t *testing.T) {
		assert.ErrorIs(t, v.VerifyBody("https://bad host/%zz", jsonBody, "x"), ErrBadSignature)
	})
	t.Run("unparseable form body", func(t *testing.T) {
		assert.ErrorIs(t, v.VerifyBody(twilioVectorURL, []byte("a=%zz"), "NBdBDr/T/lgjI+tlgpXjKZQZs/k="), ErrBadSignature)
	})
	t.Run("bodySHA256 not hex", func(t *testing.T) {
		u := "https://mycompany.com/myapp.php?bodySHA256=nothex"
		assert.ErrorIs(t, v.VerifyBody(u, jsonBody, twilioSign("12345", u, nil)), ErrBadSignature)
	})
}

// A realistic inbound SMS, as Twilio posts it to the messaging webhook.
func inboundSMSParams() map[string]string {
	return map[string]string{
		"ToCountry":           "US",
		"ToState":             "CA",
		"SmsMessageSid":       "SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d",
		"NumMedia":            "0",
		"ToCity":              "SAN FRANCISCO",
		"FromZip":             "94105",
		"SmsSid":              "SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d",
		"FromState":           "CA",
		"SmsStatus":           "received",
		"FromCity":            "SAN FRANCISCO",
		"Body":                "Stop",
		"FromCountry":         "US",
		"To":                  "+14155550100",
		"MessagingServiceSid": "MG0123456789abcdef0123456789abcdef",
		"ToZip":               "94105",
		"NumSegments":         "1",
		"MessageSid":          "SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d",
		"AccountSid":          "AC0123456789abcdef0123456789abcdef",
		"From":                "+14155550123",
		"ApiVersion":          "2010-04-01",
	}
}

func TestTwilioVerify_ComputedSignature(t *testing.T) {
	const token = "f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8"
	const hookURL = "https://hooks.tutti.example/twilio/sms?tenant=acme"
	v := mustTwilioVerifier(t, token)
	params := inboundSMSParams()
	sig := twilioSign(token, hookURL, params)

	require.NoError(t, v.Verify(hookURL, formOf(params), sig))

	t.Run("every parameter is covered", func(t *testing.T) {
		for name := range params {
			tampered := formOf(params)
			tampered.Set(name, params[name]+"x")
			assert.ErrorIs(t, v.Verify(hookURL, tampered, sig), ErrBadSignature, "changed %s", name)

			removed := formOf(params)
			removed.Del(name)
			assert.ErrorIs(t, v.Verify(hookURL, removed, sig), ErrBadSignature, "removed %s", name)
		}
	})
	t.Run("added parameter", func(t *testing.T) {
		assert.ErrorIs(t, v.Verify(hookURL, withParam(formOf(params), "MediaUrl0", "https://evil.example/x.jpg"), sig), ErrBadSignature)
	})
	t.Run("value repeated with a different value", func(t *testing.T) {
		form := formOf(params)
		form.Add("Body", "START")
		assert.ErrorIs(t, v.Verify(hookURL, form, sig), ErrBadSignature)
	})
	t.Run("query parameters merged into the form", func(t *testing.T) {
		// The mistake of passing r.Form instead of r.PostForm.
		assert.ErrorIs(t, v.Verify(hookURL, withParam(formOf(params), "tenant", "acme"), sig), ErrBadSignature)
	})
	t.Run("different path, host, scheme or query", func(t *testing.T) {
		for _, u := range []string{
			"https://hooks.tutti.example/twilio/status?tenant=acme",
			"https://evil.example/twilio/sms?tenant=acme",
			"http://hooks.tutti.example/twilio/sms?tenant=acme",
			"https://hooks.tutti.example/twilio/sms?tenant=other",
			"https://hooks.tutti.example/twilio/sms",
			"https://hooks.tutti.example/twilio/sms/?tenant=acme",
		} {
			assert.ErrorIs(t, v.Verify(u, formOf(params), sig), ErrBadSignature, u)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		assert.ErrorIs(t, mustTwilioVerifier(t, token+"0").Verify(hookURL, formOf(params), sig), ErrBadSignature)
	})
	t.Run("missing header", func(t *testing.T) {
		err := v.Verify(hookURL, formOf(params), "")
		assert.ErrorIs(t, err, ErrMissingSignature)
		assert.NotErrorIs(t, err, ErrBadSignature)
	})
	t.Run("garbage header", func(t *testing.T) {
		assert.ErrorIs(t, v.Verify(hookURL, formOf(params), "not base64 at all"), ErrBadSignature)
	})
	t.Run("no parameters: URL alone is signed", func(t *testing.T) {
		assert.NoError(t, v.Verify(hookURL, nil, twilioSign(token, hookURL, nil)))
		assert.NoError(t, v.Verify(hookURL, url.Values{}, twilioSign(token, hookURL, nil)))
	})
	t.Run("values are signed decoded, as received", func(t *testing.T) {
		raw := "From=%2B14155550123&Body=Caf%C3%A9+%2B+cr%C3%A8me+%26+100%25&MessageSid=SM1"
		form, err := url.ParseQuery(raw)
		require.NoError(t, err)
		s := twilioSign(token, hookURL, map[string]string{
			"From": "+14155550123", "Body": "Café + crème & 100%", "MessageSid": "SM1",
		})
		assert.NoError(t, v.Verify(hookURL, form, s))
		assert.NoError(t, v.VerifyBody(hookURL, []byte(raw), s))
	})
}

func TestTwilioVerify_PortVariants(t *testing.T) {
	const token = "tok"
	v := mustTwilioVerifier(t, token)
	params := map[string]string{"MessageSid": "SM1", "From": "+14155550123", "Body": "hi"}
	form := formOf(params)

	cases := []struct {
		name, signedURL, configuredURL string
		ok                             bool
	}{
		{"same URL", "https://h.example/sms", "https://h.example/sms", true},
		{"Twilio added :443", "https://h.example:443/sms", "https://h.example/sms", true},
		{"Twilio dropped :443", "https://h.example/sms", "https://h.example:443/sms", true},
		{"Twilio added :80 on http", "http://h.example:80/sms", "http://h.example/sms", true},
		{"Twilio dropped :80 on http", "http://h.example/sms", "http://h.example:80/sms", true},
		{"Twilio dropped a custom port", "https://h.example/sms", "https://h.example:8443/sms", true},
		{"scheme in upper case", "HTTPS://h.example:443/sms", "HTTPS://h.example/sms", true},
		{"with query", "https://h.example:443/sms?a=1&b=:2", "https://h.example/sms?a=1&b=:2", true},
		{"no path", "https://h.example:443", "https://h.example", true},
		{"query right after host", "https://h.example:443?x=1", "https://h.example?x=1", true},
		{"IPv6 literal, port added", "https://[2001:db8::1]:443/sms", "https://[2001:db8::1]/sms", true},
		{"IPv6 literal, port dropped", "https://[2001:db8::1]/sms", "https://[2001:db8::1]:8443/sms", true},
		{"userinfo, port added", "https://u:p@h.example:443/sms", "https://u:p@h.example/sms", true},
		{"userinfo, port dropped", "https://u:p@h.example/sms", "https://u:p@h.example:8443/sms", true},

		{"http default port is not https's", "https://h.example:80/sms", "https://h.example/sms", false},
		{"https default port is not http's", "http://h.example:443/sms", "http://h.example/sms", false},
		{"a different custom port", "https://h.example:8443/sms", "https://h.example:9443/sms", false},
		{"a custom port is not added", "https://h.example:8443/sms", "https://h.example/sms", false},
		{"a port inside the query is not the host's", "https://h.example/sms?next=h", "https://h.example/sms?next=h:443", false},
		{"other schemes get no default port", "wss://h.example:443/sms", "wss://h.example/sms", false},
		{"not a URL", "h.example:443/sms", "h.example/sms", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.configuredURL, form, twilioSign(token, tc.signedURL, params))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrBadSignature)
			}
		})
	}
}

func TestTwilioURLVariants(t *testing.T) {
	cases := map[string][]string{
		"https://h/p?q":         {"https://h/p?q", "https://h:443/p?q"},
		"https://h:443/p?q":     {"https://h:443/p?q", "https://h/p?q"},
		"http://h#frag":         {"http://h#frag", "http://h:80#frag"},
		"https://h:/p":          {"https://h:/p", "https://h/p"},
		"https://[::1]/p":       {"https://[::1]/p", "https://[::1]:443/p"},
		"https://[::1]:1/p":     {"https://[::1]:1/p", "https://[::1]/p"},
		"https://a:b@h/p":       {"https://a:b@h/p", "https://a:b@h:443/p"},
		"https://a@b:c@h:1/p":   {"https://a@b:c@h:1/p", "https://a@b:c@h/p"},
		"ftp://h/p":             {"ftp://h/p"},
		"/relative/path":        {"/relative/path"},
		"":                      {""},
		"://h/p":                {"://h/p"},
		"https://h/p%2Fq?x=%20": {"https://h/p%2Fq?x=%20", "https://h:443/p%2Fq?x=%20"},
	}
	for in, want := range cases {
		assert.Equal(t, want, twilioURLVariants(in), in)
	}
}

func TestTwilioVerify_TokenRotation(t *testing.T) {
	params := map[string]string{"MessageSid": "SM1", "From": "+14155550123"}
	const u = "https://h.example/sms"
	v := mustTwilioVerifier(t, "new-primary", "old-primary")

	assert.NoError(t, v.Verify(u, formOf(params), twilioSign("new-primary", u, params)))
	assert.NoError(t, v.Verify(u, formOf(params), twilioSign("old-primary", u, params)))
	assert.ErrorIs(t, v.Verify(u, formOf(params), twilioSign("someone-else", u, params)), ErrBadSignature)

	onlyNew := mustTwilioVerifier(t, "new-primary")
	assert.ErrorIs(t, onlyNew.Verify(u, formOf(params), twilioSign("old-primary", u, params)), ErrBadSignature)
}

func TestNewTwilioVerifier_RejectsEmptyTokens(t *testing.T) {
	v, err := NewTwilioVerifier("")
	assert.Error(t, err)
	assert.Nil(t, v)

	v, err = NewTwilioVerifier("primary", "")
	assert.Error(t, err)
	assert.Nil(t, v)
}

// For single-valued forms, twilio-go's RequestValidator and this verifier
// must accept and reject exactly the same requests.
func TestTwilioVerify_AgreesWithSDK(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	v := mustTwilioVerifier(t, token)
	sdk := twilioclient.NewRequestValidator(token)
	rng := rand.New(rand.NewPCG(1, 2))

	urls := []string{
		"https://hooks.tutti.example/twilio/sms",
		"https://hooks.tutti.example:443/twilio/sms",
		"https://hooks.tutti.example:8443/twilio/sms?tenant=acme&x=1",
		"http://localhost:8080/twilio/status",
		"http://localhost/twilio/status?a=b",
	}
	alphabet := []rune("aAbBzZ09+_-. %&=é中😀")
	randString := func(n int) string {
		r := make([]rune, n)
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}

	for i := 0; i < 300; i++ {
		params := map[string]string{}
		for j := rng.IntN(8); j > 0; j-- {
			params[randString(1+rng.IntN(6))] = randString(rng.IntN(12))
		}
		signedURL := urls[rng.IntN(len(urls))]
		sig := twilioSign(token, signedURL, params)
		for _, checkURL := range urls {
			ours := v.Verify(checkURL, formOf(params), sig) == nil
			theirs := sdk.Validate(checkURL, params, sig)
			require.Equal(t, theirs, ours, fmt.Sprintf("signed %q, checked %q, params %q", signedURL, checkURL, params))
		}
		tampered := cloneParams(params)
		tampered["Body"] = randString(3) + "!"
		assert.False(t, sdk.Validate(signedURL, tampered, sig))
		assert.ErrorIs(t, v.Verify(signedURL, formOf(tampered), sig), ErrBadSignature)
	}
}

func cloneParams(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestParseTwilioInbound(t *testing.T) {
	in, err := ParseTwilioInbound(formOf(inboundSMSParams()))
	require.NoError(t, err)
	assert.Equal(t, TwilioInbound{
		MessageSid: "SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d",
		AccountSid: "AC0123456789abcdef0123456789abcdef",
		From:       "+14155550123",
		To:         "+14155550100",
		Body:       "Stop",
		NumMedia:   0,
	}, in)
	assert.Equal(t, KeywordOptOut, ClassifySMSKeyword(in.Body))

	t.Run("MMS without text", func(t *testing.T) {
		p := inboundSMSParams()
		p["Body"] = ""
		p["NumMedia"] = "2"
		in, err := ParseTwilioInbound(formOf(p))
		require.NoError(t, err)
		assert.Equal(t, 2, in.NumMedia)
		assert.Empty(t, in.Body)
	})
	t.Run("body kept verbatim", func(t *testing.T) {
		p := inboundSMSParams()
		p["Body"] = "  Stop \n"
		in, err := ParseTwilioInbound(formOf(p))
		require.NoError(t, err)
		assert.Equal(t, "  Stop \n", in.Body)
	})
	t.Run("NumMedia absent is zero", func(t *testing.T) {
		p := inboundSMSParams()
		delete(p, "NumMedia")
		in, err := ParseTwilioInbound(formOf(p))
		require.NoError(t, err)
		assert.Zero(t, in.NumMedia)
	})

	bad := map[string]func(url.Values){
		"no From":              func(f url.Values) { f.Del("From") },
		"empty From":           func(f url.Values) { f.Set("From", "") },
		"no MessageSid":        func(f url.Values) { f.Del("MessageSid") },
		"NumMedia not integer": func(f url.Values) { f.Set("NumMedia", "two") },
		"NumMedia negative":    func(f url.Values) { f.Set("NumMedia", "-1") },
		"From repeated":        func(f url.Values) { f.Add("From", "+15550000000") },
		"Body repeated":        func(f url.Values) { f.Add("Body", "START") },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			form := formOf(inboundSMSParams())
			mutate(form)
			_, err := ParseTwilioInbound(form)
			assert.ErrorIs(t, err, ErrMalformedPayload)
		})
	}
	t.Run("nil form", func(t *testing.T) {
		_, err := ParseTwilioInbound(nil)
		assert.ErrorIs(t, err, ErrMalformedPayload)
	})
}

func TestParseTwilioStatus(t *testing.T) {
	form := url.Values{
		"AccountSid":    {"AC0123456789abcdef0123456789abcdef"},
		"ApiVersion":    {"2010-04-01"},
		"ErrorCode":     {"30003"},
		"From":          {"+14155550100"},
		"MessageSid":    {"SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d"},
		"MessageStatus": {"undelivered"},
		"SmsSid":        {"SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d"},
		"SmsStatus":     {"undelivered"},
		"To":            {"+14155550123"},
	}
	st, err := ParseTwilioStatus(form)
	require.NoError(t, err)
	assert.Equal(t, TwilioStatus{
		MessageSid:    "SM5a3b1f3c9e2d4a6b8c0d1e2f3a4b5c6d",
		MessageStatus: "undelivered",
		ErrorCode:     30003,
		To:            "+14155550123",
		From:          "+14155550100",
	}, st)

	t.Run("delivered has no error code", func(t *testing.T) {
		f := withParam(form, "MessageStatus", "delivered")
		f.Del("ErrorCode")
		st, err := ParseTwilioStatus(f)
		require.NoError(t, err)
		assert.Equal(t, "delivered", st.MessageStatus)
		assert.Zero(t, st.ErrorCode)
	})
	t.Run("empty error code is zero", func(t *testing.T) {
		st, err := ParseTwilioStatus(withParam(form, "ErrorCode", ""))
		require.NoError(t, err)
		assert.Zero(t, st.ErrorCode)
	})

	bad := map[string]func(url.Values){
		"no MessageSid":           func(f url.Values) { f.Del("MessageSid") },
		"no MessageStatus":        func(f url.Values) { f.Del("MessageStatus") },
		"ErrorCode not integer":   func(f url.Values) { f.Set("ErrorCode", "30003x") },
		"MessageStatus repeated":  func(f url.Values) { f.Add("MessageStatus", "delivered") },
		"MessageSid repeated":     func(f url.Values) { f.Add("MessageSid", "SM0") },
		"ErrorCode repeated":      func(f url.Values) { f.Add("ErrorCode", "0") },
		"To repeated (ambiguous)": func(f url.Values) { f.Add("To", "+15550000000") },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			f := withParam(form, "x", "y")
			mutate(f)
			_, err := ParseTwilioStatus(f)
			assert.ErrorIs(t, err, ErrMalformedPayload)
		})
	}
}

func TestTwiMLReply(t *testing.T) {
	t.Parallel()
	tests := []struct{ message, want string }{
		{"", `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`},
		{"Acme: reply STOP to opt out.", `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acme: reply STOP to opt out.</Message></Response>`},
		{`Msg&data <rates> "may" apply`, `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Msg&amp;data &lt;rates&gt; &#34;may&#34; apply</Message></Response>`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, TwiMLReply(tt.message))
	}
}
