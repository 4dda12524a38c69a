#!/bin/sh
# Registers Tutti's namespace and custom search attributes. Runs in the
# temporalio/admin-tools image as the one-shot `temporal-setup` service of
# docker-compose.yml, once the server is healthy; the Tutti worker and API
# start only after it exits 0 (their workflows upsert these attributes).
# Idempotent: an existing namespace is kept, and existing attributes of the
# same type are left alone.
#
# Environment: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE,
# TEMPORAL_NAMESPACE_RETENTION (e.g. 30d), TUTTI_SEARCH_ATTRIBUTES
# (space-separated Name=Type, as `tutti-worker search-attributes` prints them).
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-30d}"
attributes="${TUTTI_SEARCH_ATTRIBUTES:?TUTTI_SEARCH_ATTRIBUTES is required}"

echo "Waiting for Temporal at ${address}..."
i=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -ge 60 ]; then
		echo "Temporal at ${address} did not become healthy" >&2
		exit 1
	fi
	sleep 2
done

if temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
	echo "Namespace ${namespace} exists"
else
	echo "Creating namespace ${namespace} (retention ${retention})"
	temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"
fi

set --
for attr in $attributes; do
	set -- "$@" --name "${attr%%=*}" --type "${attr#*=}"
done
echo "Registering search attributes: ${attributes}"
# A just-created namespace can take a moment to reach every frontend: retry.
i=0
until temporal operator search-attribute create --address "$address" --namespace "$namespace" "$@"; do
	i=$((i + 1))
	if [ "$i" -ge 10 ]; then
		echo "could not register the search attributes" >&2
		exit 1
	fi
	sleep 3
done
temporal operator search-attribute list --address "$address" --namespace "$namespace"
