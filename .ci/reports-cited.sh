#!/usr/bin/env bash
# Load-test reports kept in git are exactly the runs a document cites by name: a cited run
# that is missing breaks a link in the docs, and an uncited one is only weight in every clone.
# New runs are ignored by .gitignore; keep one with `git add -f loadtest/reports/<run>`.
set -euo pipefail
cd "$(dirname "$0")/.."
name='20[0-9]{6}T[0-9]{6}Z-(full|hot|read|notify)'
tracked="$(git ls-files loadtest/reports | cut -d/ -f3 | grep -E "^$name\$" | sort -u || true)"
cited="$(git ls-files '*.md' ':!:loadtest/reports/**' | xargs grep -ohE "$name" | sort -u || true)"
status=0
for run in $(comm -13 <(echo "$tracked") <(echo "$cited")); do
  echo "reports-cited: $run is cited but not in loadtest/reports/ (git add -f it)" >&2
  status=1
done
for run in $(comm -23 <(echo "$tracked") <(echo "$cited")); do
  echo "reports-cited: loadtest/reports/$run is tracked but no document cites it (git rm -r it)" >&2
  status=1
done
[ "$status" = 0 ] && echo "reports-cited: $(echo "$tracked" | grep -c . || true) tracked reports, all cited"
exit "$status"
