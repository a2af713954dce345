#!/usr/bin/env bash
# Every test of the project. Uses cargo-nextest when it is installed.
set -euo pipefail

# Each step says how long it took, so a slow `make test` shows where.
started=$(date +%s)
step() { # name command...
  local name=$1 t
  shift
  t=$(date +%s)
  "$@"
  echo "== $name: $(($(date +%s) - t)) s (test run so far: $(($(date +%s) - started)) s)"
}

# The style gate, first because it is quick: one format (rustfmt.toml) and no
# clippy warnings. The adapters that are off by default (the KurrentDB log,
# `--features jamuna-commands/kurrent`) are not compiled here: they bring a
# second gRPC/HTTP/TLS stack (tonic 0.13, prost 0.13, reqwest 0.12, aws-lc-sys)
# that cost a cold run minutes; `make check-adapters` compiles them.
step "rustfmt" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings

scripts/fetch-model.sh models
if command -v cargo-nextest >/dev/null 2>&1; then
  step "Rust tests" cargo nextest run --workspace --no-fail-fast
  step "doc tests" cargo test --workspace --doc
else
  step "Rust tests" cargo test --workspace --no-fail-fast
fi

# infra/, offline: the Helm chart (lint, render, Kubernetes schemas), the
# Dockerfile (hadolint and its build steps) and the dashboard's metrics.
step "infra checks" scripts/check-infra.sh

# The web clients (clients/, built by `make clients`): lint, unit tests, then
# the browser tests, which start the real `jamuna serve` and drive Debian's
# Chromium. The binary is the one the Rust tests just built for tests/e2e (a
# separate `cargo build -p jamuna` would resolve features without the
# dev-dependencies and rebuild half the workspace).
export JAMUNA_BIN="${JAMUNA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/jamuna-target}/debug/jamuna}"
# schemathesis against the real binary's /openapi.json, signed in as an admin:
# no server errors, no schema-valid request refused, answers as documented.
step "schemathesis" scripts/schemathesis.sh

# The mobile app (clients/mobile, its own npm project; `make mobile` installed
# it and exported its web build for the browser test in clients/e2e): types
# and component tests. The clients' lint below covers its sources too.
step "mobile app: types and tests" bash -c 'cd clients/mobile && npm run typecheck && npm test'
step "web clients: lint and tests" bash -c 'cd clients && npm run lint && npm test'
step "browser tests" bash -c 'cd clients && npm run test:e2e'
