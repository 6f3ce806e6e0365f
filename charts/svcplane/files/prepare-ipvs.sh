# prepare-ipvs: run once per node start, in a privileged init container, before the node agent.
# Gets the kernel ready for the IPVS backend so that the agent itself needs only NET_ADMIN (an
# unprivileged container sees /proc/sys read-only):
#   1. resolves the IPVS generic netlink family, which makes the kernel load ip_vs through its
#      module alias (no modprobe or /lib/modules needed here);
#   2. sets the sysctls the IPVS backend ensures (ipvs_sysctls in dataplane/src/sysctl.rs,
#      kube-proxy's NewProxier in pkg/proxy/ipvs/proxier.go); tests/it/helm/chart.rs runs this
#      script against that function for several kernel releases.
# SYSCTL_ROOT and KERNEL_RELEASE exist for that test.
set -eu
root=${SYSCTL_ROOT:-/proc/sys}
release=${KERNEL_RELEASE:-$(uname -r)}
if [ "$root" = /proc/sys ] && command -v genl >/dev/null 2>&1; then
  genl ctrl get name IPVS >/dev/null 2>&1 || true
fi
if [ ! -d "$root/net/ipv4/vs" ]; then
  echo "prepare-ipvs: no IPVS in kernel $release: nothing to prepare (backend auto then uses nftables, which needs no sysctl)"
  exit 0
fi
ensure() {
  current=$(cat "$root/$1")
  if [ "$current" != "$2" ]; then
    echo "$2" >"$root/$1"
    echo "prepare-ipvs: $1 = $2 (was $current)"
  fi
}
major=${release%%.*}
rest=${release#*.}
minor=${rest%%[!0-9]*}
version=$((major * 1000 + minor))
ensure net/ipv4/vs/conntrack 1
# conn_reuse_mode=0 only from 4.1 (first kernel with it) up to 5.9 (where it was fixed).
if [ "$version" -ge 4001 ] && [ "$version" -lt 5009 ]; then
  ensure net/ipv4/vs/conn_reuse_mode 0
fi
ensure net/ipv4/vs/expire_nodest_conn 1
ensure net/ipv4/vs/expire_quiescent_template 1
ensure net/ipv4/ip_forward 1
echo "prepare-ipvs: IPVS sysctls set for kernel $release"
