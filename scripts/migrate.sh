#!/usr/bin/env bash
# scripts/migrate.sh (`make migrate`): build bin/tutti and apply the database
# migrations to DATABASE_URL (default: the local dev database, created if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ensure_go
USER_DATABASE_URL="${DATABASE_URL:-}"
export DATABASE_URL="${DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/tutti?sslmode=disable}"
ensure_postgres "$USER_DATABASE_URL"
mkdir -p bin
go build -o bin/tutti ./starter
log "Migrating $(_redact_url "$DATABASE_URL")"
bin/tutti migrate
