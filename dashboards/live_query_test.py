#!/usr/bin/env python3
"""Runs every dashboard query against a real Prometheus that scrapes a stub exporter on
loopback, and checks each one returns data.

The stub exports every metric of docs/metrics.md with the label values the catalogue
documents, counters growing and histograms filling over time, the way the server does. So a
query that names a label or a label value the catalogue does not have, or that aggregates
two sides with mismatched labels, comes back empty and fails here. It also checks the
`instance` variable of the dashboards and that Prometheus loads the alert rules.

Needs the `prometheus` binary (Debian package prometheus). Only 127.0.0.1 is used; the
Prometheus it starts is stopped by pid at the end.
Usage: python3 dashboards/live_query_test.py
"""

import glob
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
ROUTES = [("POST", "/api/payments"), ("GET", "/api/points/balance"), ("POST", "/api/wechat/pay/notify")]

# name -> (type, [label sets]); label values as documented in docs/metrics.md.
def series():
    s = {
        "http_requests_total": ("counter", [
            {"method": m, "route": r, "status": st} for m, r in ROUTES for st in ("200", "400", "500")]),
        "http_request_duration_seconds": ("histogram", [{"method": m, "route": r} for m, r in ROUTES]),
        "http_requests_in_flight": ("gauge", [{}]),
        "db_pool_connections": ("gauge", [{"state": "idle"}, {"state": "in_use"}]),
        "redis_pool_connections": ("gauge", [{"state": "idle"}, {"state": "in_use"}]),
        "dependency_up": ("gauge", [{"dependency": "database"}, {"dependency": "redis"}]),
        "process_cpu_seconds_total": ("counter", [{}]),
        "process_resident_memory_bytes": ("gauge", [{}]),
        "process_open_fds": ("gauge", [{}]),
        "points_actors_active": ("gauge", [{}]),
        "points_actor_mailbox_depth": ("gauge", [{}]),
        "ledger_commit_batch_size": ("histogram", [{}]),
        "ledger_commits_total": ("counter", [{"result": r} for r in ("ok", "conflict", "error")]),
        "cache_requests_total": ("counter", [
            {"layer": layer, "kind": k, "result": r}
            for layer, k in (("l1", "session"), ("l1", "merchant"), ("l1", "rules"), ("l2", "balance"), ("l2", "merchant_stats"))
            for r in ("hit", "miss")]),
        "cache_errors_total": ("counter", [{"op": o} for o in ("get", "set", "del", "publish", "subscribe")]),
        "outbox_pending": ("gauge", [{}]),
        "outbox_oldest_age_seconds": ("gauge", [{}]),
        "payments_created_total": ("counter", [{}]),
        "payments_completed_total": ("counter", [{"result": r} for r in ("success", "failed", "closed")]),
        "payment_duration_seconds": ("histogram", [{}]),
        "payment_amount_fen_total": ("counter", [{}]),
        "points_awards_total": ("counter", [{"result": r} for r in ("success", "failed")]),
        "points_award_delay_seconds": ("histogram", [{}]),
        "points_changes_total": ("counter", [{"kind": k} for k in ("award", "deduct", "expire", "clawback", "adjust")]),
        "points_total": ("counter", [{"kind": k} for k in ("award", "deduct", "expire", "clawback", "adjust")]),
        "user_registrations_total": ("counter", [{}]),
        "wechat_notifications_total": ("counter", [
            {"kind": k, "result": r} for k in ("pay", "refund") for r in ("ok", "duplicate", "rejected", "error")]),
        "wechat_calls_total": ("counter", [
            {"call": c, "outcome": r} for c in ("prepay", "query", "refund", "code2session") for r in ("ok", "timeout")]),
        "wechat_call_duration_seconds": ("histogram", [{"call": c} for c in ("prepay", "query", "refund", "code2session")]),
        "subscribe_messages_total": ("counter", [
            {"kind": k, "result": r} for k in ("payment", "refund") for r in ("sent", "retry", "refused", "dead")]),
        "risk_blocks_total": ("counter", [{"rule": "payments_per_minute"}]),
        "security_events_total": ("counter", [{"event": "bad_signature"}, {"event": "expired_token"}]),
        "rate_limited_total": ("counter", [{"limit": "payments"}, {"limit": "points_queries"}]),
    }
    return s


def labels(ls, extra=None):
    items = dict(ls)
    if extra:
        items.update(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(items.items())) + "}"


def exposition(t):
    """The stub's /metrics at t seconds after start: everything moves."""
    out = []
    for name, (kind, sets) in series().items():
        out.append(f"# TYPE {name} {kind}")
        for i, ls in enumerate(sets):
            rate = 5 + 3 * i
            if kind == "counter":
                out.append(f"{name}{labels(ls)} {rate * t:.3f}")
            elif kind == "gauge":
                out.append(f"{name}{labels(ls)} {rate + (t % 7)}")
            else:
                n = rate * t
                for j, le in enumerate(BUCKETS):
                    out.append(f"{name}_bucket{labels(ls, {'le': str(le)})} {n * (j + 1) / (len(BUCKETS) + 1):.3f}")
                out.append(f"{name}_bucket{labels(ls, {'le': '+Inf'})} {n:.3f}")
                out.append(f"{name}_sum{labels(ls)} {n * 0.2:.3f}")
                out.append(f"{name}_count{labels(ls)} {n:.3f}")
    return "\n".join(out) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    prometheus = shutil.which("prometheus")
    if not prometheus:
        print("prometheus not found (Debian package prometheus)", file=sys.stderr)
        return 2
    started = time.monotonic()

    class Stub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = exposition(time.monotonic() - started + 1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="points-prom-")
    os.symlink(os.path.join(ROOT, "dashboards", "alerts"), os.path.join(tmp, "alerts"))
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [alerts/*.rules.yml]\n"
            "scrape_configs:\n"
            "  - job_name: points-app\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{stub.server_address[1]}']}}]\n"
        )
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/data",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    failures = []
    passed = 0

    def api(path, **params):
        url = base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("prometheus did not start:\n" + open(log.name).read())
                time.sleep(0.2)
        # Enough samples for rate() over a 10 s window.
        time.sleep(12)

        rules = api("/api/v1/rules")
        loaded = sum(len(g["rules"]) for g in rules["data"]["groups"])
        alerts_defined = 0
        for path in glob.glob(os.path.join(ROOT, "dashboards", "alerts", "*.rules.yml")):
            alerts_defined += open(path).read().count("- alert:")
        if loaded == alerts_defined and loaded > 0:
            passed += 1
        else:
            failures.append(f"Prometheus loaded {loaded} rules, the files define {alerts_defined}")

        values = api("/api/v1/label/instance/values", **{"match[]": "http_requests_in_flight"})["data"]
        if values:
            passed += 1
        else:
            failures.append("the dashboards' instance variable (label_values(http_requests_in_flight, instance)) is empty")
        instance = values[0] if values else ".*"

        subst = {"$__rate_interval": "10s", "$__interval": "5s", "$__range": "1m", "${__range}": "1m",
                 "$instance": instance, "${instance}": instance}
        for path in sorted(glob.glob(os.path.join(ROOT, "dashboards", "grafana", "*.json"))):
            d = json.load(open(path))
            stack = list(d.get("panels", []))
            while stack:
                p = stack.pop(0)
                stack.extend(p.get("panels", []))
                for t in p.get("targets", []):
                    expr = t["expr"]
                    for k, v in subst.items():
                        expr = expr.replace(k, v)
                    res = api("/api/v1/query", query=expr)
                    where = f"{os.path.basename(path)}: {p.get('title')} [{t.get('refId')}]"
                    if res.get("status") != "success":
                        failures.append(f"{where}: {res.get('error')}")
                    elif not res["data"]["result"]:
                        failures.append(f"{where}: no data for {expr}")
                    else:
                        passed += 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        stub.shutdown()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    for f in failures:
        print("FAIL:", f)
    print(f"dashboard queries on a live Prometheus: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
