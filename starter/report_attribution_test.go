package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tutti-dev/tutti/internal/api"
	"github.com/tutti-dev/tutti/internal/config"
	"github.com/tutti-dev/tutti/internal/storage/storagetest"
)

func TestReportAttribution(t *testing.T) {
	store := storagetest.New(t)
	storagetest.SeedAttribution(t, store)
	srv := httptest.NewServer(api.New(api.Deps{Store: store, Config: config.Config{APIToken: "tok"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	t.Cleanup(srv.Close)
	vars := map[string]string{"TUTTI_API_URL": srv.URL, "TUTTI_API_TOKEN": "tok"}

	r := runCLI(t, vars, "report", "attribution", "--event", "purchase", "--from", "2026-02-02", "--to", "2026-02-16")
	if r.code != exitOK {
		t.Fatalf("report attribution: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// The credits worked out by hand in storage's TestAttribution.
	for _, want := range []string{
		"attribution of purchase, 2026-02-02 00:00:00 UTC to 2026-02-16 00:00:00 UTC (end excluded), lookback 7d, half-life 1d\n",
		"6 conversion(s) by 5 contact(s): 5 attributed, 1 unattributed (no touchpoint in the window)\n",
		"touchpoints in the windows: send 4, open 1, click 1, reply 2, audience 3\n",
		"by channel               first_touch  last_touch      linear  time_decay    u_shaped touchpoints  touched\n",
		"  email                         2.00        1.00        1.75 ",
		"  ads                           1.00        3.00        1.83 ",
		"  unattributed                     1           1           1           1           1\n",
		"  promo                         2.00        3.00        2.25 ",
		"  (no journey)                  1.00        1.00        1.00        1.00        1.00           2        1\n",
		"  promo/retarget                1.00        2.00        1.33 ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, vars, "report", "attribution", "--event", "purchase", "--from", "2026-02-02", "--to", "2026-02-16",
		"--model", "linear", "--lookback", "1d", "--half-life", "12h", "--json")
	var out api.AttributionReport
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json: %v %q", err, r.stdout)
	}
	if out.Unattributed != 2 || out.HalfLife != "12h" || len(out.Models) != 1 {
		t.Errorf("--model linear --lookback 1d --half-life 12h: %+v", out)
	}

	r = runCLI(t, vars, "report", "attribution", "--event", "purchase", "--lookback", "forever")
	if r.code != exitFail || !strings.Contains(r.stderr, "lookback") {
		t.Errorf("bad lookback: %d %q", r.code, r.stderr)
	}
	r = runCLI(t, vars, "report", "attribution")
	if r.code != exitFail || !strings.Contains(r.stderr, "event") {
		t.Errorf("no event: %d %q", r.code, r.stderr)
	}
}
