#!/usr/bin/env bash
# One command for a load test of points-app: builds (release by default), starts the database
# (SQLite or a fresh MariaDB database), a private Redis, the standalone WeChat sandbox and one
# or three server instances (three behind a round-robin proxy), runs a scenario, audits the
# ledger, writes the report under loadtest/reports/, and stops everything it started.
#
#   loadtest/run.sh [--scenario full|hot|read|notify] [--users N] [--instances 1|3]
#                   [--db sqlite|mariadb] [--duration 60s] [--ramp-up 10s] [--think 1s]
#                   [--faults] [--no-redis] [--debug] [--no-build] [--keep]
#                   [-- extra flags for `loadtest run`, e.g. --max-requests 100000 --spend 0.3]
#
# Traffic stays on 127.0.0.1. Every run is bounded: the scenario's duration, a request cap
# (--max-requests, default 2,000,000) and a hard `timeout` around the load generator.
# Exit status: 0 when the run finished and the audit passed, 1 when a check failed, 2 on a
# set-up error.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SCENARIO=full USERS="" INSTANCES=1 DB=sqlite DURATION=60s RAMP=10s THINK=1s
FAULTS=0 REDIS=1 PROFILE=release BUILD=1 KEEP=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) SCENARIO="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --instances) INSTANCES="$2"; shift 2 ;;
    --db) DB="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --ramp-up) RAMP="$2"; shift 2 ;;
    --think) THINK="$2"; shift 2 ;;
    --faults) FAULTS=1; shift ;;
    --no-redis) REDIS=0; shift ;;
    --debug) PROFILE=debug; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$SCENARIO" in full|hot|read|notify) ;; *) echo "run.sh: --scenario full|hot|read|notify" >&2; exit 2 ;; esac
case "$DB" in sqlite|mariadb) ;; *) echo "run.sh: --db sqlite|mariadb" >&2; exit 2 ;; esac
case "$INSTANCES" in 1|2|3|4) ;; *) echo "run.sh: --instances 1..4" >&2; exit 2 ;; esac
if [ -z "$USERS" ]; then
  case "$SCENARIO" in full) USERS=1000 ;; hot) USERS=50 ;; read) USERS=500 ;; notify) USERS=500 ;; esac
fi
secs() { # 60s / 2m / 500ms -> whole seconds (rounded up)
  local v="$1"
  case "$v" in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *s) echo "${v%s}" | cut -d. -f1 ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *) echo "$v" ;;
  esac
}
DUR_S=$(secs "$DURATION"); RAMP_S=$(secs "$RAMP")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/$PROFILE"
if [ "$BUILD" = 1 ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  echo "==> cargo build ${flag[*]} (points-app, sandbox, loadtest)"
  cargo build "${flag[@]}" -p points-app -p loadtest --bins
fi
for b in points-app sandbox loadtest; do
  [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing (build first, or drop --no-build)" >&2; exit 2; }
done

# Ports on loopback (override the base with LOADTEST_PORT_BASE).
BASE="${LOADTEST_PORT_BASE:-18080}"
TARGET_PORT=$BASE
SANDBOX_PORT=$((BASE + 1))
REDIS_PORT=$((BASE + 2))
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $TARGET_PORT $SANDBOX_PORT $REDIS_PORT $(seq $((BASE + 11)) $((BASE + 10 + INSTANCES))); do
  if port_busy "$p"; then echo "run.sh: port $p is in use (another run?); set LOADTEST_PORT_BASE" >&2; exit 2; fi
done

RUN="$(mktemp -d "${TMPDIR:-/tmp}/loadtest.XXXXXX")"
mkdir -p "$RUN/pids" "$RUN/logs"
STAMP="$(date -u +%Y%m%d%H%M%S)"
DBNAME="points_load_$STAMP"
ADMIN_PASSWORD="load-test-admin-password-$STAMP"
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true

started=()
cleanup() {
  local code=$?
  set +e
  [ -n "${FAULT_PID:-}" ] && kill "$FAULT_PID" 2>/dev/null
  for f in "$RUN"/pids/*.pid; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in mariadb.pid) continue ;; esac
    kill -TERM "$(cat "$f")" 2>/dev/null
  done
  for _ in $(seq 1 50); do
    alive=0
    for f in "$RUN"/pids/*.pid; do
      [ -e "$f" ] || continue
      case "$(basename "$f")" in mariadb.pid) continue ;; esac
      kill -0 "$(cat "$f")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for f in "$RUN"/pids/*.pid; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in mariadb.pid) continue ;; esac
    kill -KILL "$(cat "$f")" 2>/dev/null
  done
  if [ "$DB" = mariadb ] && [ "$KEEP" = 0 ]; then
    mariadb -uroot -h127.0.0.1 --protocol=tcp -e "DROP DATABASE IF EXISTS $DBNAME" 2>/dev/null
  fi
  if [ "$KEEP" = 1 ] || [ $code -ne 0 ]; then
    echo "run.sh: logs and data kept in $RUN"
  else
    rm -rf "$RUN"
  fi
  exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # url seconds
  for _ in $(seq 1 $(($2 * 5))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "run.sh: $1 did not answer in $2 s" >&2
  return 1
}

# Database.
if [ "$DB" = mariadb ]; then
  mariadb-admin -uroot -h127.0.0.1 --protocol=tcp ping >/dev/null 2>&1 \
    || { echo "run.sh: MariaDB is not answering on 127.0.0.1:3306" >&2; exit 2; }
  mariadb -uroot -h127.0.0.1 --protocol=tcp -e "DROP DATABASE IF EXISTS $DBNAME; CREATE DATABASE $DBNAME"
  DATABASE_URL="mysql://root@127.0.0.1:3306/$DBNAME"
  # Watched (CPU, RSS) but never stopped: the system MariaDB, shared with anything else on it.
  mpid="$({ pgrep -x mariadbd || pgrep -x mysqld; } 2>/dev/null | head -n 1 || true)"
  if [ -n "$mpid" ]; then echo "$mpid" > "$RUN/pids/mariadb.pid"; fi
else
  DATABASE_URL="sqlite://$RUN/points.sqlite"
fi

# Redis: a private one, so restarting it (--faults) disturbs nobody else's.
start_redis() {
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    > "$RUN/logs/redis.log" 2>&1 &
  echo $! > "$RUN/pids/redis.pid"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "run.sh: redis-server did not start" >&2; return 1
}
REDIS_ENV=()
if [ "$REDIS" = 1 ]; then
  command -v redis-server >/dev/null || { echo "run.sh: redis-server not installed (or use --no-redis)" >&2; exit 2; }
  start_redis
  REDIS_ENV=(REDIS_URL="redis://127.0.0.1:$REDIS_PORT" APP_REDIS_PREFIX="lt$STAMP")
fi

# The standalone sandbox, shared by every instance; notification retries 100x faster.
"$BIN/sandbox" --port "$SANDBOX_PORT" --keys-dir "$RUN/sandbox" --time-scale 0.01 \
  --max-in-flight 256 > "$RUN/logs/sandbox.log" 2>&1 &
echo $! > "$RUN/pids/sandbox.pid"
wait_http "http://127.0.0.1:$SANDBOX_PORT/sandbox/keys" 30
eval "$("$BIN/sandbox" env --keys-dir "$RUN/sandbox" --base-url "http://127.0.0.1:$SANDBOX_PORT")"

# Server instances. Rate limits are raised for the run (the load comes from one IP and a
# virtual user pays far faster than a shopper); logs at warn.
instance_port() { if [ "$INSTANCES" = 1 ]; then echo "$TARGET_PORT"; else echo $((BASE + 10 + $1)); fi; }
start_instance() { # index
  local i=$1 port
  port=$(instance_port "$i")
  env APP_HOST=127.0.0.1 APP_PORT="$port" APP_DATA_DIR="$RUN/data$i" APP_ENV=local \
    DATABASE_URL="$DATABASE_URL" "${REDIS_ENV[@]}" \
    APP_DB_POOL_SIZE="${APP_DB_POOL_SIZE:-16}" APP_ADMIN_PASSWORD="$ADMIN_PASSWORD" APP_LOG_FORMAT=json RUST_LOG="${LOADTEST_SERVER_LOG:-warn}" \
    APP_RATE_LIMIT_PAYMENTS_PER_MIN=1000000 APP_RATE_LIMIT_POINTS_QUERIES_PER_MIN=1000000 \
    APP_RATE_LIMIT_LOGIN_PER_MIN_PER_IP=10000000 \
    WECHAT_NOTIFY_BASE_URL="http://127.0.0.1:$TARGET_PORT" \
    "$BIN/points-app" >> "$RUN/logs/server$i.log" 2>&1 &
  echo $! > "$RUN/pids/server$i.pid"
  wait_http "http://127.0.0.1:$port/readyz" 60
}
start_instance 1
for i in $(seq 2 "$INSTANCES"); do start_instance "$i"; done
METRICS=()
for i in $(seq 1 "$INSTANCES"); do METRICS+=(--metrics-url "http://127.0.0.1:$(instance_port "$i")"); done
if [ "$INSTANCES" -gt 1 ]; then
  UP=()
  for i in $(seq 1 "$INSTANCES"); do UP+=(--upstream "127.0.0.1:$(instance_port "$i")"); done
  "$BIN/loadtest" proxy --listen "127.0.0.1:$TARGET_PORT" "${UP[@]}" > "$RUN/logs/proxy.log" 2>&1 &
  echo $! > "$RUN/pids/proxy.pid"
  wait_http "http://127.0.0.1:$TARGET_PORT/healthz" 10
fi
echo "==> $INSTANCES instance(s) on $DB$([ "$REDIS" = 1 ] && echo " + Redis"), sandbox :$SANDBOX_PORT, target :$TARGET_PORT"

# Faults: kill -9 one instance at 30% of the run and restart it; restart Redis at 60%;
# every payment's notification is sent 3 times (2 duplicates) and held back 2 s.
FAULT_ARGS=()
if [ "$FAULTS" = 1 ]; then
  FAULT_ARGS=(--duplicates 2 --delay-ms 2000)
  (
    set +e
    sleep $((RAMP_S + DUR_S * 3 / 10))
    victim=$INSTANCES
    echo "==> fault: kill -9 server$victim (pid $(cat "$RUN/pids/server$victim.pid"))" >&2
    kill -KILL "$(cat "$RUN/pids/server$victim.pid")"
    sleep 3
    echo "==> fault: restarting server$victim" >&2
    start_instance "$victim"
    echo "==> fault: server$victim back" >&2
    sleep $((DUR_S * 3 / 10))
    if [ "$REDIS" = 1 ]; then
      echo "==> fault: restarting Redis" >&2
      kill -KILL "$(cat "$RUN/pids/redis.pid")"
      sleep 1
      start_redis
      echo "==> fault: Redis back" >&2
    fi
  ) &
  FAULT_PID=$!
fi

SETUP="{\"scenario\":\"$SCENARIO\",\"users\":$USERS,\"instances\":$INSTANCES,\"db\":\"$DB\",\"redis\":$([ "$REDIS" = 1 ] && echo true || echo false),\"faults\":$([ "$FAULTS" = 1 ] && echo true || echo false),\"profile\":\"$PROFILE\",\"duration\":\"$DURATION\",\"ramp_up\":\"$RAMP\",\"think\":\"$THINK\",\"rate_limits\":\"raised to 1e6/min\",\"sandbox_time_scale\":0.01}"
set +e
timeout --kill-after=10 $((RAMP_S + DUR_S + 900)) \
  env LOADTEST_ADMIN_PASSWORD="$ADMIN_PASSWORD" "$BIN/loadtest" run \
  --scenario "$SCENARIO" --users "$USERS" --duration "$DURATION" --ramp-up "$RAMP" --think "$THINK" \
  --target "http://127.0.0.1:$TARGET_PORT" --sandbox "http://127.0.0.1:$SANDBOX_PORT" \
  --database-url "$DATABASE_URL" --keys-dir "$RUN/sandbox" --pid-dir "$RUN/pids" \
  "${METRICS[@]}" --report-root "${LOADTEST_REPORT_ROOT:-$ROOT/loadtest/reports}" \
  --command "loadtest/run.sh --scenario $SCENARIO --users $USERS --instances $INSTANCES --db $DB --duration $DURATION$([ "$FAULTS" = 1 ] && echo ' --faults')" \
  --setup "$SETUP" --cost-out "$RUN/cpu-cost.txt" "${FAULT_ARGS[@]}" "${EXTRA[@]}"
code=$?
set -e
if [ -n "${FAULT_PID:-}" ]; then wait "$FAULT_PID" 2>/dev/null || true; FAULT_PID=""; fi
errors=$(cat "$RUN"/logs/server*.log | grep -c '"level":"ERROR"' || true)
echo "==> server log lines at ERROR: $errors (logs: $RUN/logs, kept with --keep)"
if [ "$errors" -gt 0 ]; then
  echo "==> server ERROR causes:"
  grep -h '"level":"ERROR"' "$RUN"/logs/server*.log | grep -o '"cause":"[^"\\]*' | sort | uniq -c | sort -rn | head -5
fi
# CPU per paid order, as `loadtest run` measured it (also in the report's summary).
if [ -s "$RUN/cpu-cost.txt" ]; then
  echo "==> $(cat "$RUN/cpu-cost.txt")"
else
  echo "==> CPU during the load: n/a (the load generator wrote no figures)"
fi
exit $code
