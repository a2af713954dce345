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
APT_PACKAGES := redis-server

.PHONY: serve test deps build release clean-data

## serve: install what is missing, build, and start Jamuna (embedded mode).
serve: deps release
	@echo "The gateway is not built yet (issue #4): 'jamuna serve' does not exist."
	@echo "What works today is the event backbone and its command-line tools:"
	@$(CARGO_TARGET_DIR)/release/jamuna --help

## test: install and start every service the tests need, then run every test.
test: deps
	scripts/with-services.sh scripts/run-tests.sh

## deps: system packages and servers the project needs (idempotent).
deps:
	@scripts/install-deps.sh "$(NATS_VERSION)" $(APT_PACKAGES)

build:
	cargo build --workspace --all-targets

release:
	cargo build --release -p jamuna

clean-data:
	rm -rf data
