package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listPage decodes the list envelope, with the messages' fields a test needs.
type listPage struct {
	Messages []struct {
		SID         string  `json:"sid"`
		To          string  `json:"to"`
		From        *string `json:"from"`
		Body        string  `json:"body"`
		DateCreated string  `json:"date_created"`
		DateSent    *string `json:"date_sent"`
		Status      string  `json:"status"`
	} `json:"messages"`
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	Start           int     `json:"start"`
	End             int     `json:"end"`
	URI             string  `json:"uri"`
	FirstPageURI    string  `json:"first_page_uri"`
	NextPageURI     *string `json:"next_page_uri"`
	PreviousPageURI *string `json:"previous_page_uri"`
}

func getList(t *testing.T, f *FakeTwilio, pathAndQuery, user, pass string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.URL()+pathAndQuery, nil)
	require.NoError(t, err)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var raw json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	return resp, raw
}

func listMessages(t *testing.T, f *FakeTwilio, q url.Values) listPage {
	t.Helper()
	resp, raw := getList(t, f, "/2010-04-01/Accounts/"+account+"/Messages.json?"+q.Encode(), account, token)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var p listPage
	require.NoError(t, json.Unmarshal(raw, &p))
	return p
}

// create makes one message and returns its SID.
func create(t *testing.T, f *FakeTwilio, to, from, body string) string {
	t.Helper()
	resp, m := postForm(t, f, account, account, token, url.Values{"To": {to}, "From": {from}, "Body": {body}})
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return m["sid"].(string)
}

func TestFakeTwilioListEnvelope(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	sid := create(t, f, "+15551230001", "+15005550006", "Hello")

	resp, raw := getList(t, f, "/2010-04-01/Accounts/"+account+"/Messages.json", account, token)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var env map[string]any
	require.NoError(t, json.Unmarshal(raw, &env))
	for _, k := range []string{"messages", "page", "page_size", "start", "end", "uri", "first_page_uri", "next_page_uri", "previous_page_uri"} {
		assert.Contains(t, env, k)
	}
	assert.Nil(t, env["next_page_uri"], "one page")
	assert.Nil(t, env["previous_page_uri"])
	assert.Equal(t, float64(50), env["page_size"], "Twilio's default")

	p := listMessages(t, f, nil)
	require.Len(t, p.Messages, 1)
	m := p.Messages[0]
	assert.Equal(t, sid, m.SID)
	assert.Equal(t, "+15551230001", m.To)
	assert.Equal(t, "Hello", m.Body)
	assert.Equal(t, "queued", m.Status)
	assert.Nil(t, m.DateSent, "not sent yet")
	_, err := time.Parse(time.RFC1123Z, m.DateCreated)
	assert.NoError(t, err)

	assert.Len(t, f.Requests(), 1, "reads are kept apart from creates")
	require.Len(t, f.Reads(), 2)
	assert.Equal(t, http.MethodGet, f.Reads()[0].Method)
	assert.Equal(t, http.StatusOK, f.Reads()[0].Status)
}

func TestFakeTwilioListAuth(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	create(t, f, "+15551230001", "+15005550006", "Hello")

	for name, tc := range map[string]struct{ path, user, pass string }{
		"wrong token":          {account, account, "nope"},
		"other account's path": {"AC" + fmt.Sprintf("%032d", 0), account, token},
		"no credentials":       {account, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, raw := getList(t, f, "/2010-04-01/Accounts/"+tc.path+"/Messages.json", tc.user, tc.pass)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			var body map[string]any
			require.NoError(t, json.Unmarshal(raw, &body))
			assert.Equal(t, float64(20003), body["code"])
			assert.NotContains(t, body, "messages")
		})
	}
}

func TestFakeTwilioListFilters(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	a1 := create(t, f, "+15551230001", "+15005550006", "one")
	b := create(t, f, "+15551230002", "+15005550006", "other recipient")
	c := create(t, f, "+15551230001", "+15005550007", "other sender")
	a2 := create(t, f, "+15551230001", "+15005550006", "two")

	sids := func(p listPage) []string {
		var out []string
		for _, m := range p.Messages {
			out = append(out, m.SID)
		}
		return out
	}
	assert.Equal(t, []string{a2, c, b, a1}, sids(listMessages(t, f, nil)), "newest first")
	assert.Equal(t, []string{a2, c, a1}, sids(listMessages(t, f, url.Values{"To": {"+15551230001"}})))
	assert.Equal(t, []string{a2, a1}, sids(listMessages(t, f, url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}})))
	assert.Empty(t, sids(listMessages(t, f, url.Values{"To": {"+15559999999"}})))
}

func TestFakeTwilioListDateSent(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	sent := create(t, f, "+15551230001", "+15005550006", "sent")
	create(t, f, "+15551230001", "+15005550006", "still queued")
	day := time.Date(2030, 5, 17, 23, 59, 0, 0, time.UTC)
	require.True(t, f.MarkSent(sent, day))
	assert.False(t, f.MarkSent("SM"+fmt.Sprintf("%032d", 0), day))

	for _, tc := range []struct {
		query url.Values
		want  int
	}{
		{url.Values{"DateSent": {"2030-05-17"}}, 1},
		{url.Values{"DateSent": {"2030-05-18"}}, 0},
		{url.Values{"DateSent>": {"2030-05-17"}}, 1}, // on or after
		{url.Values{"DateSent>": {"2030-05-18"}}, 0},
		{url.Values{"DateSent<": {"2030-05-17"}}, 1}, // on or before
		{url.Values{"DateSent<": {"2030-05-16"}}, 0},
		{url.Values{"DateSent>": {"2030-05-17T12:00:00Z"}}, 1}, // as twilio-go sends it: the date counts
		{url.Values{"DateSent>": {"2000-01-01"}}, 1},           // never the queued one
		{nil, 2},
	} {
		t.Run(tc.query.Encode(), func(t *testing.T) {
			p := listMessages(t, f, tc.query)
			assert.Len(t, p.Messages, tc.want)
			if tc.query == nil {
				return
			}
			for _, m := range p.Messages {
				assert.Equal(t, "sent", m.Status)
				require.NotNil(t, m.DateSent)
				assert.Equal(t, day.Format(time.RFC1123Z), *m.DateSent)
			}
		})
	}

	resp, raw := getList(t, f, "/2010-04-01/Accounts/"+account+"/Messages.json?DateSent=yesterday", account, token)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(raw))
}

func TestFakeTwilioListPaging(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	var created []string
	for i := range 5 {
		created = append(created, create(t, f, "+15551230001", "+15005550006", fmt.Sprint("msg ", i)))
	}

	var seen []string
	p := listMessages(t, f, url.Values{"To": {"+15551230001"}, "PageSize": {"2"}})
	assert.Nil(t, p.PreviousPageURI)
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 3, "5 messages, 2 a page")
		assert.Equal(t, 2, p.PageSize)
		for _, m := range p.Messages {
			seen = append(seen, m.SID)
		}
		if p.NextPageURI == nil {
			break
		}
		// A message created between pages does not shift the next page.
		if pages == 1 {
			create(t, f, "+15551230001", "+15005550006", "late")
		}
		u, err := url.Parse(*p.NextPageURI)
		require.NoError(t, err)
		assert.Equal(t, "/2010-04-01/Accounts/"+account+"/Messages.json", u.Path, "a path, as Twilio gives it")
		assert.Equal(t, "+15551230001", u.Query().Get("To"), "filters carry over")
		p = listMessages(t, f, u.Query())
		assert.NotNil(t, p.PreviousPageURI)
	}
	want := []string{created[4], created[3], created[2], created[1], created[0]}
	assert.Equal(t, want, seen, "every message once, newest first")
}

func TestFakeTwilioListScript(t *testing.T) {
	f := NewFakeTwilio(t, account, token)
	f.EnqueueRead(Response{Status: 503})

	resp, raw := getList(t, f, "/2010-04-01/Accounts/"+account+"/Messages.json", account, token)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var body map[string]any
	require.NoError(t, json.Unmarshal(raw, &body))
	assert.Equal(t, float64(20503), body["code"])

	resp, _ = postForm(t, f, account, account, token, validForm)
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "the read script leaves creates alone")
	listMessages(t, f, nil) // and is used up
}
