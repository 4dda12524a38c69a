#!/usr/bin/env bash
# scripts/bench-events.sh (`make bench-events`): POST /v1/events' rate
# against PostgreSQL, beside pgbench inserting one row of an events row's
# width per transaction on the same server in the same run (the target:
# events/s >= 0.5x pgbench's TPS), and the outbox's delivery lag at a
# steady rate.
#
#   1. PostgreSQL up (started, or installed, like `make test`), pgbench and
#      the Temporal CLI present
#   2. a scratch database (tutti_pgbench_events) with bench_events and
#      bench_deliveries: the columns and indexes of events and deliveries
#   3. BENCH_ROUNDS rounds (3), each: pgbench -f scripts/bench-events.sql
#      (the event row alone), pgbench -f scripts/bench-events-outbox.sql
#      (the event row and its delivery row in one transaction), both
#      `-c 16 -j 2 -T 20 -M prepared` on emptied tables, then
#      BenchmarkPostEvents (internal/e2e: 16 clients through the real HTTP
#      handler; -benchtime 20s), then BenchmarkPostEventsWrk (the same
#      requests from wrk, a C load generator, `wrk -t2 -c16`, as pgbench's
#      `-j 2 -c 16`; wrk is installed with apt-get when missing, as root),
#      then BenchmarkTrackEvent (the same
#      transactions without HTTP), then BenchmarkPostEventBatches (the 16
#      clients posting 100 events per POST /v1/events/batch). Alternating keeps a shared machine's
#      drift from favouring either side; each round has its own ratio.
#   4. BenchmarkDeliveryLag once: goal events for parked runs at a steady
#      rate with the worker's dispatcher running against a dev server
#   5. a markdown table of the results
#
# Outputs are kept in .bench/events/. Runs take about 10 minutes.
#
# Settings (environment):
#   TEST_DATABASE_URL     server for both (default postgres://$USER@127.0.0.1:5432/postgres?sslmode=disable;
#                         if you set it, that server must already be running)
#   BENCH_UPDATE_README=1 also write the table into README.md (the block between
#                         its bench-events:begin/bench-events:end markers)
#   BENCH_ROUNDS (3), BENCH_TIME (20s), BENCH_PGBENCH_TIME (20), BENCH_CLIENTS (16)
#   BENCH_LAG_RATE (50 events/s), BENCH_LAG_SECONDS (20)
#   BENCH_OUT_DIR (.bench/events)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

BENCH_TIME="${BENCH_TIME:-20s}"
PGBENCH_TIME="${BENCH_PGBENCH_TIME:-20}"
CLIENTS="${BENCH_CLIENTS:-16}"
ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_LAG_RATE="${BENCH_LAG_RATE:-50}" BENCH_LAG_SECONDS="${BENCH_LAG_SECONDS:-20}"
OUT="${BENCH_OUT_DIR:-$ROOT/.bench/events}"
PGBENCH_DB="tutti_pgbench_events"

started=$SECONDS
load0="$(cut -d" " -f1-3 /proc/loadavg)"
mkdir -p "$OUT"

log "Checking tools"
ensure_go_bin_path
USER_TEST_DATABASE_URL="${TEST_DATABASE_URL:-}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable}"
ensure_postgres "$USER_TEST_DATABASE_URL"
ensure_temporal_cli
command -v psql >/dev/null 2>&1 || die "psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)"
command -v pgbench >/dev/null 2>&1 || die "pgbench is not installed (Debian/Ubuntu: apt-get install postgresql-client)"
if ! command -v wrk >/dev/null 2>&1; then
	is_root && command -v apt-get >/dev/null 2>&1 || die "wrk is not installed (Debian/Ubuntu: sudo apt-get install wrk)"
	log "Installing wrk (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 || {
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
	} || die "apt-get install wrk failed"
fi
[[ "$CLIENTS" == 16 ]] || warn "BENCH_CLIENTS=${CLIENTS}: BenchmarkPostEvents always runs 16 clients"

PGBENCH_URL="$(with_database "$TEST_DATABASE_URL" "$PGBENCH_DB")"
host="$(bench_host "$TEST_DATABASE_URL")"
log "  ${host}, load average ${load0}"

exists="$(psql "$TEST_DATABASE_URL" -Atqc "SELECT 1 FROM pg_database WHERE datname = '${PGBENCH_DB}'" </dev/null)"
[[ "$exists" == 1 ]] || psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE ${PGBENCH_DB}" </dev/null >/dev/null
# The columns and indexes of events (migrations 00001, 00020) and
# deliveries (00006, 00007, 00023), without their foreign keys.
psql "$PGBENCH_URL" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DROP TABLE IF EXISTS bench_deliveries, bench_events;
CREATE TABLE bench_events (
    id           text PRIMARY KEY,
    contact_id   text NOT NULL,
    name         text NOT NULL,
    properties   jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bench_events_contact ON bench_events (contact_id, occurred_at DESC);
CREATE INDEX bench_events_name ON bench_events (name, occurred_at) INCLUDE (contact_id);
CREATE TABLE bench_deliveries (
    id               bigserial PRIMARY KEY,
    event_id         text NOT NULL,
    contact_id       text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('signal', 'start')),
    journey_id       text NOT NULL DEFAULT '',
    journey_version  int NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    claim_token      text NOT NULL DEFAULT '',
    claimed_until    timestamptz,
    done_at          timestamptz,
    outcome          text NOT NULL DEFAULT '',
    enrollment_id    text NOT NULL DEFAULT '',
    CHECK ((kind = 'start') = (journey_id <> ''))
);
CREATE INDEX bench_deliveries_pending ON bench_deliveries (contact_id, id) WHERE done_at IS NULL;
CREATE INDEX bench_deliveries_event ON bench_deliveries (event_id);
CREATE INDEX bench_deliveries_started ON bench_deliveries (contact_id, id) WHERE kind = 'start' AND enrollment_id <> '';
CREATE INDEX bench_deliveries_contact ON bench_deliveries (contact_id);
CREATE INDEX bench_deliveries_pending_start ON bench_deliveries (contact_id) WHERE kind = 'start' AND done_at IS NULL;
SQL

# median VALUES...: the median of the arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
HZ="$(getconf CLK_TCK)"

# run_pgbench NAME SCRIPT ROUND: one run on emptied tables; prints
# "TPS p50-ms p99-ms CPU-µs-per-transaction" (latencies from its
# per-transaction log).
run_pgbench() {
	local name="$1" script="$2" round="$3"
	local f="$OUT/pgbench-${name}-${round}.txt" logdir="$OUT/pgbench-${name}-${round}.log.d"
	psql "$PGBENCH_URL" -qc 'TRUNCATE bench_deliveries, bench_events' </dev/null >/dev/null
	psql "$TEST_DATABASE_URL" -qc CHECKPOINT </dev/null >/dev/null
	rm -rf "$logdir" && mkdir -p "$logdir"
	log "pgbench -f ${script#"$ROOT"/} -c ${CLIENTS} -j 2 -T ${PGBENCH_TIME} -M prepared (round ${round})"
	local t0 t1
	t0="$(busy_ticks)"
	pgbench -n -f "$script" -c "$CLIENTS" -j 2 -T "$PGBENCH_TIME" -M prepared -l --log-prefix "$logdir/tx" "$PGBENCH_URL" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "pgbench failed"; }
	t1="$(busy_ticks)"
	local tps tx
	tps="$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$f")"
	tx="$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$f")"
	[[ -n "$tps" && -n "$tx" ]] || { cat "$f" >&2; die "no TPS in pgbench's output"; }
	# Per-transaction log: the third field is the latency in µs.
	local p50 p99
	read -r p50 p99 < <(cat "$logdir"/tx* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END {
		i50 = int(0.50 * NR + 0.5); i99 = int(0.99 * NR + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }')
	rm -rf "$logdir"
	local cpu
	cpu="$(awk -v d="$((t1 - t0))" -v hz="$HZ" -v n="$tx" 'BEGIN { printf "%.0f", d / hz * 1e6 / n }')"
	log "  tps = ${tps}, p50 ${p50} ms, p99 ${p99} ms, ${cpu} µs of CPU per transaction"
	printf '%s %s %s %s\n' "$tps" "$p50" "$p99" "$cpu"
}

E2E_TEST="$OUT/e2e.test"
log "Building the e2e test binary"
go test -c -o "$E2E_TEST" ./internal/e2e

# bench_metric FILE BENCH UNIT: that metric's values, one per run.
bench_metric() { awk -v b="$2" -v unit="$3" '$1 ~ "^"b { for (i = 3; i < NF; i++) if ($(i + 1) == unit) print $i }' "$1"; }

# run_go BENCH ROUND [BENCHTIME]: one Go benchmark run (-benchtime
# BENCH_TIME unless given); prints "events/s p50-ms p99-ms CPU-µs-per-event".
run_go() {
	local bench="$1" f="$OUT/${1}-${2}.txt" benchtime="${3:-$BENCH_TIME}"
	psql "$TEST_DATABASE_URL" -qc CHECKPOINT </dev/null >/dev/null
	log "${bench} -benchtime ${benchtime} (round $2)"
	(cd internal/e2e && "$E2E_TEST" -test.run '^$' -test.bench "^${bench}\$" -test.benchtime "$benchtime" -test.count 1 -test.timeout 30m) >"$f" 2>&1 ||
		{ cat "$f" >&2; die "${bench} failed"; }
	grep "^${bench}" "$f" >&2 || { cat "$f" >&2; die "${bench} produced no result"; }
	printf '%.0f %s %s %.0f\n' "$(bench_metric "$f" "$bench" events/s)" "$(bench_metric "$f" "$bench" p50-ms)" \
		"$(bench_metric "$f" "$bench" p99-ms)" "$(bench_metric "$f" "$bench" machine-cpu-µs/event)"
}

one=() one_p99=() one_cpu=() two=() two_p99=() api=() api_p50=() api_p99=() api_cpu=() ratio1=() ratio2=()
wrk=() wrk_p50=() wrk_p99=() wrk_cpu=() wrk_ratio1=() wrk_ratio2=()
track=() track_p99=() track_ratio=() batch=() batch_p99=() batch_ratio=()
for ((round = 1; round <= ROUNDS; round++)); do
	read -r tps p50 p99 cpu < <(run_pgbench row "$ROOT/scripts/bench-events.sql" "$round")
	one+=("$(printf '%.0f' "$tps")") one_p99+=("$p99") one_cpu+=("$cpu")
	read -r tps p50 p99 cpu < <(run_pgbench outbox "$ROOT/scripts/bench-events-outbox.sql" "$round")
	two+=("$(printf '%.0f' "$tps")") two_p99+=("$p99")
	read -r eps p50 p99 cpu < <(run_go BenchmarkPostEvents "$round")
	api+=("$eps") api_p50+=("$p50") api_p99+=("$p99") api_cpu+=("$cpu")
	read -r wes wp50 wp99 wcpu < <(BENCH_WRK_SECONDS="$PGBENCH_TIME" run_go BenchmarkPostEventsWrk "$round" 1x)
	wrk+=("$wes") wrk_p50+=("$wp50") wrk_p99+=("$wp99") wrk_cpu+=("$wcpu")
	wrk_ratio1+=("$(awk -v a="$wes" -v t="${one[-1]}" 'BEGIN { printf "%.2f", a / t }')")
	wrk_ratio2+=("$(awk -v a="$wes" -v t="${two[-1]}" 'BEGIN { printf "%.2f", a / t }')")
	read -r tes _ tp99 _ < <(run_go BenchmarkTrackEvent "$round")
	track+=("$tes") track_p99+=("$tp99")
	track_ratio+=("$(awk -v a="$eps" -v t="$tes" 'BEGIN { printf "%.2f", t / a }')")
	read -r bes _ bp99 _ < <(run_go BenchmarkPostEventBatches "$round")
	batch+=("$bes") batch_p99+=("$bp99")
	batch_ratio+=("$(awk -v a="$bes" -v t="${one[-1]}" 'BEGIN { printf "%.2f", a / t }')")
	ratio1+=("$(awk -v a="$eps" -v t="${one[-1]}" 'BEGIN { printf "%.2f", a / t }')")
	ratio2+=("$(awk -v a="$eps" -v t="${two[-1]}" 'BEGIN { printf "%.2f", a / t }')")
	log "  round ${round}: POST /v1/events ${eps}/s vs pgbench one row ${one[-1]} TPS (${ratio1[-1]}×), event+delivery rows ${two[-1]} TPS (${ratio2[-1]}×)"
	log "  round ${round}: POST /v1/events from wrk ${wes}/s (${wrk_ratio1[-1]}× one row, ${wrk_ratio2[-1]}× event+delivery rows)"
done

log "BenchmarkDeliveryLag: ${BENCH_LAG_RATE} goal events/s for ${BENCH_LAG_SECONDS}s"
lagf="$OUT/delivery-lag.txt"
(cd internal/e2e && "$E2E_TEST" -test.run '^$' -test.bench '^BenchmarkDeliveryLag$' -test.benchtime 1x -test.timeout 30m) >"$lagf" 2>&1 ||
	{ cat "$lagf" >&2; die "BenchmarkDeliveryLag failed"; }
grep '^BenchmarkDeliveryLag' "$lagf" >&2 || { cat "$lagf" >&2; die "BenchmarkDeliveryLag produced no result"; }
lag() { bench_metric "$lagf" BenchmarkDeliveryLag "$1"; }

ratio="$(median "${ratio1[@]}")"
verdict="below"
awk -v r="$ratio" 'BEGIN { exit !(r >= 0.5) }' && verdict="meets"
wrk_ratio="$(median "${wrk_ratio1[@]}")"
wrk_verdict="below"
awk -v r="$wrk_ratio" 'BEGIN { exit !(r >= 0.5) }' && wrk_verdict="meets"
list() { printf '%s, ' "$@" | sed 's/, $//'; }
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || commit="${commit} + uncommitted changes"

table="$OUT/table.md"
{
	echo "| what | result |"
	echo "| --- | --- |"
	printf '| pgbench, one events-width row per transaction (`-f scripts/bench-events.sql -c %s -j 2 -T %s -M prepared`) | %.0f TPS median of %s rounds (%s); p99 %s ms |\n' \
		"$CLIENTS" "$PGBENCH_TIME" "$(median "${one[@]}")" "$ROUNDS" "$(list "${one[@]}")" "$(median "${one_p99[@]}")"
	printf '| pgbench, the event row and its delivery row per transaction (`-f scripts/bench-events-outbox.sql`) | %.0f TPS (%s); p99 %s ms |\n' \
		"$(median "${two[@]}")" "$(list "${two[@]}")" "$(median "${two_p99[@]}")"
	printf '| `POST /v1/events`, 16 clients through the HTTP handler (`BenchmarkPostEvents`, %s per round) | %.0f events/s (%s); p50 %s ms, p99 %s ms |\n' \
		"$BENCH_TIME" "$(median "${api[@]}")" "$(list "${api[@]}")" "$(median "${api_p50[@]}")" "$(median "${api_p99[@]}")"
	printf '| events/s ÷ pgbench one-row TPS, round by round | %s; median %s×: %s the 0.5× target |\n' "$(list "${ratio1[@]}")" "$ratio" "$verdict"
	printf '| events/s ÷ pgbench event+delivery TPS, round by round | %s; median %s× |\n' "$(list "${ratio2[@]}")" "$(median "${ratio2[@]}")"
	printf '| `POST /v1/events`, the same requests from wrk, 16 connections (`wrk -t2 -c16`, `BenchmarkPostEventsWrk`, %ss per round) | %.0f events/s (%s); p50 %s ms, p99 %s ms |\n' \
		"$PGBENCH_TIME" "$(median "${wrk[@]}")" "$(list "${wrk[@]}")" "$(median "${wrk_p50[@]}")" "$(median "${wrk_p99[@]}")"
	printf '| wrk events/s ÷ pgbench one-row TPS, round by round | %s; median %s×: %s the 0.5× target |\n' "$(list "${wrk_ratio1[@]}")" "$wrk_ratio" "$wrk_verdict"
	printf '| wrk events/s ÷ pgbench event+delivery TPS, round by round | %s; median %s× |\n' "$(list "${wrk_ratio2[@]}")" "$(median "${wrk_ratio2[@]}")"
	printf '| CPU time per operation, whole machine | pgbench one row %s µs per transaction, POST /v1/events %s µs per event from Go clients, %s µs from wrk (medians) |\n' \
		"$(median "${one_cpu[@]}")" "$(median "${api_cpu[@]}")" "$(median "${wrk_cpu[@]}")"
	printf '| for comparison: `storage.Store.TrackEvent` called by 16 goroutines, no HTTP (`BenchmarkTrackEvent`, %s per round) | %.0f events/s (%s); p99 %s ms; ÷ POST /v1/events round by round: %s |\n' \
		"$BENCH_TIME" "$(median "${track[@]}")" "$(list "${track[@]}")" "$(median "${track_p99[@]}")" "$(list "${track_ratio[@]}")"
	printf '| `POST /v1/events/batch`, 16 clients, 100 events per request (`BenchmarkPostEventBatches`, %s per round) | %.0f events/s (%s); p99 %s ms per request; ÷ pgbench one-row TPS round by round: %s, median %s× |\n' \
		"$BENCH_TIME" "$(median "${batch[@]}")" "$(list "${batch[@]}")" "$(median "${batch_p99[@]}")" "$(list "${batch_ratio[@]}")" "$(median "${batch_ratio[@]}")"
	printf '| delivery lag at %s goal events/s for %s s, dispatcher against a dev server (`BenchmarkDeliveryLag`) | p50 %.0f ms, p99 %.0f ms, max %.0f ms |\n' \
		"$BENCH_LAG_RATE" "$BENCH_LAG_SECONDS" "$(lag lag-p50-ms)" "$(lag lag-p99-ms)" "$(lag lag-max-ms)"
	printf '| machine | %s, %s, commit %s, load average at the start %s |\n' "$host" "$(date -u +%Y-%m-%d)" "$commit" "$load0"
} >"$table"

echo
cat "$table"
echo

if [[ "${BENCH_UPDATE_README:-}" == 1 ]]; then
	body="$OUT/readme-section.md"
	{
		echo "<!-- bench-events:begin: written by BENCH_UPDATE_README=1 make bench-events; notes go outside this block -->"
		cat "$table"
		echo "<!-- bench-events:end -->"
	} >"$body"
	readme_replace_block bench-events "$body" || die "README.md has no bench-events:begin marker to update"
	log "Updated README.md's event benchmark table"
fi

log "Event benchmarks done in $((SECONDS - started))s (outputs in ${OUT#"$ROOT"/}/)"
