#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, property, kubectl suites, and each
# benchmark once in test mode), after installing what the tests need. Ends with one summary line
# "N passed, N failed" over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($i ~ /^passed;?$/) p += $(i - 1);
         if ($i ~ /^failed;?$/) f += $(i - 1);
       }
     }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
