#!/usr/bin/env bash
# API fuzz run: Schemathesis (PyPI, pinned) generates valid and malformed requests from the
# OpenAPI document the server serves (/api-docs/openapi.json) and sends them to the real
# server on its embedded defaults (SQLite in a temporary directory, in-memory cache and nonce
# store, the WeChat sandbox), signed in and signed through tests/fuzz/hooks.py.
#
# Fails when any answer is a 5xx, has a status the document does not list, or is an error
# without the JSON body {code, message, trace_id} or a body unlike its documented schema;
# then when a seeded user's balance moved
# other than by the points changes the run was answered with (a bystander's not at all) or
# a ledger does not sum to its balance, and last when the ledger audit (`loadtest audit`)
# finds a problem. Bounded: FUZZ_MAX_EXAMPLES cases per operation (default 40), seed
# FUZZ_SEED (default 20261207) so a CI failure replays locally with the same inputs.
#
# Needs python3 with venv and PyPI; the venv is kept in ${FUZZ_VENV:-/var/tmp/points-fuzz-venv}
# and reused. About 80 s on two cores once built. See README.md, "API fuzz run".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

START=$SECONDS
step() { printf '\n==> fuzz: %s (%ss)\n' "$*" "$((SECONDS - START))"; }

SCHEMATHESIS_VERSION="4.32.5"
VENV="${FUZZ_VENV:-/var/tmp/points-fuzz-venv}"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-40}"
SEED="${FUZZ_SEED:-20261207}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/points-app-target}"

if [ ! -x "$VENV/bin/schemathesis" ] \
  || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  step "pip install schemathesis==$SCHEMATHESIS_VERSION (venv $VENV)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

step "cargo build (points-app, loadtest for the ledger audit)"
cargo build -q -p points-app -p loadtest --bins

RUN="$(mktemp -d "${TMPDIR:-/tmp}/points-fuzz.XXXXXX")"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  local rc=$?
  stop_server
  if [ "$rc" != 0 ]; then
    echo "fuzz: failed; the server's log (last 40 lines) and the reports are in $RUN" >&2
    tail -40 "$RUN/server.log" >&2 2>/dev/null || true
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT

# Two free adjacent ports on loopback: the server's and the sandbox's (APP_PORT + 1).
PORT="$("$VENV/bin/python" - <<'EOF'
import socket
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(port); break
EOF
)"
BASE="http://127.0.0.1:$PORT"
ADMIN_PASSWORD="fuzz-admin-password-1"

step "server on $BASE (SQLite in $RUN)"
# Rate limits raised so the fuzzer's requests reach the handlers (429 is still documented).
APP_PORT="$PORT" APP_SANDBOX_PORT="$((PORT + 1))" APP_DATA_DIR="$RUN" \
  APP_ADMIN_PASSWORD="$ADMIN_PASSWORD" APP_SANDBOX_TIME_SCALE=0.01 APP_LOG_FORMAT=json \
  APP_RATE_LIMIT_PAYMENTS_PER_MIN=100000 APP_RATE_LIMIT_POINTS_QUERIES_PER_MIN=100000 \
  APP_RATE_LIMIT_LOGIN_PER_MIN_PER_IP=100000 \
  "$CARGO_TARGET_DIR/debug/points-app" >"$RUN/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "fuzz: the server exited" >&2; exit 1; }
  sleep 1
done
curl -fsS "$BASE/readyz" >/dev/null

export FUZZ_BASE_URL="$BASE" FUZZ_STATE="$RUN/state.json" FUZZ_ADMIN_PASSWORD="$ADMIN_PASSWORD"
step "seed: admin, shopper, merchant owner, bystanders with points"
"$VENV/bin/python" tests/fuzz/hooks.py seed

step "schemathesis run (at most $MAX_EXAMPLES cases per operation, seed $SEED)"
# Checks: no 5xx, every status listed in the document, and error_body_is_json (the hooks').
# Response bodies are checked against the schemas the document gives (every JSON answer has
# one: ErrorBody for errors, NotifyFailure on the WeChat notification routes).
# Run from the temporary directory: Schemathesis keeps a cache in the working directory.
# One worker: with two threads, CPython 3.11.7's ast.parse (Hypothesis describing its
# strategies) can fail with "AST constructor recursion depth mismatch".
(cd "$RUN" && PYTHONPATH="$ROOT/tests/fuzz" SCHEMATHESIS_HOOKS=hooks \
  "$VENV/bin/schemathesis" run "$BASE/api-docs/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,error_body_is_json \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
  --generation-database none --workers 1 --request-timeout 20 \
  --report junit --report-dir "$RUN/report" --no-color)

step "balances and ledgers of the seeded users"
"$VENV/bin/python" tests/fuzz/hooks.py check

stop_server
step "ledger audit (loadtest audit)"
"$CARGO_TARGET_DIR/debug/loadtest" audit --database-url "sqlite://$RUN/points.sqlite"

step "done"
