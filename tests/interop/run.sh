#!/usr/bin/env bash
# Interoperability: the wechatpayv3 SDK (PyPI) as the merchant against our sandbox, and
# notifications built with Python's `cryptography` checked by our real verifier.
# Traffic stays on 127.0.0.1; everything started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV="${INTEROP_VENV:-/var/tmp/interop-venv}"
PYTHON="${PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-target}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt

timeout 1200 cargo build --quiet --bin sandbox
BIN="$TARGET/debug/sandbox"

WORK="$(mktemp -d)"
SANDBOX_PID=""
cleanup() {
    if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        kill -INT "$SANDBOX_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SANDBOX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SANDBOX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Port 0: the sandbox picks a free port and prints it.
APP_LOG_FORMAT=json "$BIN" --host 127.0.0.1 --port 0 --keys-dir "$WORK/keys" --time-scale 0.001 >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
BASE_URL=""
for _ in $(seq 1 300); do
    BASE_URL="$(sed -n 's/^sandbox listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/sandbox.log")"
    [ -n "$BASE_URL" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.log"; exit 1; }
    sleep 0.1
done
[ -n "$BASE_URL" ] || { echo "sandbox did not start"; cat "$WORK/sandbox.log"; exit 1; }
echo "interop: sandbox at $BASE_URL"

status=0
timeout 300 "$VENV/bin/python" tests/interop/sdk_merchant.py --base-url "$BASE_URL" --keys-dir "$WORK/keys" || status=1
timeout 300 "$VENV/bin/python" tests/interop/notification_tamper.py --verifier "$BIN" --work "$WORK" || status=1
exit "$status"
