package provider

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Outbound webhooks: the webhook step posts a signed JSON payload to a
// destination a workspace configured (a sales alert, a CRM task, a
// direct-mail vendor). Each destination has its own secret; the receiver
// checks the signature with VerifyWebhook's rule:
//
//	Tutti-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Idempotency-Key: <the step's key: the same for every attempt>
//
// The timestamp is signed with the body so that a captured request cannot
// be replayed later; receivers should refuse one older than a few minutes.

// SignatureHeader and IdempotencyHeader are the headers every post carries.
const (
	SignatureHeader   = "Tutti-Signature"
	IdempotencyHeader = "Idempotency-Key"
)

// WebhookDestination is where a webhook step posts.
type WebhookDestination struct {
	Name   string
	URL    string
	Secret []byte
}

// Webhook posts signed payloads. HTTP's Timeout, Transport and redirect
// policy are honoured; nil means a client with a 30s timeout.
type Webhook struct {
	HTTP *http.Client
	Now  func() time.Time
}

// SignWebhook returns the Tutti-Signature value for body at t.
func SignWebhook(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks a Tutti-Signature value against body, refusing one
// signed more than tolerance away from now: the receiver's side, in Go.
func VerifyWebhook(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature header must be t=<unix seconds>,v1=<hex>")
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature is from %s, outside %s of now", at.UTC().Format(time.RFC3339), tolerance)
	}
	want := SignWebhook(secret, body, at)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature does not match")
	}
	return nil
}

// Post sends payload (JSON) to dest. A 2xx is acceptance. 429 and 5xx are
// retryable (with Retry-After); other 4xx are permanent. A request that
// got no answer is retryable even once written: the Idempotency-Key tells
// the receiver it is the same post, which is the contract a webhook
// receiver must honour; the README says so.
func (w *Webhook) Post(ctx context.Context, dest WebhookDestination, idempotencyKey string, payload []byte) (Result, error) {
	// The destination is named in the ledger row; the provider name stays a
	// fixed token, since reason codes and metric labels are built from it.
	name := "webhook"
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dest.URL, bytes.NewReader(payload))
	if err != nil {
		return Result{}, &Error{Provider: name, Message: "building the request: " + err.Error(), Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tutti-webhook/1")
	req.Header.Set(IdempotencyHeader, idempotencyKey)
	req.Header.Set(SignatureHeader, SignWebhook(dest.Secret, payload, now()))
	hc := http.Client{Timeout: defaultTimeout}
	if w.HTTP != nil {
		hc = *w.HTTP
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	// A post's context may carry a Fence (the ledger row's move to in
	// flight): it runs once connected, before a byte is written (fence.go).
	hc.Transport = fenceTransport{next: next}
	resp, err := hc.Do(req)
	if stop := fenceStopped(ctx); stop != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return Result{}, stop
	}
	if err != nil {
		// written=false: retryable whether or not the request went out,
		// since the receiver dedupes by the Idempotency-Key.
		return Result{}, transportError(name, err, false)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 == 2 {
		return Result{Provider: name, ProviderMessageID: resp.Header.Get("X-Request-Id"), AcceptedAt: now().UTC()}, nil
	}
	return Result{}, &Error{Provider: name, StatusCode: resp.StatusCode, Message: statusMessage(resp.StatusCode, string(body)),
		Retryable: RetryableStatus(resp.StatusCode), RetryAfter: RetryAfter(resp.Header, now())}
}
