package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

// reportAPI serves the real API over a seeded database (reports need no
// Temporal).
func reportAPI(t *testing.T) (map[string]string, storagetest.ReportSeed) {
	t.Helper()
	store := storagetest.New(t)
	seed := storagetest.SeedReports(t, store)
	srv := httptest.NewServer(api.New(api.Deps{Store: store, Config: config.Config{APIToken: "tok"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(srv.Close)
	return map[string]string{"TUTTI_API_URL": srv.URL, "TUTTI_API_TOKEN": "tok"}, seed
}

func TestReportJourney(t *testing.T) {
	vars, seed := reportAPI(t)
	r := runCLI(t, vars, "report", "journey", "offer")
	if r.code != exitOK {
		t.Fatalf("report journey: %d %q %q", r.code, r.stdout, r.stderr)
	}
	v1 := seed.ExpectFunnel(1, time.Now())
	rate := float64(v1.Converted) / float64(v1.Entered)
	for _, want := range []string{
		"journey offer: 2 version(s)",
		fmt.Sprintf("version 1: %d entered (%d contacts), goal purchase within 7d of entry", v1.Entered, v1.Entered),
		fmt.Sprintf("  converted %d (%.1f%%, 95%% CI", v1.Converted, 100*rate),
		// Version 1's hello by hand: of contacts 0-24, 1, 6, 11, 16, 21
		// had no consent, 2, 7, 12, 17, 22 failed, 9 and 19 are held out
		// and 4 is in the control group.
		"skipped: control_group 1, holdout 2, no_consent 5",
		"failed: sendgrid:400 5",
		"  pause                wait            -\n",
		// Version 1 by path, by hand: 6 ended runs took the whole journey,
		// 3 of them converted; one lost its front, one took no step, one
		// ended before paths were recorded.
		"  by path (runs that ended):\n",
		fmt.Sprintf("  %8d %9d %8s ", 6, 3, "50.0%"),
		"  pick > hello > pause > nudge\n",
		"  … pause > nudge\n",
		"  (no steps)\n",
		"  no recorded path\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, vars, "report", "journey", "offer", "--json")
	var out api.JourneyReport
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Versions) != 2 {
		t.Fatalf("--json: %v %q", err, r.stdout)
	}

	r = runCLI(t, vars, "report", "journey", "nope")
	if r.code != exitFail || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("unknown journey: %d %q", r.code, r.stderr)
	}
	r = runCLI(t, vars, "report", "journey")
	if r.code != exitUsage {
		t.Errorf("no journey: %d %q", r.code, r.stderr)
	}
}

func TestReportExperiment(t *testing.T) {
	vars, seed := reportAPI(t)
	r := runCLI(t, vars, "report", "experiment", "offer", "discount")
	if r.code != exitOK {
		t.Fatalf("report experiment: %d %q %q", r.code, r.stdout, r.stderr)
	}
	groups, _ := seed.ExpectGroups()
	for _, want := range []string{
		"experiment discount of journey offer (design of version 2): goal purchase within 7d, control a, 95% intervals",
		fmt.Sprintf("a (control)              %8d %9d", groups["a"].Entered, groups["a"].Converted),
		fmt.Sprintf("b                        %8d %9d", groups["b"].Entered, groups["b"].Converted),
		fmt.Sprintf("holdout (holdout)        %8d %9d", groups["holdout"].Entered, groups["holdout"].Converted),
		"      vs control: difference",
		"      steps: hello 4 reached, 0 sent\n", // the held out (9, 19, 29, 39)
		"always-valid p",
		"sample ratio: as configured",
		"left out: 1 contact(s) in the workspace control group",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runCLI(t, vars, "report", "experiment", "offer", "colour")
	if r.code != exitFail || !strings.Contains(r.stderr, "experiment") {
		t.Errorf("unknown experiment: %d %q", r.code, r.stderr)
	}
}
