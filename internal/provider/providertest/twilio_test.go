package providertest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	account = "AC0123456789abcdef0123456789abcdef"
	token   = "0123456789abcdef0123456789abcdef"
	service = "MG0123456789abcdef0123456789abcdef"
)

func postForm(t *testing.T, f *FakeTwilio, accountInPath, user, pass string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL()+"/2010-04-01/Accounts/"+accountInPath+"/Messages.json", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp, body
}

func TestFakeTwilioCreatesMessage(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	resp, m := postForm(t, f, account, account, token, url.Values{
		"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {"Hello"},
		"StatusCallback": {"https://tutti.example/cb"},
	})

	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	sid, _ := m["sid"].(string)
	assert.Regexp(t, `^SM[0-9a-f]{32}$`, sid)
	assert.Equal(t, "queued", m["status"])
	assert.Equal(t, account, m["account_sid"])
	assert.Equal(t, "+15551230001", m["to"])
	assert.Equal(t, "+15005550006", m["from"])
	assert.Equal(t, "Hello", m["body"])
	assert.Equal(t, "outbound-api", m["direction"])
	assert.Equal(t, "2010-04-01", m["api_version"])
	assert.Equal(t, "0", m["num_media"])
	assert.Equal(t, "1", m["num_segments"])
	assert.Equal(t, "/2010-04-01/Accounts/"+account+"/Messages/"+sid+".json", m["uri"])
	for _, k := range []string{"price", "error_code", "error_message", "date_sent", "messaging_service_sid"} {
		v, present := m[k]
		assert.True(t, present, k)
		assert.Nil(t, v, k)
	}
	created, err := time.Parse(time.RFC1123Z, m["date_created"].(string))
	require.NoError(t, err, "RFC 2822 date")
	_, offset := created.Zone()
	assert.Zero(t, offset, "GMT")

	reqs := f.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, sid, r.SID)
	assert.Equal(t, account, r.AccountSID)
	user, pass, ok := r.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, account, user)
	assert.Equal(t, token, pass)
	assert.Equal(t, "+15551230001", r.To)
	assert.Equal(t, "+15005550006", r.From)
	assert.Equal(t, "Hello", r.Body)
	assert.Equal(t, "https://tutti.example/cb", r.StatusCallback)
	assert.True(t, r.Accepted())
}

func TestFakeTwilioMessagingServiceAndMMS(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	resp, m := postForm(t, f, account, account, token, url.Values{
		"To": {"+15551230001"}, "MessagingServiceSid": {service},
		"MediaUrl": {"https://cdn.example/a.jpg", "https://cdn.example/b.jpg"},
	})

	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Regexp(t, `^MM[0-9a-f]{32}$`, m["sid"])
	assert.Equal(t, "accepted", m["status"], "a Messaging Service picks the sender later")
	assert.Nil(t, m["from"])
	assert.Equal(t, service, m["messaging_service_sid"])
	assert.Equal(t, "2", m["num_media"])
	assert.Equal(t, "0", m["num_segments"])
	assert.Equal(t, []string{"https://cdn.example/a.jpg", "https://cdn.example/b.jpg"}, f.Requests()[0].MediaURL)
}

func TestFakeTwilioAuth(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	form := url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {"x"}}

	for name, tc := range map[string]struct{ path, user, pass string }{
		"wrong token":             {account, account, "nope"},
		"other account's path":    {"AC" + strings.Repeat("f", 32), account, token},
		"other account's creds":   {account, "AC" + strings.Repeat("f", 32), token},
		"no credentials provided": {account, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := postForm(t, f, tc.path, tc.user, tc.pass, form)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, float64(20003), body["code"])
			assert.Equal(t, float64(401), body["status"])
			assert.Equal(t, "https://www.twilio.com/docs/errors/20003", body["more_info"])
		})
	}
	assert.Empty(t, f.Accepted())
}

func TestFakeTwilioValidation(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	for name, tc := range map[string]struct {
		form url.Values
		code float64
	}{
		"no To":           {url.Values{"From": {"+15005550006"}, "Body": {"x"}}, 21604},
		"no sender":       {url.Values{"To": {"+15551230001"}, "Body": {"x"}}, 21603},
		"no body":         {url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}}, 21602},
		"To not E.164":    {url.Values{"To": {"5551230001"}, "From": {"+15005550006"}, "Body": {"x"}}, 21211},
		"bad media URL":   {url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "MediaUrl": {"ftp://x/y"}}, 21620},
		"bad callback":    {url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {"x"}, "StatusCallback": {"nope"}}, 21609},
		"body over limit": {url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {strings.Repeat("x", 1601)}}, 21617},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := postForm(t, f, account, account, token, tc.form)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, tc.code, body["code"])
			assert.Equal(t, float64(400), body["status"])
			assert.NotEmpty(t, body["message"])
		})
	}
}

func TestFakeTwilioReadsOnlyFormBodies(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json",
		strings.NewReader(`{"To":"+15551230001","From":"+15005550006","Body":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(account, token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, float64(21604), body["code"], "a JSON body carries no parameters")
}

func TestFakeTwilioOptOutAndScript(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	form := url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {"x"}}

	f.OptOut("+15551230001")
	resp, body := postForm(t, f, account, account, token, form)
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, map[string]any{
		"code": float64(21610), "message": "Attempt to send to unsubscribed recipient",
		"more_info": "https://www.twilio.com/docs/errors/21610", "status": float64(400),
	}, body)

	f.OptIn("+15551230001")
	f.FailNext(1, 429, "")
	resp, body = postForm(t, f, account, account, token, form)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, float64(20429), body["code"])

	resp, _ = postForm(t, f, account, account, token, form)
	assert.Equal(t, 201, resp.StatusCode)
	assert.Len(t, f.Requests(), 3)
	assert.Len(t, f.Accepted(), 1)
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{"", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("a", 306), 2},
		{strings.Repeat("a", 307), 3},
		{strings.Repeat("€", 80), 1}, // extension characters count twice
		{strings.Repeat("€", 81), 2},
		{strings.Repeat("é", 160), 1}, // é is in the GSM alphabet
		{strings.Repeat("ç", 70), 1},  // ç is not: UCS-2
		{strings.Repeat("ç", 71), 2},
		{strings.Repeat("😀", 35), 1}, // two UTF-16 units each
		{strings.Repeat("😀", 36), 2},
	} {
		assert.Equal(t, tc.want, segments(tc.body), "%q", tc.body)
	}
}
