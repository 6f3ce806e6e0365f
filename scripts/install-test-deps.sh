#!/usr/bin/env bash
# Installs what the test suites need, idempotently. Safe to run repeatedly, as root or not.
set -euo pipefail

need_apt=()
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# `kill`: the binary suite sends SIGTERM/SIGINT/SIGKILL to `svcplane` processes.
command -v kill >/dev/null 2>&1 || need_apt+=(procps)

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "install-test-deps: missing ${need_apt[*]} and not root; tests that need them will say so" >&2
  fi
fi

if ! command -v kubectl >/dev/null 2>&1; then
  # Debian's own kubernetes-client is v1.20, too old to stand in for the kubectl 1.32 the
  # kubectl suites are written against, so it is not installed; those tests skip loudly and the
  # kube-rs suites cover the same behaviour.
  echo "=================================================================" >&2
  echo "install-test-deps: kubectl is NOT on the PATH: kubectl suites will SKIP" >&2
  echo "=================================================================" >&2
fi

# The real-kernel tests (svcplane_tests::vm): qemu, Debian's kernel and the guest's tools,
# cached under SVCPLANE_VM_CACHE (default /var/cache/svcplane-vm); a no-op once prepared.
# Fails loudly when something cannot be fetched: those tests must not skip.
"$(dirname "$0")/vm/fetch.sh"
