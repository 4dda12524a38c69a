#!/usr/bin/env bash
# scripts/chaos.sh (`make chaos`): exactly once, under fire. A burst of
# contacts goes through a three-send journey (email, sms, email) in live mode
# against a fake SendGrid/Twilio that injects faults, while the harness kills
# the worker, the Temporal dev server and its own PostgreSQL (see
# internal/chaos). It prints journeys completed/lost and messages
# expected/accepted/duplicated/unknown and exits non-zero on any lost journey,
# duplicate, or message never sent and not retried.
#
#   1. tools: Go, the Temporal CLI (as `make test`), PostgreSQL's server
#      programs (initdb, pg_ctl); the system PostgreSQL on :5432 is not used
#   2. builds bin/tutti, bin/tutti-worker and bin/chaos
#   3. bin/chaos: a throwaway PostgreSQL cluster (initdb into a temp dir), a
#      Temporal dev server with a file DB, the fake, the worker and the API,
#      all on 127.0.0.1 ports of their own; the burst; the figures
#   4. stops everything and removes the temp dir, whatever happened
#
# The report, the logs and the fake's record are kept in .chaos/<time>/.
#
# Settings (environment, or `make chaos NAME=value`; `bin/chaos -h` lists all):
#   CHAOS_CONTACTS (1000)        contacts in the burst
#   CHAOS_WORKER_KILLS (3), CHAOS_TEMPORAL_KILLS (1), CHAOS_PG_RESTARTS (1)
#   CHAOS_SCHEDULE               e.g. "worker@10,pg@25,temporal@50" (% of the messages accepted)
#   CHAOS_EVENT_EVERY (3m)       fire the next event anyway this long after the last one
#   CHAOS_FAULT_500 (0.05), CHAOS_FAULT_429 (0.05), CHAOS_FAULT_SLOW (0.05),
#   CHAOS_FAULT_HANG (0.01), CHAOS_FAULT_DROP (0.01)   per send request
#   CHAOS_SLOW_MIN/MAX (2s/5s), CHAOS_HANG_MAX (2m), CHAOS_FAULT_READS (1)
#   CHAOS_WAIT (2s)              pause between the journey's sends
#   CHAOS_TIMEOUT (20m)          bound on waiting for the runs to close
#   CHAOS_PORT_BASE (55400)      ports: +32 PostgreSQL, +33..35 Temporal, +80 API, +90 fake
#   CHAOS_KEEP=1                 keep the temp dir; CHAOS_OUT: where the report goes
#   CHAOS_PG_BIN                 directory of initdb and pg_ctl (default: newest /usr/lib/postgresql/*/bin)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

log "Checking tools"
ensure_go_bin_path
ensure_temporal_cli
if [[ -z "${CHAOS_PG_BIN:-}" ]]; then
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			CHAOS_PG_BIN="$d"
			break
		fi
	done
fi
[[ -n "${CHAOS_PG_BIN:-}" && -x "${CHAOS_PG_BIN}/initdb" ]] ||
	die "PostgreSQL's server programs (initdb, pg_ctl) were not found; install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) or set CHAOS_PG_BIN"
if is_root && ! id postgres >/dev/null 2>&1; then
	die "running as root needs a postgres user to own the throwaway cluster (initdb refuses root)"
fi

log "Building bin/tutti, bin/tutti-worker and bin/chaos"
mkdir -p bin
go build -o bin/tutti ./starter
go build -o bin/tutti-worker ./worker
go build -o bin/chaos ./internal/chaos/cmd/chaos

label="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
	label="${label}+changes"
fi
WORK="$(mktemp -d -t tutti-chaos.XXXXXX)"
OUT="${CHAOS_OUT:-$ROOT/.chaos/$(date -u +%Y%m%dT%H%M%SZ)}"
CHAOS_PID=""

# cleanup: the harness stops what it started; this catches what a harness
# that was itself killed left behind: its PostgreSQL (pg_ctl daemonizes) and
# the temp dir. Children of the harness die with it (Pdeathsig).
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n "$CHAOS_PID" ]] && kill -0 "$CHAOS_PID" 2>/dev/null; then
		kill -TERM "$CHAOS_PID" 2>/dev/null || true
		local i
		for ((i = 0; i < 120; i++)); do
			kill -0 "$CHAOS_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$CHAOS_PID" 2>/dev/null || true
	fi
	if [[ -f "$WORK/pg/data/postmaster.pid" ]]; then
		warn "stopping the chaos PostgreSQL the harness left running"
		if is_root; then
			runuser -u postgres -- "$CHAOS_PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
		else
			"$CHAOS_PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "Running the chaos burst (work dir ${WORK}; report and logs go to ${OUT})"
rc=0
bin/chaos run -work "$WORK" -out "$OUT" -label "$label" -temporal-cli "$TEMPORAL_CLI" -pg-bin "$CHAOS_PG_BIN" "$@" &
CHAOS_PID=$!
wait "$CHAOS_PID" || rc=$?
CHAOS_PID=""
case "$rc" in
0) log "Chaos run passed (report: ${OUT}/report.txt)" ;;
1) warn "Chaos run failed the target (report: ${OUT}/report.txt)" ;;
*) warn "The chaos harness could not complete (exit ${rc}); logs in ${OUT}" ;;
esac
exit "$rc"
