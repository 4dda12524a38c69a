package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
	"github.com/tutti-dev/tutti/internal/provider/providertest"
)

func TestTwilioFindSMSSettlesAnAmbiguousSend(t *testing.T) {
	tw, fake := newTwilio(t)
	since := time.Now()
	n := make(chan struct{})
	fake.Enqueue(providertest.Response{Fault: providertest.AcceptThenHang, Notify: n})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-n; cancel() }()

	_, err := tw.SendSMS(ctx, "msg", sms())
	require.True(t, provider.IsAmbiguous(err), "%v", err)

	res, found, err := tw.FindSMS(context.Background(), "msg", sms(), since)
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, fake.Accepted(), 1, "reading back sends nothing")
	assert.Equal(t, provider.Result{
		Provider:          "twilio",
		ProviderMessageID: fake.Accepted()[0].SID,
		AcceptedAt:        res.AcceptedAt,
	}, res)
	assert.WithinDuration(t, since, res.AcceptedAt, time.Minute, "date_created, not the read's time")

	reads := fake.Reads()
	require.Len(t, reads, 1)
	q := reads[0].Query
	assert.Equal(t, sms().To, q.Get("To"))
	assert.Equal(t, sms().From, q.Get("From"))
	for k := range q {
		assert.NotContains(t, k, "DateSent", "date_sent is null while a message is queued")
	}
}

func TestTwilioFindSMSMatching(t *testing.T) {
	mms := func() provider.SMS {
		m := sms()
		m.MediaURL = []string{"https://cdn.tutti.example/a.jpg"}
		return m
	}
	tests := []struct {
		name  string
		sent  func() provider.SMS
		look  func() provider.SMS
		since func(sent time.Time) time.Time
		found bool
	}{
		{name: "the same message", found: true},
		{name: "created a little before since (clock skew)", since: func(s time.Time) time.Time { return s.Add(30 * time.Second) }, found: true},
		{name: "any time", since: func(time.Time) time.Time { return time.Time{} }, found: true},
		{name: "MMS with the same media count", sent: mms, look: mms, found: true},
		{name: "different body", look: func() provider.SMS { m := sms(); m.Body += "!"; return m }},
		{name: "different recipient", look: func() provider.SMS { m := sms(); m.To = "+15551230002"; return m }},
		{name: "different sender", look: func() provider.SMS { m := sms(); m.From = "+15005550007"; return m }},
		{name: "older than since", since: func(s time.Time) time.Time { return s.Add(10 * time.Minute) }},
		{name: "media missing", sent: mms},
		{name: "media extra", look: mms},
		{
			name:  "same Messaging Service",
			sent:  func() provider.SMS { m := sms(); m.From = twService; return m },
			look:  func() provider.SMS { m := sms(); m.From = twService; return m },
			found: true,
		},
		{
			name: "other Messaging Service",
			sent: func() provider.SMS { m := sms(); m.From = twService; return m },
			look: func() provider.SMS { m := sms(); m.From = "MG" + fmt.Sprintf("%032x", 1); return m },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw, fake := newTwilio(t)
			sent, look := sms(), sms()
			if tc.sent != nil {
				sent = tc.sent()
			}
			if tc.look != nil {
				look = tc.look()
			}
			before := time.Now()
			accepted, err := tw.SendSMS(context.Background(), "msg", sent)
			require.NoError(t, err)
			since := before
			if tc.since != nil {
				since = tc.since(before)
			}

			res, found, err := tw.FindSMS(context.Background(), "msg", look, since)

			require.NoError(t, err, "a definite answer either way")
			assert.Equal(t, tc.found, found)
			if tc.found {
				assert.Equal(t, accepted.ProviderMessageID, res.ProviderMessageID)
			} else {
				assert.Zero(t, res)
			}
			if messagingService := look.From == twService || tc.name == "other Messaging Service"; messagingService {
				assert.NotContains(t, fake.Reads()[0].Query, "From", "a service's messages have the pool number as From")
			}
		})
	}
}

func TestTwilioFindSMSPages(t *testing.T) {
	tw, fake := newTwilio(t)
	since := time.Now()
	first := sms()
	first.Body = "the first of many"
	_, err := tw.SendSMS(context.Background(), "msg", first)
	require.NoError(t, err)
	for i := range 60 { // more than a page of newer messages
		m := sms()
		m.Body = fmt.Sprint("later ", i)
		_, err := tw.SendSMS(context.Background(), "msg", m)
		require.NoError(t, err)
	}

	_, found, err := tw.FindSMS(context.Background(), "msg", first, since)
	require.NoError(t, err)
	assert.True(t, found, "found on the second page")
	assert.Len(t, fake.Reads(), 2)
}

func TestTwilioFindSMSInconclusive(t *testing.T) {
	// So many newer messages to the recipient that the bounded read cannot
	// see past them: "not found" would be a guess, so the answer is unknown.
	tw, fake := newTwilio(t)
	since := time.Now()
	for i := range 150 {
		m := sms()
		m.Body = fmt.Sprint("other ", i)
		_, err := tw.SendSMS(context.Background(), "msg", m)
		require.NoError(t, err)
	}

	_, found, err := tw.FindSMS(context.Background(), "msg", sms(), since)

	assert.False(t, found)
	pe := asError(t, err)
	assert.True(t, pe.Ambiguous)
	assert.False(t, pe.Retryable, "the same read would give the same answer")
	assert.Equal(t, "twilio:ambiguous", pe.ReasonCode())
	assert.Len(t, fake.Reads(), 3, "bounded")
}

func TestTwilioFindSMSFailures(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(*providertest.FakeTwilio) context.Context
		token     string
		retryable bool
		reason    string
	}{
		{
			name: "server error",
			prepare: func(f *providertest.FakeTwilio) context.Context {
				f.EnqueueRead(providertest.Response{Status: 500})
				return context.Background()
			},
			retryable: true,
			reason:    "twilio:20500",
		},
		{
			name:   "wrong credentials",
			token:  "ffffffffffffffffffffffffffffffff",
			reason: "twilio:20003",
		},
		{
			name: "unreadable page",
			prepare: func(f *providertest.FakeTwilio) context.Context {
				f.EnqueueRead(providertest.Response{Status: 200, Body: "not json"})
				return context.Background()
			},
			retryable: true,
			reason:    "twilio:http_200",
		},
		{
			// A read that got no answer is not ambiguous: reading has no
			// effect, so reading again is always safe.
			name: "no answer",
			prepare: func(f *providertest.FakeTwilio) context.Context {
				n := make(chan struct{})
				f.EnqueueRead(providertest.Response{Fault: providertest.AcceptThenHang, Notify: n})
				ctx, cancel := context.WithCancel(context.Background())
				go func() { <-n; cancel() }()
				return ctx
			},
			retryable: true,
			reason:    "twilio:transport",
		},
		{
			name: "connection reset",
			prepare: func(f *providertest.FakeTwilio) context.Context {
				f.EnqueueRead(providertest.Response{Fault: providertest.AcceptThenReset})
				return context.Background()
			},
			retryable: true,
			reason:    "twilio:transport",
		},
		{
			name: "refused",
			prepare: func(f *providertest.FakeTwilio) context.Context {
				f.Close()
				return context.Background()
			},
			retryable: true,
			reason:    "twilio:transport",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := providertest.NewFakeTwilio(t, twAccount, twToken)
			ctx := context.Background()
			if tc.prepare != nil {
				ctx = tc.prepare(fake)
			}
			token := twToken
			if tc.token != "" {
				token = tc.token
			}
			tw := provider.NewTwilio(twAccount, token, fake.URL(), &http.Client{Timeout: 10 * time.Second})

			_, found, err := tw.FindSMS(ctx, "msg", sms(), time.Now())

			assert.False(t, found)
			pe := asError(t, err)
			assert.Equal(t, tc.retryable, pe.Retryable, "%v", err)
			assert.False(t, pe.Ambiguous, "a failed read leaves the question open, it does not make it ambiguous")
			assert.Equal(t, tc.reason, pe.ReasonCode())
		})
	}
}

func TestTwilioFindSMSNeedsARecipient(t *testing.T) {
	tw, fake := newTwilio(t)
	m := sms()
	m.To = ""
	_, _, err := tw.FindSMS(context.Background(), "msg", m, time.Now())
	pe := asError(t, err)
	assert.False(t, pe.Retryable)
	assert.Empty(t, fake.Reads(), "never lists the whole account")
}
