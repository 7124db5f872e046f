#!/usr/bin/env bash
# Runs the whole test suite (unit, privileged and e2e; as root) and ends with one line
# "N passed, N failed[, N skipped]" (scripts/summary.mjs); the exit status is non-zero exactly when
# N failed is not 0. Set up first: scripts/setup.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
report=$(mktemp)
IMGBUILD_SKIP_BUILD=1 npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
line=$(node scripts/summary.mjs "$report" "$status")
summary_status=$?
rm -f "$report"
# summary.mjs itself failing must not pass for a clean run
if [ -z "$line" ]; then line="0 passed, 1 failed"; summary_status=1; fi
echo "$line"
exit "$summary_status"
