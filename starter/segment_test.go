package main

import (
	"net/http"
	"strings"
	"testing"
)

const hotLeadsFile = `
id: hot_leads
name: Hot leads
when: >
  consent.email == "granted"
  && events.count("page.viewed", {"path": "/pricing"}, days(7)) >= 2
`

func TestSegmentValidateOffline(t *testing.T) {
	r := runCLI(t, nil, "segment", "validate", writeFile(t, "s.yaml", hotLeadsFile))
	if r.code != exitOK || !strings.Contains(r.stdout, "valid (segment hot_leads, changes with time: swept)") {
		t.Errorf("valid: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "segment", "validate", writeFile(t, "s.yaml", "id: Hot\nwhen: 'contact.x >'\n"))
	if r.code != exitFail || !strings.Contains(r.stderr, "id: ") || !strings.Contains(r.stderr, "name: required") ||
		!strings.Contains(r.stderr, "when: ") {
		t.Errorf("invalid: %d %q", r.code, r.stderr)
	}
}

func TestSegmentDefine(t *testing.T) {
	f := newFakeAPI(t, http.StatusCreated, `{"segment_id":"hot_leads","version":2,"definition":{"id":"hot_leads","name":"Hot leads","when":"x"},
		"time_dependent":true,"defined_at":"2025-01-01T00:00:00Z","created":true}`)
	r := runCLI(t, f.vars(), "segment", "define", writeFile(t, "s.yaml", hotLeadsFile))
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "defined segment hot_leads version 2, changes with time: swept" {
		t.Errorf("define: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "PUT" || req.path != "/v1/segments/hot_leads" || req.ctype != "application/yaml" || string(req.body) != hotLeadsFile {
		t.Errorf("request: %+v", req)
	}

	f = newFakeAPI(t, http.StatusOK, `{"segment_id":"hot_leads","version":2,"definition":{"id":"hot_leads","name":"Hot leads","when":"x"},
		"time_dependent":true,"defined_at":"2025-01-01T00:00:00Z","created":false}`)
	r = runCLI(t, f.vars(), "segment", "define", writeFile(t, "s.yaml", hotLeadsFile))
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "segment hot_leads unchanged (version 2)" {
		t.Errorf("unchanged: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// A file with problems is not sent.
	f = newFakeAPI(t, http.StatusOK, `{}`)
	r = runCLI(t, f.vars(), "segment", "define", writeFile(t, "s.yaml", "id: hot_leads\nname: H\nwhen: 'nope('\n"))
	if r.code != exitFail || !strings.Contains(r.stderr, "when: ") || len(f.reqs) != 0 {
		t.Errorf("invalid: %d %q, %d requests", r.code, r.stderr, len(f.reqs))
	}
}

func TestSegmentListAndMembers(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"segments":[{"segment_id":"hot_leads","version":1,"definition":{"id":"hot_leads","name":"Hot leads","when":"x"},
		"time_dependent":false,"defined_at":"2025-01-01T00:00:00Z","members":42}]}`)
	r := runCLI(t, f.vars(), "segment", "list")
	if r.code != exitOK || !strings.Contains(r.stdout, "hot_leads") || !strings.Contains(r.stdout, "42 members  Hot leads") {
		t.Errorf("list: %d %q %q", r.code, r.stdout, r.stderr)
	}

	f = newFakeAPI(t, http.StatusOK, `{"segment_id":"hot_leads","members":[
		{"segment_id":"hot_leads","contact_id":"c_1","segment_version":1,"entered_at":"2025-01-02T03:04:05Z"}]}`)
	r = runCLI(t, f.vars(), "segment", "members", "hot_leads")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != "c_1  since 2025-01-02 03:04:05 (v1)" {
		t.Errorf("members: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.path != "/v1/segments/hot_leads/members" || req.query != "limit=1000" {
		t.Errorf("members request: %+v", req)
	}
}

func TestContactSegments(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"contact_id":"c_1",
		"memberships":[{"segment_id":"hot_leads","contact_id":"c_1","segment_version":1,"entered_at":"2025-01-02T03:04:05Z","exited_at":"2025-01-03T03:04:05Z"}],
		"now":[{"segment_id":"hot_leads","version":1,"member":false,"clauses":[
			{"expr":"consent.email == \"granted\"","held":true},
			{"expr":"events.count(\"page.viewed\", days(7)) >= 2","held":false}]}]}`)
	r := runCLI(t, f.vars(), "contact", "segments", "c_1")
	for _, want := range []string{
		"hot_leads (v1): out now\n",
		"  yes  consent.email == \"granted\"\n",
		"  no   events.count(\"page.viewed\", days(7)) >= 2\n",
		"  entered 2025-01-02 03:04:05 (v1), left 2025-01-03 03:04:05\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	if req := f.only(); req.path != "/v1/contacts/c_1/segments" {
		t.Errorf("request: %+v", req)
	}
}
