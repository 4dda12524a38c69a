package providertest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// giveUp returns a context cancelled as soon as n is closed: a client that
// gives up once the fake has staged its fault.
func giveUp(t *testing.T, n chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { <-n; cancel() }()
	return ctx
}

func twilioCreate(ctx context.Context, f *FakeTwilio, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(account, token)
	return http.DefaultClient.Do(req)
}

func sendGridSend(ctx context.Context, f *FakeSendGrid, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL()+"/v3/mail/send", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return http.DefaultClient.Do(req)
}

var validForm = url.Values{"To": {"+15551230001"}, "From": {"+15005550006"}, "Body": {"Hello"}}

func TestFakeTwilioFaults(t *testing.T) {
	tests := []struct {
		fault    Fault
		form     url.Values
		accepted bool
		status   int
		body     bool // the fake read the body
	}{
		{fault: AcceptThenHang, form: validForm, accepted: true, status: 201, body: true},
		{fault: AcceptThenReset, form: validForm, accepted: true, status: 201, body: true},
		{fault: HangBeforeReading, form: validForm},
		{
			// Processed as usual, so an invalid request is refused - but
			// the client never hears that either.
			fault:  AcceptThenHang,
			form:   url.Values{"To": {"555"}, "From": {"+15005550006"}, "Body": {"x"}},
			status: 400,
			body:   true,
		},
	}
	for _, tc := range tests {
		t.Run(faultName(tc.fault)+" "+tc.form.Get("To"), func(t *testing.T) {
			f := NewFakeTwilio(t, account, token)
			n := make(chan struct{})
			f.Enqueue(Response{Fault: tc.fault, Notify: n})

			resp, err := twilioCreate(giveUp(t, n), f, tc.form)
			if resp != nil {
				resp.Body.Close()
			}
			require.Error(t, err, "no answer ever comes")

			reqs := f.Requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			assert.Equal(t, tc.fault, r.Fault)
			assert.Equal(t, tc.accepted, r.Accepted())
			assert.Equal(t, tc.status, r.Status)
			assert.Equal(t, tc.accepted, r.SID != "")
			assert.Equal(t, tc.body, len(r.RawBody) > 0)
			if tc.accepted {
				require.Len(t, f.Accepted(), 1)
				// The created message is there to be read back.
				list := listMessages(t, f, url.Values{"To": {"+15551230001"}})
				require.Len(t, list.Messages, 1)
				assert.Equal(t, r.SID, list.Messages[0].SID)
			}

			resp, err = twilioCreate(context.Background(), f, validForm)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusCreated, resp.StatusCode, "one fault, then normal service")
		})
	}
}

func TestFakeSendGridFaults(t *testing.T) {
	for _, tc := range []struct {
		fault    Fault
		accepted bool
	}{
		{AcceptThenHang, true},
		{AcceptThenReset, true},
		{HangBeforeReading, false},
	} {
		t.Run(faultName(tc.fault), func(t *testing.T) {
			f := NewFakeSendGrid(t, key)
			n := make(chan struct{})
			f.Enqueue(Response{Fault: tc.fault, Notify: n})

			resp, err := sendGridSend(giveUp(t, n), f, validMail)
			if resp != nil {
				resp.Body.Close()
			}
			require.Error(t, err)

			reqs := f.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.fault, reqs[0].Fault)
			assert.Equal(t, tc.accepted, reqs[0].Accepted())
			assert.Equal(t, tc.accepted, reqs[0].MessageID != "")
			assert.Equal(t, tc.accepted, reqs[0].Decoded, "the body was read only when acted on")
		})
	}
}

func TestFaultNextCountsDown(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	f.FaultNext(2, AcceptThenReset)

	for range 2 {
		_, err := sendGridSend(context.Background(), f, validMail)
		require.Error(t, err)
	}
	resp, err := sendGridSend(context.Background(), f, validMail)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Len(t, f.Accepted(), 3, "the two reset calls were accepted too")
}

func TestFaultsDoNotOutliveTheFake(t *testing.T) {
	// A hang that only the fake can end (the request is never read) ends
	// when the fake closes, so neither the client nor t.Cleanup waits forever.
	f := NewFakeTwilio(t, account, token)
	n := make(chan struct{})
	f.Enqueue(Response{Fault: HangBeforeReading, Notify: n})
	go func() { <-n; f.Close() }()

	_, err := twilioCreate(context.Background(), f, validForm)
	require.Error(t, err)
}

func TestFakeTwilioFaultsNeedAuthentication(t *testing.T) {
	// An unauthenticated request does not use up a staged fault.
	f := NewFakeTwilio(t, account, token)
	f.FaultNext(1, HangBeforeReading)
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/2010-04-01/Accounts/"+account+"/Messages.json", strings.NewReader(validForm.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, float64(20003), body["code"])
}

func faultName(f Fault) string {
	switch f {
	case AcceptThenHang:
		return "AcceptThenHang"
	case AcceptThenReset:
		return "AcceptThenReset"
	case HangBeforeReading:
		return "HangBeforeReading"
	}
	return "none"
}
