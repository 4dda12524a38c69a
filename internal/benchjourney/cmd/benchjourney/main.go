// Command benchjourney is the journey benchmark (`make bench-journeys`, see
// internal/benchjourney):
//
//	benchjourney run      start a dev server, a worker and the API; measure; print the table
//	benchjourney worker   the benchmark's worker process (the harness runs it)
//
// run reads its sizes from BENCH_JOURNEYS_* (see benchjourney.FromEnv) and
// these flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tutti-dev/tutti/internal/benchjourney"
	"github.com/tutti-dev/tutti/internal/temporaltest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(benchjourney.WorkerMain())
	}
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: benchjourney run [flags] | benchjourney worker")
		os.Exit(2)
	}
	os.Exit(run(os.Args[2:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	tutti := fs.String("tutti", "bin/tutti", "the tutti binary, run as `tutti serve`")
	work := fs.String("work-dir", ".bench/journeys", "where the logs go")
	commit := fs.String("commit", "unknown", "the commit measured, for the table")
	readme := fs.String("readme", "", "also write the table into this README's bench-journeys block")
	_ = fs.Parse(args)

	cfg, err := benchjourney.FromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjourney:", err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchjourney:", err)
		return 2
	}
	if cfg.TemporalCLI, err = temporaltest.CLIPath(); err != nil {
		fmt.Fprintln(os.Stderr, "benchjourney:", err)
		return 2
	}
	cfg.Worker = []string{self, "worker"}
	cfg.TuttiBin, _ = filepath.Abs(*tutti)
	cfg.WorkDir, _ = filepath.Abs(*work)
	cfg.Commit = *commit
	cfg.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := benchjourney.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchjourney: %v (logs in %s)\n", err, cfg.WorkDir)
		return 1
	}
	res.Print(os.Stdout)
	if *readme != "" {
		if err := benchjourney.UpdateReadme(*readme, res.Table()); err != nil {
			fmt.Fprintln(os.Stderr, "benchjourney:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", *readme)
	}
	return 0
}
