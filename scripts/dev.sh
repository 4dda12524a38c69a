#!/usr/bin/env bash
# scripts/dev.sh (`make dev`): run all of Tutti locally, in sandbox mode, with
# no manual step:
#
#   tools      Go, the Temporal CLI (built once with go install), PostgreSQL
#              (started, or installed with apt-get when running as root)
#   build      bin/tutti and bin/tutti-worker
#   database   `bin/tutti migrate` (creates the database; no-op when current)
#   encryption a local payload encryption key and codec endpoint token, made once
#              in .dev/codec.env; worker, API and the Temporal UI use them
#   temporal   `temporal server start-dev` with the UI on :8233, durable state in
#              .dev/temporal.db (workflows survive a restart), Tutti's search attributes,
#              the UI decoding payloads through the API's codec endpoint
#   services   worker and API in sandbox mode, logs in .dev/*.log
#   demo       publishes examples/journeys/welcome.yaml, creates 3 demo contacts with
#              consent and enrolls them in "welcome"
#
# Then it tails the logs until Ctrl-C, and stops what it started.
# Re-running is safe: migrate is a no-op, publishing makes a new journey
# version, contacts are upserted by external id, and re-enrolling an active
# contact answers 409, which is expected.
#
# Settings (environment):
#   DATABASE_URL            default postgres://$USER@127.0.0.1:5432/tutti?sslmode=disable
#                           (if you set it, the server must already be running)
#   TUTTI_API_ADDR          default 127.0.0.1:8080
#   TUTTI_API_TOKEN         default dev-token
#   TUTTI_CODEC_KEYS        default the key in .dev/codec.env; "off" stores payloads in plaintext
#   TUTTI_CODEC_AUTH_TOKEN  default the token in .dev/codec.env
#   TUTTI_DEV_TEMPORAL_PORT default 7233 (gRPC); TUTTI_DEV_TEMPORAL_UI_PORT default 8233
#   TUTTI_DEV_ONESHOT=1     set everything up, print the summary, then stop (smoke test)
#   TUTTI_DEV_SKIP_DEMO=1   don't publish/enroll the demo data
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

DEV_DIR="$ROOT/.dev"
mkdir -p "$DEV_DIR" "$ROOT/bin"

TEMPORAL_PORT="${TUTTI_DEV_TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TUTTI_DEV_TEMPORAL_UI_PORT:-8233}"

# ---------------------------------------------------------------------------
# Cleanup: stop only what this run started, by pid.

WORKER_PID="" API_PID="" TAIL_PID=""
TEMPORAL_DEV_PID="" TEMPORAL_DEV_STARTED=0
CLEANED=0 STARTED_ANY=0
cleanup() {
	local rc=$?
	((CLEANED)) && return
	CLEANED=1
	trap - INT TERM EXIT
	((STARTED_ANY)) || exit "$rc"
	echo >&2
	log "Shutting down..."
	[[ -z "$TAIL_PID" ]] || kill "$TAIL_PID" 2>/dev/null || true
	stop_pid "$API_PID" "API"
	stop_pid "$WORKER_PID" "worker"
	rm -f "$DEV_DIR/api.pid" "$DEV_DIR/worker.pid"
	if ((TEMPORAL_DEV_STARTED)); then
		stop_pid "$TEMPORAL_DEV_PID" "Temporal dev server"
		rm -f "$DEV_DIR/temporal.pid"
	fi
	log "Stopped. Workflow state is kept in .dev/temporal.db and the ${DB_NAME:-tutti} database; \`make dev\` picks up where it left off."
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Tools and PostgreSQL

ensure_go_bin_path
ensure_temporal_cli
command -v curl >/dev/null 2>&1 || die "curl is required (Debian/Ubuntu: apt-get install curl)"

USER_DATABASE_URL="${DATABASE_URL:-}"
export DATABASE_URL="${DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/tutti?sslmode=disable}"
DB_NAME="${DATABASE_URL##*/}"
DB_NAME="${DB_NAME%%\?*}"
if [[ -n "$USER_DATABASE_URL" ]]; then
	ensure_postgres "$DATABASE_URL" # check only: a server you configured is yours to start
else
	ensure_postgres
fi

# Sandbox mode, local Temporal, the dev token. Override any of these in your shell.
export TUTTI_PROVIDER_MODE="${TUTTI_PROVIDER_MODE:-sandbox}"
export TUTTI_API_ADDR="${TUTTI_API_ADDR:-127.0.0.1:8080}"
export TUTTI_API_TOKEN="${TUTTI_API_TOKEN:-dev-token}"
api_host="${TUTTI_API_ADDR%:*}"
api_port="${TUTTI_API_ADDR##*:}"
[[ -n "$api_host" && "$api_host" != "0.0.0.0" && "$api_host" != "[::]" ]] || api_host=127.0.0.1
export TUTTI_API_URL="${TUTTI_API_URL:-http://${api_host}:${api_port}}"
# The worker and API talk to the local dev server: drop any Temporal Cloud/TLS
# client settings from the shell (TEMPORAL_CLI is kept).
unset_temporal_client_env
export TEMPORAL_ADDRESS="127.0.0.1:${TEMPORAL_PORT}"
export TEMPORAL_NAMESPACE="default"

# ---------------------------------------------------------------------------
# Build and migrate

log "Building bin/tutti and bin/tutti-worker"
go build -o bin/tutti ./starter
go build -o bin/tutti-worker ./worker
# start_temporal_dev registers the search attributes this binary lists.
export TUTTI_WORKER_BIN="$ROOT/bin/tutti-worker"

log "Migrating the ${DB_NAME} database ($(_redact_url "$DATABASE_URL"))"
bin/tutti migrate

# ---------------------------------------------------------------------------
# Payload encryption: a local key and codec endpoint token, made once and kept
# in .dev/codec.env (gitignored; `make clean-dev` removes it together with the
# Temporal state it encrypts). Settings from the shell win.

CODEC_ENV="$DEV_DIR/codec.env"
if [[ ! -s "$CODEC_ENV" ]]; then
	log "Generating a local payload encryption key and codec endpoint token (.dev/codec.env)"
	(
		umask 077 # the file holds a key: readable by its owner only
		{
			echo "# make dev: the local payload encryption key and codec endpoint token. Development only."
			echo "TUTTI_CODEC_KEYS=$(bin/tutti codec new-key dev-1)"
			echo "TUTTI_CODEC_AUTH_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
		} >"$CODEC_ENV.tmp"
	)
	mv "$CODEC_ENV.tmp" "$CODEC_ENV"
fi
codec_env() { sed -n "s/^$1=//p" "$CODEC_ENV" | tail -n 1; }
export TUTTI_CODEC_KEYS="${TUTTI_CODEC_KEYS:-$(codec_env TUTTI_CODEC_KEYS)}"
export TUTTI_CODEC_AUTH_TOKEN="${TUTTI_CODEC_AUTH_TOKEN:-$(codec_env TUTTI_CODEC_AUTH_TOKEN)}"
export TUTTI_CODEC_CORS_ORIGINS="${TUTTI_CODEC_CORS_ORIGINS:-http://localhost:${TEMPORAL_UI_PORT},http://127.0.0.1:${TEMPORAL_UI_PORT}}"
CODEC_ON=1
[[ "$TUTTI_CODEC_KEYS" != [oO][fF][fF] ]] || CODEC_ON=0
# The Temporal UI cannot send a header of our choosing, so its codec endpoint
# carries the token in the path.
UI_CODEC_ENDPOINT=""
((!CODEC_ON)) || UI_CODEC_ENDPOINT="${TUTTI_API_URL}/codec/ui/${TUTTI_CODEC_AUTH_TOKEN}"

# ---------------------------------------------------------------------------
# Temporal

# A previous run killed with SIGKILL may have left processes behind.
stop_stale_pidfile "$DEV_DIR/api.pid" "$ROOT/bin/tutti serve"
stop_stale_pidfile "$DEV_DIR/worker.pid" "$ROOT/bin/tutti-worker"
if ! _port_open 127.0.0.1 "$TEMPORAL_PORT"; then
	rm -f "$DEV_DIR/temporal.pid"
fi

STARTED_ANY=1
start_temporal_dev --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
	--db-filename "$DEV_DIR/temporal.db" --log "$DEV_DIR/temporal.log" --pid-file "$DEV_DIR/temporal.pid" \
	${UI_CODEC_ENDPOINT:+--ui-codec-endpoint "$UI_CODEC_ENDPOINT"}

# ---------------------------------------------------------------------------
# Worker and API

if curl -fsS -o /dev/null --max-time 2 "${TUTTI_API_URL}/healthz" 2>/dev/null; then
	die "something already answers on ${TUTTI_API_URL} (another \`make dev\`?). Stop it, or set TUTTI_API_ADDR=127.0.0.1:8081."
fi

: >>"$DEV_DIR/worker.log"
: >>"$DEV_DIR/api.log"
log "Starting the worker (log: .dev/worker.log)"
start_bg "$DEV_DIR/worker.log" "$ROOT/bin/tutti-worker"
WORKER_PID=$BG_PID
echo "$WORKER_PID" >"$DEV_DIR/worker.pid"

log "Starting the API on ${TUTTI_API_URL} (log: .dev/api.log)"
start_bg "$DEV_DIR/api.log" "$ROOT/bin/tutti" serve
API_PID=$BG_PID
echo "$API_PID" >"$DEV_DIR/api.pid"

if ! wait_http "${TUTTI_API_URL}/healthz" 60 "$API_PID"; then
	tail -n 30 "$DEV_DIR/api.log" >&2 || true
	die "the API did not become healthy (log above: .dev/api.log)"
fi
sleep 1
if ! kill -0 "$WORKER_PID" 2>/dev/null; then
	tail -n 30 "$DEV_DIR/worker.log" >&2 || true
	die "the worker exited during startup (log above: .dev/worker.log)"
fi
log "API and worker are up"

# ---------------------------------------------------------------------------
# Demo data

# api METHOD PATH [BODY [CONTENT_TYPE]]: sets API_STATUS and API_BODY.
# BODY "@file" sends the file's bytes.
API_STATUS="" API_BODY=""
api() {
	local method="$1" path="$2" body="${3:-}" ctype="${4:-application/json}" out
	local -a args=(-sS -X "$method" --max-time 30 -H "Authorization: Bearer ${TUTTI_API_TOKEN}" -w '\n%{http_code}')
	if [[ -n "$body" ]]; then
		args+=(-H "Content-Type: ${ctype}" --data-binary "$body")
	fi
	out="$(curl "${args[@]}" "${TUTTI_API_URL}${path}" 2>&1)" || true
	API_STATUS="${out##*$'\n'}"
	API_BODY="${out%$'\n'*}"
	[[ "$API_STATUS" =~ ^[0-9]{3}$ ]] || API_STATUS=000
}
api_ok() { [[ "$API_STATUS" == 2?? ]]; }

# json_contact_id: the contact id from {"contact":{"id":"..."}}.
json_contact_id() {
	if command -v jq >/dev/null 2>&1; then
		jq -r '(.contact.id // .id // empty)' 2>/dev/null <<<"$1" | head -1
	else
		grep -o '"id"[[:space:]]*:[[:space:]]*"[^"]*"' <<<"$1" | head -1 | sed -E 's/.*"([^"]*)"$/\1/'
	fi
}

DEMO_IDS=()
DEMO_NAMES=()
JOURNEY_FILE="examples/journeys/welcome.yaml"

demo() {
	if [[ ! -f "$JOURNEY_FILE" ]]; then
		warn "${JOURNEY_FILE} not found; skipping the demo journey"
		return 0
	fi
	log "Publishing ${JOURNEY_FILE}"
	api POST /v1/journeys "@${JOURNEY_FILE}" application/yaml # curl reads @file as is
	if api_ok; then
		log "  published (${API_BODY:0:200})"
	else
		warn "publishing the welcome journey failed: HTTP ${API_STATUS}: ${API_BODY}"
		return 0
	fi

	# external_id|email|phone|time_zone|first_name|sms consent
	local -a people=(
		"demo-ada|ada@example.com|+14155550101|Europe/London|Ada|granted"
		"demo-grace|grace@example.com|+14155550102|America/New_York|Grace|"
		"demo-alan|alan@example.com||Europe/Berlin|Alan|"
	)
	local p ext email phone tz first sms id phone_json
	for p in "${people[@]}"; do
		IFS='|' read -r ext email phone tz first sms <<<"$p"
		phone_json=""
		[[ -z "$phone" ]] || phone_json="\"phone\":\"${phone}\","
		api POST /v1/contacts "{\"external_id\":\"${ext}\",\"email\":\"${email}\",${phone_json}\"time_zone\":\"${tz}\",\"attributes\":{\"first_name\":\"${first}\",\"plan\":\"trial\",\"source\":\"make-dev\"}}"
		if ! api_ok; then
			warn "identify ${ext} failed: HTTP ${API_STATUS}: ${API_BODY}"
			continue
		fi
		id="$(json_contact_id "$API_BODY")"
		if [[ -z "$id" ]]; then
			warn "identify ${ext}: no contact id in the response: ${API_BODY}"
			continue
		fi
		api POST "/v1/contacts/${id}/consent" '{"channel":"email","status":"granted","source":"demo"}'
		api_ok || warn "email consent for ${ext} failed: HTTP ${API_STATUS}: ${API_BODY}"
		if [[ "$sms" == granted ]]; then
			# The demo stands in for a backend that ran its own SMS double
			# opt-in; without the flag the consent stays pending until YES.
			api POST "/v1/contacts/${id}/consent" '{"channel":"sms","status":"granted","source":"demo","double_opt_in_confirmed":true}'
			api_ok || warn "SMS consent for ${ext} failed: HTTP ${API_STATUS}: ${API_BODY}"
		fi
		api POST /v1/journeys/welcome/enrollments "{\"contact_id\":\"${id}\"}"
		case "$API_STATUS" in
		2??) log "  ${first} (${id}) enrolled in welcome" ;;
		409)
			# Already running, or already went through it (welcome runs once
			# per contact): the API says which.
			log "  ${first} (${id}) not enrolled again: $(printf '%s' "$API_BODY" | sed -n 's/.*"message":"\([^"]*\)".*/\1/p')"
			;;
		*) warn "enrolling ${ext} failed: HTTP ${API_STATUS}: ${API_BODY}" ;;
		esac
		DEMO_IDS+=("$id")
		DEMO_NAMES+=("$first")
	done
}

if [[ -z "${TUTTI_DEV_SKIP_DEMO:-}" ]]; then
	demo
fi

# ---------------------------------------------------------------------------
# Summary

urlencode() {
	local s="$1" out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c="${s:i:1}"
		case "$c" in
		[a-zA-Z0-9._~-]) out+="$c" ;;
		*) out+="$(printf '%%%02X' "'$c")" ;;
		esac
	done
	printf '%s' "$out"
}

first_id="${DEMO_IDS[0]:-CONTACT_ID}"
ui="http://localhost:${TEMPORAL_UI_PORT}"
query="ContactId=\"${first_id}\""
cat <<EOF

${_c_bold}Tutti is running locally (sandbox mode: messages are recorded, not sent).${_c_off}

  API             ${TUTTI_API_URL}   token: ${TUTTI_API_TOKEN}
                  export TUTTI_API_URL=${TUTTI_API_URL} TUTTI_API_TOKEN=${TUTTI_API_TOKEN}
  Temporal UI     ${ui}/namespaces/default/workflows
  Temporal gRPC   ${TEMPORAL_ADDRESS}   (state: .dev/temporal.db)
  Database        $(_redact_url "$DATABASE_URL")
  Logs            .dev/api.log  .dev/worker.log  .dev/temporal.log

EOF
if ((CODEC_ON)); then
	cat <<EOF
  Payload encryption is on (keys: .dev/codec.env): Temporal stores journey data
  encrypted, and the UI above decodes it through the API's codec endpoint.
  Decoded history from the CLI:
    export TEMPORAL_CODEC_ENDPOINT='${TUTTI_API_URL}/codec/default' TEMPORAL_CODEC_AUTH='Bearer ${TUTTI_CODEC_AUTH_TOKEN}'
    temporal workflow show --workflow-id 'journey/welcome/contact/${first_id}'

EOF
else
	echo "  Payload encryption is off (TUTTI_CODEC_KEYS=off): Temporal stores journey data in plaintext."
	echo
fi
if ((${#DEMO_IDS[@]})); then
	echo "  Demo contacts (journey \"welcome\"):"
	for i in "${!DEMO_IDS[@]}"; do
		printf '    %-6s %s\n' "${DEMO_NAMES[$i]}" "${DEMO_IDS[$i]}"
	done
	echo
fi
cat <<EOF
  Find a contact's runs in the Temporal UI (visibility query):
    ${query}
    ${ui}/namespaces/default/workflows?query=$(urlencode "$query")

  Track a purchase (event_id is the idempotency key: change it for a new event):
    curl -sS -X POST ${TUTTI_API_URL}/v1/events -H 'Authorization: Bearer ${TUTTI_API_TOKEN}' -H 'Content-Type: application/json' \\
      -d '{"event_id":"demo-purchase-1","contact_id":"${first_id}","name":"purchase","properties":{"amount":42}}'

  Record an email open:
    curl -sS -X POST ${TUTTI_API_URL}/v1/events -H 'Authorization: Bearer ${TUTTI_API_TOKEN}' -H 'Content-Type: application/json' \\
      -d '{"event_id":"demo-open-1","contact_id":"${first_id}","name":"email.opened","properties":{}}'

  The contact's journeys, and the messages the sandbox "sent":
    curl -sS ${TUTTI_API_URL}/v1/contacts/${first_id}/journeys -H 'Authorization: Bearer ${TUTTI_API_TOKEN}'
    bin/tutti contact show ${first_id}
    bin/tutti outbox

Tailing logs; press Ctrl-C to stop the worker, the API and the Temporal dev server.
EOF

if [[ -n "${TUTTI_DEV_ONESHOT:-}" ]]; then
	log "TUTTI_DEV_ONESHOT is set: stopping now"
	exit 0
fi

# ---------------------------------------------------------------------------
# Foreground: tail the logs until Ctrl-C, or until a service dies.

tail_args=(-n 0 -F)
# GNU tail can follow our pid, so it never outlives this script (even on SIGKILL).
if tail --help 2>&1 | grep -q -- '--pid'; then
	tail_args+=("--pid=$$")
fi
tail "${tail_args[@]}" "$DEV_DIR/api.log" "$DEV_DIR/worker.log" "$DEV_DIR/temporal.log" &
TAIL_PID=$!
while :; do
	if ! kill -0 "$WORKER_PID" 2>/dev/null; then
		warn "the worker exited (see .dev/worker.log)"
		exit 1
	fi
	if ! kill -0 "$API_PID" 2>/dev/null; then
		warn "the API exited (see .dev/api.log)"
		exit 1
	fi
	if ((TEMPORAL_DEV_STARTED)) && ! kill -0 "$TEMPORAL_DEV_PID" 2>/dev/null; then
		warn "the Temporal dev server exited (see .dev/temporal.log)"
		exit 1
	fi
	sleep 2
done
