#!/usr/bin/env bash
# scripts/bench.sh (`make bench`): the send gate's throughput against
# PostgreSQL, beside pgbench's tpcb-like rate on the same server in the same
# run (the target: gate decisions/s >= pgbench tpcb-like TPS).
#
#   1. PostgreSQL up (started, or installed, like `make test`), pgbench and
#      benchstat present (benchstat is go-installed once if missing)
#   2. pgbench: a scratch database (tutti_pgbench), `pgbench -i -s 16`
#   3. BENCH_ROUNDS rounds (3), each `pgbench -c 16 -j 2 -T 30 -M prepared`
#      (builtin tpcb-like) then BenchmarkGate (16 contacts, 16 concurrent
#      Gate calls; -benchtime 20s -count 2) from a prebuilt test binary. Alternating keeps a shared machine's drift from favouring
#      either side; each round's ratio compares runs a minute apart. The
#      machine's CPU time (/proc/stat) per transaction and per decision is
#      measured too: it does not depend on how busy the host is.
#   4. BenchmarkGateAlone once (the same with every decision in a
#      transaction of its own), for comparison
#   5. benchstat over all gate runs, then a markdown table of the results
#
# Everything is idempotent; runs take about 5 minutes. Outputs are kept in
# .bench/ (gate.txt is benchstat input: `benchstat old.txt .bench/gate.txt`).
#
# Settings (environment):
#   TEST_DATABASE_URL     server for both (default postgres://$USER@127.0.0.1:5432/postgres?sslmode=disable;
#                         if you set it, that server must already be running)
#   BENCH_UPDATE_README=1 also write the table into README.md's "## Benchmarks" section
#                         (only the block between its bench:begin/bench:end markers)
#   BENCH_ROUNDS (3), BENCH_TIME (20s), BENCH_COUNT (2 per round)   rounds; -benchtime / -count
#   BENCH_PGBENCH_TIME (30), BENCH_PGBENCH_SCALE (16), BENCH_CLIENTS (16)
#   BENCH_OUT_DIR (.bench)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

BENCHSTAT_MODULE="golang.org/x/perf/cmd/benchstat"
BENCHSTAT_VERSION="${BENCHSTAT_VERSION:-v0.0.0-20260908200009-22c9c6c9d4da}"
BENCH_TIME="${BENCH_TIME:-20s}"
BENCH_COUNT="${BENCH_COUNT:-2}"
PGBENCH_TIME="${BENCH_PGBENCH_TIME:-30}"
PGBENCH_SCALE="${BENCH_PGBENCH_SCALE:-16}"
CLIENTS="${BENCH_CLIENTS:-16}"
OUT="${BENCH_OUT_DIR:-$ROOT/.bench}"
PGBENCH_DB="tutti_pgbench"

started=$SECONDS
mkdir -p "$OUT"

# ---------------------------------------------------------------------------
log "Checking tools"
ensure_go_bin_path
USER_TEST_DATABASE_URL="${TEST_DATABASE_URL:-}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable}"
ensure_postgres "$USER_TEST_DATABASE_URL"
command -v psql >/dev/null 2>&1 || die "psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)"
command -v pgbench >/dev/null 2>&1 || die "pgbench is not installed (Debian/Ubuntu: apt-get install postgresql-client; it ships with the server package)"

if ! command -v benchstat >/dev/null 2>&1; then
	log "Installing benchstat (${BENCHSTAT_MODULE}@${BENCHSTAT_VERSION}) with go install"
	# Outside the repo so its go.mod and GOFLAGS play no part.
	(cd / && GOFLAGS= go install "${BENCHSTAT_MODULE}@${BENCHSTAT_VERSION}") ||
		die "go install ${BENCHSTAT_MODULE} failed (see above); it needs the Go module proxy"
fi

PGBENCH_URL="$(with_database "$TEST_DATABASE_URL" "$PGBENCH_DB")"
host="$(bench_host "$TEST_DATABASE_URL")"
log "  ${host}"

# ---------------------------------------------------------------------------
# pgbench

exists="$(psql "$TEST_DATABASE_URL" -Atqc "SELECT 1 FROM pg_database WHERE datname = '${PGBENCH_DB}'" </dev/null)"
if [[ "$exists" != 1 ]]; then
	psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE ${PGBENCH_DB}" </dev/null >/dev/null
fi
log "pgbench -i -s ${PGBENCH_SCALE} (${PGBENCH_DB})"
pgbench -i -q -s "$PGBENCH_SCALE" "$PGBENCH_URL" >"$OUT/pgbench-init.txt" 2>&1 ||
	{ cat "$OUT/pgbench-init.txt" >&2; die "pgbench -i failed"; }

# median VALUES...: the median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# busy_ticks: CPU time used by everything on the machine so far, in clock
# ticks (user + nice + system + irq + softirq from /proc/stat; not steal).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
HZ="$(getconf CLK_TCK)"

# run_pgbench N: one tpcb-like run; prints "TPS CPU-µs-per-transaction".
run_pgbench() {
	local f="$OUT/pgbench-$1.txt"
	# Start from a clean slate: no checkpoint of earlier writes mid-run.
	psql "$TEST_DATABASE_URL" -qc CHECKPOINT </dev/null >/dev/null
	log "pgbench -c ${CLIENTS} -j 2 -T ${PGBENCH_TIME} -M prepared (tpcb-like, round $1)"
	local t0 t1
	t0="$(busy_ticks)"
	pgbench -c "$CLIENTS" -j 2 -T "$PGBENCH_TIME" -M prepared "$PGBENCH_URL" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "pgbench failed"; }
	t1="$(busy_ticks)"
	local tps tx
	tps="$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$f")"
	tx="$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$f")"
	[[ -n "$tps" && -n "$tx" ]] || { cat "$f" >&2; die "no TPS in pgbench's output"; }
	local cpu
	cpu="$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$tx" 'BEGIN { printf "%.0f", d / hz * 1e6 / n }')"
	log "  tps = ${tps}, ${cpu} µs of CPU per transaction (server and client)"
	printf '%s %s\n' "$tps" "$cpu"
}

# run_gate N: BenchmarkGate, BENCH_COUNT runs appended to gate.txt; prints
# "decisions/s CPU-µs-per-decision", each the median of the runs. The CPU
# figure is the benchmark's own machine-cpu-µs/decision: the whole
# machine's CPU time while its workers ran, set-up excluded.
run_gate() {
	psql "$TEST_DATABASE_URL" -qc CHECKPOINT </dev/null >/dev/null
	log "BenchmarkGate -benchtime ${BENCH_TIME} -count ${BENCH_COUNT} (round $1)"
	local f="$OUT/gate-$1.txt"
	(cd internal/storage && "$GATE_TEST" -test.run '^$' -test.bench '^BenchmarkGate$' -test.benchmem \
		-test.benchtime "$BENCH_TIME" -test.count "$BENCH_COUNT" -test.timeout 60m) >"$f" 2>&1 ||
		{ cat "$f" >&2; die "BenchmarkGate failed"; }
	grep '^BenchmarkGate' "$f" >&2 || { cat "$f" >&2; die "BenchmarkGate produced no result"; }
	grep '^BenchmarkGate' "$f" >>"$OUT/gate.txt"
	# metric UNIT: that metric's value in each run, one per line.
	metric() { awk -v unit="$1" '/^BenchmarkGate/ { for (i = 3; i < NF; i++) if ($(i + 1) == unit) print $i }' "$f"; }
	# shellcheck disable=SC2046 # one value per word
	printf '%.0f %.0f\n' "$(median $(metric decisions/s))" "$(median $(metric machine-cpu-µs/decision))"
}

# Rounds alternate pgbench and the gate, so a machine that speeds up or
# slows down (it is shared) affects both sides alike; each round's ratio
# compares runs minutes apart.
GATE_TEST="$OUT/storage.test"
log "Building the storage test binary"
go test -c -o "$GATE_TEST" ./internal/storage
: >"$OUT/gate.txt"
ROUNDS="${BENCH_ROUNDS:-3}"
tps_list=() tps_cpu_list=() gate_list=() gate_cpu_list=() ratio_list=()
for ((round = 1; round <= ROUNDS; round++)); do
	read -r tps tps_cpu < <(run_pgbench "$round")
	read -r gate gate_cpu < <(run_gate "$round")
	tps_list+=("$tps") tps_cpu_list+=("$tps_cpu") gate_list+=("$gate") gate_cpu_list+=("$gate_cpu")
	ratio_list+=("$(awk -v d="$gate" -v t="$tps" 'BEGIN { printf "%.2f", d / t }')")
	log "  round ${round}: gate ${gate} decisions/s vs pgbench ${tps} TPS (${ratio_list[-1]}×)"
done

log "BenchmarkGateAlone -benchtime ${BENCH_TIME} -count ${BENCH_COUNT} (one transaction per decision)"
psql "$TEST_DATABASE_URL" -qc CHECKPOINT </dev/null >/dev/null
(cd internal/storage && "$GATE_TEST" -test.run '^$' -test.bench '^BenchmarkGateAlone$' -test.benchmem \
	-test.benchtime "$BENCH_TIME" -test.count "$BENCH_COUNT" -test.timeout 60m) >"$OUT/gate-alone.txt" 2>&1 ||
	{ cat "$OUT/gate-alone.txt" >&2; die "BenchmarkGateAlone failed"; }
grep '^BenchmarkGateAlone' "$OUT/gate-alone.txt" >&2 || { cat "$OUT/gate-alone.txt" >&2; die "BenchmarkGateAlone produced no result"; }
# shellcheck disable=SC2046 # one value per word
alone="$(median $(awk '/^BenchmarkGateAlone/ { for (i = 3; i < NF; i++) if ($(i + 1) == "decisions/s") print $i }' "$OUT/gate-alone.txt"))"
alone_cpu="$(median $(awk '/^BenchmarkGateAlone/ { for (i = 3; i < NF; i++) if ($(i + 1) == "machine-cpu-µs/decision") print $i }' "$OUT/gate-alone.txt"))"

benchstat "$OUT/gate.txt" | tee "$OUT/gate-benchstat.txt" >&2
benchstat -format csv "$OUT/gate.txt" >"$OUT/gate-benchstat.csv" 2>/dev/null

# bstat UNIT [FORMAT]: "median ±CI" of BenchmarkGate's UNIT from benchstat's CSV.
bstat() {
	awk -F, -v unit="$1" -v fmt="${2:-%.3g}" '
		$1 == "" && $3 == "CI" { cur = $2; next }
		cur == unit && $1 ~ /^Gate/ { ci = ($3 == "" || $3 == "∞") ? "" : " ±" $3; printf(fmt, $2); print ci; exit }
	' "$OUT/gate-benchstat.csv"
}
num() { awk -F, -v unit="$1" -v fmt="${2:-%.0f}" '$1 == "" && $3 == "CI" { cur = $2; next } cur == unit && $1 ~ /^Gate/ { printf(fmt "\n", $2); exit }' "$OUT/gate-benchstat.csv"; }

tps_med="$(median "${tps_list[@]}")"
ratio="$(median "${ratio_list[@]}")"
verdict="below"
awk -v r="$ratio" 'BEGIN { exit !(r >= 1) }' && verdict="meets"

table="$OUT/table.md"
{
	echo "| what | result |"
	echo "| --- | --- |"
	printf '| pgbench tpcb-like, %s clients (`-c %s -j 2 -T %s -M prepared`, scale %s) | %.0f TPS median of %s rounds (%s) |\n' \
		"$CLIENTS" "$CLIENTS" "$PGBENCH_TIME" "$PGBENCH_SCALE" "$tps_med" "$ROUNDS" "$(printf '%.0f, ' "${tps_list[@]}" | sed 's/, $//')"
	printf '| gate decisions/s, 16 contacts, 16 concurrent (`BenchmarkGate`, %s × %s per round) | %s decisions/s (per round: %s) |\n' \
		"$BENCH_COUNT" "$BENCH_TIME" "$(bstat decisions/s %.0f)" "$(printf '%s, ' "${gate_list[@]}" | sed 's/, $//')"
	printf '| decisions per shared transaction (mean) | %s |\n' "$(num decisions/tx %.1f)"
	printf '| gate ÷ pgbench, round by round | %s; median %s×: %s the target |\n' "$(printf '%s, ' "${ratio_list[@]}" | sed 's/, $//')" "$ratio" "$verdict"
	printf '| CPU time per operation, whole machine (server + client) | pgbench %s µs per transaction, gate %s µs per decision (median of rounds) |\n' \
		"$(median "${tps_cpu_list[@]}")" "$(median "${gate_cpu_list[@]}")"
	printf '| gate latency p50 / p99 (one `Store.Gate` call) | %s ms / %s ms |\n' "$(bstat p50-ms)" "$(bstat p99-ms)"
	printf '| for comparison: every decision in its own transaction (`BenchmarkGateAlone`, %s × %s) | %.0f decisions/s, %.0f µs of machine CPU per decision |\n' \
		"$BENCH_COUNT" "$BENCH_TIME" "$alone" "$alone_cpu"
	printf '| decision mix | %s%% allow, %s%% defer, %s%% skip |\n' "$(num allow-%)" "$(num defer-%)" "$(num skip-%)"
	printf '| machine | %s, %s |\n' "$host" "$(date -u +%Y-%m-%d)"
} >"$table"

echo
cat "$table"
echo

if [[ "${BENCH_UPDATE_README:-}" == 1 ]]; then
	body="$OUT/readme-section.md"
	{
		echo "<!-- bench:begin: written by BENCH_UPDATE_README=1 make bench; notes go outside this block -->"
		echo "Measured by \`make bench\` (scripts/bench.sh) on a shared 2-core machine, with"
		echo "PostgreSQL on the same machine; \`BenchmarkGate\` (internal/storage/gate_bench_test.go)"
		echo "runs 16 workers, each deciding for its own contact with fresh idempotency keys and"
		echo "\`policy.DefaultSettings()\`, on a pool of 16 connections, through \`Store.Gate\` with"
		echo "its default grouping: decisions for different contacts that arrive together share a"
		echo "transaction that locks each contact row, reads consents, suppressions and recent"
		echo "sends, decides each one, and writes each decision and its ledger row."
		echo
		cat "$table"
		echo
		echo "The target is a decision rate at least as high as pgbench's tpcb-like rate on the"
		echo "same server. The machine is shared and noisy: compare runs with benchstat, not"
		echo "single numbers. To reproduce (about 5 minutes):"
		echo
		echo '```sh'
		echo 'make bench                        # pgbench + BenchmarkGate, prints the table'
		echo 'BENCH_UPDATE_README=1 make bench  # also rewrites this block'
		echo 'go test ./internal/storage -run '"'"'^$'"'"' -bench '"'"'^BenchmarkGate$'"'"' -benchtime 20s -count 6 > new.txt'
		echo 'benchstat .bench/gate.txt new.txt # compare against the last make bench'
		echo '```'
		echo "<!-- bench:end -->"
	} >"$body"
	# Replace the generated block (between the bench:begin and bench:end
	# markers) and nothing else; the first time, when there are no markers,
	# the "## Benchmarks" section's body up to the next "## " heading.
	rc=0
	readme_replace_block bench "$body" || rc=$?
	if ((rc == 3)); then
		tmp="$(mktemp "$ROOT/README.md.XXXXXX")"
		rc=0
		awk -v bodyfile="$body" '
			/^## Benchmarks[[:space:]]*$/ { print; print ""; while ((getline l < bodyfile) > 0) print l; skip = 1; found = 1; next }
			skip && /^## / { skip = 0; print "" }
			!skip { print }
			END { if (!found) exit 3 }
		' README.md >"$tmp" || rc=$?
		((rc != 0)) || cat "$tmp" >README.md # keeps README.md's mode and inode
		rm -f "$tmp"
	fi
	((rc == 0)) || die "README.md has no \"## Benchmarks\" section (or bench:begin marker) to update"
	log "Updated README.md's Benchmarks section"
fi

log "Benchmarks done in $((SECONDS - started))s (outputs in ${OUT#"$ROOT"/}/)"
