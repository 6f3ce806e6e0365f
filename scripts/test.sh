#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, property, kubectl suites, and each
# benchmark once in test mode), after installing what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --all-targets --locked "$@"
