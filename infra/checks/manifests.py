#!/usr/bin/env python3
"""Validates manifests rendered by `helm template` offline.

1. Each resource against the Kubernetes JSON schemas that the PyPI package
   kubernetes-validate ships (strict: unknown fields fail), for every
   Kubernetes version given. Kinds without a schema there (the Prometheus
   Operator's ServiceMonitor, Kong's KongPlugin) get a structural check
   instead.
2. The references between resources: each Service, PodDisruptionBudget and
   ServiceMonitor selects some pods; the Ingress and HPA name objects that
   exist (for Kong, the KongPlugins it names, and its Service's timeouts); every ConfigMap and Secret a pod reads is rendered (or is the
   declared existing Secret).
3. What the chart promises for each role: probes on /healthz and /readyz,
   resource requests, a non-root user, the role as the container's argument.
4. Every JAMUNA_* variable the chart gives the roles is read by the program
   (its name appears in the Rust sources under src/ or crates/*/src), so a
   renamed or misspelt key cannot silently do nothing; --pending-env names
   the ones the program is about to read.

Usage: manifests.py RENDERED.yaml --kube 1.27 --kube 1.37 [--existing-secret NAME]
       [--expect KIND=N ...] [--repo ROOT --pending-env NAME ...]
"""

import argparse
import re
import sys
from pathlib import Path

import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

ROLES = {"gateway", "projector", "ai-worker"}


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_service_monitor(sm: dict, services: list, errors: list):
    spec = sm.get("spec") or {}
    if sm.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append(f"servicemonitor/{sm['metadata']['name']}: apiVersion {sm.get('apiVersion')}")
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    matched = [s for s in services if selects(sel, s["metadata"].get("labels") or {})]
    if not matched:
        errors.append(f"servicemonitor/{sm['metadata']['name']}: selects no Service")
    for ep in spec.get("endpoints") or [{}]:
        port = ep.get("port")
        for s in matched:
            if port not in [p.get("name") for p in s["spec"].get("ports", [])]:
                errors.append(f"servicemonitor/{sm['metadata']['name']}: Service {s['metadata']['name']} has no port {port!r}")
        if ep.get("path") != "/metrics":
            errors.append(f"servicemonitor/{sm['metadata']['name']}: endpoint path {ep.get('path')!r}, not /metrics")
    return [s["metadata"]["name"] for s in matched]


def check_kong_ingress(ing: dict, services: list, plugins: list, errors: list):
    """An Ingress for Kong: its plugins exist, and the Services it routes to
    keep WebSockets open (Kong's upstream timeouts, in milliseconds)."""
    name = f"ingress/{ing['metadata']['name']}"
    ann = ing["metadata"].get("annotations") or {}
    if any(a.startswith("nginx.ingress.kubernetes.io/") for a in ann):
        errors.append(f"{name}: ingress-nginx annotations on a Kong Ingress do nothing")
    if ann.get("konghq.com/strip-path") != "false":
        errors.append(f"{name}: konghq.com/strip-path must be \"false\" (the gateway routes on the full path)")
    names = {p["metadata"]["name"] for p in plugins}
    for p in filter(None, ann.get("konghq.com/plugins", "").split(",")):
        if p.strip() not in names:
            errors.append(f"{name}: konghq.com/plugins names {p!r}, which is not rendered")
    for rule in ing["spec"].get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            svc = next((s for s in services if s["metadata"]["name"] == path["backend"]["service"]["name"]), None)
            if not svc:
                continue
            sann = svc["metadata"].get("annotations") or {}
            for a in ("konghq.com/read-timeout", "konghq.com/write-timeout"):
                if a not in sann or int(sann[a]) < 300_000:
                    errors.append(f"service/{svc['metadata']['name']}: {a} missing or under 300000 ms (WebSockets behind Kong)")


def check_kong_plugin(kp: dict, errors: list):
    """A KongPlugin (configuration.konghq.com/v1) for the rate-limiting plugin,
    against that plugin's configuration schema (Kong 3.x)."""
    name = f"kongplugin/{kp['metadata']['name']}"
    if kp.get("apiVersion") != "configuration.konghq.com/v1":
        errors.append(f"{name}: apiVersion {kp.get('apiVersion')}")
    if kp.get("plugin") != "rate-limiting":
        errors.append(f"{name}: plugin {kp.get('plugin')!r}, expected rate-limiting")
        return
    known = {"second", "minute", "hour", "day", "month", "year", "limit_by", "header_name", "path", "policy",
             "fault_tolerant", "redis", "hide_client_headers", "error_code", "error_message", "sync_rate"}
    c = kp.get("config") or {}
    for k in set(c) - known:
        errors.append(f"{name}: unknown config field {k!r}")
    periods = [p for p in ("second", "minute", "hour", "day", "month", "year") if p in c]
    if not periods:
        errors.append(f"{name}: no limit (second, minute, hour, …)")
    for p in periods:
        if not isinstance(c[p], (int, float)) or c[p] <= 0:
            errors.append(f"{name}: {p} must be a number above 0")
    values = [c[p] for p in periods if isinstance(c[p], (int, float))]
    if values != sorted(values):
        errors.append(f"{name}: a longer period's limit is lower than a shorter one's (Kong refuses it)")
    if c.get("limit_by", "consumer") not in ("consumer", "credential", "ip", "service", "header", "path", "consumer-group"):
        errors.append(f"{name}: limit_by {c.get('limit_by')!r}")
    if c.get("limit_by") == "header" and not c.get("header_name"):
        errors.append(f"{name}: limit_by header needs header_name")
    if c.get("policy", "local") not in ("local", "cluster", "redis"):
        errors.append(f"{name}: policy {c.get('policy')!r}")
    if c.get("policy") == "redis" and not (c.get("redis") or {}).get("host"):
        errors.append(f"{name}: policy redis needs redis.host")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--kube", action="append", required=True)
    ap.add_argument("--existing-secret", default="")
    ap.add_argument("--expect", action="append", default=[], help="KIND=N: exactly N resources of that kind")
    ap.add_argument("--repo", help="the repository root, to check the JAMUNA_* variables against the sources")
    ap.add_argument("--pending-env", action="append", default=[])
    ap.add_argument("--prometheus", help="prometheus.yml: its pod discovery must find every role's pods")
    args = ap.parse_args()

    with open(args.file, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors, notes = [], []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    # 1. schemas
    validated, no_schema = 0, set()
    for version in args.kube:
        for d in docs:
            name = f"{d['kind'].lower()}/{d['metadata']['name']}"
            try:
                kubernetes_validate.validate(d, version, strict=True)
                validated += 1
            except ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{name} does not validate against Kubernetes {version}: {path}: {e.message}")
            except SchemaNotFoundError:
                no_schema.add(d["kind"])
    notes.append(f"{validated} resource validations passed against Kubernetes {', '.join(args.kube)} (strict)")

    # 2. references
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    pod_labels = {w["metadata"]["name"]: w["spec"]["template"]["metadata"].get("labels") or {} for w in workloads}
    for w in workloads:
        sel = w["spec"]["selector"].get("matchLabels") or {}
        if not selects(sel, pod_labels[w["metadata"]["name"]]):
            errors.append(f"{w['kind'].lower()}/{w['metadata']['name']}: its selector does not match its own pods")
    services = by_kind.get("Service", [])
    for s in services:
        if not any(selects(s["spec"].get("selector") or {}, l) for l in pod_labels.values()):
            errors.append(f"service/{s['metadata']['name']}: selects no pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not any(selects(pdb["spec"]["selector"].get("matchLabels") or {}, l) for l in pod_labels.values()):
            errors.append(f"poddisruptionbudget/{pdb['metadata']['name']}: selects no pods")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for ing in by_kind.get("Ingress", []):
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                svc = p["backend"]["service"]
                target = next((s for s in services if s["metadata"]["name"] == svc["name"]), None)
                if not target:
                    errors.append(f"ingress/{ing['metadata']['name']}: no Service {svc['name']}")
                elif svc["port"].get("name") not in [x.get("name") for x in target["spec"]["ports"]]:
                    errors.append(f"ingress/{ing['metadata']['name']}: Service {svc['name']} has no port {svc['port']}")
        ann = ing["metadata"].get("annotations") or {}
        if ing["spec"].get("ingressClassName") == "kong":
            check_kong_ingress(ing, services, by_kind.get("KongPlugin", []), errors)
        else:
            for a in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
                if a not in ann or int(ann[a]) < 300:
                    errors.append(f"ingress/{ing['metadata']['name']}: {a} missing or under 300 s (WebSockets)")
    for kp in by_kind.get("KongPlugin", []):
        check_kong_plugin(kp, errors)
        used = any(kp["metadata"]["name"] in (i["metadata"].get("annotations") or {}).get("konghq.com/plugins", "").split(",")
                   for i in by_kind.get("Ingress", []))
        if not used:
            errors.append(f"kongplugin/{kp['metadata']['name']}: no Ingress uses it (konghq.com/plugins)")
        notes.append(f"kongplugin/{kp['metadata']['name']} (no schema in kubernetes-validate): structure checked, "
                     f"{kp.get('plugin')} by {(kp.get('config') or {}).get('limit_by')}")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) not in names:
            errors.append(f"horizontalpodautoscaler/{hpa['metadata']['name']}: no {ref['kind']} {ref['name']}")
        target = next(d for d in workloads if d["metadata"]["name"] == ref["name"])
        if "replicas" in target["spec"]:
            errors.append(f"deployment/{ref['name']}: sets replicas although an HPA scales it")
    for sm in by_kind.get("ServiceMonitor", []):
        scraped = check_service_monitor(sm, services, errors)
        notes.append(f"servicemonitor/{sm['metadata']['name']} (no schema in kubernetes-validate): structure checked, scrapes {', '.join(scraped)}")

    # 3. the roles
    roles_seen = set()
    for w in by_kind.get("Deployment", []):
        pod = w["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if c["name"] not in ROLES:
                continue
            roles_seen.add(c["name"])
            where = f"deployment/{w['metadata']['name']} container {c['name']}"
            if (c.get("args") or [None])[0] != c["name"]:
                errors.append(f"{where}: args {c.get('args')} do not start with the role")
            if (c.get("livenessProbe") or {}).get("httpGet", {}).get("path") != "/healthz":
                errors.append(f"{where}: no liveness probe on /healthz")
            if (c.get("readinessProbe") or {}).get("httpGet", {}).get("path") != "/readyz":
                errors.append(f"{where}: no readiness probe on /readyz")
            if not (c.get("resources") or {}).get("requests"):
                errors.append(f"{where}: no resource requests")
            if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
                errors.append(f"{where}: the pod may run as root")
            for src in c.get("envFrom", []):
                if "configMapRef" in src and ("ConfigMap", src["configMapRef"]["name"]) not in names:
                    errors.append(f"{where}: reads ConfigMap {src['configMapRef']['name']}, which is not rendered")
                if "secretRef" in src:
                    n = src["secretRef"]["name"]
                    if ("Secret", n) not in names and n != args.existing_secret:
                        errors.append(f"{where}: reads Secret {n}, which is neither rendered nor secrets.existingSecret")
    if roles_seen != ROLES:
        errors.append(f"roles rendered: {sorted(roles_seen)}, expected {sorted(ROLES)}")
    if args.existing_secret:
        for s in by_kind.get("Secret", []):
            if "JAMUNA_JWT_SECRET" in (s.get("stringData") or {}) or "JAMUNA_JWT_SECRET" in (s.get("data") or {}):
                errors.append(f"secret/{s['metadata']['name']}: holds JAMUNA_JWT_SECRET although secrets.existingSecret is set")

    # 4. the variables the roles get, against what the program reads
    if args.repo:
        root = Path(args.repo)
        read = set()
        for base in [root / "src"] + sorted((root / "crates").glob("*/src")):
            for path in base.rglob("*.rs"):
                read |= set(re.findall(r'"(JAMUNA_[A-Z0-9_]+)"', path.read_text(encoding="utf-8")))
        given = set()
        config = {(d["kind"], d["metadata"]["name"]): {**(d.get("data") or {}), **(d.get("stringData") or {})}
                  for d in by_kind.get("ConfigMap", []) + by_kind.get("Secret", [])}
        for w in by_kind.get("Deployment", []):
            for c in w["spec"]["template"]["spec"]["containers"]:
                if c["name"] not in ROLES:
                    continue
                given |= {e["name"] for e in c.get("env", [])}
                for src in c.get("envFrom", []):
                    ref = src.get("configMapRef") or src.get("secretRef")
                    kind = "ConfigMap" if "configMapRef" in src else "Secret"
                    given |= set(config.get((kind, ref["name"]), {}))
        jamuna = sorted(v for v in given if v.startswith("JAMUNA_"))
        for v in jamuna:
            if v not in read and v not in args.pending_env:
                errors.append(f"the roles get {v}, which no Rust source under src/ or crates/*/src reads")
        for v in args.pending_env:
            if v in read:
                notes.append(f"STALE: {v} is read by the program now: drop it from --pending-env in scripts/check-infra.sh")
        waiting = [v for v in jamuna if v in args.pending_env]
        notes.append(f"{len(jamuna) - len(waiting)} JAMUNA_* variables given to the roles are read by the program"
                     + (f"; pending: {', '.join(waiting)}" if waiting else ""))

    # 5. infra/prometheus/prometheus.yml finds the pods the chart annotates
    if args.prometheus:
        with open(args.prometheus, encoding="utf-8") as f:
            prom = yaml.safe_load(f)
        job = next((j for j in prom.get("scrape_configs", []) if j.get("kubernetes_sd_configs")), None)
        if not job:
            errors.append(f"{args.prometheus}: no job discovers Kubernetes pods")
        else:
            keeps = [(r["source_labels"][0], r["regex"]) for r in job.get("relabel_configs", []) if r.get("action") == "keep"]
            found = 0
            for w in by_kind.get("Deployment", []):
                meta = w["spec"]["template"]["metadata"]
                c = w["spec"]["template"]["spec"]["containers"][0]
                if c["name"] not in ROLES:
                    continue
                seen = {f"__meta_kubernetes_pod_label_{k}": v for k, v in (meta.get("labels") or {}).items()}
                seen.update({f"__meta_kubernetes_pod_annotation_{k}": v for k, v in (meta.get("annotations") or {}).items()})
                seen = {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in seen.items()}
                if all(re.fullmatch(rx, str(seen.get(src, ""))) for src, rx in keeps):
                    found += 1
                    port = (meta.get("annotations") or {}).get("prometheus.io/port")
                    # The gateway serves /metrics on a port of its own; the other roles on http.
                    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                    http = ports.get("metrics", ports.get("http"))
                    if str(port) != str(http):
                        errors.append(f"deployment/{w['metadata']['name']}: prometheus.io/port {port} is not the metrics port {http}")
                    if "app_kubernetes_io_component" not in "".join(r.get("source_labels", [""])[0] for r in job["relabel_configs"] if r.get("target_label") == "role"):
                        errors.append(f"{args.prometheus}: the role label does not come from app.kubernetes.io/component")
                else:
                    errors.append(f"deployment/{w['metadata']['name']}: {args.prometheus} job {job['job_name']} would not scrape its pods")
            notes.append(f"{args.prometheus} (job {job['job_name']}) scrapes the pods of all {found} role Deployments")

    for e in args.expect:
        kind, _, n = e.partition("=")
        got = len(by_kind.get(kind, []))
        if got != int(n):
            errors.append(f"expected {n} {kind}, rendered {got}")
    gw = [w for w in by_kind.get("Deployment", []) if w["metadata"]["name"].endswith("-gateway")]
    if gw and "replicas" in gw[0]["spec"]:
        notes.append(f"gateway replicas: {gw[0]['spec']['replicas']}")

    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    print(f"manifests: {args.file}: {len(docs)} resources ({kinds})")
    for n in notes:
        print(f"  {n}")
    unexpected = no_schema - {"ServiceMonitor", "KongPlugin"}
    for k in sorted(unexpected):
        errors.append(f"no Kubernetes schema for kind {k}: a typo in apiVersion or kind?")
    for e in errors:
        print(f"  ERROR {e}")
    if errors:
        print(f"manifests: FAILED ({len(errors)} errors)")
        return 1
    print("manifests: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
