#!/usr/bin/env bash
# Builds what `make test` builds — the workspace with its tests, in the dev
# profile whose numeric crates (candle, gemm, tokenizers, SQLite, ChaCha20)
# are optimised — so `make serve` after `make test` compiles nothing, and
# `make test` after `make serve` compiles only what is left. Says what it is
# doing first: a cold build is the one long wait of the two commands.
set -euo pipefail
target="${CARGO_TARGET_DIR:-$HOME/.cache/jamuna-target}"
if [ -x "$target/debug/jamuna" ]; then
  echo "== building Jamuna (dev profile, shared with make test): only what changed since the last build"
else
  cat <<'TXT'
== building Jamuna for the first time: about 640 crates, in the dev profile that
   `make test` shares (our own crates unoptimised for quick rebuilds; the model's
   numeric crates optimised). On 2 cores this is the long step — about 8 to 10
   minutes, most of it in candle/gemm, tokenizers, the MongoDB and Qdrant clients
   and SQLite; cargo's progress bar below counts the crates. Later builds take
   seconds to a minute. The build directory is $CARGO_TARGET_DIR
   (default ~/.cache/jamuna-target), shared by every clone on this machine.
TXT
fi
start=$(date +%s)
cargo test --workspace --no-run
echo "== built in $(( $(date +%s) - start )) s: $target/debug/jamuna"
