#!/usr/bin/env bash
# Installs what Jamuna's build and tests need, when it is missing:
#   - nats-server (NATS with JetStream) from the Go module proxy, at a pinned
#     version (Debian's 2.9 lacks atomic batches, batched direct gets and
#     sync_interval: always, which the event log relies on);
#   - Debian packages given as arguments (apt-get, only if missing).
# Usage: scripts/install-deps.sh NATS_VERSION [DEBIAN_PACKAGE...]
set -euo pipefail
nats_version=$1; shift

need() { command -v "$1" >/dev/null 2>&1; }
need go || { echo "Go is needed to install nats-server (https://go.dev/doc/install)" >&2; exit 1; }
need cargo || { echo "Rust is needed (https://rustup.rs)" >&2; exit 1; }

gobin="$(go env GOPATH)/bin"
if ! "$gobin/nats-server" --version 2>/dev/null | grep -q "${nats_version}"; then
  echo "installing nats-server ${nats_version} with go install…"
  go install "github.com/nats-io/nats-server/v2@${nats_version}"
fi

missing=()
for p in "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
