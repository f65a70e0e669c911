#!/usr/bin/env bash
# Alertmanager checks for deploy/alertmanager/alertmanager.yml: the config is valid (amtool),
# each severity and the security alerts reach the intended receivers, and a live
# Alertmanager on loopback shows the alerts a root cause inhibits as suppressed (and the
# root cause itself, and unrelated alerts, as active). Needs amtool and prometheus-alertmanager
# (Debian package prometheus-alertmanager; .ci/ops.sh installs it) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${ALERTMANAGER_CONFIG:-deploy/alertmanager/alertmanager.yml}"

amtool check-config "$CONFIG"

# Routing: "labels... => receivers".
route() {
  local want=$1
  shift
  local got
  got=$(amtool config routes test --config.file="$CONFIG" "$@" 2>/dev/null)
  if [ "$got" != "$want" ]; then
    echo "routing $*: got '$got', want '$want'" >&2
    exit 1
  fi
  echo "route ok: $* => $got"
}
route ops-pager alertname=PointsAppDatabaseDown severity=critical
route ops-pager alertname=PaymentSuccessRateLow severity=critical
route ops-chat alertname=PointsAppRedisDown severity=warning
route ops-ticket alertname=SubscribeMessagesDead severity=info
route security,ops-chat alertname=SecurityEventsSpike severity=warning
route security,ops-chat alertname=RiskBlocksSpike severity=warning

# Every alert the rules define has a severity the routes know.
python3 - <<'PY'
import glob, re, sys
bad = []
for path in glob.glob("dashboards/alerts/*.rules.yml"):
    text = open(path).read()
    for block in text.split("- alert: ")[1:]:
        name = block.split()[0]
        m = re.search(r"severity:\s*(\w+)", block)
        if not m or m.group(1) not in ("critical", "warning", "info"):
            bad.append((path, name, m and m.group(1)))
if bad:
    sys.exit(f"alerts without a routed severity: {bad}")
print("every alert rule has a routed severity")
PY

# Inhibition, live: post alerts to a real Alertmanager and read their state back.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
prometheus-alertmanager --config.file="$CONFIG" --storage.path="$DATA" \
  --web.listen-address="127.0.0.1:$PORT" --cluster.listen-address= \
  --log.level=warn > "$DATA/alertmanager.log" 2>&1 &
AM=$!
trap 'kill $AM 2>/dev/null || true; wait $AM 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/-/ready" >/dev/null || { cat "$DATA/alertmanager.log"; exit 1; }

python3 - "$PORT" <<'PY'
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api/v2"
def alert(name, severity, instance="app-1:8080"):
    return {"labels": {"alertname": name, "severity": severity, "job": "points-app",
                       "instance": instance}, "annotations": {"summary": name}}
alerts = [
    alert("PointsAppDatabaseDown", "critical"),
    alert("PointsAppHighErrorRate", "critical"),
    alert("PointsAppLedgerCommitErrors", "warning"),
    alert("PaymentSuccessRateLow", "critical"),
    alert("PointsAppRedisDown", "warning"),        # not caused by the database: stays active
    alert("SecurityEventsSpike", "warning"),
]
req = urllib.request.Request(f"{base}/alerts", data=json.dumps(alerts).encode(),
                             headers={"Content-Type": "application/json"}, method="POST")
urllib.request.urlopen(req).read()
want = {
    "PointsAppDatabaseDown": "active",
    "PointsAppHighErrorRate": "suppressed",
    "PointsAppLedgerCommitErrors": "suppressed",
    "PaymentSuccessRateLow": "suppressed",
    "PointsAppRedisDown": "active",
    "SecurityEventsSpike": "active",
}
got = {}
for _ in range(50):
    listed = json.load(urllib.request.urlopen(f"{base}/alerts"))
    got = {a["labels"]["alertname"]: (a["status"]["state"], a["status"]["inhibitedBy"],
                                      sorted(r["name"] for r in a["receivers"]))
           for a in listed}
    if {k: v[0] for k, v in got.items()} == want:
        break
    time.sleep(0.2)
for name, state in want.items():
    if name not in got or got[name][0] != state:
        sys.exit(f"{name}: got {got.get(name)}, want {state}; all: {got}")
    if state == "suppressed" and not got[name][1]:
        sys.exit(f"{name} suppressed but not by an inhibition: {got[name]}")
assert got["PointsAppDatabaseDown"][2] == ["ops-pager"], got["PointsAppDatabaseDown"]
assert got["SecurityEventsSpike"][2] == ["ops-chat", "security"], got["SecurityEventsSpike"]
print("inhibition ok:", ", ".join(f"{k}={v[0]}" for k, v in sorted(got.items())))
PY
