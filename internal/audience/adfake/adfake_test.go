package adfake_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/audience/adfake"
)

const hash = "49e0be2aeccfb51a8dee4c945c8a70a9ac500cf6f5cb08112575f74db9b1470d"

// The fake is only worth its checks: each of these requests breaks one
// documented rule and must be refused with a 4xx, saying which.
func TestFake_refusesWhatThePlatformsRefuse(t *testing.T) {
	t.Parallel()
	fake := adfake.New(t)
	metaForm := func(payload string) string {
		return url.Values{"access_token": {adfake.MetaToken}, "payload": {payload}}.Encode()
	}
	googleBody := func(member string) string {
		return `{"destinations":[{"operatingAccount":{"accountId":"` + adfake.GoogleAccount + `","accountType":"GOOGLE_ADS"},"productDestinationId":"L1"}],` +
			`"encoding":"HEX","termsOfService":{"customerMatchTermsOfServiceStatus":"ACCEPTED"},"audienceMembers":[` + member + `]}`
	}
	linkedIn := func(version, body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, fake.URL+"/rest/dmpSegments/9/users", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+adfake.LinkedInToken)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("LinkedIn-Version", version)
		r.Header.Set("X-Restli-Protocol-Version", "2.0.0")
		r.Header.Set("X-RestLi-Method", "BATCH_CREATE")
		return r
	}
	req := func(method, path, ctype, body string, hdr ...string) *http.Request {
		r, _ := http.NewRequest(method, fake.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	const form = "application/x-www-form-urlencoded"
	bearer := []string{"Authorization", "Bearer " + adfake.GoogleToken}
	for name, r := range map[string]*http.Request{
		"meta: no version":      req("POST", "/latest/1/users", form, metaForm(`{"schema":["EMAIL_SHA256","PHONE_SHA256"],"data":[["`+hash+`",""]]}`)),
		"meta: token in URL":    req("POST", "/v25.0/1/users?access_token="+adfake.MetaToken, form, metaForm(`{"schema":["EMAIL_SHA256","PHONE_SHA256"],"data":[["`+hash+`",""]]}`)),
		"meta: uppercase hex":   req("POST", "/v25.0/1/users", form, metaForm(`{"schema":["EMAIL_SHA256","PHONE_SHA256"],"data":[["`+strings.ToUpper(hash)+`",""]]}`)),
		"meta: clear email":     req("POST", "/v25.0/1/users", form, metaForm(`{"schema":["EMAIL_SHA256","PHONE_SHA256"],"data":[["a@b.com",""]]}`)),
		"meta: other schema":    req("POST", "/v25.0/1/users", form, metaForm(`{"schema":["EMAIL"],"data":[["`+hash+`"]]}`)),
		"meta: empty row":       req("DELETE", "/v25.0/1/users", form, metaForm(`{"schema":["EMAIL_SHA256","PHONE_SHA256"],"data":[["",""]]}`)),
		"meta: JSON body":       req("POST", "/v25.0/1/users", "application/json", `{}`),
		"google: no consent":    req("POST", "/v1/audienceMembers:ingest", "application/json", googleBody(`{"userData":{"userIdentifiers":[{"emailAddress":"`+hash+`"}]}}`), bearer...),
		"google: denied":        req("POST", "/v1/audienceMembers:ingest", "application/json", googleBody(`{"userData":{"userIdentifiers":[{"emailAddress":"`+hash+`"}]},"consent":{"adUserData":"CONSENT_DENIED","adPersonalization":"CONSENT_GRANTED"}}`), bearer...),
		"google: two in one id": req("POST", "/v1/audienceMembers:remove", "application/json", googleBody(`{"userData":{"userIdentifiers":[{"emailAddress":"`+hash+`","phoneNumber":"`+hash+`"}]}}`), bearer...),
		"google: unknown field": req("POST", "/v1/audienceMembers:remove", "application/json", `{"destinations":[],"members":[]}`, bearer...),
		"linkedin: version":     linkedIn("2025-10", `{"elements":[{"action":"ADD","userIds":[{"idType":"SHA256_EMAIL","idValue":"`+hash+`"}]}]}`),
		"linkedin: id type":     linkedIn("202510", `{"elements":[{"action":"ADD","userIds":[{"idType":"EMAIL","idValue":"`+hash+`"}]}]}`),
		"linkedin: action":      linkedIn("202510", `{"elements":[{"action":"add","userIds":[{"idType":"SHA256_EMAIL","idValue":"`+hash+`"}]}]}`),
	} {
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err, name)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}
	require.Len(t, fake.Malformed(), 14)
	for _, p := range []string{"meta", "google", "linkedin"} {
		require.Empty(t, fake.Members(p, "1"), p)
	}
}
