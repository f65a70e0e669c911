#!/usr/bin/env bash
# Operations checks: alert rules (promtool check + unit tests), Prometheus config, Grafana
# dashboards and the metric catalogue (statically, and every query against a real Prometheus
# scraping a stub on loopback), Kubernetes manifests, nginx config (syntax and a live affinity
# test on loopback), docker-compose file, Dockerfile. See docs/operations.md, "Validation".
#
# Runs as root on a fresh Debian 12 machine with access to Debian's and PyPI's registries only:
# installs promtool (package prometheus), amtool and alertmanager (prometheus-alertmanager),
# nginx-light and docker-compose with apt, and
# kubernetes-validate + PyYAML with pip into a venv. None of the installed daemons is left
# running. Re-runs on the same machine skip what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

START=$SECONDS
step() { printf '\n==> ops: %s (%ss)\n' "$*" "$((SECONDS - START))"; }
VENV="${OPS_VENV:-/var/tmp/points-ops-venv}"

# Pids of the daemons the packages below could start (pgrep -x matches one name at a time).
daemon_pids() {
  pgrep -x prometheus || true
  pgrep -x nginx || true
  pgrep -x prometheus-alertmanager || true
}

install_debian_packages() {
  local wanted=()
  command -v promtool >/dev/null 2>&1 || wanted+=(prometheus)
  command -v nginx >/dev/null 2>&1 || wanted+=(nginx-light)
  command -v docker-compose >/dev/null 2>&1 || wanted+=(docker-compose)
  command -v amtool >/dev/null 2>&1 || wanted+=(prometheus-alertmanager)
  [ ${#wanted[@]} -eq 0 ] && return 0
  step "apt-get install ${wanted[*]}"
  # The prometheus and nginx packages start their daemons on install (prometheus would keep
  # port 9090, nginx port 80). policy-rc.d answering 101 tells invoke-rc.d and
  # deb-systemd-invoke not to start anything; ours is removed afterwards.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# points-app .ci/ops.sh: no service starts during this install\nexit 101\n' \
      > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local before
  before=" $(daemon_pids | tr '\n' ' ') "
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${wanted[@]}" > /tmp/points-ops-apt.log 2>&1 \
    || { tail -30 /tmp/points-ops-apt.log; [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d; return 1; }
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
  # Should a daemon have started anyway (a policy that allowed it), stop the ones this
  # install started, by pid, and keep them from starting at boot.
  local pid
  for pid in $(daemon_pids); do
    case "$before" in
      *" $pid "*) ;;
      *) echo "stopping $(cat /proc/"$pid"/comm 2>/dev/null || echo process) $pid started by the install"
         kill "$pid" 2>/dev/null || true ;;
    esac
  done
  if [ -d /run/systemd/system ]; then
    local unit
    for unit in "${wanted[@]}"; do
      case "$unit" in
        prometheus) systemctl disable --now prometheus >/dev/null 2>&1 || true ;;
        nginx-light) systemctl disable --now nginx >/dev/null 2>&1 || true ;;
      esac
    done
  fi
}

install_python_tools() {
  if [ -x "$VENV/bin/kubernetes-validate" ] && "$VENV/bin/python" -c 'import yaml, requests' 2>/dev/null; then
    return 0
  fi
  step "pip install kubernetes-validate PyYAML requests (venv $VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    'kubernetes-validate==1.37.0' 'PyYAML>=6,<7' 'requests>=2.31,<3'
}

install_debian_packages
install_python_tools
PY="$VENV/bin/python"

step "promtool check rules"
promtool check rules dashboards/alerts/*.rules.yml

step "promtool test rules"
promtool test rules dashboards/alerts/tests/*.yml

step "Alertmanager: amtool check-config, routes, live inhibition (loopback)"
bash dashboards/alertmanager_test.sh

step "promtool check config dashboards/prometheus.yml"
promtool check config dashboards/prometheus.yml
# dashboards/prometheus-kubernetes.yml uses kubernetes_sd_configs, which Debian's Prometheus
# build leaves out, so promtool here cannot load it; check_ops.py parses it as YAML.

step "dashboards, metric catalogue, rule hygiene, YAML, env names, Dockerfile"
"$PY" dashboards/check_ops.py --promtool "$(command -v promtool)"

step "dashboard queries against a live Prometheus (loopback)"
"$PY" dashboards/live_query_test.py

step "kubernetes-validate --strict deploy/k8s"
k8s_files=()
for f in deploy/k8s/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || k8s_files+=("$f")
done
"$VENV/bin/kubernetes-validate" --strict --quiet "${k8s_files[@]}"
if command -v kubectl >/dev/null 2>&1; then
  step "kubectl kustomize deploy/k8s"
  kubectl kustomize deploy/k8s > /dev/null
else
  echo "kubectl not installed: kustomization not rendered"
fi

step "nginx -t deploy/nginx/nginx.conf"
ngx_dir="$(mktemp -d)"
trap 'rm -rf "$ngx_dir"' EXIT
mkdir -p "$ngx_dir/logs"
# Upstream host names (Docker service names) do not resolve here.
sed -E 's/^([[:space:]]*server[[:space:]]+)[A-Za-z0-9_.-]+:([0-9]+)/\1127.0.0.1:\2/' \
  deploy/nginx/nginx.conf > "$ngx_dir/nginx.conf"
nginx -t -q -p "$ngx_dir" -c "$ngx_dir/nginx.conf" -g "pid $ngx_dir/nginx.pid;"

step "nginx affinity test (loopback)"
"$PY" deploy/nginx/affinity_test.py

step "docker-compose config deploy/docker-compose.yml"
docker-compose -f deploy/docker-compose.yml config -q

step "Compose stack as processes: app + sandbox with the file's environment, one payment"
cargo build -q --bin points-app --bin sandbox
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug"
POINTS_APP_BIN="$BIN_DIR/points-app" SANDBOX_BIN="$BIN_DIR/sandbox" \
  "$PY" deploy/compose_check.py

step "done in $((SECONDS - START))s"
