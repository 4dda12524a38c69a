package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	"sigs.k8s.io/yaml"

	"github.com/tutti-dev/tutti/internal/api"
)

// The OpenAPI document is the contract: every answer the API gives in these
// tests goes through contractTransport, which checks it against
// openapi.yaml. An answer whose status the route does not document, or whose
// body or documented headers do not match the document's schema (strictly:
// a property the schema does not declare is drift too), fails the test.

// contract is openapi.yaml, built once for the package.
type contract struct {
	validator validator.Validator
	// errorEnvelope is the schema of the answers to requests no route serves
	// (404 not_found, 405 method_not_allowed): the document has no
	// operation to look them up under.
	errorEnvelope *base.Schema
	schemas       schema_validation.SchemaValidator
	routes        *http.ServeMux
	// mu serialises checks: the tests run handlers concurrently, and the
	// check is cheap next to them.
	mu sync.Mutex
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	spec, err := strictMaps(api.OpenAPI)
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	opts := []config.Option{
		config.WithFormatAssertions(),
		// Strict: a property the schema does not declare is drift.
		config.WithStrictMode(),
		// Set on every answer (writeJSON, requireToken), not part of any
		// one operation's contract.
		config.WithStrictIgnoredHeadersExtra("X-Content-Type-Options", "Allow"),
	}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi.yaml: %v", errs)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	envelope := model.Model.Components.Schemas.GetOrZero("ErrorEnvelope")
	if envelope == nil {
		return nil, fmt.Errorf("openapi.yaml: no ErrorEnvelope schema")
	}
	// The operations as ServeMux routes them, to tell an answer of an
	// operation from ServeMux's own 404 and 405 (the library's path
	// matching also matches an empty segment, which ServeMux does not).
	routes := http.NewServeMux()
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			routes.Handle(strings.ToUpper(method)+" "+path, http.NotFoundHandler())
		}
	}
	return &contract{validator: v, errorEnvelope: envelope.Schema(), routes: routes,
		schemas: schema_validation.NewSchemaValidator(opts...)}, nil
})

// strictMaps rewrites each schema's additionalProperties (a map: contact
// attributes, event properties, consents by channel) as the equivalent
// patternProperties {"^": ...}, where true becomes anyJSON. Strict mode
// reports every member of a map declared with additionalProperties as
// undeclared, and counts those a pattern matches as declared (still
// checking them against the pattern's schema); anyJSON declares every
// member at every depth. additionalProperties: false is kept.
func strictMaps(spec []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, err
	}
	const anyJSON = "TestAnyJSON"
	anyRef := map[string]any{"$ref": "#/components/schemas/" + anyJSON}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ap, ok := x["additionalProperties"]; ok && ap != false {
				if ap == true {
					ap = anyRef
				}
				delete(x, "additionalProperties")
				x["patternProperties"] = map[string]any{"^": ap}
			}
			for _, child := range x {
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(doc)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	schemas[anyJSON] = map[string]any{"patternProperties": map[string]any{"^": anyRef}, "items": anyRef}
	return json.Marshal(doc)
}

// check lists the ways an answer departs from the document; body is the
// answer's whole body (resp.Body is not read).
func (c *contract) check(req *http.Request, resp *http.Response, body []byte) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	answer := *resp
	answer.Body = io.NopCloser(bytes.NewReader(body))
	probe := req
	if req.Method == http.MethodHead {
		// ServeMux answers HEAD with the GET route, without a body.
		probe = req.Clone(req.Context())
		probe.Method = http.MethodGet
	}
	if isRedirect(resp.StatusCode) && cleanPath(req.URL.EscapedPath()) != req.URL.EscapedPath() {
		// ServeMux's redirect to the clean path: the client follows it,
		// and the answer it gets there is checked.
		return nil
	}
	if _, pattern := c.routes.Handler(probe); pattern == "" {
		return c.checkUnrouted(req, resp, body)
	}
	ok, errs := c.validator.ValidateHttpResponse(probe, &answer)
	if ok {
		return nil
	}
	var out []string
	for _, e := range errs {
		if req.Method == http.MethodHead && e.ValidationType == helpers.ResponseBodyValidation &&
			e.ValidationSubType != helpers.ResponseBodyResponseCode {
			continue // no body to check; the status still counts
		}
		out = append(out, describe(e))
	}
	return out
}

func isRedirect(status int) bool {
	return status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
}

// cleanPath is ServeMux's: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// checkUnrouted checks an answer to a request no documented operation
// covers: only ServeMux's 404 and 405, in the error envelope.
func (c *contract) checkUnrouted(req *http.Request, resp *http.Response, body []byte) []string {
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		return []string{fmt.Sprintf("%s %s is not in openapi.yaml, yet it answered %d (only 404 and 405 may answer an undocumented route)",
			req.Method, req.URL.Path, resp.StatusCode)}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return []string{fmt.Sprintf("%s %s: %d with Content-Type %q, want the JSON error envelope", req.Method, req.URL.Path, resp.StatusCode, ct)}
	}
	if ok, errs := c.schemas.ValidateSchemaBytes(c.errorEnvelope, body); !ok {
		var out []string
		for _, e := range errs {
			out = append(out, fmt.Sprintf("%s %s: %d: %s", req.Method, req.URL.Path, resp.StatusCode, describe(e)))
		}
		return out
	}
	return nil
}

func describe(e *liberrors.ValidationError) string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	for _, f := range e.SchemaValidationErrors {
		fmt.Fprintf(&b, "\n\t\tat %q: %s", f.FieldPath, f.Reason)
	}
	return b.String()
}

// contractTransport checks every answer it carries against openapi.yaml
// and fails t when one departs from it.
type contractTransport struct {
	t        testing.TB
	contract *contract
}

func (c contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if problems := c.contract.check(req, resp, body); len(problems) > 0 {
		c.t.Errorf("%s %s answered %d, which openapi.yaml does not allow:\n\t%s\n\tbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, strings.Join(problems, "\n\t"), truncate(body))
	}
	return resp, nil
}

func truncate(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// serveAPI serves the API for a test and returns its URL and the client to
// call it with: the only way these tests reach the API, so every answer is
// checked against the document.
func serveAPI(t *testing.T, deps api.Deps) (url string, client *http.Client) {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(deps).Handler())
	t.Cleanup(srv.Close)
	return srv.URL, &http.Client{Transport: contractTransport{t: t, contract: c}}
}

// TestContractCatchesDrift feeds the check answers that depart from the
// document, and one that does not.
func TestContractCatchesDrift(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	const jsonType = "application/json; charset=utf-8"
	cases := []struct {
		name, method, path string
		status             int
		ctype, body        string
		drift              string // "" when the answer is as documented
	}{
		{"documented", "GET", "/healthz", 200, jsonType, `{"status":"ok"}`, ""},
		{"documented error", "GET", "/v1/contacts/c_1", 404, jsonType,
			`{"error":{"code":"not_found","message":"no contact c_1","fields":[{"path":"id","message":"no such contact"}]}}`, ""},
		{"free-form map", "POST", "/v1/contacts", 200, jsonType,
			`{"contact":{"id":"c_1","attributes":{"cart":{"items":[{"sku":"a"}]}},"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}}`, ""},
		{"ServeMux's 404", "GET", "/v1/nowhere", 404, jsonType, `{"error":{"code":"not_found","message":"no route"}}`, ""},
		{"HEAD as GET, without a body", "HEAD", "/healthz", 200, jsonType, ``, ""},

		{"wrong value", "GET", "/healthz", 200, jsonType, `{"status":"fine"}`, "status"},
		{"missing required property", "POST", "/v1/contacts", 200, jsonType,
			`{"contact":{"id":"c_1","attributes":{},"created_at":"2026-01-02T03:04:05Z"}}`, "updated_at"},
		{"undocumented property", "POST", "/v1/contacts", 200, jsonType,
			`{"contact":{"id":"c_1","attributes":{},"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","nickname":"x"}}`, "nickname"},
		{"not a date-time", "POST", "/v1/contacts", 200, jsonType,
			`{"contact":{"id":"c_1","attributes":{},"created_at":"yesterday","updated_at":"2026-01-02T03:04:05Z"}}`, "created_at"},
		{"undocumented status", "GET", "/healthz", 418, jsonType, `{"status":"ok"}`, "418"},
		{"HEAD, undocumented status", "HEAD", "/healthz", 418, jsonType, ``, "418"},
		{"error body not in the error shape", "GET", "/v1/contacts/c_1", 404, jsonType, `{"message":"no contact c_1"}`, "error"},
		{"undocumented content type", "GET", "/healthz", 200, "text/plain", `ok`, "text/plain"},
		{"unrouted, not an error", "GET", "/v1/nowhere", 200, jsonType, `{"status":"ok"}`, "200"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://api.test"+tc.path, nil)
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ctype}}}
			problems := strings.Join(c.check(req, resp, []byte(tc.body)), "\n")
			switch {
			case tc.drift == "" && problems != "":
				t.Errorf("reported drift in an answer as documented:\n%s", problems)
			case tc.drift != "" && !strings.Contains(problems, tc.drift):
				t.Errorf("want drift naming %q, got %q", tc.drift, problems)
			}
		})
	}
}

// TestContractTransportFailsTheTest: a handler whose answer drifts fails
// the test that called it.
func TestContractTransportFailsTheTest(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","uptime":3}`))
	}))
	defer srv.Close()
	rec := &recordingTB{TB: t}
	client := &http.Client{Transport: contractTransport{t: rec, contract: c}}
	resp, err := client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != `{"status":"ok","uptime":3}` {
		t.Errorf("the caller got %q, not the answer", body)
	}
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "uptime") {
		t.Errorf("want one failure naming uptime, got %q", rec.errors)
	}
}

// recordingTB records Errorf instead of failing.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
