package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// The codec endpoint speaks Temporal's remote codec protocol over Tutti's
// payload codec (internal/codec): POST a Payloads message as JSON to
// .../decode (or .../encode) and get it back decrypted (or encrypted). The
// Temporal UI's codec endpoint setting and `temporal workflow show
// --codec-endpoint` use it to show decoded histories. The SDK's handler does
// the protocol; this file decides who may use it.
//
// Two forms, one token (TUTTI_CODEC_AUTH_TOKEN, not the API token):
//
//	/codec/{namespace}/{op}    Authorization: Bearer <token>  (temporal CLI --codec-auth, curl)
//	/codec/ui/{token}/{op}     the token in the path           (the Temporal UI)
//
// The Temporal UI cannot send an Authorization header of our choosing (it
// only passes its own OIDC login token, and only to https endpoints), so its
// form carries the token in the URL; the access log never shows it. Browsers
// are answered only from TUTTI_CODEC_CORS_ORIGINS, preflight included. The
// namespace (path or X-Namespace header) is not checked: one set of keys
// serves Tutti's namespace, and a payload it cannot decrypt is an error
// whatever the namespace.

// codecAllowedHeaders are the request headers the Temporal UI and CLI send.
const codecAllowedHeaders = "Authorization, Content-Type, X-Namespace"

// codecEndpoint is the endpoint's state, fixed at start.
type codecEndpoint struct {
	// protocol is the SDK's codec HTTP handler; nil when encryption is off.
	protocol http.Handler
	// tokenSum is the SHA-256 of TUTTI_CODEC_AUTH_TOKEN (see Server.tokenSum).
	tokenSum [sha256.Size]byte
	hasToken bool
	origins  []string
}

func newCodecEndpoint(s *Server) codecEndpoint {
	e := codecEndpoint{origins: s.cfg.CodecCORSOrigins, hasToken: s.cfg.CodecAuthToken != ""}
	e.tokenSum = sha256.Sum256([]byte(s.cfg.CodecAuthToken))
	if s.cfg.Codec != nil {
		e.protocol = converter.NewPayloadCodecHTTPHandler(s.cfg.Codec)
	}
	return e
}

// codecWithBearer serves /codec/{namespace}/{op} to callers that send the
// token as a bearer token.
func (s *Server) codecWithBearer(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	s.serveCodec(w, r, strings.TrimSpace(token), true)
}

// codecWithPathToken serves /codec/ui/{token}/{op}, the Temporal UI's form.
func (s *Server) codecWithPathToken(w http.ResponseWriter, r *http.Request) {
	s.serveCodec(w, r, r.PathValue("token"), false)
}

func (s *Server) serveCodec(w http.ResponseWriter, r *http.Request, token string, bearer bool) {
	if !codecOp(w, r) || !s.codecCORS(w, r) {
		return
	}
	switch {
	case s.codec.protocol == nil:
		writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Code: "codec_off",
			Message: "payload encryption is off (TUTTI_CODEC_KEYS is not set): Temporal holds plain payloads, there is nothing to decode"})
		return
	case !s.codec.hasToken:
		writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Code: "codec_endpoint_off",
			Message: "the codec endpoint is off: set TUTTI_CODEC_AUTH_TOKEN to open it"})
		return
	}
	got := sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(got[:], s.codec.tokenSum[:]) != 1 {
		msg := "missing or invalid codec token: send Authorization: Bearer <TUTTI_CODEC_AUTH_TOKEN>"
		if bearer {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tutti-codec"`)
		} else {
			msg = "invalid codec token: the UI's codec endpoint must be <API URL>/codec/ui/<TUTTI_CODEC_AUTH_TOKEN>"
		}
		writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg})
		return
	}
	s.codec.protocol.ServeHTTP(w, r)
}

// codecPreflight answers the CORS preflight a browser sends before the
// Temporal UI's POST (it sends Content-Type: application/json and
// X-Namespace, so every call is preflighted). The preflight carries no
// credentials, so it is answered without the token.
func (s *Server) codecPreflight(w http.ResponseWriter, r *http.Request) {
	if !codecOp(w, r) || !s.codecCORS(w, r) {
		return
	}
	if r.Header.Get("Origin") == "" {
		writeError(w, r, &Error{Status: http.StatusBadRequest, Code: "invalid_request",
			Message: "OPTIONS here is a CORS preflight: it needs an Origin header"})
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", codecAllowedHeaders)
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// codecOp checks the protocol's last path element.
func codecOp(w http.ResponseWriter, r *http.Request) bool {
	if op := r.PathValue("op"); op == "encode" || op == "decode" {
		return true
	}
	writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found",
		Message: "the codec endpoint serves .../encode and .../decode only"})
	return false
}

// codecCORS lets browsers from the configured origins read the answer. A
// request without Origin (the CLI, curl) is not a browser's and passes; a
// browser from any other origin gets 403, so the mistake is visible in its
// developer tools rather than a bare CORS failure.
func (s *Server) codecCORS(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !slices.Contains(s.codec.origins, strings.ToLower(origin)) {
		writeError(w, r, &Error{Status: http.StatusForbidden, Code: "origin_not_allowed",
			Message: "origin " + origin + " is not in TUTTI_CODEC_CORS_ORIGINS"})
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	// The UI's "include cross-origin credentials" option needs this; the
	// endpoint uses no cookies, so it grants nothing more.
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	return true
}

// loggedPath is the request path as logs show it: the codec endpoint's UI
// form carries its token in the path, and the token never goes to a log.
func loggedPath(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/codec/ui/"); ok {
		_, op, _ := strings.Cut(rest, "/")
		return "/codec/ui/{token}/" + op
	}
	return r.URL.Path
}
