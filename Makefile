# Tutti. The two commands that matter:
#   make dev    run everything locally (sandbox mode) with demo data; Ctrl-C stops it
#   make test   go vet + every test (what CI runs, via .ci/run)
# Both install what they need (Temporal CLI, PostgreSQL) on first use.

SHELL := /usr/bin/env bash
GO    ?= go
BIN   := bin
PKGS  ?= ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: dev
dev: ## Run Tutti locally: Postgres, Temporal dev server (UI :8233), worker, API (:8080), demo journey
	@bash scripts/dev.sh

.PHONY: test
test: ## go vet and go test ./... (installs the Temporal CLI and PostgreSQL if missing)
	@bash scripts/test.sh $(filter-out ./...,$(PKGS))

.PHONY: build
build: ## Build bin/tutti and bin/tutti-worker
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/tutti ./starter
	$(GO) build -o $(BIN)/tutti-worker ./worker

.PHONY: migrate
migrate: ## Apply database migrations to DATABASE_URL (default: local tutti database)
	@bash scripts/migrate.sh

.PHONY: bench
bench: ## Send gate decisions/s and p50/p99 beside pgbench tpcb-like TPS (BENCH_UPDATE_README=1: into README)
	@bash scripts/bench.sh

.PHONY: bench-events
bench-events: ## POST /v1/events/s and p99 beside pgbench one-row inserts; delivery lag p50/p99 at 50 events/s (BENCH_UPDATE_README=1: into README)
	@bash scripts/bench-events.sh

.PHONY: bench-journeys
bench-journeys: ## Journeys vs hand-written workflows: P1 runs/s, P2 history, P5 exit latency, P6 RSS, enroll p99 (BENCH_JOURNEYS_SMALL=1: small)
	@bash scripts/bench-journeys.sh

.PHONY: bench-reports
bench-reports: ## Journey and experiment reports over 1,000,000 ledger rows: p50 per report and EXPLAIN ANALYZE of each query
	@bash scripts/bench-reports.sh

.PHONY: bench-rate
bench-rate: ## 1,000 SMS at once under twilio=10/s through the real send path: the busiest second (BENCH_RATE_SMS, BENCH_RATE_LIMIT)
	@bash scripts/test.sh bench-rate

.PHONY: chaos
chaos: ## Exactly once under fire: 1,000 contacts, faulty fake providers, kills (CHAOS_CONTACTS=100 for a small run)
	@bash scripts/chaos.sh

.PHONY: bench-go
bench-go: ## Run every Go benchmark: go test -run '^$' -bench . -benchmem ./...
	@bash scripts/test.sh bench $(filter-out ./...,$(PKGS))

.PHONY: fmt
fmt: ## gofmt every Go file
	@git ls-files -co --exclude-standard -- '*.go' | xargs -r gofmt -w

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet $(PKGS)

.PHONY: image
image: ## Build the container image (tutti:local) from the Dockerfile
	docker build -t tutti:local .

.PHONY: clean
clean: ## Remove build output (bin/) and the test cache
	rm -rf $(BIN)
	$(GO) clean -testcache

.PHONY: clean-dev
clean-dev: ## Also forget local dev state: .dev/ (Temporal dev database and logs)
	rm -rf .dev
