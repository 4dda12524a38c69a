#!/usr/bin/env bash
# scripts/test.sh (`make test`; CI runs `.ci/run` = `make test`):
#
#   1. tools: Go, Chromium (report page tests), the Temporal CLI (built once with go install; tests start
#      `temporal server start-dev` through internal/temporaltest, never a download),
#      PostgreSQL (started, or installed with apt-get when running as root)
#   2. go vet ./...
#   3. go test -count=1 -p 2 -timeout 20m ./...
#
# Exits non-zero on any failure.
#
#   scripts/test.sh [PACKAGES...]     test only these packages (default ./...)
#   scripts/test.sh bench [PACKAGES]  run the benchmarks instead (`make bench-go`)
#   scripts/test.sh bench-rate        the provider rate-limit check (`make bench-rate`)
#
# Settings (environment):
#   TEST_DATABASE_URL  default postgres://$USER@127.0.0.1:5432/postgres?sslmode=disable
#                      (if you set it, that server must already be running)
#   TEMPORAL_CLI       path to a temporal binary (default: $(go env GOPATH)/bin/temporal, built if missing)
#   GO_TEST_FLAGS      extra `go test` flags, e.g. "-race" or "-run TestJourney -v"
#   GO_TEST_P          package parallelism (default 2), GO_TEST_TIMEOUT (default 20m)
#   TUTTI_CHROMIUM     the Chromium the report page tests drive (default: chromium on PATH,
#                      installed with apt-get when running as root)
#   TUTTI_TEST_ARTIFACTS  where those tests keep their screenshots (default .artifacts/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

mode="test"
if [[ "${1:-}" == bench || "${1:-}" == bench-rate ]]; then
	mode="$1"
	shift
fi
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)

started=$SECONDS
log "Checking tools"
ensure_go_bin_path
log "  $(go version)"
ensure_temporal_cli
export TEMPORAL_CLI
log "  TEMPORAL_CLI=${TEMPORAL_CLI} ($("$TEMPORAL_CLI" --version 2>/dev/null | head -1))"

USER_TEST_DATABASE_URL="${TEST_DATABASE_URL:-}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres?sslmode=disable}"
log "Checking PostgreSQL"
ensure_postgres "$USER_TEST_DATABASE_URL"
log "  TEST_DATABASE_URL=$(_redact_url "$TEST_DATABASE_URL")"

if [[ "$mode" == test ]]; then
	log "Checking Chromium (report page tests)"
	ensure_chromium
	# Screenshots the page tests keep.
	export TUTTI_TEST_ARTIFACTS="${TUTTI_TEST_ARTIFACTS:-$ROOT/.artifacts}"
fi

# Tests start their own Temporal servers: a developer's Temporal client
# settings (address, API key, TLS...) must not leak into them.
unset_temporal_client_env

read -r -a extra <<<"${GO_TEST_FLAGS:-}"

if [[ "$mode" == bench-rate ]]; then
	log "go test -run '^\$' -bench BenchmarkRateLimitedSMS -benchtime 1x ./internal/delivery"
	go test -count=1 -run '^$' -bench BenchmarkRateLimitedSMS -benchtime 1x -timeout "${GO_TEST_TIMEOUT:-30m}" ./internal/delivery
	log "Done in $((SECONDS - started))s"
	exit 0
fi
if [[ "$mode" == bench ]]; then
	log "go test -run '^\$' -bench . -benchmem ${pkgs[*]}"
	go test -run '^$' -bench . -benchmem -timeout "${GO_TEST_TIMEOUT:-30m}" ${extra[@]+"${extra[@]}"} "${pkgs[@]}"
	log "Benchmarks done in $((SECONDS - started))s"
	exit 0
fi

mapfile -t gofiles < <(git ls-files -co --exclude-standard -- '*.go' 2>/dev/null || true)
unformatted=""
if ((${#gofiles[@]})); then
	unformatted="$(gofmt -l "${gofiles[@]}" 2>/dev/null </dev/null || true)"
fi
if [[ -n "$unformatted" ]]; then
	warn "these files are not gofmt-formatted (run \`make fmt\`):"
	while read -r f; do printf '    %s\n' "$f"; done <<<"$unformatted" >&2
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

log "go test -count=1 -p ${GO_TEST_P:-2} -timeout ${GO_TEST_TIMEOUT:-20m} ${extra[*]-} ${pkgs[*]}"
go test -count=1 -p "${GO_TEST_P:-2}" -timeout "${GO_TEST_TIMEOUT:-20m}" ${extra[@]+"${extra[@]}"} "${pkgs[@]}"

log "All tests passed in $((SECONDS - started))s"
