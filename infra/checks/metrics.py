#!/usr/bin/env python3
"""Every metric the Grafana dashboard or a Prometheus rule queries must be
exported by some Jamuna role.

"Exported" is read from the Rust sources: the names given to the `metrics`
crate's macros (`counter!("name"`, `gauge!`, `histogram!`) in crates/ and src/
(test code excluded), with the series the Prometheus exporter
(metrics-exporter-prometheus) renders for each kind:

  counter    name
  gauge      name
  histogram  name_sum and name_count always; name_bucket only when the
             exporter is given buckets (`set_buckets`, or
             `set_buckets_for_metric` with a matcher for that name); without
             buckets it renders a summary (name{quantile=...}), which cannot be
             aggregated over replicas, so a dashboard's histogram_quantile()
             over name_bucket then has nothing to read
  process_*  the metrics-process crate's collector, when some source uses it

Each query is parsed by the PyPI package promql-parser (a syntax error fails
the check); the metric names it selects must be exported, and the labels it
matches, groups by or matches on must be given to one of its metrics (or be a
target label Prometheus adds). The dashboard's layout is checked too.

Usage: metrics.py REPO_ROOT DASHBOARD.json [RULES.yml ...] [--pending FILE]

The pending file lists names the dashboard already queries while the role
that will export them is being built (one name per line, `#` comments): they
are reported as PENDING and do not fail the check. A pending name that is
exported by now, or that no query uses, is reported as STALE (delete its
line); that does not fail the check either, since the role's change and the
list's edit may land in either order. Exit status 1 lists what is missing.
"""

import json
import re
import sys
from pathlib import Path

# Series Prometheus itself adds to every scrape.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added"}

# What metrics-process (Linux) registers.
PROCESS_METRICS = {"process_cpu_seconds_total", "process_open_fds", "process_max_fds",
                   "process_virtual_memory_bytes", "process_virtual_memory_max_bytes",
                   "process_resident_memory_bytes", "process_start_time_seconds",
                   "process_threads"}

MACRO = re.compile(r'\b(counter|gauge|histogram)!\(\s*"([A-Za-z_:][A-Za-z0-9_:]*)"')
BUCKETS_FOR = re.compile(r'set_buckets_for_metric\(\s*(?:metrics_exporter_prometheus::)?Matcher::(Full|Prefix|Suffix)\(\s*"([^"]*)"')
TEST_MODULE = re.compile(r'#\[cfg\(test\)\]\s*mod\s+\w+\s*\{')


def strip_test_modules(text: str) -> str:
    """Drops `#[cfg(test)] mod x { ... }` blocks (brace-matched)."""
    out, pos = [], 0
    for m in TEST_MODULE.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def rust_sources(root: Path):
    for base in ("crates", "src"):
        for path in sorted((root / base).rglob("*.rs")):
            parts = path.relative_to(root).parts
            if any(p in ("tests", "benches", "examples", "target") for p in parts):
                continue
            yield path


def macro_call(text: str, start: int) -> str:
    """The rest of a macro call from `start` to its closing parenthesis."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
    return text[start:i]


# Labels Prometheus attaches to every series of a target (prometheus.yml).
TARGET_LABELS = {"instance", "job", "role", "pod", "namespace"}


def exported(root: Path):
    """(series name -> 'kind in file'), and notes on how they were found."""
    kinds = {}  # base name -> (kind, where)
    labels = {}  # base name -> label keys given at any call site
    all_buckets = False
    bucket_matchers = []
    uses_process = False
    recommended_naming = False
    for path in rust_sources(root):
        text = strip_test_modules(path.read_text(encoding="utf-8"))
        rel = str(path.relative_to(root))
        for m in MACRO.finditer(text):
            kind, name = m.group(1), m.group(2)
            kinds.setdefault(name, (kind, rel))
            labels.setdefault(name, set()).update(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*=>', macro_call(text, m.end())))
        if re.search(r"\.set_buckets\(", text):
            all_buckets = True
        bucket_matchers += BUCKETS_FOR.findall(text)
        if "metrics_process" in text:
            uses_process = True
        if re.search(r"with_recommended_naming\(\s*true", text):
            recommended_naming = True

    def has_buckets(name):
        if all_buckets:
            return True
        for how, pat in bucket_matchers:
            if (how == "Full" and name == pat) or (how == "Prefix" and name.startswith(pat)) \
                    or (how == "Suffix" and name.endswith(pat)):
                return True
        return False

    series, series_labels = {}, {}
    for name, (kind, where) in kinds.items():
        base = labels.get(name, set())
        for suffix, extra in (("", set()), ("_total", set()), ("_sum", set()), ("_count", set()), ("_bucket", {"le"})):
            series_labels[name + suffix] = base | extra
        if kind == "histogram" and not has_buckets(name):
            series_labels[name] = base | {"quantile"}
        label = f"{kind} in {where}"
        if kind == "counter":
            series[name + "_total" if recommended_naming and not name.endswith("_total") else name] = label
        elif kind == "gauge":
            series[name] = label
        else:
            series[name + "_sum"] = label
            series[name + "_count"] = label
            if has_buckets(name):
                series[name + "_bucket"] = label
            else:
                series[name] = f"summary (no buckets set) in {where}"
    if uses_process:
        for name in PROCESS_METRICS:
            series[name] = "metrics-process collector"
    return series, {"histograms_with_buckets": sorted(n for n, (k, _) in kinds.items() if k == "histogram" and has_buckets(n)),
                    "histograms_as_summaries": sorted(n for n, (k, _) in kinds.items() if k == "histogram" and not has_buckets(n)),
                    "process_metrics": uses_process, "labels": series_labels}


# Grafana's interval variables, given a value so that the query parses.
GRAFANA_INTERVALS = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")


def parse_query(expr: str):
    """(metric names, label names) of a PromQL expression, parsed by the
    promql-parser package (a real PromQL parser: a syntax error raises
    ValueError). Labels: those matched in selectors, grouped by (by/without)
    and matched on (on/ignoring, group_left/right)."""
    import promql_parser  # PyPI promql-parser, in the venv scripts/install-deps.sh makes
    ast = promql_parser.parse(GRAFANA_INTERVALS.sub("5m", expr))
    names, labels = set(), set()

    def visit(node):
        kind = type(node).__name__
        if kind == "VectorSelector":
            if node.name:
                names.add(node.name)
            groups = [node.matchers.matchers] + list(node.matchers.or_matchers or [])
            for m in (m for g in groups for m in g):
                if m.name == "__name__":
                    names.add(m.value)
                else:
                    labels.add(m.name)
        elif kind == "AggregateExpr" and node.modifier is not None:
            labels.update(node.modifier.labels)
        elif kind == "BinaryExpr" and node.modifier is not None:
            if node.modifier.matching is not None:
                labels.update(node.modifier.matching.labels)
            labels.update(getattr(node.modifier, "group_labels", None) or [])
        return True

    promql_parser.walk(ast, visit)
    return names, labels


def self_test():
    cases = {
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job=~"x.*"}[$__rate_interval])))':
            ({"a_bucket"}, {"le", "route", "job"}),
        "sum(rate(b_total[5m])) / clamp_min(sum(rate(c_count[5m])), 1e-9) > 0.02": ({"b_total", "c_count"}, set()),
        'max by (consumer) (d) > 1000 and on (instance) up{role="gateway"} == 0': ({"d", "up"}, {"consumer", "instance", "role"}),
        "sum(e) by (author) * 60": ({"e"}, {"author"}),
    }
    for expr, want in cases.items():
        got = parse_query(expr)
        if got != want:
            raise SystemExit(f"metrics.py self-test failed: {expr!r} gave {got}, expected {want}")
    try:
        parse_query("sum(rate(x[5m])")
    except ValueError:
        pass
    else:
        raise SystemExit("metrics.py self-test failed: an unclosed parenthesis parsed")


def dashboard_queries(path: Path):
    dash = json.loads(path.read_text(encoding="utf-8"))

    def walk(panels):
        for p in panels:
            yield from walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    yield f"{path.name}: panel {p.get('title')!r}", t["expr"]
    yield from walk(dash.get("panels", []))


def check_dashboard(path: Path) -> list:
    """The dashboard's shape: unique panel ids, no overlapping panels, a query
    in every panel, and a row for each part the support lead and operator need."""
    dash = json.loads(path.read_text(encoding="utf-8"))
    errors, seen, boxes = [], set(), []
    panels = dash.get("panels", [])
    for p in panels:
        if p.get("id") in seen:
            errors.append(f"panel id {p.get('id')} is used twice")
        seen.add(p.get("id"))
        g = p.get("gridPos") or {}
        box = (g.get("x", 0), g.get("y", 0), g.get("w", 0), g.get("h", 0), p.get("title"))
        if box[0] + box[2] > 24:
            errors.append(f"panel {p.get('title')!r} is wider than the grid")
        for (x, y, w, h, t) in boxes:
            if box[0] < x + w and x < box[0] + box[2] and box[1] < y + h and y < box[1] + box[3]:
                errors.append(f"panels {t!r} and {p.get('title')!r} overlap")
        boxes.append(box)
        if p.get("type") != "row" and not any(t.get("expr") for t in p.get("targets", [])):
            errors.append(f"panel {p.get('title')!r} has no query")
    rows = {p.get("title") for p in panels if p.get("type") == "row"}
    for want in ("Response time", "Engagement", "Errors", "Resources", "Bot"):
        if want not in rows:
            errors.append(f"no row {want!r}")
    return errors


def rule_queries(path: Path):
    import yaml  # PyYAML, in the venv scripts/install-deps.sh makes
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            yield f"{path.name}: rule {rule.get('alert') or rule.get('record')!r}", str(rule["expr"])


def main(argv):
    pending_file = None
    if "--pending" in argv:
        i = argv.index("--pending")
        pending_file = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 3:
        raise SystemExit(__doc__)
    self_test()
    root, dashboard, rules = Path(argv[1]), Path(argv[2]), [Path(a) for a in argv[3:]]

    layout_errors = check_dashboard(dashboard)
    series, notes = exported(root)
    pending = {}
    if pending_file:
        for line in pending_file.read_text(encoding="utf-8").splitlines():
            name, _, why = line.partition("#")
            if name.strip():
                pending[name.strip()] = why.strip()

    used = {}  # name -> [where]
    queries = list(dashboard_queries(dashboard))
    dashboard_query_count = len(queries)
    for r in rules:
        queries += list(rule_queries(r))
    label_errors, syntax_errors = [], []
    for where, expr in queries:
        try:
            names, query_labels = parse_query(expr)
        except ValueError as e:
            syntax_errors.append(f"{where}: {e}: {expr}")
            continue
        for name in names:
            used.setdefault(name, []).append(where)
        if names and all(n in notes["labels"] for n in names):
            have = set().union(*(notes["labels"][n] for n in names)) | TARGET_LABELS
            for label in sorted(query_labels - have):
                label_errors.append(f"{where}: label {label!r} is on none of {', '.join(sorted(names))}")

    print(f"metrics: {len(series)} series exported by the roles (from the Rust sources)")
    if notes["histograms_with_buckets"]:
        print(f"  histograms with buckets: {', '.join(notes['histograms_with_buckets'])}")
    if notes["histograms_as_summaries"]:
        print(f"  histograms rendered as summaries (no buckets set): {', '.join(notes['histograms_as_summaries'])}")
    proc = sorted(n for n in series if n.startswith("process_"))
    print(f"  process_* metrics: {', '.join(proc) if proc else 'none'}"
          + (" (metrics-process)" if notes["process_metrics"] else ""))
    print(f"metrics: {len(queries)} queries ({dashboard.name}{''.join(', ' + r.name for r in rules)}) use {len(used)} metrics")

    missing, stale, waiting = [], [], []
    for name in sorted(used):
        if name in series or name in SYNTHETIC:
            if name in pending:
                stale.append(name)
            continue
        (waiting if name in pending else missing).append(name)
    for name in stale:
        print(f"  STALE PENDING {name}: exported now ({series.get(name)}); delete it from {pending_file}")
    for name in waiting:
        print(f"  PENDING {name}: not exported yet ({pending[name]}); used by {used[name][0]}")
    for name in missing:
        print(f"  MISSING {name}: used by {'; '.join(sorted(set(used[name])))}")
    for name in sorted(set(pending) - set(used)):
        print(f"  STALE PENDING {name}: no query uses it; delete it from {pending_file}")
        stale.append(name)
    for e in layout_errors:
        print(f"  DASHBOARD {e}")
    for e in label_errors:
        print(f"  LABEL {e}")
    for e in syntax_errors:
        print(f"  SYNTAX {e}")
    if missing or layout_errors or label_errors or syntax_errors:
        print(f"metrics: FAILED: {len(syntax_errors)} queries do not parse, {len(missing)} queried metrics are exported by no role, "
              f"{len(label_errors)} queried labels no metric carries, {len(layout_errors)} dashboard errors")
        return 1
    rows = [p["title"] for p in json.loads(dashboard.read_text(encoding="utf-8"))["panels"] if p.get("type") == "row"]
    print(f"dashboard: {dashboard_query_count} queries in rows {', '.join(rows)}; no overlapping panels")
    print(f"metrics: ok: {len(used) - len(waiting)} queried metrics are exported" + (f", {len(waiting)} pending" if waiting else "")
          + (f", {len(stale)} stale pending entries to delete" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
