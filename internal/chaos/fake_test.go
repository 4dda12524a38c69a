package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tutti-dev/tutti/internal/provider"
)

const (
	testSGKey   = "SG.chaos-test"
	testAccount = "AC0123456789abcdef0123456789abcdef"
	testToken   = "0123456789abcdef0123456789abcdef"
)

type fakeBundle struct {
	fake *FakeProvider
	srv  *httptest.Server
	sg   *provider.SendGrid
	tw   *provider.Twilio
}

// setup starts a fake with the given faults (zero rates: none) behind an
// HTTP/1 test server and the real provider clients pointed at it.
func setup(t *testing.T, faults Faults, recordFile string, clientTimeout time.Duration) fakeBundle {
	t.Helper()
	if faults.HangMax == 0 {
		faults.HangMax = Duration(time.Minute)
	}
	if faults.RetryAfterSeconds == 0 {
		faults.RetryAfterSeconds = 1
	}
	f, err := NewFakeProvider(FakeConfig{
		SendGridAPIKey: testSGKey, TwilioAccountSID: testAccount, TwilioAuthToken: testToken,
		RecordFile: recordFile, Sync: true, Faults: faults, Seed: 1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: clientTimeout}
	return fakeBundle{
		fake: f, srv: srv,
		sg: provider.NewSendGrid(testSGKey, srv.URL, hc),
		tw: provider.NewTwilio(testAccount, testToken, srv.URL, hc),
	}
}

func email(to string) provider.Email {
	return provider.Email{To: to, From: "hello@tutti.test", Subject: "Chaos email_1", Text: "Hello", CustomArgs: map[string]string{"tutti_step_id": "email_1"}}
}

func sms(to, body string) provider.SMS { return provider.SMS{To: to, From: "+15005550006", Body: body} }

func TestFake_AcceptsAndRecordsWhatTheRealClientsSend(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{}, "", 10*time.Second)
	ctx := context.Background()

	sgRes, err := b.sg.SendEmail(ctx, "m_1", email("ada@example.com"))
	require.NoError(t, err)
	twRes, err := b.tw.SendSMS(ctx, "m_2", sms("+14155550100", "Chaos sms_1"))
	require.NoError(t, err)

	recs := b.fake.Records()
	require.Len(t, recs, 2)
	assert.Equal(t, ProviderSendGrid, recs[0].Provider)
	assert.Equal(t, sgRes.ProviderMessageID, recs[0].ID, "the X-Message-Id the sender got")
	assert.Equal(t, "m_1", recs[0].MessageID, "custom_args tutti_message_id")
	assert.Equal(t, "email_1", recs[0].CustomArgs["tutti_step_id"])
	assert.Equal(t, "ada@example.com", recs[0].To)
	assert.Equal(t, "Chaos email_1", recs[0].Subject)
	assert.Equal(t, AnswerSent, recs[0].Answer)

	assert.Equal(t, ProviderTwilio, recs[1].Provider)
	assert.Equal(t, twRes.ProviderMessageID, recs[1].ID, "the Message SID the sender got")
	assert.Equal(t, "+14155550100", recs[1].To)
	assert.Equal(t, "+15005550006", recs[1].From)
	assert.Equal(t, "Chaos sms_1", recs[1].Body)

	st := b.fake.Stats()
	assert.Equal(t, 1, st.SendGrid.Accepted)
	assert.Equal(t, 1, st.Twilio.Accepted)
}

func TestFake_WireChecksComeBeforeFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{Error500: 1}, "", 10*time.Second)
	ctx := context.Background()

	wrongKey := provider.NewSendGrid("SG.wrong", b.srv.URL, nil)
	_, err := wrongKey.SendEmail(ctx, "m_1", email("ada@example.com"))
	var pe *provider.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusUnauthorized, pe.StatusCode)

	_, err = b.sg.SendEmail(ctx, "m_2", email("not-an-address"))
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, http.StatusBadRequest, pe.StatusCode)
	assert.Contains(t, pe.Message, "personalizations.0.to.0.email")

	_, err = b.tw.SendSMS(ctx, "m_3", sms("415-555-0100", "x"))
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, provider.TwilioCodeInvalidTo, pe.Code)

	assert.Empty(t, b.fake.Records())
	st := b.fake.Stats()
	assert.Equal(t, 2, st.SendGrid.Rejected)
	assert.Equal(t, 1, st.Twilio.Rejected)
	assert.Zero(t, st.SendGrid.Error500+st.Twilio.Error500)
}

func TestFake_ErrorsAndThrottlingAcceptNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		faults     Faults
		status     int
		retryAfter time.Duration
	}{
		{"500", Faults{Error500: 1}, http.StatusInternalServerError, 0},
		{"429 with Retry-After", Faults{Throttle429: 1, RetryAfterSeconds: 1}, http.StatusTooManyRequests, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.faults, "", 10*time.Second)
			_, err := b.sg.SendEmail(ctx, "m_1", email("ada@example.com"))
			var pe *provider.Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.StatusCode)
			assert.True(t, pe.Retryable)
			assert.Equal(t, tc.retryAfter, pe.RetryAfter)

			_, err = b.tw.SendSMS(ctx, "m_2", sms("+14155550100", "x"))
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.status, pe.StatusCode)
			assert.Equal(t, 20000+tc.status, pe.Code, "Twilio's envelope")
			assert.True(t, pe.Retryable)
			assert.Equal(t, tc.retryAfter, pe.RetryAfter)

			assert.Empty(t, b.fake.Records())
		})
	}
}

func TestFake_SlowAnswersStillAccept(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{Slow: 1, SlowMin: Duration(20 * time.Millisecond), SlowMax: Duration(40 * time.Millisecond)}, "", 10*time.Second)
	_, err := b.sg.SendEmail(context.Background(), "m_1", email("ada@example.com"))
	require.NoError(t, err)
	recs := b.fake.Records()
	require.Len(t, recs, 1)
	assert.Equal(t, faultSlow, recs[0].Fault)
	assert.Equal(t, AnswerSent, recs[0].Answer)
	assert.Equal(t, 1, b.fake.Stats().SendGrid.Slow)
}

func TestFake_ASenderLeavingBeforeAcceptanceSendsNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	// The message would be accepted seconds into a 10s answer; the client
	// gives up after 100ms.
	b := setup(t, Faults{Slow: 1, SlowMin: Duration(10 * time.Second), SlowMax: Duration(10 * time.Second)}, path, 100*time.Millisecond)
	_, err := b.sg.SendEmail(context.Background(), "m_1", email("ada@example.com"))
	require.Error(t, err)

	eventually(t, "the abandoned request noted", func() bool { return b.fake.Stats().SendGrid.GoneBeforeAccept == 1 })
	assert.Empty(t, b.fake.Records())
	_, abandoned, err := ReadRecords(path)
	require.NoError(t, err)
	require.Len(t, abandoned, 1)
	assert.Equal(t, "m_1", abandoned[0].MessageID)
	assert.Equal(t, "ada@example.com", abandoned[0].To)
}

// waitAnswer polls until the record's answer is known; the bound only
// keeps a broken fake from hanging the test.
func waitAnswer(t *testing.T, f *FakeProvider, seq int64) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range f.Records() {
			if r.Seq == seq && r.Answer != AnswerPending {
				return r.Answer
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("record %d never got an answer", seq)
	return ""
}

func TestFake_AcceptThenHangOrDrop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		faults Faults
		answer string
	}{
		{"hang until the client gives up", Faults{Hang: 1}, AnswerClientGone},
		{"drop the connection", Faults{Drop: 1}, AnswerDropped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.faults, "", 300*time.Millisecond)

			_, err := b.sg.SendEmail(ctx, "m_1", email("ada@example.com"))
			var pe *provider.Error
			require.ErrorAs(t, err, &pe)
			assert.Zero(t, pe.StatusCode, "no answer at all")
			assert.True(t, pe.Ambiguous, "written, never answered")
			assert.False(t, pe.Retryable, "never resent blindly")

			_, err = b.tw.SendSMS(ctx, "m_2", sms("+14155550100", "x"))
			require.ErrorAs(t, err, &pe)
			assert.Zero(t, pe.StatusCode)

			recs := b.fake.Records()
			require.Len(t, recs, 2, "accepted although the sender never heard so")
			assert.Equal(t, "m_1", recs[0].MessageID)
			for _, r := range recs {
				assert.Equal(t, tc.answer, waitAnswer(t, b.fake, r.Seq))
			}
		})
	}
}

func TestFake_RecordSurvivesARestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	b := setup(t, Faults{}, path, 10*time.Second)
	ctx := context.Background()
	_, err := b.sg.SendEmail(ctx, "m_1", email("ada@example.com"))
	require.NoError(t, err)
	_, err = b.tw.SendSMS(ctx, "m_2", sms("+14155550100", "x"))
	require.NoError(t, err)
	before := b.fake.Records()
	b.srv.Close()
	require.NoError(t, b.fake.Close())

	again, err := NewFakeProvider(FakeConfig{RecordFile: path, Faults: Faults{HangMax: Duration(time.Minute), RetryAfterSeconds: 1}})
	require.NoError(t, err)
	defer again.Close()
	assert.Equal(t, before, again.Records())
	assert.Equal(t, 1, again.Stats().Twilio.Accepted)

	fromFile, abandoned, err := ReadRecords(path)
	require.NoError(t, err)
	assert.Equal(t, before, fromFile)
	assert.Empty(t, abandoned)
}

// rewrite sends every request to target instead of api.twilio.com.
type rewrite struct{ target *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rw.target.Scheme, rw.target.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

func twilioAPI(t *testing.T, base string) *openapi.ApiService {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	c := &client.Client{Credentials: client.NewCredentials(testAccount, testToken), HTTPClient: &http.Client{Transport: rewrite{u}}}
	c.SetAccountSid(testAccount)
	return openapi.NewApiServiceWithClient(c)
}

func TestFake_TwilioMessagesListFiltersAndPagesLikeTwilio(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{}, "", 10*time.Second)
	ctx := context.Background()
	sids := map[string]bool{}
	for _, m := range []provider.SMS{
		sms("+14155550100", "one"), sms("+14155550100", "two"), sms("+14155550101", "other"), sms("+14155550100", "three"),
	} {
		res, err := b.tw.SendSMS(ctx, "m", m)
		require.NoError(t, err)
		if m.To == "+14155550100" {
			sids[res.ProviderMessageID] = true
		}
	}
	api := twilioAPI(t, b.srv.URL)

	// PageSize 1 forces the SDK through next_page_uri twice.
	today := time.Now().UTC()
	params := &openapi.ListMessageParams{}
	params.SetTo("+14155550100").SetFrom("+15005550006").SetDateSent(today).SetPageSize(1)
	got, err := api.ListMessage(params)
	require.NoError(t, err)
	require.Len(t, got, 3)
	bodies := map[string]bool{}
	for _, m := range got {
		require.NotNil(t, m.Sid)
		assert.True(t, sids[*m.Sid], "a SID the sender was given")
		assert.Equal(t, "sent", *m.Status)
		require.NotNil(t, m.DateSent)
		bodies[*m.Body] = true
	}
	assert.Equal(t, map[string]bool{"one": true, "two": true, "three": true}, bodies)

	yesterday := &openapi.ListMessageParams{}
	yesterday.SetTo("+14155550100").SetDateSent(today.Add(-24 * time.Hour))
	got, err = api.ListMessage(yesterday)
	require.NoError(t, err)
	assert.Empty(t, got)

	after := &openapi.ListMessageParams{}
	after.SetDateSentAfter(today.Add(-time.Hour))
	got, err = api.ListMessage(after)
	require.NoError(t, err)
	assert.Len(t, got, 4)

	before := &openapi.ListMessageParams{}
	before.SetDateSentBefore(today.Add(-time.Hour))
	got, err = api.ListMessage(before)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, 3+1+1+1, b.fake.Stats().TwilioListRequests, "one request per page: 3 pages of one, then one each")
}

func TestFake_TwilioFetchesOneMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{}, "", 10*time.Second)
	res, err := b.tw.SendSMS(context.Background(), "m_1", sms("+14155550100", "one"))
	require.NoError(t, err)
	api := twilioAPI(t, b.srv.URL)

	m, err := api.FetchMessage(res.ProviderMessageID, nil)
	require.NoError(t, err)
	assert.Equal(t, res.ProviderMessageID, *m.Sid)
	assert.Equal(t, "one", *m.Body)

	_, err = api.FetchMessage("SM00000000000000000000000000000000", nil)
	var tre *client.TwilioRestError
	require.ErrorAs(t, err, &tre)
	assert.Equal(t, 20404, tre.Code)
}

func TestFake_TwilioListNeedsTheAccountsCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t, Faults{}, "", 10*time.Second)
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/2010-04-01/Accounts/"+testAccount+"/Messages.json", nil)
	require.NoError(t, err)
	req.SetBasicAuth(testAccount, "wrong")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestFaults_Validate(t *testing.T) {
	t.Parallel()
	assert.NoError(t, DefaultFaults().Validate())
	bad := DefaultFaults()
	bad.Error500, bad.Hang, bad.SlowMax, bad.RetryAfterSeconds = 0.9, 0.2, bad.SlowMin-1, 0
	err := bad.Validate()
	require.Error(t, err)
	for _, field := range []string{"error_500 + throttle_429 + hang + drop", "slow_min, slow_max", "retry_after_seconds"} {
		assert.Contains(t, err.Error(), field)
	}
}
