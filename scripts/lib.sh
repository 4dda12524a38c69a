# shellcheck shell=bash
# shellcheck disable=SC2034 # TEMPORAL_DEV_* are outputs for the sourcing script
# scripts/lib.sh: helpers shared by scripts/dev.sh and scripts/test.sh.
#
# Source it (`. scripts/lib.sh`); it defines functions and a few settings and
# has no side effects of its own. Every helper is idempotent: it checks first
# and only installs, builds or starts what is missing.
#
#   ensure_go                 find the Go toolchain (adds /usr/local/go/bin to PATH if needed)
#   ensure_go_bin_path        put $(go env GOPATH)/bin on PATH
#   ensure_temporal_cli       set TEMPORAL_CLI to a working `temporal` binary, building it once if needed
#   ensure_postgres [URL]     make sure PostgreSQL answers (URL given: check only; none: local 127.0.0.1:5432,
#                             started or installed if needed)
#   start_temporal_dev ...    start (or reuse) a Temporal dev server with Tutti's search attributes
#   load_search_attributes    fill TUTTI_SEARCH_ATTRIBUTES from `tutti-worker search-attributes`
#                             ($TUTTI_WORKER_BIN when set, else `go run ./worker`)
#   ensure_search_attributes ADDRESS [NAMESPACE]
#   unset_temporal_client_env drop TEMPORAL_* client settings (keeps TEMPORAL_CLI)
#   wait_http URL [SECONDS] [PID]
#   start_bg LOG CMD...       background process in its own session (BG_PID)
#   stop_pid PID [NAME]       SIGTERM, bounded wait, then SIGKILL; only ever a pid we recorded

# The Temporal CLI version `go install` builds (v1.9.x can't be go-installed:
# its module has replace directives).
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
TEMPORAL_CLI_MODULE="github.com/temporalio/cli/cmd/temporal"

# Tutti's custom search attributes (Name=Type), as `temporal server start-dev
# --search-attribute` takes them. Not listed here: load_search_attributes asks
# the worker binary (`tutti-worker search-attributes`), which prints their one
# declaration (internal/searchattr). Empty until then.
TUTTI_SEARCH_ATTRIBUTES=()

# ---------------------------------------------------------------------------
# Output

if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
	_c_bold=$'\033[1m' _c_red=$'\033[31m' _c_yellow=$'\033[33m' _c_blue=$'\033[34m' _c_off=$'\033[0m'
else
	_c_bold="" _c_red="" _c_yellow="" _c_blue="" _c_off=""
fi

log() { printf '%s==>%s %s\n' "${_c_blue}${_c_bold}" "${_c_off}" "$*" >&2; }
warn() { printf '%swarning:%s %s\n' "${_c_yellow}${_c_bold}" "${_c_off}" "$*" >&2; }
die() {
	printf '%serror:%s %s\n' "${_c_red}${_c_bold}" "${_c_off}" "$*" >&2
	exit 1
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# ---------------------------------------------------------------------------
# Go

ensure_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [[ -x /usr/local/go/bin/go ]]; then
			export PATH="/usr/local/go/bin:${PATH}"
		else
			die "Go is not installed (needs the version in go.mod). Install it from https://go.dev/dl/ and re-run."
		fi
	fi
}

ensure_go_bin_path() {
	ensure_go
	local gobin
	gobin="$(go env GOBIN)"
	[[ -n "$gobin" ]] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	case ":${PATH}:" in
	*":${gobin}:"*) ;;
	*) export PATH="${gobin}:${PATH}" ;;
	esac
}

# ---------------------------------------------------------------------------
# Temporal CLI

_temporal_works() { [[ -n "$1" && -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

_temporal_candidate() {
	local gobin
	gobin="$(go env GOBIN)"
	[[ -n "$gobin" ]] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
	if _temporal_works "${gobin}/temporal"; then
		printf '%s\n' "${gobin}/temporal"
		return 0
	fi
	local onpath
	onpath="$(command -v temporal 2>/dev/null || true)"
	if _temporal_works "$onpath"; then
		printf '%s\n' "$onpath"
		return 0
	fi
	return 1
}

# ensure_temporal_cli exports TEMPORAL_CLI: the binary named by TEMPORAL_CLI if
# set, else $(go env GOPATH)/bin/temporal, else `temporal` on PATH, else it
# builds the CLI with `go install` (once; a lock keeps concurrent runs from
# building twice).
ensure_temporal_cli() {
	ensure_go_bin_path
	if [[ -n "${TEMPORAL_CLI:-}" ]]; then
		_temporal_works "$TEMPORAL_CLI" ||
			die "TEMPORAL_CLI=${TEMPORAL_CLI} is not a working temporal binary (\`${TEMPORAL_CLI} --version\` failed). Unset it to let the scripts build one."
		export TEMPORAL_CLI
		return 0
	fi
	local found
	if found="$(_temporal_candidate)"; then
		export TEMPORAL_CLI="$found"
		return 0
	fi

	local lockdir lockfile
	lockdir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tutti"
	mkdir -p "$lockdir"
	lockfile="${lockdir}/temporal-cli-install.lock"
	log "Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (first time only; it takes a few minutes, ~5 on 2 cores)..."
	(
		if command -v flock >/dev/null 2>&1; then
			exec 9>"$lockfile"
			flock 9
		fi
		# Another run may have finished the build while we waited for the lock.
		if _temporal_candidate >/dev/null; then
			exit 0
		fi
		# Outside the repo so the module's go.mod/GOFLAGS play no part.
		cd /
		go install "${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}"
	) || die "go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION} failed (see above). It needs access to the Go module proxy."
	found="$(_temporal_candidate)" ||
		die "go install finished but no working temporal binary is in $(go env GOPATH)/bin"
	export TEMPORAL_CLI="$found"
	log "Temporal CLI ready: ${TEMPORAL_CLI} ($("$TEMPORAL_CLI" --version 2>/dev/null | head -1))"
}

# ---------------------------------------------------------------------------
# PostgreSQL

# _pg_hostport URL prints "host port" from a postgres:// URL (defaults 127.0.0.1 5432).
_pg_hostport() {
	local rest="${1#*://}"
	rest="${rest%%[/?]*}"
	rest="${rest##*@}"
	local host port
	if [[ "$rest" == \[* ]]; then # [ipv6]:port
		host="${rest%%]*}"
		host="${host#[}"
		port="${rest#*]}"
		port="${port#:}"
	elif [[ "$rest" == *:* ]]; then
		host="${rest%%:*}"
		port="${rest##*:}"
	else
		host="$rest"
		port=""
	fi
	printf '%s %s\n' "${host:-127.0.0.1}" "${port:-5432}"
}

# _pg_ready URL: is the server named by URL accepting connections?
_pg_ready() {
	local url="$1"
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -t 3 -d "$url" >/dev/null 2>&1
		return
	fi
	local host port
	read -r host port < <(_pg_hostport "$url")
	# No client tools: a TCP connect is the best we can do.
	(exec 3<>"/dev/tcp/${host}/${port}") >/dev/null 2>&1
}

_redact_url() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

# _pg_can_login URL: can we actually log in (role, auth, database)? Prints psql's error.
_pg_can_login() {
	command -v psql >/dev/null 2>&1 || return 0
	local out
	if ! out="$(PGCONNECT_TIMEOUT=5 psql "$1" -Atqc 'select 1' 2>&1 </dev/null)"; then
		# Logged in, but the database isn't there yet: fine, `tutti migrate` creates it.
		grep -qE 'database "[^"]*" does not exist' <<<"$out" && return 0
		printf '%s\n' "$out" >&2
		return 1
	fi
}

_pg_local_version() {
	[[ -d /etc/postgresql ]] || return 1
	# shellcheck disable=SC2012
	ls /etc/postgresql 2>/dev/null | sort -V | tail -1
}

_pg_wait_ready() {
	local url="$1" secs="${2:-30}" i
	for ((i = 0; i < secs; i++)); do
		_pg_ready "$url" && return 0
		sleep 1
	done
	return 1
}

_as_postgres() {
	if command -v runuser >/dev/null 2>&1; then
		runuser -u postgres -- "$@"
	else
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}

# _pg_install_local: apt-get install PostgreSQL and set it up like the dev
# machines: trust auth on 127.0.0.1 and a superuser role named after us.
# Only ever run on a machine where PostgreSQL was not installed at all.
_pg_install_local() {
	log "PostgreSQL is not installed; installing it with apt-get (non-interactive)..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null ||
		die "apt-get install postgresql failed"
	local ver
	ver="$(_pg_local_version)" || die "PostgreSQL installed but /etc/postgresql is empty (no cluster was created)"
	local hba="/etc/postgresql/${ver}/main/pg_hba.conf"
	if [[ -f "$hba" ]] && ! grep -q 'tutti-dev' "$hba"; then
		log "Allowing passwordless (trust) connections from 127.0.0.1 and ::1 in ${hba} (local development only)"
		local tmp
		tmp="$(mktemp)"
		{
			echo "# tutti-dev: local development/CI machine, installed by scripts/lib.sh"
			echo "host all all 127.0.0.1/32 trust"
			echo "host all all ::1/128 trust"
			cat "$hba"
		} >"$tmp"
		cat "$tmp" >"$hba"
		rm -f "$tmp"
	fi
	pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null ||
		pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || true
	_pg_wait_ready "postgres://127.0.0.1:5432/postgres" 30 || die "PostgreSQL ${ver} installed but did not start; see /var/log/postgresql/"
	local me
	me="$(id -un)"
	_as_postgres psql -v ON_ERROR_STOP=1 -qc "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${me}') THEN CREATE ROLE \"${me}\" SUPERUSER LOGIN; END IF; END \$\$;" >/dev/null ||
		die "could not create the PostgreSQL role ${me}"
	_as_postgres psql -qc "CREATE DATABASE \"${me}\" OWNER \"${me}\"" >/dev/null 2>&1 || true
}

# ensure_postgres [URL]
#   URL given (the user set DATABASE_URL / TEST_DATABASE_URL): only check that
#   it is reachable, and explain how to fix it if not: it isn't ours to start.
#   No URL: the local server on 127.0.0.1:5432; start it with pg_ctlcluster if
#   it's down, install it with apt-get if it isn't installed (root only).
ensure_postgres() {
	local url="${1:-}"
	if [[ -n "$url" ]]; then
		local host port
		read -r host port < <(_pg_hostport "$url")
		_pg_ready "$url" || die "PostgreSQL at ${host}:${port} (from $(_redact_url "$url")) is not accepting connections.
       Start that server, fix the URL, or unset the variable to use a local PostgreSQL on 127.0.0.1:5432
       (which the scripts start, or install, for you)."
		_pg_can_login "$url" || die "PostgreSQL at ${host}:${port} is up but $(_redact_url "$url") can't log in (error above).
       Check the user, password and database in the URL."
		log "PostgreSQL at ${host}:${port} is reachable"
		return 0
	fi

	local local_url
	local_url="postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable"
	if ! _pg_ready "$local_url"; then
		local ver=""
		ver="$(_pg_local_version)" || ver=""
		if [[ -z "$ver" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
			if is_root && command -v apt-get >/dev/null 2>&1; then
				_pg_install_local
			else
				die "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here.
       Install PostgreSQL 15+ (Debian/Ubuntu: sudo apt-get install postgresql), allow this user to connect
       from 127.0.0.1 without a password (or set DATABASE_URL / TEST_DATABASE_URL with credentials), and re-run."
			fi
		else
			log "PostgreSQL ${ver} is not running on 127.0.0.1:5432; starting it with pg_ctlcluster..."
			local -a start=(pg_ctlcluster --skip-systemctl-redirect "$ver" main start)
			if is_root; then
				"${start[@]}" || warn "pg_ctlcluster failed (see above)"
			elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
				sudo -n "${start[@]}" || warn "pg_ctlcluster failed (see above)"
			else
				die "PostgreSQL ${ver} is installed but not running, and starting it needs root.
       Run: sudo pg_ctlcluster --skip-systemctl-redirect ${ver} main start   (then re-run this command)"
			fi
		fi
		_pg_wait_ready "$local_url" 30 ||
			die "PostgreSQL did not come up on 127.0.0.1:5432 within 30s; see /var/log/postgresql/ (is another process using port 5432?)"
	fi
	if ! _pg_can_login "$local_url"; then
		die "PostgreSQL is up on 127.0.0.1:5432 but user $(id -un) can't log in without a password (error above).
       Either create the role and allow trust auth from 127.0.0.1 for local development, e.g.
         sudo -u postgres createuser --superuser $(id -un)
       or set DATABASE_URL (make dev) / TEST_DATABASE_URL (make test) to a URL with credentials."
	fi
	log "PostgreSQL is up on 127.0.0.1:5432"
}

# ---------------------------------------------------------------------------
# Temporal dev server

# ensure_chromium: the report page tests (internal/api) drive a headless
# Chromium. Installed from Debian's packages when missing and running as
# root (CI); otherwise a warning, and those tests skip outside CI. Sets
# TUTTI_CHROMIUM.
ensure_chromium() {
	local c
	for c in "${TUTTI_CHROMIUM:-}" chromium chromium-browser google-chrome; do
		if [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1; then
			export TUTTI_CHROMIUM="$(command -v "$c")"
			return 0
		fi
	done
	if is_root && command -v apt-get >/dev/null 2>&1; then
		log "Chromium is not installed; installing Debian's chromium package for the report page tests..."
		DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null ||
			die "apt-get install chromium failed"
		export TUTTI_CHROMIUM="$(command -v chromium)"
		return 0
	fi
	warn "Chromium is not installed (Debian/Ubuntu: sudo apt-get install chromium): the report page tests will skip"
}

_port_open() { (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1; }

temporal_healthy() {
	"$TEMPORAL_CLI" operator cluster health --address "$1" --command-timeout 3s >/dev/null 2>&1
}

# load_search_attributes: fill TUTTI_SEARCH_ATTRIBUTES (once) with what
# `tutti-worker search-attributes` prints: the binary at $TUTTI_WORKER_BIN if
# set (dev.sh sets it to the one it just built), else `go run ./worker` in
# this checkout.
load_search_attributes() {
	((${#TUTTI_SEARCH_ATTRIBUTES[@]} == 0)) || return 0
	local out
	if [[ -n "${TUTTI_WORKER_BIN:-}" ]]; then
		out="$("$TUTTI_WORKER_BIN" search-attributes)" ||
			die "could not list Tutti's search attributes with ${TUTTI_WORKER_BIN} search-attributes"
	else
		ensure_go
		out="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && go run ./worker search-attributes)" ||
			die "could not list Tutti's search attributes with go run ./worker search-attributes"
	fi
	mapfile -t TUTTI_SEARCH_ATTRIBUTES <<<"$out"
	[[ -n "${TUTTI_SEARCH_ATTRIBUTES[0]}" ]] || die "tutti-worker search-attributes printed nothing"
}

# ensure_search_attributes ADDRESS [NAMESPACE]: register Tutti's search
# attributes on a running server. Idempotent: existing ones are kept.
ensure_search_attributes() {
	local addr="$1" ns="${2:-default}" sa
	load_search_attributes
	local -a args=()
	for sa in "${TUTTI_SEARCH_ATTRIBUTES[@]}"; do
		args+=(--name "${sa%%=*}" --type "${sa#*=}")
	done
	"$TEMPORAL_CLI" operator search-attribute create --address "$addr" --namespace "$ns" "${args[@]}" >/dev/null ||
		die "could not register search attributes (${TUTTI_SEARCH_ATTRIBUTES[*]}) on ${addr} namespace ${ns}"
}

# start_temporal_dev [--port N] [--ui-port N | --headless] [--db-filename FILE]
#                    [--log FILE] [--pid-file FILE] [--ip IP] [--timeout SECONDS]
#                    [--ui-codec-endpoint URL]
#
# Starts `temporal server start-dev` in the background with Tutti's search
# attributes and waits (bounded) until it reports healthy. If a Temporal server
# already answers on that port it is reused (and given the search attributes).
# Sets TEMPORAL_DEV_ADDRESS, TEMPORAL_DEV_PID (empty when reused) and
# TEMPORAL_DEV_STARTED (1 if this call started it, so only then stop it).
start_temporal_dev() {
	local ip=127.0.0.1 port=7233 ui_port="" headless=0 db_file="" log_file="" pid_file="" timeout=90 ui_codec=""
	while (($#)); do
		case "$1" in
		--ip) ip="$2"; shift 2 ;;
		--port) port="$2"; shift 2 ;;
		--ui-port) ui_port="$2"; shift 2 ;;
		--headless) headless=1; shift ;;
		--db-filename) db_file="$2"; shift 2 ;;
		--log) log_file="$2"; shift 2 ;;
		--pid-file) pid_file="$2"; shift 2 ;;
		--timeout) timeout="$2"; shift 2 ;;
		--ui-codec-endpoint) ui_codec="$2"; shift 2 ;;
		*) die "start_temporal_dev: unknown option $1" ;;
		esac
	done
	[[ -n "${TEMPORAL_CLI:-}" ]] || ensure_temporal_cli
	local addr="${ip}:${port}"
	TEMPORAL_DEV_ADDRESS="$addr" TEMPORAL_DEV_PID="" TEMPORAL_DEV_STARTED=0

	if _port_open "$ip" "$port"; then
		local i
		for ((i = 0; i < 15; i++)); do
			if temporal_healthy "$addr"; then
				local old=""
				[[ -z "$pid_file" ]] || old="$(cat "$pid_file" 2>/dev/null || true)"
				if [[ "$old" =~ ^[0-9]+$ ]] && _pid_cmdline_has "$old" "start-dev" && _pid_cmdline_has "$old" "--port ${port} "; then
					# Left running by a previous run that was killed: ours to stop again.
					log "Adopting the Temporal dev server a previous run left on ${addr} (pid ${old})"
					TEMPORAL_DEV_PID="$old" TEMPORAL_DEV_STARTED=1
				else
					log "Reusing the Temporal server already running on ${addr} (not started by us: it stays up)"
					[[ -z "$ui_codec" ]] || warn "that server's UI keeps its own codec endpoint setting: to see decoded payloads, set it in the UI (README: Payload encryption)"
				fi
				ensure_search_attributes "$addr"
				return 0
			fi
			sleep 1
		done
		die "port ${port} on ${ip} is in use but no healthy Temporal server answers there.
       Stop whatever is using it (ss -ltnp 'sport = :${port}') or choose another port."
	fi

	local -a args=(server start-dev --ip "$ip" --port "$port" --log-level warn --namespace default)
	if ((headless)); then
		args+=(--headless)
	elif [[ -n "$ui_port" ]]; then
		args+=(--ui-port "$ui_port")
	fi
	if [[ -n "$ui_codec" ]] && ((!headless)); then
		args+=(--ui-codec-endpoint "$ui_codec")
	fi
	if [[ -n "$db_file" ]]; then
		mkdir -p "$(dirname "$db_file")"
		args+=(--db-filename "$db_file")
	fi
	local sa
	load_search_attributes
	for sa in "${TUTTI_SEARCH_ATTRIBUTES[@]}"; do
		args+=(--search-attribute "$sa")
	done
	[[ -n "$log_file" ]] || log_file="$(mktemp -t temporal-dev.XXXXXX.log)"
	mkdir -p "$(dirname "$log_file")"

	log "Starting the Temporal dev server on ${addr}${db_file:+ (state in ${db_file})} (log: ${log_file})"
	start_bg "$log_file" "$TEMPORAL_CLI" "${args[@]}"
	TEMPORAL_DEV_PID=$BG_PID
	TEMPORAL_DEV_STARTED=1
	[[ -z "$pid_file" ]] || echo "$TEMPORAL_DEV_PID" >"$pid_file"

	local deadline=$((SECONDS + timeout))
	until temporal_healthy "$addr"; do
		if ! kill -0 "$TEMPORAL_DEV_PID" 2>/dev/null; then
			wait "$TEMPORAL_DEV_PID" 2>/dev/null || true
			TEMPORAL_DEV_STARTED=0
			tail -n 30 "$log_file" >&2 || true
			die "the Temporal dev server exited during startup (log above: ${log_file})"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 30 "$log_file" >&2 || true
			stop_pid "$TEMPORAL_DEV_PID" "Temporal dev server"
			TEMPORAL_DEV_STARTED=0
			die "the Temporal dev server did not become healthy on ${addr} within ${timeout}s (log: ${log_file})"
		fi
		sleep 0.5
	done
	# An existing --db-filename keeps the namespace it was created with; make
	# sure attributes added since then are registered too.
	ensure_search_attributes "$addr"
	log "Temporal dev server is healthy on ${addr} (pid ${TEMPORAL_DEV_PID})"
}

# unset_temporal_client_env: unset the SDK/CLI client settings (TEMPORAL_ADDRESS,
# TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE, ...)
# but keep TEMPORAL_CLI and TEMPORAL_CLI_VERSION, which are ours.
unset_temporal_client_env() {
	local v
	for v in $(compgen -e); do
		case "$v" in
		TEMPORAL_CLI | TEMPORAL_CLI_VERSION) ;;
		TEMPORAL_*) unset "$v" ;;
		esac
	done
}

# ---------------------------------------------------------------------------
# Processes and HTTP

# start_bg LOG COMMAND [ARGS...]: run COMMAND in the background, output
# appended to LOG, in its own session when setsid exists: then the terminal's
# Ctrl-C reaches only the calling script, whose trap stops its children in
# order. Sets BG_PID (the command's own pid: setsid execs it in place).
start_bg() {
	local logf="$1"
	shift
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" >>"$logf" 2>&1 </dev/null &
	else
		"$@" >>"$logf" 2>&1 </dev/null &
	fi
	BG_PID=$!
}

_pid_cmdline_has() {
	[[ -r "/proc/$1/cmdline" ]] && { tr '\0' ' ' <"/proc/$1/cmdline"; echo; } | grep -qF -- "$2"
}

# stop_pid PID [NAME]: SIGTERM, wait up to 15s, then SIGKILL.
stop_pid() {
	local pid="$1" name="${2:-process $1}" i
	[[ -n "$pid" ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 30; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			wait "$pid" 2>/dev/null || true
			return 0
		}
		sleep 0.5
	done
	warn "${name} (pid ${pid}) did not stop within 15s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# stop_stale_pidfile FILE EXPECTED: a previous run was killed without cleaning
# up. Stop the process recorded in FILE, but only if it is still the program
# we started (its command line contains EXPECTED).
stop_stale_pidfile() {
	local file="$1" expected="$2" pid
	[[ -f "$file" ]] || return 0
	pid="$(cat "$file" 2>/dev/null || true)"
	rm -f "$file"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	if _pid_cmdline_has "$pid" "$expected"; then
		log "Stopping ${expected} left over from a previous run (pid ${pid})"
		stop_pid "$pid" "$expected"
	fi
}

# wait_http URL [SECONDS] [PID]: wait until URL answers 2xx; fail early if PID dies.
wait_http() {
	local url="$1" secs="${2:-60}" pid="${3:-}"
	local deadline=$((SECONDS + secs))
	until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
		if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
			warn "process ${pid} exited while waiting for ${url}"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			warn "${url} did not answer within ${secs}s"
			return 1
		fi
		sleep 0.5
	done
}

# ---------------------------------------------------------------------------
# Benchmarks (make bench, make bench-events)

# with_database URL DB: URL pointing at another database on the same server.
with_database() {
	local url="$1" db="$2"
	if [[ "$url" =~ ^postgres(ql)?:// ]]; then
		local query=""
		[[ "$url" != *\?* ]] || query="?${url#*\?}"
		local base="${url%%\?*}"
		local scheme="${base%%://*}" rest="${base#*://}"
		printf '%s://%s/%s%s\n' "$scheme" "${rest%%/*}" "$db" "$query"
	else
		printf '%s dbname=%s\n' "$url" "$db"
	fi
}

# bench_host URL: "PostgreSQL <version>, <n> CPUs (<model>), <go version>",
# what a benchmark's figures were taken on.
bench_host() {
	local pg cpu
	pg="$(psql "$1" -Atqc 'SHOW server_version' </dev/null | awk '{print $1}')"
	cpu="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
	printf 'PostgreSQL %s, %s CPUs (%s), %s\n' "$pg" "$(nproc)" "${cpu:-unknown}" "$(go version | awk '{print $3}')"
}

# readme_replace_block NAME BODYFILE: replaces the block of README.md
# between its "<!-- NAME:begin" and "<!-- NAME:end -->" lines with
# BODYFILE (which carries its own markers) and nothing else. Returns 3,
# leaving README.md alone, when there is no such block.
readme_replace_block() {
	local name="$1" body="$2" tmp rc=0
	tmp="$(mktemp "$ROOT/README.md.XXXXXX")"
	awk -v bodyfile="$body" -v begin="^<!-- ${name}:begin" -v end="^<!-- ${name}:end -->" '
		$0 ~ begin { while ((getline l < bodyfile) > 0) print l; inblock = 1; found = 1; next }
		inblock { if ($0 ~ end) inblock = 0; next }
		{ print }
		END { if (!found) exit 3 }
	' "$ROOT/README.md" >"$tmp" || rc=$?
	((rc != 0)) || cat "$tmp" >"$ROOT/README.md" # keeps README.md's mode and inode
	rm -f "$tmp"
	return "$rc"
}
