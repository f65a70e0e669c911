#!/usr/bin/env bash
# A cheap smoke of the load test for CI: 20 shoppers for 10 s through the whole flow on
# SQLite + a private Redis, debug build (reuses what `cargo test` built), then the ledger
# audit. Fails when the audit fails or the stack does not start.
set -euo pipefail
cd "$(dirname "$0")/.."
reports="$(mktemp -d "${TMPDIR:-/tmp}/loadtest-smoke.XXXXXX")"
trap 'rm -rf "$reports"' EXIT
LOADTEST_REPORT_ROOT="$reports" loadtest/run.sh --scenario full --users 20 --duration 10s \
  --ramp-up 2s --think 200ms --db sqlite --debug -- --max-requests 20000
