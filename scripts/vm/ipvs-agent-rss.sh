#!/usr/bin/env bash
# Peak RSS of `svcplane node-agent --backend ipvs --once` programming SERVICES ClusterIP Services x
# 10 endpoints (none local) from manifests, in the test VM (BENCHMARKS.md, "IPVS").
#
#   scripts/vm/ipvs-agent-rss.sh [SERVICES] [SVCPLANE_BINARY]   # defaults 10000, target/debug/svcplane
#
# The guest samples /proc/PID/status VmHWM every 0.2 s while the agent runs (the last sample is a
# lower bound of the true peak), then counts what `ipvsadm -Ln` and `ip addr` show. Needs
# scripts/vm/fetch.sh to have run, python3, and the svcplane binary built. Bounded: at most 3,000
# samples, guest script timeout TIMEOUT_S (default 720 s; 10,000 Services took 215 s under TCG).
set -euo pipefail

SERVICES=${1:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SVCPLANE=${2:-$TARGET/debug/svcplane}
TIMEOUT_S=${TIMEOUT_S:-720}
cd "$ROOT"
cargo build -p svcplane-tests --bin svcplane-vm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$SERVICES" >"$work/bench.yaml" <<'PY'
import json, sys
n = int(sys.argv[1])
docs = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"},
         "status": {"addresses": [{"type": "InternalIP", "address": "10.0.2.15"}]}}]
for i in range(n):
    cip = f"10.200.{i >> 8}.{i & 255}"
    docs.append({"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                 "spec": {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": [cip],
                          "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}})
    eps = [{"addresses": [f"10.201.{((i * 10 + e) >> 8) & 255}.{(i * 10 + e) & 255}"],
            "nodeName": f"node-{1 + e % 3}",
            "conditions": {"ready": True, "serving": True, "terminating": False}}
           for e in range(10)]
    docs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"svc-{i}-abcde", "namespace": "bench",
                              "labels": {"kubernetes.io/service-name": f"svc-{i}",
                                         "endpointslice.kubernetes.io/managed-by":
                                             "endpointslice-controller.k8s.io"}},
                 "addressType": "IPv4",
                 "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                 "endpoints": eps})
print("\n---\n".join(json.dumps(d) for d in docs))
PY

cat >"$work/guest.sh" <<'GUEST'
ip route add 10.201.0.0/16 dev lo
section agent
start=$(cut -d' ' -f1 /proc/uptime)
svcplane node-agent --node-name node-0 --manifests /etc/bench --backend ipvs --once >/tmp/agent.log 2>&1 &
pid=$!
hwm=0; i=0
while [ -d /proc/$pid ] && [ $i -lt 3000 ]; do
  v=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null)
  [ -n "$v" ] && hwm=$v
  i=$((i+1)); sleep 0.2
done
wait $pid; rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
echo "agent exit $rc, uptime $start -> $end s, last VmHWM sample ${hwm} KiB"
tail -3 /tmp/agent.log
echo "ipvs services: $(ipvsadm -Ln | grep -c '^TCP')  destinations: $(ipvsadm -Ln | grep -c -- '->.*Masq')"
echo "svcplane0 IPv4 addresses: $(ip -4 addr show dev svcplane0 | grep -c inet)"
[ "$rc" = 0 ]
GUEST

"$TARGET/debug/svcplane-vm" "$work/guest.sh" --binary "$SVCPLANE" \
  --file "$work/bench.yaml:/etc/bench/bench.yaml" --timeout-s "$TIMEOUT_S" --memory-mb 2048
