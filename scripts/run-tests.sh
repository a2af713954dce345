#!/usr/bin/env bash
# Every test of the project. Uses cargo-nextest when it is installed.
set -euo pipefail
scripts/fetch-model.sh models
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
