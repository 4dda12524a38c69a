package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/codec"
	"github.com/tutti-dev/tutti/internal/config"
)

// The codec endpoint needs neither Postgres nor Temporal: these tests build
// the server with the codec settings alone.

const (
	codecToken = "codec-token-0123456789"
	uiOrigin   = "http://localhost:8233"
)

type codecHarness struct {
	url    string
	client *http.Client
	codec  *codec.Codec
	log    *bytes.Buffer
}

func newCodecHarness(t *testing.T, configure func(*config.Config)) *codecHarness {
	t.Helper()
	k1, err := codec.GenerateKey("k1")
	require.NoError(t, err)
	k2, err := codec.GenerateKey("k2")
	require.NoError(t, err)
	c, err := codec.New(k2, k1)
	require.NoError(t, err)
	cfg := config.Config{
		APIToken: token, APIMaxBody: 1 << 20,
		Codec: c, CodecAuthToken: codecToken, CodecCORSOrigins: []string{uiOrigin},
	}
	if configure != nil {
		configure(&cfg)
	}
	var logs bytes.Buffer
	url, hc := serveAPI(t, api.Deps{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	return &codecHarness{url: url, client: hc, codec: c, log: &logs}
}

func payloadsJSON(t *testing.T, ps []*commonpb.Payload) string {
	t.Helper()
	raw, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return string(raw)
}

func (h *codecHarness) post(t *testing.T, path, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	return h.do(t, http.MethodPost, path, body, headers)
}

func (h *codecHarness) do(t *testing.T, method, path, body string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(raw)
}

func decodedStrings(t *testing.T, body string) []string {
	t.Helper()
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(body), &out), body)
	var got []string
	for _, p := range out.Payloads {
		var s string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &s))
		got = append(got, s)
	}
	return got
}

func TestCodecEndpointDecodes(t *testing.T) {
	h := newCodecHarness(t, nil)
	plain, err := converter.GetDefaultDataConverter().ToPayloads("Secret subject zebra", "recorded before encryption")
	require.NoError(t, err)
	enc, err := h.codec.Encode(plain.Payloads[:1])
	require.NoError(t, err)
	body := payloadsJSON(t, append(enc, plain.Payloads[1]))
	bearer := map[string]string{"Authorization": "Bearer " + codecToken, "Content-Type": "application/json"}

	// The CLI's form: namespace in the path, bearer token.
	resp, out := h.post(t, "/codec/default/decode", body, bearer)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.Equal(t, []string{"Secret subject zebra", "recorded before encryption"}, decodedStrings(t, out))
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "no Origin, no CORS headers")

	// The UI's form: token in the path, namespace in X-Namespace, from the UI's origin.
	resp, out = h.post(t, "/codec/ui/"+codecToken+"/decode", body,
		map[string]string{"Origin": uiOrigin, "X-Namespace": "default", "Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.Equal(t, []string{"Secret subject zebra", "recorded before encryption"}, decodedStrings(t, out))
	require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Values("Vary"), "Origin")

	// The token never reaches the access log.
	require.Contains(t, h.log.String(), "/codec/ui/{token}/decode")
	require.NotContains(t, h.log.String(), codecToken)

	// encode encrypts under the newest key.
	resp, out = h.post(t, "/codec/default/encode", payloadsJSON(t, plain.Payloads[:1]), bearer)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	var encoded commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(out), &encoded))
	require.Equal(t, codec.EncodingEncrypted, string(encoded.Payloads[0].Metadata["encoding"]))
	require.Equal(t, "k2", string(encoded.Payloads[0].Metadata[codec.MetadataKeyID]))
	require.NotContains(t, out, "zebra")
}

func TestCodecEndpointDecodeErrors(t *testing.T) {
	h := newCodecHarness(t, nil)
	bearer := map[string]string{"Authorization": "Bearer " + codecToken}
	other, err := codec.GenerateKey("retired")
	require.NoError(t, err)
	otherCodec, err := codec.New(other)
	require.NoError(t, err)
	p, err := converter.GetDefaultDataConverter().ToPayloads("x")
	require.NoError(t, err)
	underRetired, err := otherCodec.Encode(p.Payloads)
	require.NoError(t, err)
	tampered, err := h.codec.Encode(p.Payloads)
	require.NoError(t, err)
	tampered[0].Data[len(tampered[0].Data)-1] ^= 1

	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", "{", ""},
		{"unknown key", payloadsJSON(t, underRetired), `key "retired", which is not configured (configured: k2, k1)`},
		{"tampered", payloadsJSON(t, tampered), "failed authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := h.post(t, "/codec/default/decode", tc.body, bearer)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, out)
			require.Contains(t, out, tc.want)
		})
	}
}

func TestCodecEndpointRefuses(t *testing.T) {
	h := newCodecHarness(t, nil)
	off := newCodecHarness(t, func(c *config.Config) { c.Codec = nil })
	noToken := newCodecHarness(t, func(c *config.Config) { c.CodecAuthToken = "" })
	body := `{"payloads":[]}`
	for _, tc := range []struct {
		name     string
		h        *codecHarness
		method   string
		path     string
		headers  map[string]string
		status   int
		code     string
		wantCORS bool
	}{
		{name: "no token", path: "/codec/default/decode", status: 401, code: "unauthorized"},
		{name: "API token is not the codec token", path: "/codec/default/decode",
			headers: map[string]string{"Authorization": "Bearer " + token}, status: 401, code: "unauthorized"},
		{name: "wrong scheme", path: "/codec/default/decode",
			headers: map[string]string{"Authorization": "Basic " + codecToken}, status: 401, code: "unauthorized"},
		{name: "wrong token in the path", path: "/codec/ui/wrong-token-0123456789/decode", status: 401, code: "unauthorized"},
		{name: "bearer token does not open the path form", path: "/codec/ui/x/decode",
			headers: map[string]string{"Authorization": "Bearer " + codecToken}, status: 401, code: "unauthorized"},
		{name: "unknown op", path: "/codec/default/reencrypt",
			headers: map[string]string{"Authorization": "Bearer " + codecToken}, status: 404, code: "not_found"},
		{name: "GET", method: "GET", path: "/codec/default/decode", status: 405, code: "method_not_allowed"},
		{name: "browser from another origin", path: "/codec/ui/" + codecToken + "/decode",
			headers: map[string]string{"Origin": "https://evil.example"}, status: 403, code: "origin_not_allowed"},
		{name: "401 is readable by the UI", path: "/codec/ui/wrong-token-0123456789/decode",
			headers: map[string]string{"Origin": uiOrigin}, status: 401, code: "unauthorized", wantCORS: true},
		{name: "encryption off", h: off, path: "/codec/default/decode",
			headers: map[string]string{"Authorization": "Bearer " + codecToken}, status: 503, code: "codec_off"},
		{name: "no codec token configured", h: noToken, path: "/codec/default/decode",
			headers: map[string]string{"Authorization": "Bearer "}, status: 503, code: "codec_endpoint_off"},
		{name: "preflight from another origin", method: "OPTIONS", path: "/codec/default/decode",
			headers: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, status: 403, code: "origin_not_allowed"},
		{name: "preflight without Origin", method: "OPTIONS", path: "/codec/default/decode", status: 400, code: "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh, method := tc.h, tc.method
			if hh == nil {
				hh = h
			}
			if method == "" {
				method = http.MethodPost
			}
			resp, out := hh.do(t, method, tc.path, body, tc.headers)
			require.Equal(t, tc.status, resp.StatusCode, out)
			var env struct{ Error api.Error }
			require.NoError(t, json.Unmarshal([]byte(out), &env), out)
			require.Equal(t, tc.code, env.Error.Code, out)
			require.Equal(t, tc.wantCORS, resp.Header.Get("Access-Control-Allow-Origin") == uiOrigin)
		})
	}
}

// The Temporal UI's POST has Content-Type: application/json and X-Namespace,
// so the browser asks first; the preflight carries no token.
func TestCodecEndpointPreflight(t *testing.T) {
	h := newCodecHarness(t, nil)
	for _, path := range []string{"/codec/default/decode", "/codec/ui/" + codecToken + "/decode", "/codec/ui/anything/encode"} {
		resp, out := h.do(t, http.MethodOptions, path, "", map[string]string{
			"Origin": uiOrigin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,x-namespace",
		})
		require.Equal(t, http.StatusNoContent, resp.StatusCode, out)
		require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
		require.Equal(t, "POST", resp.Header.Get("Access-Control-Allow-Methods"))
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, hdr := range []string{"authorization", "content-type", "x-namespace"} {
			require.Contains(t, allowed, hdr)
		}
		require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	}
}
