package benchjourney

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tutti-dev/tutti/internal/storage/storagetest"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

// envRole makes the test binary the benchmark's worker process: the smoke
// test runs itself as the worker, so no separate build is needed.
const envRole = "BENCHJOURNEY_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(envRole) == "worker" {
		os.Exit(WorkerMain())
	}
	os.Exit(m.Run())
}

// TestRun_Smoke runs the whole benchmark at a tiny size: every scenario
// runs to the end, every run completes (Run fails otherwise), and the
// figures are counts and rates, not zeros. It asserts nothing about timing.
func TestRun_Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev server, a worker and the API and runs about 200 workflows")
	}
	cli, err := temporaltest.CLIPath()
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	tuttiBin := filepath.Join(dir, "tutti")
	build := exec.Command("go", "build", "-o", tuttiBin, "github.com/tutti-dev/tutti/starter")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building tutti: %s", out)

	server := os.Getenv("TEST_DATABASE_URL")
	if server == "" {
		server = storagetest.DefaultURL
	}
	cfg := Small()
	cfg.Runs, cfg.Starters, cfg.Burst, cfg.SteadyRate, cfg.SteadySeconds = 4, 4, 4, 4, 1
	cfg.Parked, cfg.Enrolls, cfg.Clients = 6, 6, 3
	cfg.DatabaseURL, cfg.DatabaseName = server, "tutti_benchjourney_smoke"
	cfg.TemporalCLI, cfg.TuttiBin, cfg.WorkDir = cli, tuttiBin, filepath.Join(dir, "work")
	cfg.Worker = []string{"env", envRole + "=worker", self, "-test.run=^$"}
	var log strings.Builder
	cfg.Log = &log
	cfg.Commit = "smoke"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, server, cfg.DatabaseName); err != nil {
			t.Logf("dropping the scratch database: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		for _, name := range []string{"worker", "api", "temporal", "worker-parked-tutti", "worker-parked-hand-written"} {
			if b, rerr := os.ReadFile(filepath.Join(cfg.WorkDir, name+".log")); rerr == nil {
				t.Logf("%s.log:\n%s", name, tailLines(string(b), 30))
			}
		}
	}
	require.NoError(t, err, "progress:\n%s", log.String())
	t.Logf("progress:\n%s\n%s", log.String(), res.Table())

	byName := map[string]Figure{}
	for _, f := range res.Figures {
		byName[f.Name] = f
		require.Positive(t, f.Tutti, "%s: Tutti", f.Name)
		require.Positive(t, f.Hand, "%s: hand-written", f.Name)
	}
	for _, want := range []string{
		"P1 completed 3-send journeys/s", "P2 history events, 3-send journey",
		"P2 history events per send step", "P2 history events per wait step",
		"P2 history events per wait_for step", "P2 history events per branch step",
		"P2 history events, 3-wait journey", "P2 history events, 3-wait_for journey",
		"P6 worker RSS after a restart, runs still parked", "enroll latency p99",
		"enroll latency p99, Prefer: respond-async",
	} {
		require.Contains(t, byName, want)
	}
	require.Zero(t, res.EnrollFailed, "every API enrollment answers 201 (202 with respond-async) and its run parks")
	require.Contains(t, res.Table(), "| P1 completed 3-send journeys/s |")
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestUpdateReadme_ReplacesOnlyTheBlock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# X\n\nintro\n<!-- bench-journeys:begin: generated -->\nold table\n<!-- bench-journeys:end -->\nafter\n"
	require.NoError(t, os.WriteFile(path, []byte(before), 0o644))
	require.NoError(t, UpdateReadme(path, "new table\n"))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# X\n\nintro\n<!-- bench-journeys:begin: generated -->\nnew table\n<!-- bench-journeys:end -->\nafter\n", string(got))

	require.NoError(t, os.WriteFile(path, []byte("# no markers\n"), 0o644))
	require.Error(t, UpdateReadme(path, "x"))
}
