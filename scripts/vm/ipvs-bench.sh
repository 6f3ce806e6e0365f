#!/usr/bin/env bash
# The IPVS benchmark of issue 9 in the test VM (BENCHMARKS.md, "IPVS"): dataplane/examples/ipvs_bench
# programs SERVICES x DESTS from empty through IpvsClient, dumps, applies one destination change,
# deletes, then does the same table through `ipvsadm --restore` in the same guest run.
#
#   scripts/vm/ipvs-bench.sh [SERVICES [DESTS]]      # defaults 10000 10
#
# Needs scripts/vm/fetch.sh to have prepared the VM cache (root). Builds the example in release and
# svcplane-vm (debug) if needed. Nothing leaves the guest: addresses are 10.200/16 and 10.201/16 on
# its loopback. Bounded: the guest script times out after TIMEOUT_S (default 900 s; 10,000 Services
# took 326 s under TCG, ~300 s of it ipvsadm --restore), and qemu is killed shortly after that.
set -euo pipefail

SERVICES=${1:-10000}
DESTS=${2:-10}
TIMEOUT_S=${TIMEOUT_S:-900}
MEMORY_MB=${MEMORY_MB:-2048}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cd "$ROOT"

cargo build --release -p svcplane-dataplane --example ipvs_bench
cargo build -p svcplane-tests --bin svcplane-vm

script=$(mktemp)
trap 'rm -f "$script"' EXIT
cat >"$script" <<GUEST
set -e
# masqueraded destinations must be routable ("address not unicast" otherwise)
ip route add 10.201.0.0/16 dev lo
section bench
ipvs_bench --services $SERVICES --dests $DESTS --ipvsadm
GUEST

"$TARGET/debug/svcplane-vm" "$script" --binary "$TARGET/release/examples/ipvs_bench" \
  --timeout-s "$TIMEOUT_S" --memory-mb "$MEMORY_MB"
