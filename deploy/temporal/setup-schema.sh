#!/bin/sh
# Creates (or upgrades) Temporal's two PostgreSQL databases. Runs in the
# temporalio/admin-tools image as the one-shot `temporal-schema` service of
# docker-compose.yml; the server starts only after it exits 0. Idempotent:
# `create` skips existing databases, setup-schema -v 0.0 never downgrades, and
# update-schema applies only the versions not yet applied. Re-run it after
# bumping the temporalio/server and admin-tools tags to upgrade the schema.
#
# Environment: POSTGRES_SEEDS (host), DB_PORT, POSTGRES_USER, SQL_PASSWORD
# (temporal-sql-tool reads the password from it), TEMPORAL_DB, TEMPORAL_VISIBILITY_DB.
set -eu

host="${POSTGRES_SEEDS:-postgresql}"
port="${DB_PORT:-5432}"
user="${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
schema_dir="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"

# compose already waits for the postgresql healthcheck; this covers running the
# script by hand against a server that is still starting.
if command -v nc >/dev/null 2>&1; then
	echo "Waiting for PostgreSQL at ${host}:${port}..."
	i=0
	until nc -z -w 2 "$host" "$port"; do
		i=$((i + 1))
		if [ "$i" -ge 60 ]; then
			echo "PostgreSQL at ${host}:${port} is not reachable" >&2
			exit 1
		fi
		sleep 1
	done
fi

sql() { temporal-sql-tool --plugin postgres12 --ep "$host" -p "$port" -u "$user" "$@"; }

setup() {
	db="$1" versioned="$2"
	echo "Setting up database ${db}..."
	sql --db "$db" create
	sql --db "$db" setup-schema -v 0.0
	sql --db "$db" update-schema -d "${schema_dir}/${versioned}/versioned"
}

setup "${TEMPORAL_DB:-temporal}" temporal
setup "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" visibility
echo "Temporal schema is up to date"
