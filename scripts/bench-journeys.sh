#!/usr/bin/env bash
# scripts/bench-journeys.sh (`make bench-journeys`): what a Tutti journey
# costs against a hand-written workflow with the same activities, run by the
# same worker process against the same Temporal dev server and PostgreSQL,
# in interleaved rounds (internal/benchjourney):
#
#   P1  completed 3-send journeys/s, and CPU (server + worker) per run
#   P2  history events per journey and per step kind (send, wait, wait_for, branch)
#   P5  goal event -> run closed, p50/p99, a burst and a steady rate
#   P6  worker RSS with runs parked on a long wait, and after a worker restart
#   enrollment through the API at 32 clients, against starting directly
#
#   1. tools: Go, the Temporal CLI and PostgreSQL (as `make test`)
#   2. builds bin/tutti and bin/benchjourney
#   3. bin/benchjourney run: a scratch database (tutti_benchjourney, dropped
#      and created again) on TEST_DATABASE_URL's server, an in-memory dev
#      server, the worker and the API as processes of their own; the table
#
# At the default sizes (issue 10's) a run takes an hour or more on 2 cores;
# BENCH_JOURNEYS_SMALL=1 is a smoke run of a few minutes. Logs go to
# .bench/journeys/.
#
# Settings (environment):
#   TEST_DATABASE_URL          the PostgreSQL server (default: local, as `make test`)
#   BENCH_UPDATE_README=1      also write the table into README.md's bench-journeys block
#   BENCH_JOURNEYS_SMALL=1     small sizes for a smoke run (each setting below still wins)
#   BENCH_JOURNEYS_ROUNDS (3)  rounds of P1, P5 and enrollment
#   BENCH_JOURNEYS_RUNS (1000) P1 runs per side and round; BENCH_JOURNEYS_STARTERS (16) start them
#   BENCH_JOURNEYS_BURST (50), BENCH_JOURNEYS_STEADY_RATE (50), BENCH_JOURNEYS_STEADY_SECONDS (10)
#   BENCH_JOURNEYS_PARKED (10000) P6 runs parked per side
#   BENCH_JOURNEYS_ENROLLS (500) enrollments per side and round; BENCH_JOURNEYS_CLIENTS (32)
#   BENCH_JOURNEYS_DATABASE (tutti_benchjourney) the scratch database's name
#   TUTTI_DATABASE_MAX_CONNS, TUTTI_WORKER_*: passed on to the worker and the API measured (benchjourney.PassedSettings)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

log "Checking tools"
ensure_go_bin_path
ensure_temporal_cli
USER_TEST_DATABASE_URL="${TEST_DATABASE_URL:-}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable}"
ensure_postgres "$USER_TEST_DATABASE_URL"

log "Building bin/tutti and bin/benchjourney"
mkdir -p bin
go build -o bin/tutti ./starter
go build -o bin/benchjourney ./internal/benchjourney/cmd/benchjourney

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
	commit="${commit}+changes"
fi
args=(run -tutti bin/tutti -work-dir "$ROOT/.bench/journeys" -commit "$commit")
if [[ "${BENCH_UPDATE_README:-}" == 1 ]]; then
	args+=(-readme README.md)
fi
log "bin/benchjourney ${args[*]}"
exec bin/benchjourney "${args[@]}"
