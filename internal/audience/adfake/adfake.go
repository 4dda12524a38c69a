// Package adfake is a fake of the three ad platforms' audience APIs (Meta
// Custom Audiences users, Google Data Manager audienceMembers, LinkedIn DMP
// segment users) for tests. It checks every request against the wire
// format each platform documents (paths, API version, auth headers, body
// shape, hash format, batch size), refuses what a platform would refuse,
// keeps each audience's members, and can inject faults.
package adfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Settings the fake expects, as the client under test must send them.
const (
	MetaToken     = "meta-test-token"
	GoogleToken   = "google-test-token"
	LinkedInToken = "linkedin-test-token"
	// GoogleAccount is the operating account the fake's lists belong to.
	GoogleAccount = "1234567890"
	// MaxBatch is every platform's ceiling per request.
	MaxBatch = 10_000
)

var (
	hexHash         = regexp.MustCompile(`^[0-9a-f]{64}$`)
	metaVersion     = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	linkedInVersion = regexp.MustCompile(`^[0-9]{6}$`)
)

// Fault is an answer the fake gives instead of handling a request.
type Fault struct {
	Status     int
	RetryAfter string // Retry-After header, if any
	Body       string // the answer's body; a platform-shaped error when ""
}

// Request is one request the fake received, as understood.
type Request struct {
	Platform string // "meta", "google", "linkedin"
	Audience string
	Action   string // "add", "remove", or "replace" (Meta's usersreplace)
	Members  int
	Refused  string // why the fake refused it as malformed, "" if it was well-formed
}

// Server is the fake. Its URL serves all three APIs.
type Server struct {
	*httptest.Server
	t testing.TB

	mu        sync.Mutex
	members   map[string]map[string]bool // platform/audience -> email-or-phone hash -> present
	faults    []Fault
	requests  []Request
	refuseIDs map[string]bool // hashes LinkedIn refuses per element
	sessions  map[int64]*metaSession
}

// New starts a fake; it closes with the test.
func New(t testing.TB) *Server {
	s := &Server{t: t, members: map[string]map[string]bool{}, refuseIDs: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/{version}/{audience}/users", s.meta)
	mux.HandleFunc("/{version}/{audience}/usersreplace", s.metaReplace)
	mux.HandleFunc("POST /v1/{call}", s.google)
	mux.HandleFunc("POST /rest/dmpSegments/{segment}/users", s.linkedIn)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Fail makes the next requests fail with these faults, in order.
func (s *Server) Fail(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// RefuseOnLinkedIn makes LinkedIn refuse the element with this email hash.
func (s *Server) RefuseOnLinkedIn(hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseIDs[hash] = true
}

// Members returns an audience's member hashes, sorted.
func (s *Server) Members(platform, audience string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for h, in := range s.members[platform+"/"+audience] {
		if in {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Malformed returns the requests the fake refused as malformed: a client
// under test must send none.
func (s *Server) Malformed() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Refused != "" {
			out = append(out, r)
		}
	}
	return out
}

// fault pops the next fault, if any.
func (s *Server) fault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

func (s *Server) apply(platform, audience, action string, hashes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := platform + "/" + audience
	if s.members[key] == nil {
		s.members[key] = map[string]bool{}
	}
	for _, h := range hashes {
		s.members[key][h] = action == "add"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFault(w http.ResponseWriter, f Fault, platformError func(status int) any) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	writeJSON(w, f.Status, platformError(f.Status))
}

// meta serves POST (add) and DELETE (remove) /{version}/{audience}/users.
func (s *Server) meta(w http.ResponseWriter, r *http.Request) {
	req := Request{Platform: "meta", Audience: r.PathValue("audience"), Action: "add"}
	if r.Method == http.MethodDelete {
		req.Action = "remove"
	}
	metaError := func(status int) any {
		code := 1 // an unknown error
		if status == http.StatusTooManyRequests {
			code = 80003 // custom audience throttling
		}
		return map[string]any{"error": map[string]any{"message": http.StatusText(status), "type": "OAuthException", "code": code}}
	}
	refuse := func(msg string) {
		req.Refused = msg
		s.record(req)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": msg, "type": "OAuthException", "code": 100}})
	}
	if f, ok := s.fault(); ok {
		s.record(req)
		writeFault(w, f, metaError)
		return
	}
	switch {
	case r.Method != http.MethodPost && r.Method != http.MethodDelete:
		refuse("method must be POST (add) or DELETE (remove), got " + r.Method)
		return
	case !metaVersion.MatchString(r.PathValue("version")):
		refuse("path must start with an API version like /v25.0, got /" + r.PathValue("version"))
		return
	case r.URL.RawQuery != "":
		refuse("parameters must be in the form body, not the URL (which proxies log): " + r.URL.RawQuery)
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		refuse("Content-Type must be application/x-www-form-urlencoded")
		return
	}
	_, hashes, ok := s.metaBody(w, r, &req, refuse)
	if !ok {
		return
	}
	s.record(req)
	s.apply("meta", req.Audience, req.Action, hashes)
	writeJSON(w, http.StatusOK, map[string]any{"audience_id": req.Audience, "session_id": fmt.Sprint(len(s.Requests())),
		"num_received": req.Members, "num_invalid_entries": 0, "invalid_entry_samples": map[string]any{}})
}

// metaSession is a usersreplace session as the fake keeps it.
type metaSession struct {
	audience string
	nextSeq  int
	hashes   []string
}

// metaReplace serves POST /{version}/{audience}/usersreplace: a session
// (session_id, batch_seq from 1 in order, last_batch_flag,
// estimated_num_total) whose batches together replace the audience's
// members when the last one arrives, as Meta's replace does.
func (s *Server) metaReplace(w http.ResponseWriter, r *http.Request) {
	req := Request{Platform: "meta", Audience: r.PathValue("audience"), Action: "replace"}
	refuse := func(msg string) {
		req.Refused = msg
		s.record(req)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": msg, "type": "OAuthException", "code": 100}})
	}
	if f, ok := s.fault(); ok {
		s.record(req)
		writeFault(w, f, func(status int) any {
			return map[string]any{"error": map[string]any{"message": http.StatusText(status), "type": "OAuthException", "code": 1}}
		})
		return
	}
	switch {
	case r.Method != http.MethodPost:
		refuse("usersreplace takes POST, got " + r.Method)
		return
	case !metaVersion.MatchString(r.PathValue("version")):
		refuse("path must start with an API version like /v25.0, got /" + r.PathValue("version"))
		return
	case r.URL.RawQuery != "":
		refuse("parameters must be in the form body, not the URL (which proxies log): " + r.URL.RawQuery)
		return
	}
	form, hashes, ok := s.metaBody(w, r, &req, refuse)
	if !ok {
		return
	}
	var sess struct {
		SessionID         int64 `json:"session_id"`
		BatchSeq          int   `json:"batch_seq"`
		LastBatchFlag     *bool `json:"last_batch_flag"`
		EstimatedNumTotal int   `json:"estimated_num_total"`
	}
	dec := json.NewDecoder(strings.NewReader(form.Get("session")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sess); err != nil || sess.SessionID <= 0 || sess.BatchSeq < 1 || sess.LastBatchFlag == nil {
		refuse(fmt.Sprintf("session: want {session_id > 0, batch_seq from 1, last_batch_flag, estimated_num_total}, got %q", form.Get("session")))
		return
	}
	s.mu.Lock()
	if s.sessions == nil {
		s.sessions = map[int64]*metaSession{}
	}
	ms := s.sessions[sess.SessionID]
	if ms == nil {
		ms = &metaSession{audience: req.Audience, nextSeq: 1}
		s.sessions[sess.SessionID] = ms
	}
	bad := ""
	switch {
	case ms.audience != req.Audience:
		bad = "session belongs to another audience"
	case sess.BatchSeq != ms.nextSeq:
		bad = fmt.Sprintf("session: batch_seq %d out of order, want %d", sess.BatchSeq, ms.nextSeq)
	}
	if bad == "" {
		ms.nextSeq++
		ms.hashes = append(ms.hashes, hashes...)
		if *sess.LastBatchFlag {
			key := "meta/" + req.Audience
			s.members[key] = map[string]bool{}
			for _, h := range ms.hashes {
				s.members[key][h] = true
			}
			delete(s.sessions, sess.SessionID)
		}
	}
	s.mu.Unlock()
	if bad != "" {
		refuse(bad)
		return
	}
	s.record(req)
	writeJSON(w, http.StatusOK, map[string]any{"audience_id": req.Audience, "session_id": fmt.Sprint(sess.SessionID),
		"num_received": req.Members, "num_invalid_entries": 0, "invalid_entry_samples": map[string]any{}})
}

// metaBody reads and checks a users or usersreplace request's form body:
// the token, and a payload of hashed EMAIL_SHA256 and PHONE_SHA256 rows
// within the batch limit; it returns the form and the hashes.
func (s *Server) metaBody(w http.ResponseWriter, r *http.Request, req *Request, refuse func(string)) (url.Values, []string, bool) {
	// net/http parses a form body for POST only; Meta reads DELETE's too.
	raw, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		refuse("body: " + err.Error())
		return nil, nil, false
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		refuse("form: " + err.Error())
		return nil, nil, false
	}
	if form.Get("access_token") != MetaToken {
		req.Refused = "bad access token"
		s.record(*req)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"message": "Invalid OAuth access token", "type": "OAuthException", "code": 190}})
		return nil, nil, false
	}
	var p struct {
		Schema []string   `json:"schema"`
		Data   [][]string `json:"data"`
	}
	dec := json.NewDecoder(strings.NewReader(form.Get("payload")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		refuse("payload: " + err.Error())
		return nil, nil, false
	}
	if !slices.Equal(p.Schema, []string{"EMAIL_SHA256", "PHONE_SHA256"}) {
		refuse(fmt.Sprintf("payload.schema: want [EMAIL_SHA256 PHONE_SHA256], got %v", p.Schema))
		return nil, nil, false
	}
	req.Members = len(p.Data)
	if len(p.Data) == 0 || len(p.Data) > MaxBatch {
		refuse(fmt.Sprintf("payload.data: 1 to %d rows, got %d", MaxBatch, len(p.Data)))
		return nil, nil, false
	}
	var hashes []string
	for i, row := range p.Data {
		if len(row) != 2 || (row[0] == "" && row[1] == "") {
			refuse(fmt.Sprintf("payload.data[%d]: one value per schema key, at least one set", i))
			return nil, nil, false
		}
		for _, v := range row {
			if v != "" && !hexHash.MatchString(v) {
				refuse(fmt.Sprintf("payload.data[%d]: %q is not a lowercase hex SHA-256", i, v))
				return nil, nil, false
			}
			if v != "" {
				hashes = append(hashes, v)
			}
		}
	}
	return form, hashes, true
}

// google serves POST /v1/audienceMembers:ingest and :remove.
func (s *Server) google(w http.ResponseWriter, r *http.Request) {
	req := Request{Platform: "google"}
	googleError := func(status int) any {
		st := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[status]
		return map[string]any{"error": map[string]any{"code": status, "message": http.StatusText(status), "status": st}}
	}
	refuse := func(msg string) {
		req.Refused = msg
		s.record(req)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}})
	}
	switch r.PathValue("call") {
	case "audienceMembers:ingest":
		req.Action = "add"
	case "audienceMembers:remove":
		req.Action = "remove"
	default:
		http.NotFound(w, r)
		return
	}
	if f, ok := s.fault(); ok {
		s.record(req)
		writeFault(w, f, googleError)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+GoogleToken {
		req.Refused = "bad token"
		s.record(req)
		writeJSON(w, http.StatusUnauthorized, googleError(http.StatusUnauthorized))
		return
	}
	type identifier struct {
		EmailAddress string `json:"emailAddress"`
		PhoneNumber  string `json:"phoneNumber"`
	}
	type consent struct {
		AdUserData        string `json:"adUserData"`
		AdPersonalization string `json:"adPersonalization"`
	}
	var body struct {
		Destinations []struct {
			OperatingAccount struct {
				AccountID   string `json:"accountId"`
				AccountType string `json:"accountType"`
			} `json:"operatingAccount"`
			ProductDestinationID string `json:"productDestinationId"`
		} `json:"destinations"`
		AudienceMembers []struct {
			UserData struct {
				UserIdentifiers []identifier `json:"userIdentifiers"`
			} `json:"userData"`
			Consent *consent `json:"consent"`
		} `json:"audienceMembers"`
		Encoding       string `json:"encoding"`
		TermsOfService *struct {
			Status string `json:"customerMatchTermsOfServiceStatus"`
		} `json:"termsOfService"`
		Consent *consent `json:"consent"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		refuse("body: " + err.Error())
		return
	}
	if len(body.Destinations) != 1 || body.Destinations[0].OperatingAccount.AccountID != GoogleAccount ||
		body.Destinations[0].OperatingAccount.AccountType != "GOOGLE_ADS" || body.Destinations[0].ProductDestinationID == "" {
		refuse(fmt.Sprintf("destinations: one GOOGLE_ADS operating account %s with a productDestinationId, got %+v", GoogleAccount, body.Destinations))
		return
	}
	req.Audience = body.Destinations[0].ProductDestinationID
	req.Members = len(body.AudienceMembers)
	if body.Encoding != "HEX" {
		refuse("encoding: HEX, got " + body.Encoding)
		return
	}
	if req.Members == 0 || req.Members > MaxBatch {
		refuse(fmt.Sprintf("audienceMembers: 1 to %d, got %d", MaxBatch, req.Members))
		return
	}
	if req.Action == "add" && (body.TermsOfService == nil || body.TermsOfService.Status != "ACCEPTED") {
		refuse("termsOfService.customerMatchTermsOfServiceStatus: ACCEPTED is required to ingest")
		return
	}
	var hashes []string
	for i, m := range body.AudienceMembers {
		if req.Action == "add" {
			c := m.Consent
			if c == nil {
				c = body.Consent
			}
			if c == nil || c.AdUserData != "CONSENT_GRANTED" || c.AdPersonalization != "CONSENT_GRANTED" {
				refuse(fmt.Sprintf("audienceMembers[%d].consent: adUserData and adPersonalization must be CONSENT_GRANTED to add", i))
				return
			}
		}
		ids := m.UserData.UserIdentifiers
		if len(ids) == 0 || len(ids) > 10 {
			refuse(fmt.Sprintf("audienceMembers[%d].userData.userIdentifiers: 1 to 10", i))
			return
		}
		for j, id := range ids {
			v := id.EmailAddress + id.PhoneNumber
			if (id.EmailAddress == "") == (id.PhoneNumber == "") || !hexHash.MatchString(v) {
				refuse(fmt.Sprintf("audienceMembers[%d].userData.userIdentifiers[%d]: exactly one of emailAddress or phoneNumber, a lowercase hex SHA-256", i, j))
				return
			}
			hashes = append(hashes, v)
		}
	}
	s.record(req)
	s.apply("google", req.Audience, req.Action, hashes)
	writeJSON(w, http.StatusOK, map[string]any{"requestId": fmt.Sprintf("req-%d", len(s.Requests()))})
}

// linkedIn serves POST /rest/dmpSegments/{segment}/users (BATCH_CREATE).
func (s *Server) linkedIn(w http.ResponseWriter, r *http.Request) {
	req := Request{Platform: "linkedin", Audience: r.PathValue("segment")}
	linkedInError := func(status int) any {
		return map[string]any{"status": status, "message": http.StatusText(status), "serviceErrorCode": 0}
	}
	refuse := func(msg string) {
		req.Refused = msg
		s.record(req)
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": msg, "serviceErrorCode": 100})
	}
	if f, ok := s.fault(); ok {
		s.record(req)
		writeFault(w, f, linkedInError)
		return
	}
	switch {
	case r.Header.Get("Authorization") != "Bearer "+LinkedInToken:
		req.Refused = "bad token"
		s.record(req)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": 401, "message": "Invalid access token", "serviceErrorCode": 65600})
		return
	case !linkedInVersion.MatchString(r.Header.Get("LinkedIn-Version")):
		refuse("LinkedIn-Version header: YYYYMM, got " + r.Header.Get("LinkedIn-Version"))
		return
	case r.Header.Get("X-Restli-Protocol-Version") != "2.0.0":
		refuse("X-Restli-Protocol-Version header: 2.0.0")
		return
	case r.Header.Get("X-RestLi-Method") != "BATCH_CREATE":
		refuse("X-RestLi-Method header: BATCH_CREATE")
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		refuse("Content-Type: application/json")
		return
	}
	var body struct {
		Elements []struct {
			Action  string `json:"action"`
			UserIDs []struct {
				IDType  string `json:"idType"`
				IDValue string `json:"idValue"`
			} `json:"userIds"`
		} `json:"elements"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		refuse("body: " + err.Error())
		return
	}
	req.Members = len(body.Elements)
	if req.Members == 0 || req.Members > MaxBatch {
		refuse(fmt.Sprintf("elements: 1 to %d, got %d", MaxBatch, req.Members))
		return
	}
	statuses := make([]map[string]any, len(body.Elements))
	var added, removed []string
	for i, e := range body.Elements {
		if e.Action != "ADD" && e.Action != "REMOVE" {
			refuse(fmt.Sprintf("elements[%d].action: ADD or REMOVE, got %q", i, e.Action))
			return
		}
		if len(e.UserIDs) != 1 || e.UserIDs[0].IDType != "SHA256_EMAIL" || !hexHash.MatchString(e.UserIDs[0].IDValue) {
			refuse(fmt.Sprintf("elements[%d].userIds: one SHA256_EMAIL, a lowercase hex SHA-256", i))
			return
		}
		h := e.UserIDs[0].IDValue
		s.mu.Lock()
		refused := s.refuseIDs[h]
		s.mu.Unlock()
		switch {
		case refused:
			statuses[i] = map[string]any{"status": 400, "error": "INVALID_USER_ID"}
		case e.Action == "ADD":
			statuses[i] = map[string]any{"status": 201}
			added = append(added, h)
		default:
			statuses[i] = map[string]any{"status": 201}
			removed = append(removed, h)
		}
	}
	req.Action = "add"
	if len(removed) > 0 {
		req.Action = "remove"
	}
	s.record(req)
	s.apply("linkedin", req.Audience, "add", added)
	s.apply("linkedin", req.Audience, "remove", removed)
	writeJSON(w, http.StatusOK, map[string]any{"elements": statuses})
}
