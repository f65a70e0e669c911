#!/usr/bin/env bash
# The admin console (admin/): clean install, type check, build, component tests, the
# first-load bundle budget, then the end-to-end tests in chromium when a server is given.
#   E2E_BASE_URL        the server serving /admin/ and /api/ (unset: e2e is skipped)
#   E2E_ADMIN_PASSWORD  the admin password that server was started with
#   E2E_SANDBOX_URL     the WeChat sandbox (pays orders, completes refunds); default: server port + 1
#   ADMIN_E2E_ONLY=1    skip install, checks and build (already done; the server serves dist/)
set -euo pipefail
cd "$(dirname "$0")/../admin"

step() { printf '\n==> admin: %s (%ss)\n' "$*" "$SECONDS"; }

# Playwright's own browser download is never wanted: the tests use Debian's chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

if [ "${ADMIN_E2E_ONLY:-}" != 1 ]; then
step "npm ci"
npm ci --no-progress

step "type check (vue-tsc)"
npx vue-tsc --noEmit

step "build (vite)"
npx vite build

step "component tests (vitest)"
npx vitest run

step "bundle budget"
node scripts/bundle-budget.mjs
fi

step "end-to-end tests (playwright)"
if [ -z "${E2E_BASE_URL:-}" ]; then
  echo "skipped: no server (set E2E_BASE_URL and E2E_ADMIN_PASSWORD to run the end-to-end tests)"
else
  if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi 'wenquanyi'; then
    echo "installing chromium and fonts-wqy-microhei"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  fi
  : "${E2E_ADMIN_PASSWORD:?E2E_ADMIN_PASSWORD must be set with E2E_BASE_URL}"
  CHROMIUM_PATH="$(command -v chromium)" npx playwright test
fi

step "done"
