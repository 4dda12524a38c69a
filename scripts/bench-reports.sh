#!/usr/bin/env bash
# scripts/bench-reports.sh (`make bench-reports`): the journey and
# experiment reports over 1,000,000 ledger rows and 100,000 contacts
# (README "Reports at scale").
#
#   1. PostgreSQL up (started, or installed, like `make test`)
#   2. the data set: tutti_bench_reports, seeded by storagetest.SeedScale
#      the first time (about 3 minutes) and whenever the migrations or the
#      generator's settings change; reused otherwise
#   3. EXPLAIN (ANALYZE, BUFFERS) of every query each report makes, into
#      .bench/reports/plans.txt (BenchmarkReport with
#      TUTTI_BENCH_REPORTS_PLANS, one timed call)
#   4. BenchmarkReport -benchtime BENCH_TIME (5x) -count BENCH_COUNT (5):
#      Store.Funnel of the big journey's version 2, Store.Experiment of its
#      split and of its holdout; then benchstat and a table of the p50s
#
# Settings (environment):
#   TEST_DATABASE_URL            server (default postgres://$USER@127.0.0.1:5432/postgres?sslmode=disable;
#                                if you set it, that server must already be running)
#   TUTTI_BENCH_REPORTS_RESEED=1 seed the data set again
#   TUTTI_BENCH_REPORTS_SMALL=1  a tenth of the size (a quick look)
#   BENCH_TIME (5x), BENCH_COUNT (5), BENCH_OUT_DIR (.bench/reports)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

BENCH_TIME="${BENCH_TIME:-5x}"
BENCH_COUNT="${BENCH_COUNT:-5}"
OUT="${BENCH_OUT_DIR:-$ROOT/.bench/reports}"
started=$SECONDS
mkdir -p "$OUT"

log "Checking tools"
ensure_go_bin_path
USER_TEST_DATABASE_URL="${TEST_DATABASE_URL:-}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable}"
ensure_postgres "$USER_TEST_DATABASE_URL"
host="$(bench_host "$TEST_DATABASE_URL")"
log "  ${host}"

log "Building the storage test binary"
BIN="$OUT/storage.test"
go test -c -o "$BIN" ./internal/storage

log "Seeding tutti_bench_reports if needed, and the query plans (into ${OUT#"$ROOT"/}/plans.txt)"
(cd internal/storage && TUTTI_BENCH_REPORTS_PLANS="$OUT/plans.txt" "$BIN" -test.run '^$' -test.bench '^BenchmarkReport$' \
	-test.benchtime 1x -test.v -test.timeout 60m) >"$OUT/seed.txt" 2>&1 ||
	{ cat "$OUT/seed.txt" >&2; die "seeding or explaining failed"; }
grep -E 'seeded|^Benchmark' "$OUT/seed.txt" >&2 || true
# Unset so that -count runs do not seed again.
unset TUTTI_BENCH_REPORTS_RESEED

log "BenchmarkReport -benchtime ${BENCH_TIME} -count ${BENCH_COUNT}"
(cd internal/storage && "$BIN" -test.run '^$' -test.bench '^BenchmarkReport$' -test.benchtime "$BENCH_TIME" \
	-test.count "$BENCH_COUNT" -test.timeout 60m) >"$OUT/run.txt" 2>&1 ||
	{ cat "$OUT/run.txt" >&2; die "BenchmarkReport failed"; }
grep '^BenchmarkReport' "$OUT/run.txt" | tee "$OUT/reports.txt" >&2
if command -v benchstat >/dev/null 2>&1; then
	benchstat "$OUT/reports.txt" | tee "$OUT/benchstat.txt" >&2
fi

# median VALUES...: the median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# metric REPORT UNIT: that metric's values in the runs of BenchmarkReport/REPORT.
metric() { awk -v name="BenchmarkReport/$1" -v unit="$2" 'index($1, name "-") == 1 || $1 == name { for (i = 3; i < NF; i++) if ($(i + 1) == unit) print $i }' "$OUT/reports.txt"; }

echo
echo "| report | p50 (median of ${BENCH_COUNT} runs × ${BENCH_TIME}) | slowest call |"
echo "| --- | --- | --- |"
for r in Funnel Experiment Holdout Attribution; do
	# shellcheck disable=SC2046 # one value per word
	printf '| %s | %.0f ms | %.0f ms |\n' "$r" "$(median $(metric "$r" p50-ms))" "$(metric "$r" max-ms | sort -g | tail -1)"
done
printf '\n%s, commit %s, %s\n' "$host" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(date -u +%Y-%m-%d)"
log "Done in $((SECONDS - started))s (plans in ${OUT#"$ROOT"/}/plans.txt)"
