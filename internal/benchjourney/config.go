package benchjourney

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config sizes one benchmark run. FromEnv reads it from BENCH_JOURNEYS_*.
type Config struct {
	// Rounds of P1, P5 and the enrollment figure; the two sides alternate
	// which goes first.
	Rounds int
	// Runs is P1's three-send runs per side and round; Starters start them
	// concurrently.
	Runs, Starters int
	// Burst is P5's burst of goal events; SteadyRate and SteadySeconds its
	// steady stream (events per second, for so long).
	Burst, SteadyRate, SteadySeconds int
	// Parked is P6's runs parked on a long wait, per side.
	Parked int
	// Enrolls is the enrollments per side and round; Clients call the API
	// concurrently.
	Enrolls, Clients int

	// DatabaseURL points at the PostgreSQL server; the benchmark creates
	// (and first drops) the database DatabaseName there.
	DatabaseURL  string
	DatabaseName string
	// TemporalCLI is the temporal binary (temporaltest.CLIPath finds one).
	TemporalCLI string
	// Worker is the command that runs WorkerMain (this program's "worker"
	// subcommand); TuttiBin is bin/tutti, run as `tutti serve`.
	Worker   []string
	TuttiBin string
	// WorkDir holds the logs.
	WorkDir string
	// Commit names the code measured.
	Commit string
	Log    io.Writer
}

// Defaults are the sizes issue 10 asks for; Small is a smoke run.
func Defaults() Config {
	return Config{Rounds: 3, Runs: 1000, Starters: 16, Burst: 50, SteadyRate: 50, SteadySeconds: 10,
		Parked: 10000, Enrolls: 500, Clients: 32, DatabaseName: "tutti_benchjourney"}
}

// Small is a run of a minute or two, for smoke tests (BENCH_JOURNEYS_SMALL=1).
func Small() Config {
	c := Defaults()
	c.Rounds, c.Runs, c.Starters = 1, 10, 8
	c.Burst, c.SteadyRate, c.SteadySeconds = 10, 10, 1
	c.Parked, c.Enrolls, c.Clients = 20, 20, 8
	return c
}

// FromEnv reads the sizes from the environment over Defaults (or Small, with
// BENCH_JOURNEYS_SMALL=1):
//
//	BENCH_JOURNEYS_ROUNDS, _RUNS, _STARTERS, _BURST, _STEADY_RATE,
//	_STEADY_SECONDS, _PARKED, _ENROLLS, _CLIENTS, _DATABASE
//
// and the server from TEST_DATABASE_URL (default the local server as root
// or $USER), the CLI from TEMPORAL_CLI.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	if v, _ := lookup("BENCH_JOURNEYS_SMALL"); v == "1" {
		c = Small()
	}
	ints := []struct {
		name string
		p    *int
		min  int
	}{
		{"ROUNDS", &c.Rounds, 1}, {"RUNS", &c.Runs, 1}, {"STARTERS", &c.Starters, 1}, {"BURST", &c.Burst, 1},
		{"STEADY_RATE", &c.SteadyRate, 1}, {"STEADY_SECONDS", &c.SteadySeconds, 1}, {"PARKED", &c.Parked, 1},
		{"ENROLLS", &c.Enrolls, 1}, {"CLIENTS", &c.Clients, 1},
	}
	var errs []string
	for _, s := range ints {
		v, ok := lookup("BENCH_JOURNEYS_" + s.name)
		if !ok || v == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
		if err != nil || n < s.min {
			errs = append(errs, fmt.Sprintf("BENCH_JOURNEYS_%s=%q: want a whole number >= %d", s.name, v, s.min))
			continue
		}
		*s.p = n
	}
	if v, ok := lookup("BENCH_JOURNEYS_DATABASE"); ok && v != "" {
		c.DatabaseName = v
	}
	c.DatabaseURL, _ = lookup("TEST_DATABASE_URL")
	if c.DatabaseURL == "" {
		user, _ := lookup("USER")
		if user == "" {
			user = "root"
		}
		c.DatabaseURL = "postgres://" + user + "@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Size describes the run's sizes in one line, for the table's heading.
func (c Config) Size() string {
	return fmt.Sprintf("%d round(s), each with %d three-send runs per side, a P5 burst of %d and a steady %d/s for %ds, and %d enrollments per side at %d clients; P6 %d parked per side",
		c.Rounds, c.Runs, c.Burst, c.SteadyRate, c.SteadySeconds, c.Enrolls, c.Clients, c.Parked)
}

func (c Config) logf(format string, args ...any) {
	w := c.Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
