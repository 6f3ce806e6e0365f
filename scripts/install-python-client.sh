#!/usr/bin/env bash
# Installs the official Python `kubernetes` client into a virtualenv for the Python client tests
# (tests/python/, run by tests/it/apiserver/client_compat.rs). Idempotent: a no-op once the pinned
# version is installed. The venv lives at SVCPLANE_PYTHON_VENV (default
# /var/cache/svcplane-python/kubernetes-<version>); the tests look there too.
set -euo pipefail

# 33.x is the client generated for Kubernetes 1.33, the version k8s-openapi targets here.
KUBERNETES_CLIENT_VERSION=33.1.0
venv="${SVCPLANE_PYTHON_VENV:-/var/cache/svcplane-python/kubernetes-${KUBERNETES_CLIENT_VERSION}}"

if [ -x "$venv/bin/python" ] &&
  "$venv/bin/python" -c "import kubernetes, sys; sys.exit(kubernetes.__version__ != '${KUBERNETES_CLIENT_VERSION}')" 2>/dev/null; then
  exit 0
fi

# Debian's python3 (not whatever a version manager put first on PATH) with its venv module.
python=/usr/bin/python3
if ! [ -x "$python" ] || ! "$python" -c "import venv, ensurepip" 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  else
    echo "install-python-client: python3-venv is missing and this is not root" >&2
    exit 1
  fi
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes==${KUBERNETES_CLIENT_VERSION}"
"$venv/bin/python" -c "import kubernetes; print('install-python-client: kubernetes', kubernetes.__version__, 'in $venv')"
