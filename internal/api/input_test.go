package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// Malformed input is a 400 naming the field: never a 500 (PostgreSQL refuses
// NUL and invalid UTF-8), never silently changed (encoding/json replaces
// invalid UTF-8 and lone surrogates with U+FFFD), and nothing is written.

// writtenTables are the tables a request could write to.
var writtenTables = []string{"contacts", "consent_events", "consents", "events", "journey_versions",
	"enrollments", "suppressions", "messages", "sandbox_messages"}

// rowCounts counts every table a request could write to.
func (h *harness) rowCounts() map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, table := range writtenTables {
		out[table] = h.count(table)
	}
	return out
}

// requireRefused checks a 400 invalid_request that names field.
func requireRefused(t *testing.T, r response, field, what string) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.errorCode() != "invalid_request" {
		t.Errorf("%s: %d %s, want 400 invalid_request", what, r.status, r.raw)
		return
	}
	if !slices.Contains(r.fieldPaths(), field) {
		t.Errorf("%s: fields %q, want %q: %s", what, r.fieldPaths(), field, r.raw)
	}
}

// inputCase is one request with one bad string in one field. body is raw
// JSON text with %s where the bad string (already a JSON string literal)
// goes.
type inputCase struct {
	method, path, body, field string
}

// stringFieldCases lists every stored string of every JSON body, for the
// contact id and the journey "inj".
func stringFieldCases(id string) []inputCase {
	contact := "/v1/contacts/" + id
	return []inputCase{
		{"POST", "/v1/contacts", `{"external_id": %s}`, "external_id"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "email": %s}`, "email"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "phone": %s}`, "phone"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "time_zone": %s}`, "time_zone"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "country": %s}`, "country"},
		{"POST", "/v1/contacts", `{"id": %s, "external_id": "in-1"}`, "id"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "attributes": {"plan": %s}}`, "attributes.plan"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "attributes": {"cart": {"items": ["ok", %s]}}}`, "attributes.cart.items[1]"},
		{"POST", "/v1/contacts", `{"external_id": "in-1", "attributes": {%s: 1}}`, "attributes"},
		{"POST", "/v1/events", `{"event_id": %s, "contact_id": "` + id + `", "name": "purchase"}`, "event_id"},
		{"POST", "/v1/events", `{"event_id": "e-1", "contact_id": "` + id + `", "name": %s}`, "name"},
		{"POST", "/v1/events", `{"event_id": "e-1", "contact_id": %s, "name": "purchase"}`, "contact_id"},
		{"POST", "/v1/events", `{"event_id": "e-1", "external_id": %s, "name": "purchase"}`, "external_id"},
		{"POST", "/v1/events", `{"event_id": "e-1", "email": %s, "name": "purchase"}`, "email"},
		{"POST", "/v1/events", `{"event_id": "e-1", "contact_id": "` + id + `", "name": "purchase", "occurred_at": %s}`, "occurred_at"},
		{"POST", "/v1/events", `{"event_id": "e-1", "contact_id": "` + id + `", "name": "purchase", "properties": {"x": {"y": %s}}}`, "properties.x.y"},
		{"POST", "/v1/events", `{"event_id": "e-1", "contact_id": "` + id + `", "name": "purchase", "properties": {%s: 1}}`, "properties"},
		{"POST", contact + "/consent", `{"channel": "email", "status": "granted", "source": %s}`, "source"},
		{"POST", contact + "/consent", `{"channel": "email", "status": "granted", "source": "form", "subscription": %s}`, "subscription"},
		{"POST", contact + "/consent", `{"channel": %s, "status": "granted", "source": "form"}`, "channel"},
		{"POST", contact + "/consent", `{"channel": "email", "status": %s, "source": "form"}`, "status"},
		{"POST", contact + "/suppressions", `{"reason": %s}`, "reason"},
		{"POST", contact + "/suppressions", `{"reason": "do_not_contact", "note": %s}`, "note"},
		{"POST", contact + "/suppressions", `{"reason": "do_not_contact", "journey_id": %s}`, "journey_id"},
		{"POST", contact + "/suppressions", `{"reason": "do_not_contact", "source": %s}`, "source"},
		{"POST", contact + "/suppressions", `{"reason": "do_not_contact", "channel": %s}`, "channel"},
		{"POST", contact + "/journeys/inj/exit", `{"reason": %s}`, "reason"},
		{"POST", "/v1/journeys/inj/enrollments", `{"contact_id": %s}`, "contact_id"},
	}
}

// inputSetup is a server with one contact (external_id in-1) and one
// published journey (inj).
func inputSetup(t *testing.T) (*harness, string) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"external_id": "in-1", "email": "in@example.com", "attributes": map[string]any{"plan": "trial"}})
	h.publish(welcome("inj", "{policy: always}"))
	return h, id
}

func TestNULInStoredStrings(t *testing.T) {
	h, id := inputSetup(t)
	before := h.rowCounts()
	for _, c := range stringFieldCases(id) {
		for _, bad := range []string{`"\u0000"`, `"in\u0000-1"`, `"purchase\u0000"`} {
			body := fmt.Sprintf(c.body, bad)
			r := h.do(c.method, c.path, body, "application/json", "Bearer "+token)
			requireRefused(t, r, c.field, c.method+" "+c.path+" "+body)
		}
	}
	if after := h.rowCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests wrote rows: before %v, after %v", before, after)
	}
}

func TestInvalidUnicodeInJSONBodies(t *testing.T) {
	h, id := inputSetup(t)
	before := h.rowCounts()
	bads := []string{
		"\"in-1\xff\"",     // a byte that is never UTF-8
		"\"\xed\xa0\x80\"", // a surrogate encoded as UTF-8 (CESU-8)
		"\"\xc0\xaf\"",     // an overlong encoding of "/"
		`"in-1\ud800"`,     // a lone high surrogate escape
		`"\udc00in-1"`,     // a lone low surrogate escape
		`"\ude00\ud83d"`,   // a surrogate pair the wrong way round
	}
	for _, c := range stringFieldCases(id) {
		for _, bad := range bads {
			body := fmt.Sprintf(c.body, bad)
			r := h.do(c.method, c.path, body, "application/json", "Bearer "+token)
			requireRefused(t, r, c.field, fmt.Sprintf("%s %s %q", c.method, c.path, body))
		}
	}
	// A member given twice: encoding/json would keep the last one.
	r := h.do("POST", "/v1/contacts", `{"external_id": "in-1", "external_id": "someone-else"}`, "application/json", "Bearer "+token)
	requireRefused(t, r, "external_id", "duplicate external_id")
	r = h.do("POST", "/v1/contacts", `{"external_id": "in-1", "attributes": {"plan": "pro", "plan": "free"}}`, "application/json", "Bearer "+token)
	requireRefused(t, r, "attributes.plan", "duplicate attribute")
	if after := h.rowCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests wrote rows: before %v, after %v", before, after)
	}
}

// TestInvalidUTF8DoesNotLandOnAnotherContact is the bug the strict decoding
// fixes: "x\xff" used to decode to "x\uFFFD" and update that contact.
func TestInvalidUTF8DoesNotLandOnAnotherContact(t *testing.T) {
	h := newHarness(t)
	id := h.newContact(map[string]any{"external_id": "ext-\ufffd", "attributes": map[string]any{"owner": "first"}})
	for _, body := range []string{
		"{\"external_id\": \"ext-\xff\", \"attributes\": {\"owner\": \"second\"}}",
		`{"external_id": "ext-\udfff", "attributes": {"owner": "second"}}`,
	} {
		r := h.do("POST", "/v1/contacts", body, "application/json", "Bearer "+token)
		requireRefused(t, r, "external_id", body)
	}
	r := h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
	if got := r.body["contact"].(map[string]any)["attributes"].(map[string]any)["owner"]; got != "first" {
		t.Errorf("the contact was changed through another byte string: owner %v", got)
	}
	if n := h.count("contacts"); n != 1 {
		t.Errorf("%d contacts", n)
	}
}

func TestJourneySpecText(t *testing.T) {
	h := newHarness(t)
	yamlSpec := welcome("texty", "{policy: once}")
	jsonSpec := `{"id": "texty", "name": "T", "trigger": {"type": "api"}, "reentry": {"policy": "once"},
		"steps": [{"id": "hi", "send": {"channel": "sms", "sms": {"body": %s}}}]}`
	cases := []struct {
		name, ctype, body, field string
	}{
		{"YAML \\0 escape", "application/yaml", strings.Replace(yamlSpec, `text: "Hello"`, `text: "Hel\0lo"`, 1), "steps[0].send.email.text"},
		{"YAML \\u0000 escape", "application/yaml", strings.Replace(yamlSpec, "name: Welcome", `name: "Wel\u0000come"`, 1), "name"},
		{"raw NUL", "application/yaml", strings.Replace(yamlSpec, "name: Welcome", "name: Wel\x00come", 1), ""},
		{"invalid UTF-8", "application/yaml", strings.Replace(yamlSpec, "name: Welcome", "name: Wel\xffcome", 1), ""},
		{"encoded surrogate", "", strings.Replace(yamlSpec, "name: Welcome", "name: Wel\xed\xa0\x80come", 1), ""},
		{"JSON \\u0000", "application/json", fmt.Sprintf(jsonSpec, `"Hi\u0000"`), "steps[0].send.sms.body"},
		{"JSON lone surrogate", "application/json", fmt.Sprintf(jsonSpec, `"Hi\ud800"`), "steps[0].send.sms.body"},
		{"JSON lone surrogate sent as YAML", "application/yaml", fmt.Sprintf(jsonSpec, `"Hi\ud800"`), "steps[0].send.sms.body"},
		{"JSON invalid UTF-8", "application/json", fmt.Sprintf(jsonSpec, "\"Hi\xff\""), ""},
	}
	for _, c := range cases {
		for _, path := range []string{"/v1/journeys/validate", "/v1/journeys"} {
			r := h.do("POST", path, c.body, c.ctype, "Bearer "+token)
			requireRefused(t, r, c.field, c.name+" "+path)
		}
	}
	if n := h.count("journey_versions"); n != 0 {
		t.Errorf("%d versions stored", n)
	}
}

// pathParam matches a ServeMux wildcard in an OpenAPI path key.
var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// TestPathIDs sends a malformed value in every path parameter of every route
// the OpenAPI document lists (TestOpenAPIMatchesRoutes keeps it in step with
// the route table).
func TestPathIDs(t *testing.T) {
	h, id := inputSetup(t)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	before := h.rowCounts()
	checked := 0
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		params := pathParam.FindAllStringSubmatch(p, -1)
		for method := range doc.Paths[p] {
			method = strings.ToUpper(method)
			if method == "PARAMETERS" {
				continue
			}
			for _, target := range params {
				for _, bad := range []string{"%FF", "c_%FF", "%ED%A0%80", "%00", "c_%00x", "%C0%AF"} {
					u := pathParam.ReplaceAllStringFunc(p, func(m string) string {
						switch {
						case m == target[0]:
							return bad
						case m == "{id}":
							return id
						case m == "{version}":
							return "1"
						default:
							return "inj"
						}
					})
					r := h.do(method, u, "{}", "application/json", "Bearer "+token)
					requireRefused(t, r, target[1], method+" "+u)
					checked++
				}
			}
		}
	}
	if checked < 6*14 {
		t.Errorf("only %d requests: the OpenAPI document should have at least 14 routes with path parameters", checked)
	}
	// Longer than any id.
	r := h.do("GET", "/v1/contacts/c_"+strings.Repeat("x", 300), nil, "", "Bearer "+token)
	requireRefused(t, r, "id", "long id")
	if after := h.rowCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests wrote rows: before %v, after %v", before, after)
	}
}

func TestQueryIDs(t *testing.T) {
	h, id := inputSetup(t)
	contact := "/v1/contacts/" + id
	cases := []struct{ method, path, field string }{
		{"GET", "/v1/contacts?external_id=%ED%A0%80", "external_id"},
		{"GET", "/v1/contacts?external_id=in-1%FF", "external_id"},
		{"GET", "/v1/contacts?external_id=in-1%00", "external_id"},
		{"GET", "/v1/contacts?external_id=%20in-1", "external_id"}, // matched exactly, so not trimmed
		{"GET", "/v1/contacts?email=in%FF%40example.com", "email"},
		{"GET", "/v1/contacts?email=in%00%40example.com", "email"},
		{"GET", "/v1/contacts?phone=%2B1415%FF5550100", "phone"},
		{"GET", "/v1/sandbox/messages?contact_id=%FF", "contact_id"},
		{"GET", "/v1/sandbox/messages?contact_id=" + id + "%00", "contact_id"},
		{"GET", contact + "/decisions?journey_id=%ED%A0%80", "journey_id"},
		{"GET", contact + "/messages?limit=%FF", "limit"},
		{"GET", contact + "/journeys/inj/steps/welcome_email/why?limit=%00", "limit"},
		{"DELETE", contact + "/suppressions/sup_x?lifted_by=%FF", "lifted_by"},
		{"GET", "/v1/contacts?email=%zz", ""},           // not a query string
		{"GET", "/v1/contacts?email=a%40b.com;x=1", ""}, // nor is this
		{"GET", "/v1/contacts?%FF=1&external_id=in-1", ""},
	}
	before := h.rowCounts()
	for _, c := range cases {
		r := h.do(c.method, c.path, nil, "", "Bearer "+token)
		requireRefused(t, r, c.field, c.method+" "+c.path)
	}
	if after := h.rowCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests wrote rows: before %v, after %v", before, after)
	}
	// The checks come after authentication: without a token it is 401.
	if r := h.do("GET", "/v1/contacts/%FF", nil, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", r.status, r.raw)
	}
}

func TestExternalIDIsMatchedExactly(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{" user-1", "user-1 ", "user-1\n", "\u00a0user-1", "user-1\u3000", "user\t1"} {
		r := h.call("POST", "/v1/contacts", map[string]any{"external_id": bad}, http.StatusBadRequest)
		requireRefused(t, r, "external_id", fmt.Sprintf("%q", bad))
		r = h.call("POST", "/v1/events", map[string]any{"event_id": "e", "external_id": bad, "name": "n"}, http.StatusBadRequest)
		requireRefused(t, r, "external_id", fmt.Sprintf("event %q", bad))
	}
	if n := h.count("contacts"); n != 0 {
		t.Errorf("%d contacts", n)
	}
	// Not normalised either: the issuer decides what is equal.
	a := h.newContact(map[string]any{"external_id": "jos\u00e9"})
	b := h.newContact(map[string]any{"external_id": "jose\u0301"})
	if a == b {
		t.Error("two different external ids found one contact")
	}
	r := h.call("GET", "/v1/contacts?external_id="+url.QueryEscape("jose\u0301"), nil, http.StatusOK)
	if r.body["contact"].(map[string]any)["id"] != b {
		t.Errorf("lookup: %s", r.raw)
	}
}

// TestEmailIdentity: one stored form per address, and no lookalike of one
// person's address reaches their contact.
func TestEmailIdentity(t *testing.T) {
	h := newHarness(t)
	kelvin := h.newContact(map[string]any{"external_id": "k", "email": "kelvin@example.com", "attributes": map[string]any{"owner": "kelvin"}})
	info := h.newContact(map[string]any{"external_id": "i", "email": "info@example.com"})
	jose := h.newContact(map[string]any{"external_id": "j", "email": "jos\u00e9@b\u00fccher.de"})
	before := h.rowCounts()

	refused := map[string]string{
		"Kelvin sign":             "\u212Aelvin@example.com",
		"Kelvin sign in a domain": "kelvin@\u212Aelvin.com",
		"zero-width space":        "kel\u200Bvin@example.com",
		"zero-width joiner":       "kelvin\u200D@example.com",
		"soft hyphen":             "kel\u00ADvin@example.com",
		"soft hyphen in a domain": "kelvin@exam\u00ADple.com",
		"right-to-left override":  "\u202Enivlek@example.com",
		"left-to-right mark":      "kelvin\u200E@example.com",
		"bidi isolate":            "\u2067kelvin\u2069@example.com",
		"byte order mark":         "\uFEFFkelvin@example.com",
		"fullwidth letters":       "\uff4b\uff45\uff4c\uff56\uff49\uff4e@example.com",
		"fullwidth at sign":       "kelvin\uff20example.com",
		"no-break space":          "kel\u00a0vin@example.com",
	}
	for name, email := range refused {
		r := h.call("POST", "/v1/contacts", map[string]any{"email": email, "attributes": map[string]any{"owner": "mallory"}}, http.StatusBadRequest)
		requireRefused(t, r, "email", name)
		r = h.do("GET", "/v1/contacts?email="+url.QueryEscape(email), nil, "", "Bearer "+token)
		requireRefused(t, r, "email", name+" (lookup)")
		r = h.call("POST", "/v1/events", map[string]any{"event_id": "e-" + name, "email": email, "name": "n"}, http.StatusBadRequest)
		requireRefused(t, r, "email", name+" (event)")
	}
	if after := h.rowCounts(); !mapsEqual(before, after) {
		t.Errorf("refused requests wrote rows: before %v, after %v", before, after)
	}
	r := h.call("GET", "/v1/contacts/"+kelvin, nil, http.StatusOK)
	if owner := r.body["contact"].(map[string]any)["attributes"].(map[string]any)["owner"]; owner != "kelvin" {
		t.Errorf("kelvin's contact was changed: owner %v", owner)
	}

	// The Turkish dotted capital I lower-cases to i + U+0307, not to i: a
	// new contact, not info@'s.
	r = h.call("POST", "/v1/contacts", map[string]any{"email": "\u0130nfo@example.com"}, http.StatusCreated)
	c := r.body["contact"].(map[string]any)
	if c["id"] == info || c["email"] != "i\u0307nfo@example.com" {
		t.Errorf("U+0130: %v", c)
	}

	// Spellings of one address find one contact.
	for _, email := range []string{"jose\u0301@bu\u0308cher.de", "JOS\u00c9@B\u00dcCHER.DE", "jos\u00e9@xn--bcher-kva.de", " jos\u00e9@B\u00fccher.de "} {
		r := h.call("POST", "/v1/contacts", map[string]any{"email": email}, http.StatusOK)
		if c := r.body["contact"].(map[string]any); c["id"] != jose || c["email"] != "jos\u00e9@xn--bcher-kva.de" {
			t.Errorf("%q: %v", email, c)
		}
		r = h.call("GET", "/v1/contacts?email="+url.QueryEscape(email), nil, http.StatusOK)
		if r.body["contact"].(map[string]any)["id"] != jose {
			t.Errorf("lookup %q: %s", email, r.raw)
		}
	}
}

func TestPhoneExtensionIsRefused(t *testing.T) {
	h := newHarness(t)
	for _, phone := range []string{"+1 415 555 0100 ext. 12", "(415) 555-0100 x12", "+14155550100;ext=12"} {
		r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "p", "phone": phone}, http.StatusBadRequest)
		requireRefused(t, r, "phone", phone)
		if !strings.Contains(r.raw, "extension") {
			t.Errorf("%q: the message should say why: %s", phone, r.raw)
		}
		r = h.do("GET", "/v1/contacts?phone="+url.QueryEscape(phone), nil, "", "Bearer "+token)
		requireRefused(t, r, "phone", phone+" (lookup)")
	}
	if n := h.count("contacts"); n != 0 {
		t.Errorf("%d contacts", n)
	}
}

// newBigBodyHarness is newHarness with a 2 MiB body limit, so a 1 MB
// attribute reaches the attribute checks instead of the body limit.
func newBigBodyHarness(t *testing.T) *harness {
	t.Helper()
	store := storagetest.New(t)
	tc := temporaltest.Client(t, temporalAddr)
	url, hc := serveAPI(t, api.Deps{
		Store: store, Temporal: tc,
		Config: config.Config{APIToken: token, APIMaxBody: 2 << 20, DefaultRegion: "US", DefaultTimeZone: "UTC", SignalTimeout: 10 * time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return &harness{t: t, store: store, tc: tc, url: url, client: hc}
}

func TestAttributeLimits(t *testing.T) {
	h := newBigBodyHarness(t)
	id := h.newContact(map[string]any{"external_id": "a-1", "attributes": map[string]any{"plan": "trial"}})

	cases := []struct {
		name  string
		attrs map[string]any
		field string
	}{
		{"1 MB value", map[string]any{"plan": strings.Repeat("x", 1<<20)}, "attributes.plan"},
		{"4 KiB + 1 value", map[string]any{"bio": strings.Repeat("x", 4095)}, "attributes.bio"},
		{"large list", map[string]any{"cart": []any{strings.Repeat("y", 5000)}}, "attributes.cart"},
		{"long name", map[string]any{strings.Repeat("n", 101): 1}, "attributes"},
		{"empty name", map[string]any{"": 1}, "attributes"},
		{"control character in a name", map[string]any{"first\nname": "Sam"}, "attributes"},
		{"too many", manyAttributes("x", 201), "attributes"},
		{"too large together", largeAttributes(17), "attributes"},
	}
	for _, c := range cases {
		r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "a-1", "attributes": c.attrs}, http.StatusBadRequest)
		requireRefused(t, r, c.field, c.name)
	}
	// Within the limits per request, over them after the merge.
	h.call("POST", "/v1/contacts", map[string]any{"external_id": "a-1", "attributes": manyAttributes("x", 150)}, http.StatusOK)
	r := h.call("POST", "/v1/contacts", map[string]any{"external_id": "a-1", "email": "a1@example.com", "attributes": manyAttributes("y", 60)}, http.StatusBadRequest)
	requireRefused(t, r, "attributes", "over the count after the merge")

	r = h.call("GET", "/v1/contacts/"+id, nil, http.StatusOK)
	c := r.body["contact"].(map[string]any)
	if n := len(c["attributes"].(map[string]any)); n != 151 || (c["email"] != nil && c["email"] != "") {
		t.Errorf("a refused request changed the contact: %d attributes, email %v", n, c["email"])
	}
}

func manyAttributes(prefix string, n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("%s%03d", prefix, i)] = i
	}
	return m
}

func largeAttributes(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("big%02d", i)] = strings.Repeat("x", 4000)
	}
	return m
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
