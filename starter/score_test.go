package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scoreJSON = `{
  "contact_id": "c_1", "model_version": 3, "at": "2026-05-01T12:00:00Z",
  "fit": 35, "intent": 17.5, "combined": 52.5,
  "bands": {"fit": "", "intent": "low", "combined": "warm"},
  "stored": {"model_version": 3, "fit": 35, "intent": 20, "combined": 55, "bands": {"fit": "", "intent": "high", "combined": "warm"},
             "scored_at": "2026-04-30T12:00:00Z", "next_check_at": "2026-05-02T08:00:00Z"},
  "contributions": [
    {"kind": "fit", "rule": "big_company", "points": 20, "value": 20},
    {"kind": "intent", "rule": "pricing", "event_id": "ev_1", "occurred_at": "2026-04-24T12:00:00Z", "age": "7d", "age_seconds": 604800, "points": 10, "value": 5},
    {"kind": "intent", "rule": "pricing", "event_id": "ev_2", "occurred_at": "2026-04-17T12:00:00Z", "age": "14d", "age_seconds": 1209600, "points": 10, "value": 2.5, "capped": true}
  ],
  "unevaluated": {"vp": "no such key: title"}
}`

func TestScoreExplain(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, scoreJSON)
	r := runCLI(t, f.vars(), "score", "explain", "c_1")
	if r.code != exitOK {
		t.Fatalf("explain: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "GET" || req.path != "/v1/contacts/c_1/score" || req.auth != "Bearer tok" {
		t.Errorf("request: %+v", req)
	}
	for _, want := range []string{
		"contact c_1, score model version 3, at 2026-05-01T12:00:00Z",
		"intent    17.50  low   high",
		"combined  52.50  warm  warm",
		"time alone moves a band at 2026-05-02T08:00:00Z",
		"intent  pricing      ev_1   7d   10.00   5.00",
		"2.50 (capped)",
		"fit     big_company  -      -    20.00   20.00",
		"vp  no such key: title",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	f = newFakeAPI(t, http.StatusOK, scoreJSON)
	if r := runCLI(t, f.vars(), "score", "explain", "c_1", "--json"); r.code != exitOK || !strings.Contains(r.stdout, `"age": "14d"`) {
		t.Errorf("--json: %d %q", r.code, r.stdout)
	}
}

func TestScoreModelSet(t *testing.T) {
	file := filepath.Join(t.TempDir(), "model.yaml")
	if err := os.WriteFile(file, []byte("id: default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, http.StatusCreated, `{"version": 2, "created": true, "created_at": "2026-05-01T12:00:00Z", "model": {"id": "default"}}`)
	r := runCLI(t, f.vars(), "score", "model", "set", file)
	if r.code != exitOK || r.stdout != "stored score model default as version 2\n" {
		t.Fatalf("set: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "PUT" || req.path != "/v1/score-model" || req.ctype != "application/yaml" || string(req.body) != "id: default\n" {
		t.Errorf("request: %+v", req)
	}

	// A refused model prints each problem with its path.
	f = newFakeAPI(t, http.StatusUnprocessableEntity, `{"error": {"code": "invalid_score_model", "message": "the score model has 1 problem(s); nothing was stored",
		"fields": [{"path": "intent[0].half_life", "message": "must be at least 1m"}]}, "valid": false,
		"problems": [{"path": "intent[0].half_life", "message": "must be at least 1m"}]}`)
	r = runCLI(t, f.vars(), "score", "model", "set", file)
	if r.code == exitOK || !strings.Contains(r.stderr, "intent[0].half_life") {
		t.Errorf("refused: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestScoreModelShow(t *testing.T) {
	f := newFakeAPI(t, http.StatusOK, `{"version": 2, "created_at": "2026-05-01T12:00:00Z", "model": {"id": "default"}}`)
	r := runCLI(t, f.vars(), "score", "model", "show")
	if r.code != exitOK || !strings.Contains(r.stdout, `"version": 2`) {
		t.Fatalf("show: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if req := f.only(); req.method != "GET" || req.path != "/v1/score-model" {
		t.Errorf("request: %+v", req)
	}
}
