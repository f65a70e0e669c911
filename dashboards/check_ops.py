#!/usr/bin/env python3
"""Static checks of the operations files, run by .ci/ops.sh (standard library + PyYAML).

1. docs/metrics.md parses into a catalogue of metric names and types.
2. Every Grafana dashboard in dashboards/grafana/ is JSON with a `datasource` variable of type
   `datasource` (query `prometheus`), every panel and query uses that variable, ids are unique.
3. Every metric name used by a dashboard query or an alert rule is in the catalogue
   (histogram series `_bucket`/`_sum`/`_count` count as their histogram).
4. Every dashboard query is valid PromQL (written into a scratch rule file for promtool).
5. Every alert has `for`, a severity of critical/warning/info, summary, description and a
   runbook_url whose anchor is a heading of docs/operations.md, and the unit tests under
   dashboards/alerts/tests/ have both a firing and a not-firing case for it.
6. Every YAML file under deploy/ and dashboards/ parses.
7. Every environment variable that deploy/ gives the server is one the server reads (derived
   from the settings structs in src/config.rs), and the Dockerfile has what the deployment
   relies on (build of both binaries, non-root user, /healthz check, port 8080).

Usage: python3 dashboards/check_ops.py [--promtool PATH] [--scrape FILE] [--list-used]
  --scrape FILE  also check a saved `GET /metrics` answer (e.g. after one full payment flow):
                 every metric a dashboard or rule uses is exported, with the catalogue's type.
  --list-used    print the catalogue metrics that dashboards and rules use, one per line, and
                 exit (for a test in another language that scrapes a running server).
Prints one line per failure and a closing "N passed, N failed" line; exits 1 on any failure.
"""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover - .ci/ops.sh installs it
    print("PyYAML is required (pip install pyyaml)", file=sys.stderr)
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS_MD = os.path.join(ROOT, "docs", "metrics.md")
OPERATIONS_MD = os.path.join(ROOT, "docs", "operations.md")
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "dashboards", "grafana", "*.json")))
RULE_FILES = sorted(glob.glob(os.path.join(ROOT, "dashboards", "alerts", "*.rules.yml")))
TEST_FILES = sorted(glob.glob(os.path.join(ROOT, "dashboards", "alerts", "tests", "*.yml")))

# Series Prometheus itself makes: the scrape health and the alert state.
BUILTIN_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}
SEVERITIES = {"critical", "warning", "info"}
# PromQL words that look like identifiers but are not series names.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "atan2", "inf", "nan", "sum", "min", "max", "avg", "count",
    "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
}
# Grafana's variables, replaced before PromQL parsing.
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__range}": "1h",
    "$instance": ".*",
    "${instance}": ".*",
}


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        return ok


def load_catalogue(report):
    """`| \\`name\\` | type | ...` rows of docs/metrics.md -> {name: type}."""
    catalogue = {}
    row = re.compile(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|")
    with open(METRICS_MD, encoding="utf-8") as f:
        for line in f:
            m = row.match(line)
            if m:
                report.check(m.group(1) not in catalogue, f"metrics.md: {m.group(1)} listed twice")
                catalogue[m.group(1)] = m.group(2)
    report.check(len(catalogue) >= 30, f"metrics.md: only {len(catalogue)} metrics parsed")
    for name, kind in catalogue.items():
        if kind == "counter":
            report.check(name.endswith("_total"), f"metrics.md: counter {name} does not end in _total")
    return catalogue


def metric_names(expr):
    """Series names referenced by a PromQL expression (no full parser; good for our queries)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)       # string literals
    s = re.sub(r"\{[^{}]*\}", " ", s)                   # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                    # range and subquery selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+\S+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def known(name, catalogue):
    if name in catalogue or name in BUILTIN_SERIES:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and catalogue.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return True
    return False


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def check_dashboards(report, catalogue):
    exprs = []
    uids = set()
    report.check(len(DASHBOARDS) >= 2, "expected a business and a technical dashboard")
    for path in DASHBOARDS:
        name = os.path.relpath(path, ROOT)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except ValueError as e:
            report.check(False, f"{name}: not JSON: {e}")
            continue
        report.check(True, f"{name}: JSON")
        report.check("__inputs" not in d and "${DS_" not in json.dumps(d),
                     f"{name}: uses import-time ${{DS_...}} inputs, which provisioning does not fill")
        uid = d.get("uid")
        report.check(bool(uid) and uid not in uids, f"{name}: missing or duplicate uid")
        uids.add(uid)
        report.check(isinstance(d.get("title"), str) and d["title"], f"{name}: no title")
        variables = d.get("templating", {}).get("list", [])
        ds_vars = [v for v in variables if v.get("type") == "datasource"]
        report.check(
            any(v.get("name") == "datasource" and v.get("query") == "prometheus" for v in ds_vars),
            f"{name}: no `datasource` variable of type datasource with query prometheus",
        )
        ids = []
        for p in walk_panels(d.get("panels", [])):
            ids.append(p.get("id"))
            if p.get("type") == "row":
                continue
            title = p.get("title", "?")
            report.check(p.get("datasource", {}).get("uid") == "${datasource}",
                         f"{name}: panel '{title}' does not use the datasource variable")
            targets = p.get("targets", [])
            report.check(bool(targets), f"{name}: panel '{title}' has no query")
            for t in targets:
                report.check(t.get("datasource", {}).get("uid") == "${datasource}",
                             f"{name}: a query of '{title}' does not use the datasource variable")
                expr = t.get("expr", "")
                report.check(bool(expr.strip()), f"{name}: empty query in '{title}'")
                exprs.append((f"{name}: {title}", expr))
        report.check(len(ids) == len(set(ids)), f"{name}: duplicate panel ids")
        for v in variables:
            if v.get("type") == "query":
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                m = re.match(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", q or "")
                if m:
                    report.check(known(m.group(1), catalogue),
                                 f"{name}: variable {v.get('name')} uses unknown metric {m.group(1)}")
        for a in d.get("annotations", {}).get("list", []):
            if a.get("expr"):
                exprs.append((f"{name}: annotation {a.get('name')}", a["expr"]))
    for where, expr in exprs:
        for metric in sorted(metric_names(expr)):
            report.check(known(metric, catalogue), f"{where}: metric {metric} is not in docs/metrics.md")
    return exprs


def check_promql(report, exprs, promtool):
    """Writes every dashboard query as a recording rule and lets promtool parse them."""
    if not promtool:
        return
    rules = []
    for i, (where, expr) in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        report.check("$" not in expr, f"{where}: unknown Grafana variable in {expr}")
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
        path = f.name
    try:
        res = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        out = (res.stdout + res.stderr).strip()
        report.check(res.returncode == 0, f"dashboard queries are not valid PromQL:\n{out}")
    finally:
        os.unlink(path)


def anchors(path):
    """GitHub-style anchors of the markdown headings."""
    result = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#{1,6}\s+(.*)$", line)
            if m:
                text = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
                text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
                result.add(text)
    return result


def check_rules(report, catalogue):
    headings = anchors(OPERATIONS_MD) if os.path.exists(OPERATIONS_MD) else set()
    report.check(bool(headings), "docs/operations.md is missing or has no headings")
    alerts = {}
    for path in RULE_FILES:
        name = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                expr = str(rule.get("expr", ""))
                for metric in sorted(metric_names(expr)):
                    report.check(known(metric, catalogue),
                                 f"{name}: {rule.get('alert') or rule.get('record')}: metric {metric} is not in docs/metrics.md")
                alert = rule.get("alert")
                if not alert:
                    continue
                report.check(alert not in alerts, f"{name}: alert {alert} defined twice")
                alerts[alert] = name
                report.check("for" in rule, f"{name}: {alert} has no `for`")
                report.check(rule.get("labels", {}).get("severity") in SEVERITIES,
                             f"{name}: {alert} severity is not one of {sorted(SEVERITIES)}")
                ann = rule.get("annotations", {})
                for key in ("summary", "description", "runbook_url"):
                    report.check(bool(ann.get(key)), f"{name}: {alert} has no {key} annotation")
                anchor = str(ann.get("runbook_url", "")).partition("#")[2]
                report.check(anchor in headings,
                             f"{name}: {alert} runbook anchor #{anchor} is not a heading of docs/operations.md")
    firing, quiet = set(), set()
    for path in TEST_FILES:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for alert, name in sorted(alerts.items()):
        report.check(alert in firing, f"{name}: {alert} has no unit test where it fires")
        report.check(alert in quiet, f"{name}: {alert} has no unit test where it stays quiet")
    return alerts


def check_yaml(report):
    paths = []
    for pattern in ("deploy/**/*.yml", "deploy/**/*.yaml", "dashboards/**/*.yml", "dashboards/**/*.yaml"):
        paths += glob.glob(os.path.join(ROOT, pattern), recursive=True)
    report.check(bool(paths), "no YAML files found")
    for path in sorted(set(paths)):
        name = os.path.relpath(path, ROOT)
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            report.check(bool(docs), f"{name}: empty")
        except yaml.YAMLError as e:
            report.check(False, f"{name}: YAML does not parse: {e}")


def server_env_names():
    """APP_* / WECHAT_* names from the fields of `Settings` and `WechatSettings`."""
    path = os.path.join(ROOT, "src", "config.rs")
    if not os.path.exists(path):
        return None
    src = open(path, encoding="utf-8").read()
    names = {"DATABASE_URL", "REDIS_URL", "APP_CONFIG_FILE", "RUST_LOG"}
    for struct, prefix in (("Settings", "APP_"), ("WechatSettings", "WECHAT_")):
        m = re.search(r"pub struct " + struct + r"\s*\{(.*?)\n\}", src, flags=re.S)
        if not m:
            return None
        for field in re.findall(r"^\s*pub (\w+):", m.group(1), flags=re.M):
            if field != "wechat":
                names.add(prefix + field.upper())
    return names


def check_env(report):
    known_env = server_env_names()
    if known_env is None:
        print("src/config.rs not found or changed shape: environment names not checked")
        return
    given = {}
    for path in glob.glob(os.path.join(ROOT, "deploy", "k8s", "*.yaml")):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                name = doc.get("metadata", {}).get("name")
                if doc.get("kind") == "ConfigMap" or name == "points-app-secrets":
                    for key in list(doc.get("data") or {}) + list(doc.get("stringData") or {}):
                        given.setdefault(key, os.path.relpath(path, ROOT))
                if doc.get("kind") == "Deployment":
                    for c in doc["spec"]["template"]["spec"]["containers"]:
                        for e in c.get("env", []):
                            given.setdefault(e["name"], os.path.relpath(path, ROOT))
    with open(os.path.join(ROOT, "deploy", "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    for service in ("app", "sandbox"):
        for key in (compose["services"][service].get("environment") or {}):
            given.setdefault(key, f"deploy/docker-compose.yml ({service})")
    for key, where in sorted(given.items()):
        report.check(key in known_env, f"{where}: {key} is not a setting the server reads (src/config.rs)")
    # Commented-out settings in the ConfigMap must be real names too.
    text = open(os.path.join(ROOT, "deploy", "k8s", "configmap.yaml"), encoding="utf-8").read()
    for key in re.findall(r"^\s*#\s*((?:APP|WECHAT)_[A-Z0-9_]+):", text, flags=re.M):
        report.check(key in known_env, f"deploy/k8s/configmap.yaml: commented {key} is not a setting")


def check_dockerfile(report):
    path = os.path.join(ROOT, "Dockerfile")
    text = open(path, encoding="utf-8").read()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", text, flags=re.M | re.I)
    report.check(len(stages) >= 3, "Dockerfile: expected a multi-stage build")
    report.check("cargo chef cook" in text, "Dockerfile: no cargo-chef dependency layer")
    report.check(re.search(r"--bin points-app\b", text) and re.search(r"--bin sandbox\b", text),
                 "Dockerfile: must build the points-app and sandbox binaries")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    report.check(bool(users) and not users[-1].startswith(("root", "0")), "Dockerfile: runtime must not run as root")
    report.check(re.search(r"^HEALTHCHECK\b[\s\S]*?/healthz", text, flags=re.M), "Dockerfile: no HEALTHCHECK on /healthz")
    report.check(re.search(r"^EXPOSE\s+8080\b", text, flags=re.M), "Dockerfile: EXPOSE 8080 missing")
    with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as f:
        ignore = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    report.check("target/" in ignore and ".git/" in ignore, ".dockerignore must exclude target/ and .git/")
    for needed in ("src/", "migrations/", "Cargo.toml", "Cargo.lock", "tests/"):
        report.check(needed not in ignore and needed.rstrip("/") not in ignore,
                     f".dockerignore excludes {needed}, which the build needs")


def base_name(name, catalogue):
    """The catalogue name a series belongs to (`x_bucket` -> `x` for a histogram), or None."""
    if name in catalogue:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and catalogue.get(name[: -len(suffix)]) in ("histogram", "summary"):
            return name[: -len(suffix)]
    return None


def used_metrics(catalogue, exprs, rule_exprs):
    used = set()
    for expr in [e for _, e in exprs] + rule_exprs:
        for name in metric_names(expr):
            base = base_name(name, catalogue)
            if base:
                used.add(base)
    return used


def rule_expressions():
    result = []
    for path in RULE_FILES:
        with open(path, encoding="utf-8") as f:
            for group in yaml.safe_load(f).get("groups", []):
                result += [str(r.get("expr", "")) for r in group.get("rules", [])]
    return result


def check_scrape(report, catalogue, used, path):
    """A saved /metrics answer exports every used metric, with the catalogue's type."""
    exported = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
            if m:
                exported[m.group(1)] = m.group(2)
    for name in sorted(used):
        if report.check(name in exported, f"{path}: {name} is used by a dashboard or rule but not exported"):
            report.check(exported[name] == catalogue[name],
                         f"{path}: {name} is exported as {exported[name]}, docs/metrics.md says {catalogue[name]}")
    missing = sorted(set(catalogue) - set(exported))
    if missing:
        print(f"{path}: catalogue metrics not (yet) exported: " + ", ".join(missing))


def main(argv):
    promtool = None
    if "--promtool" in argv:
        promtool = argv[argv.index("--promtool") + 1]
    report = Report()
    catalogue = load_catalogue(report)
    if "--list-used" in argv:
        quiet = Report()
        exprs = check_dashboards(quiet, catalogue)
        for name in sorted(used_metrics(catalogue, exprs, rule_expressions())):
            print(name)
        return 0
    exprs = check_dashboards(report, catalogue)
    check_promql(report, exprs, promtool)
    alerts = check_rules(report, catalogue)
    if "--scrape" in argv:
        check_scrape(report, catalogue, used_metrics(catalogue, exprs, rule_expressions()),
                     argv[argv.index("--scrape") + 1])
    check_yaml(report)
    check_env(report)
    check_dockerfile(report)
    used = set()
    for _, expr in exprs:
        used |= metric_names(expr)
    unused = sorted(m for m in catalogue if not any(u == m or u.startswith(m + "_") for u in used))
    print(f"catalogue: {len(catalogue)} metrics; dashboards: {len(DASHBOARDS)} with {len(exprs)} queries; "
          f"alerts: {len(alerts)}")
    if unused:
        print("catalogue metrics no dashboard shows: " + ", ".join(unused))
    for failure in report.failed:
        print("FAIL:", failure)
    print(f"ops checks: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
