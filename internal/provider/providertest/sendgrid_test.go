package providertest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const key = "SG.key"

const validMail = `{
	"personalizations":[{"to":[{"email":"ada@example.com"}]}],
	"from":{"email":"news@tutti.example","name":"Tutti"},
	"subject":"Hi",
	"content":[{"type":"text/plain","value":"Hi"},{"type":"text/html","value":"<p>Hi</p>"}]
}`

// post sends a raw request, so these tests pin the wire behaviour without
// going through any SDK.
func post(t *testing.T, url, contentType, auth, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

type sgErrors struct {
	Errors []struct {
		Message string  `json:"message"`
		Field   *string `json:"field"`
		Help    *string `json:"help"`
	} `json:"errors"`
}

func decodeSGErrors(t *testing.T, body string) sgErrors {
	t.Helper()
	var e sgErrors
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.NotEmpty(t, e.Errors, body)
	return e
}

func TestFakeSendGridAccepts(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	resp, body := post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, validMail)

	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Empty(t, body, "SendGrid's 202 has no body")
	id := resp.Header.Get("X-Message-Id")
	assert.Len(t, id, 22)

	reqs := f.Requests()
	require.Len(t, reqs, 1)
	assert.True(t, reqs[0].Decoded)
	assert.Equal(t, id, reqs[0].MessageID)
	assert.Equal(t, "ada@example.com", reqs[0].Body.Personalizations[0].To[0].Email)
	assert.Equal(t, validMail, string(reqs[0].RawBody))
}

func TestFakeSendGridAuth(t *testing.T) {
	f := NewFakeSendGrid(t, key)

	resp, body := post(t, f.URL()+"/v3/mail/send", "application/json", "", validMail)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	e := decodeSGErrors(t, body)
	assert.Equal(t, "authorization required", e.Errors[0].Message)
	assert.Nil(t, e.Errors[0].Field, "field is null, as SendGrid sends it")

	resp, body = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer nope", validMail)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "The provided authorization grant is invalid, expired, or revoked", decodeSGErrors(t, body).Errors[0].Message)

	assert.Len(t, f.Requests(), 2, "rejected requests are recorded too")
	assert.Empty(t, f.Accepted())
}

func TestFakeSendGridRejectsMalformedRequests(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	auth := "Bearer " + key

	resp, _ := post(t, f.URL()+"/v3/mail/send", "application/x-www-form-urlencoded", auth, "to=ada")
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)

	resp, body := post(t, f.URL()+"/v3/mail/send", "application/json", auth, "{")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "Bad Request", decodeSGErrors(t, body).Errors[0].Message)

	resp, _ = post(t, f.URL()+"/v3/mail/sendx", "application/json", auth, validMail)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestFakeSendGridValidation(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	resp, body := post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, `{
		"personalizations":[{"to":[{"email":"ada@"}]},{"to":[]}],
		"content":[{"type":"text/html","value":"<p>x</p>"},{"type":"text/plain","value":"x"}]
	}`)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	fields := map[string]string{}
	for _, e := range decodeSGErrors(t, body).Errors {
		require.NotNil(t, e.Field)
		fields[*e.Field] = e.Message
		assert.NotNil(t, e.Help)
	}
	assert.Equal(t, "Does not contain a valid address.", fields["personalizations.0.to.0.email"])
	assert.Contains(t, fields, "personalizations.1.to")
	assert.Contains(t, fields, "from")
	assert.Contains(t, fields, "subject")
	assert.Contains(t, fields, "content.1.type", "text/plain must come first")
}

func TestFakeSendGridTemplateNeedsNoSubjectOrContent(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	resp, _ := post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, `{
		"personalizations":[{"to":[{"email":"ada@example.com"}],"dynamic_template_data":{"n":1}}],
		"from":{"email":"news@tutti.example"},
		"template_id":"d-123"
	}`)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, map[string]any{"n": float64(1)}, f.Requests()[0].Body.Personalizations[0].DynamicTemplateData)
}

func TestFakeSendGridScript(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	f.FailNext(1, 500, "")
	f.Enqueue(Response{Status: 400, Body: SendGridError("Does not contain a valid address.", "personalizations.0.to.0.email")})
	f.Enqueue(Response{Status: 202})

	resp, body := post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, validMail)
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "internal server error", decodeSGErrors(t, body).Errors[0].Message)

	resp, body = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, validMail)
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "personalizations.0.to.0.email", *decodeSGErrors(t, body).Errors[0].Field)

	resp, _ = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, validMail)
	assert.Equal(t, 202, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("X-Message-Id"), "a scripted 2xx still gets a message ID")

	// Script used up: normal processing again.
	resp, _ = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, `{}`)
	assert.Equal(t, 400, resp.StatusCode)

	// Unauthenticated requests do not consume the script.
	f.FailNext(1, 503, "")
	resp, _ = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer wrong", validMail)
	assert.Equal(t, 401, resp.StatusCode)
	resp, _ = post(t, f.URL()+"/v3/mail/send", "application/json", "Bearer "+key, validMail)
	assert.Equal(t, 503, resp.StatusCode)
}

func TestFakeSendGridConcurrentUse(t *testing.T) {
	f := NewFakeSendGrid(t, key)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, f.URL()+"/v3/mail/send", strings.NewReader(validMail))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			_ = f.Requests()
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, r := range f.Accepted() {
		ids[r.MessageID] = true
	}
	assert.Len(t, ids, 16, "every accepted message has its own ID")
}
