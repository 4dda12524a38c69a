package provider_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/provider"
)

var (
	hookSecret = []byte("whsec_test")
	hookBody   = []byte(`{"contact_id":"c_1","journey":"welcome"}`)
	hookTime   = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
)

// The signature is HMAC-SHA256 over "<t>.<body>"; the expected value was
// computed independently with Python's hmac module:
// hmac.new(b'whsec_test', b'1767225600.' + body, hashlib.sha256).hexdigest().
func TestSignWebhook(t *testing.T) {
	t.Parallel()
	require.Equal(t, "t=1767225600,v1=b27a12980e0b3e1f34e552a211b75b266103fa229222ecb5ebb488620b61993b",
		provider.SignWebhook(hookSecret, hookBody, hookTime))
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	good := provider.SignWebhook(hookSecret, hookBody, hookTime)
	require.NoError(t, provider.VerifyWebhook(hookSecret, hookBody, good, hookTime.Add(time.Minute), 5*time.Minute))
	for name, tc := range map[string]struct {
		secret, body []byte
		header       string
		now          time.Time
	}{
		"other secret":  {[]byte("other"), hookBody, good, hookTime},
		"body changed":  {hookSecret, []byte(`{"contact_id":"c_2","journey":"welcome"}`), good, hookTime},
		"replayed late": {hookSecret, hookBody, good, hookTime.Add(time.Hour)},
		"from future":   {hookSecret, hookBody, good, hookTime.Add(-time.Hour)},
		"time changed":  {hookSecret, hookBody, "t=1767225601" + good[len("t=1767225600"):], hookTime},
		"no signature":  {hookSecret, hookBody, "t=1767225600", hookTime},
		"garbage":       {hookSecret, hookBody, "sha256=abc", hookTime},
	} {
		require.Error(t, provider.VerifyWebhook(tc.secret, tc.body, tc.header, tc.now, 5*time.Minute), name)
	}
}

func TestWebhookPost(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	statuses := []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusUnprocessableEntity, http.StatusAccepted}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1) - 1
		body, _ := io.ReadAll(r.Body)
		// The receiver's checks: method, type, key, signature.
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get(provider.IdempotencyHeader) != "wh/enr_1/alert/1" ||
			provider.VerifyWebhook(hookSecret, body, r.Header.Get(provider.SignatureHeader), time.Now(), time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if statuses[n] == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.Header().Set("X-Request-Id", "rcv-1")
		w.WriteHeader(statuses[n])
	}))
	defer srv.Close()
	dest := provider.WebhookDestination{Name: "crm", URL: srv.URL, Secret: hookSecret}
	hook := &provider.Webhook{}
	post := func() (provider.Result, error) {
		return hook.Post(context.Background(), dest, "wh/enr_1/alert/1", hookBody)
	}

	_, err := post()
	require.True(t, provider.IsRetryable(err), "503: %v", err)
	_, err = post()
	var pe *provider.Error
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Retryable)
	require.Equal(t, 3*time.Second, pe.RetryAfter)
	_, err = post()
	require.ErrorAs(t, err, &pe)
	require.False(t, pe.Retryable, "422 is permanent")
	require.Equal(t, "webhook:http_422", pe.ReasonCode())
	res, err := post()
	require.NoError(t, err)
	require.Equal(t, "rcv-1", res.ProviderMessageID)

	srv.Close()
	_, err = post()
	require.True(t, provider.IsRetryable(err), "no answer: the key makes a repeat safe: %v", err)
}

// A post runs the fence its context carries once connected: a refusal
// keeps the request off the wire, and the receiver never sees it.
func TestWebhookPostFenced(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dest := provider.WebhookDestination{Name: "crm", URL: srv.URL, Secret: hookSecret}
	hook := &provider.Webhook{}

	refused := errors.New("suppressed since the decision")
	fence := provider.NewFence(func() error { return refused })
	_, err := hook.Post(provider.WithFence(context.Background(), fence), dest, "k1", hookBody)
	var stopped *provider.FenceError
	require.ErrorAs(t, err, &stopped)
	require.ErrorIs(t, err, refused)
	require.True(t, fence.Ran())
	require.Zero(t, calls.Load(), "nothing reached the receiver")

	fence = provider.NewFence(func() error { return nil })
	_, err = hook.Post(provider.WithFence(context.Background(), fence), dest, "k2", hookBody)
	require.NoError(t, err)
	require.True(t, fence.Ran())
	require.Equal(t, int32(1), calls.Load())
}
