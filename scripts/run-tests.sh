#!/usr/bin/env bash
# Every test of the project. Uses cargo-nextest when it is installed.
set -euo pipefail

# The style gate, first because it is quick: one format (rustfmt.toml) and no
# clippy warnings. Clippy also compiles, once, the adapters that are off by
# default (the KurrentDB log: `--features jamuna-commands/kurrent`), so they
# cannot rot unseen.
cargo fmt --all --check
cargo clippy --workspace --all-targets --features jamuna-commands/kurrent -- -D warnings

scripts/fetch-model.sh models
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi

# infra/, offline: the Helm chart (lint, render, Kubernetes schemas), the
# Dockerfile (hadolint and its build steps) and the dashboard's metrics.
scripts/check-infra.sh

# The web clients (clients/, built by `make clients`): lint, unit tests, then
# the browser tests, which start the real `jamuna serve` and drive Debian's
# Chromium. The binary is the one the Rust tests just built for tests/e2e (a
# separate `cargo build -p jamuna` would resolve features without the
# dev-dependencies and rebuild half the workspace).
export JAMUNA_BIN="${JAMUNA_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/jamuna-target}/debug/jamuna}"
# schemathesis against the real binary's /openapi.json, signed in as an admin:
# no server errors, no schema-valid request refused, answers as documented.
scripts/schemathesis.sh

# The mobile app (clients/mobile, its own npm project; `make mobile` installed
# it and exported its web build for the browser test in clients/e2e): types
# and component tests. The clients' lint below covers its sources too.
(cd clients/mobile && npm run typecheck && npm test)
(cd clients && npm run lint && npm test && npm run test:e2e)
