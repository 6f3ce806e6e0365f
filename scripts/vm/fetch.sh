#!/usr/bin/env bash
# Prepares everything the real-kernel tests (svcplane_tests::vm) need, idempotently:
#
#   * qemu-system-x86 on the host (from bookworm-backports: the image's qemu-utils is QEMU 10 from
#     there, and a plain `apt-get install qemu-system-x86` would ask for the conflicting 7.2);
#   * Debian's own kernel (linux-image-amd64 -> linux-image-6.1.0-N-amd64), downloaded and
#     unpacked privately, never installed on the host; its vmlinuz unpacked to an ELF vmlinux
#     that qemu boots through the PVH entry point;
#   * a guest root tree: busybox-static with applet links, dash as /bin/sh, bash, ipvsadm,
#     conntrack, nft, iproute2's ip/ss/tc/bridge, their shared libraries and the ELF interpreter, and the kernel modules the tests
#     load, in dependency order.
#
# Everything lands under $SVCPLANE_VM_CACHE (default /var/cache/svcplane-vm):
#   debs/        downloaded .deb files (kept: a rebuild does not download again)
#   vm/          the finished set the tests read: vmlinux, vm.env, guest/ (see scripts/vm/README.md)
# A second run with the same script finds vm/stamp and returns at once. Fails loudly, naming the
# package or file, when something cannot be fetched or is missing.
set -euo pipefail

CACHE=${SVCPLANE_VM_CACHE:-/var/cache/svcplane-vm}
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$(cat "$HERE/fetch.sh" "$HERE/init.sh" "$HERE/lib.sh" | sha256sum | cut -c1-16)

die() {
  echo "==================================================================" >&2
  echo "scripts/vm/fetch.sh: $*" >&2
  echo "==================================================================" >&2
  exit 1
}
log() { echo "vm/fetch: $*" >&2; }

mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE (set SVCPLANE_VM_CACHE)"
exec 9>"$CACHE/lock"
flock 9 # two installers at once wait for each other instead of racing on one tree

qemu_ready() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 &&
    [ -f /usr/share/qemu/qboot.rom ] && [ -f /usr/share/qemu/pvh.bin ]
}

if [ -f "$CACHE/vm/stamp" ] && [ "$(cat "$CACHE/vm/stamp")" = "$STAMP" ] && qemu_ready; then
  exit 0
fi

as_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (run scripts/install-test-deps.sh as root)"
}

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    as_root "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    apt_updated=1
  fi
}

# --- qemu on the host --------------------------------------------------------------------------
if ! qemu_ready; then
  as_root "installing qemu-system-x86"
  backports=/etc/apt/sources.list.d/svcplane-bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding $backports"
    cat >"$backports" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt_update
  log "installing qemu-system-x86 from bookworm-backports"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
    --no-install-recommends qemu-system-x86 qemu-system-data >/dev/null ||
    die "apt-get install -t bookworm-backports qemu-system-x86 failed"
  qemu_ready || die "qemu-system-x86_64, /usr/share/qemu/qboot.rom or pvh.bin missing after install"
fi

# --- guest packages, downloaded and unpacked privately ----------------------------------------
# Fresh package lists first when we can: an old list can name a kernel package (its ABI number
# is in the name) that the archive has already replaced.
[ "$(id -u)" = 0 ] && apt_update
mkdir -p "$CACHE/debs"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One apt-cache call (each one reloads the package lists, seconds here): the dependency graph
# of the tools and of the kernel metapackage.
tools=(busybox-static dash bash ipvsadm conntrack nftables iproute2)
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances linux-image-amd64 "${tools[@]}" >"$work/depends" 2>/dev/null || true
if ! grep -q '^linux-image-amd64$' "$work/depends"; then
  apt_update
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances linux-image-amd64 "${tools[@]}" >"$work/depends" ||
    die "apt-cache depends failed"
fi

# The kernel's real package name behind the linux-image-amd64 metapackage.
kpkg=$(awk '/^[^ ]/ {p=$1} p=="linux-image-amd64" && /Depends: linux-image-[0-9]/ {print $2; exit}' "$work/depends")
[ -n "$kpkg" ] || die "apt-cache finds no kernel package behind linux-image-amd64"

# Library packages the tools need, following Depends through lib* packages only (not debconf,
# dpkg, ...). glibc stays the host's: the guest also runs our host-built binaries, and ld.so and
# libc.so must come from one build.
mapfile -t libs < <(awk '
  /^[^ ]/ { p = $1; next }
  /^  Depends: [^<]/ { dep[p] = dep[p] " " $2 }
  END {
    n = split("dash bash ipvsadm conntrack nftables iproute2", queue, " ")
    for (i = 1; i <= n; i++) {
      m = split(dep[queue[i]], ds, " ")
      for (j = 1; j <= m; j++) {
        d = ds[j]
        if (d == "libc6" || d == "libgcc-s1" || d ~ /^gcc-.*-base$/) continue
        if (d !~ /^lib/ && d != "zlib1g") continue
        if (!(d in seen)) { seen[d] = 1; print d; queue[++n] = d }
      }
    }
  }' "$work/depends")

download() { # package... : into $CACHE/debs unless a .deb of that package is already there
  local missing=()
  for p in "$@"; do
    compgen -G "$CACHE/debs/${p}_*.deb" >/dev/null || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "downloading ${missing[*]}"
  if ! (cd "$CACHE/debs" && apt-get download -qq "${missing[@]}" >/dev/null 2>"$work/apt.err"); then
    apt_update
    (cd "$CACHE/debs" && apt-get download -qq "${missing[@]}" >/dev/null 2>"$work/apt.err") ||
      die "apt-get download failed for ${missing[*]}: $(cat "$work/apt.err")"
  fi
}
download "$kpkg" "${tools[@]}" "${libs[@]}"

deb_of() { # package -> its newest cached .deb
  local f
  f=$(ls -1 "$CACHE/debs/${1}_"*.deb 2>/dev/null | sort -V | tail -1)
  [ -n "$f" ] || die "no .deb for $1 in $CACHE/debs"
  echo "$f"
}

ex="$work/extract"
mkdir -p "$ex"
for p in "${tools[@]}" "${libs[@]}"; do
  dpkg -x "$(deb_of "$p")" "$ex/pkgs" || die "dpkg -x of $p failed"
done
log "unpacking $kpkg"
# Only the kernel image and the module trees the wanted modules and their dependencies live in.
mkdir -p "$ex/kernel"
dpkg-deb --fsys-tarfile "$(deb_of "$kpkg")" | tar -x -C "$ex/kernel" --wildcards \
  './boot/vmlinuz-*' './lib/modules/*/modules.builtin' './lib/modules/*/kernel/net/*' \
  './lib/modules/*/kernel/lib/*' './lib/modules/*/kernel/crypto/*' \
  './lib/modules/*/kernel/drivers/net/*' || die "unpacking $kpkg failed"

kver=$(ls -1 "$ex/kernel/lib/modules" | head -1)
[ -n "$kver" ] || die "$kpkg has no lib/modules/<version>"
vmlinuz="$ex/kernel/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "$kpkg has no boot/vmlinuz-$kver"

out="$work/vm"
mkdir -p "$out"

# --- vmlinuz -> vmlinux ---------------------------------------------------------------------
# A bzImage is a setup header and a decompressor stub in front of the compressed ELF kernel.
# Look for each compression format's magic bytes and try to decompress from there; the first
# candidate that yields an ELF image is the kernel.
extract_vmlinux() { # vmlinuz out
  local src=$1 dst=$2 name magic cmd off
  local formats=(
    "xz|\xfd\x37\x7a\x58\x5a\x00|xz -dc --single-stream"
    "zstd|\x28\xb5\x2f\xfd|zstd -dcq"
    "gzip|\x1f\x8b\x08|gzip -dc"
    "lz4|\x02\x21\x4c\x18|lz4 -dc"
    "bzip2|\x42\x5a\x68|bzip2 -dc"
  )
  for f in "${formats[@]}"; do
    IFS='|' read -r name magic cmd <<<"$f"
    command -v "${cmd%% *}" >/dev/null 2>&1 || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$src" | cut -d: -f1 | head -8); do
      tail -c "+$((off + 1))" "$src" | $cmd >"$dst" 2>/dev/null || true
      if [ "$(head -c 4 "$dst" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        log "vmlinux: $name payload at offset $off ($(stat -c %s "$dst") bytes)"
        return 0
      fi
    done
  done
  return 1
}
extract_vmlinux "$vmlinuz" "$out/vmlinux" || die "found no compressed ELF kernel inside $vmlinuz"
# PVH boot needs the Xen PHYS32_ENTRY note (type 18) in the ELF notes.
readelf -n "$out/vmlinux" 2>/dev/null | grep -q 'NT_VERSION\|Xen' ||
  die "$out/vmlinux has no ELF notes; qemu cannot boot it through PVH"

# --- guest root ---------------------------------------------------------------------------
g="$out/guest"
mkdir -p "$g"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$g"/{etc,proc,sys,dev,run,tmp,root,var,mnt}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$g/$d"; done # usrmerge, as on the host
ln -s ../run "$g/var/run"
mkdir -p "$g/run/netns"

install -m 0755 "$ex/pkgs/bin/busybox" "$g/usr/bin/busybox" 2>/dev/null ||
  install -m 0755 "$ex/pkgs/usr/bin/busybox" "$g/usr/bin/busybox" ||
  die "busybox-static has no busybox binary"
# Applet links, except where a real tool is shipped below. Debian's static busybox runs its own
# applets before searching PATH when its sh runs a command (so `ip` would always be busybox's,
# whose veth peers ignore `peer name`): /bin/sh is dash, and bash is there too.
real_tools=(sh bash ip ss tc ipvsadm conntrack nft bridge)
for path in $("$g/usr/bin/busybox" --list-full); do
  name=${path##*/}
  case " ${real_tools[*]} " in *" $name "*) continue ;; esac
  dir=${path%/*}
  case $dir in bin | usr/bin) dir=usr/bin ;; *) dir=usr/sbin ;; esac
  [ -e "$g/$dir/$name" ] || ln -s /usr/bin/busybox "$g/$dir/$name"
done

# Real tools and, through ldd, every library they load (the unpacked copies first, then the
# host's for glibc), each at the path the loader will look for.
libpath="$ex/pkgs/usr/lib/x86_64-linux-gnu:$ex/pkgs/lib/x86_64-linux-gnu"
copy_with_libs() { # unpacked-binary guest-path
  local bin=$1 dest=$2 lib
  [ -f "$bin" ] || die "missing $bin in the unpacked packages"
  install -m 0755 "$bin" "$g/$dest"
  if LD_LIBRARY_PATH=$libpath ldd "$bin" 2>&1 | grep -q 'not found'; then
    die "libraries of $bin not found: $(LD_LIBRARY_PATH=$libpath ldd "$bin" | grep 'not found' | tr -s ' \t' ' ')"
  fi
  for lib in $(LD_LIBRARY_PATH=$libpath ldd "$bin" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
    local rel=${lib#"$ex/pkgs"}
    rel=${rel#/usr}
    [ -e "$g/usr$rel" ] || install -D -m 0755 "$(readlink -f "$lib")" "$g/usr$rel"
  done
}
find_unpacked() { # name: its path under the unpacked packages' sbin or bin
  for d in usr/sbin sbin usr/bin bin; do
    [ -f "$ex/pkgs/$d/$1" ] && { echo "$ex/pkgs/$d/$1"; return; }
  done
  die "no $1 among the unpacked packages"
}
for t in ipvsadm conntrack nft ip ss tc bridge; do
  copy_with_libs "$(find_unpacked "$t")" "usr/sbin/$t"
done
for t in dash bash; do
  copy_with_libs "$(find_unpacked "$t")" "usr/bin/$t"
done
ln -s dash "$g/usr/bin/sh"
[ -d "$ex/pkgs/usr/share/iproute2" ] && cp -a "$ex/pkgs/usr/share/iproute2" "$g/usr/share/" 2>/dev/null ||
  { mkdir -p "$g/usr/share" && cp -a "$ex/pkgs/usr/share/iproute2" "$g/usr/share/" 2>/dev/null || true; }
[ -d "$ex/pkgs/etc/iproute2" ] && cp -a "$ex/pkgs/etc/iproute2" "$g/etc/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$g/etc/passwd"
printf 'root:x:0:\n' >"$g/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$g/etc/hosts"
printf 'hosts: files\n' >"$g/etc/nsswitch.conf"
: >"$g/etc/resolv.conf"

# --- kernel modules ---------------------------------------------------------------------------
# Wanted modules; each must exist as a .ko or be built in (modules.builtin). Dependencies come
# from each module's own `depends=` (the package ships no modules.dep). In 6.1 the counter,
# objref and set backends (hash, rbtree, bitmap, pipapo) are linked into nf_tables.ko itself.
wanted=(
  crc32c_generic
  ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_sh ip_vs_mh
  nf_conntrack nf_conntrack_netlink nf_nat nf_reject_ipv4 nf_reject_ipv6
  nf_tables nft_chain_nat nft_nat nft_masq nft_redir nft_ct nft_fib nft_fib_inet nft_fib_ipv4
  nft_fib_ipv6 nft_reject nft_reject_inet nft_reject_ipv4 nft_reject_ipv6 nft_limit nft_hash
  nft_numgen nft_objref nft_quota nft_log
  dummy veth
)
mdir="$ex/kernel/lib/modules/$kver"
declare -A ko=()
while IFS= read -r f; do
  n=${f##*/}
  n=${n%.ko}
  ko[${n//-/_}]=$f
done < <(find "$mdir/kernel" -name '*.ko')
builtin_has() { sed 's#.*/##; s#\.ko$##; s#-#_#g' "$mdir/modules.builtin" 2>/dev/null | grep -qx "$1"; }

declare -A state=() # visiting | done
order=()
visit() { # module name
  local n=$1 deps d
  [ "${state[$n]:-}" = done ] && return 0
  [ "${state[$n]:-}" = visiting ] && die "module dependency cycle through $n"
  if [ -z "${ko[$n]:-}" ]; then
    builtin_has "$n" && { state[$n]=done; return 0; }
    die "kernel $kver has no module $n (neither a .ko nor built in)"
  fi
  state[$n]=visiting
  deps=$(tr '\0' '\n' <"${ko[$n]}" | sed -n 's/^depends=//p' | head -1)
  for d in ${deps//,/ }; do visit "$d"; done
  state[$n]=done
  order+=("$n")
}
for m in "${wanted[@]}"; do visit "$m"; done

# Transitive dependencies, in load order (used for modules.dep, which busybox modprobe reads
# without recursing: each line lists every module to load first, the first-needed last).
declare -A closure=()
closure_of() { # module name -> "dep1 dep2 ..." in load order
  local n=$1 d deps out=""
  [ -n "${closure[$n]+x}" ] && { echo "${closure[$n]}"; return; }
  deps=$(tr '\0' '\n' <"${ko[$n]}" | sed -n 's/^depends=//p' | head -1)
  for d in ${deps//,/ }; do
    [ -n "${ko[$d]:-}" ] || continue
    for x in $(closure_of "$d") "$d"; do
      case " $out " in *" $x "*) ;; *) out+="$x " ;; esac
    done
  done
  closure[$n]=$out
  echo "$out"
}

# Module signatures are dropped: checking them (SHA-512 and RSA in software on qemu64) is about
# 85% of the guest's module-loading instructions under emulation. Debian's kernel loads unsigned
# modules unless Secure Boot locks it down (never in this guest); it only taints itself 'E'.
# The appended signature is: PKCS#7 blob, struct module_signature (12 bytes, signer_len at 3,
# key_id_len at 4, big-endian sig_len at 8), then the 28-byte marker.
strip_signature() { # module file
  local f=$1 size trailer sig_len extra
  [ "$(tail -c 28 "$f")" = "~Module signature appended~" ] || return 0
  size=$(stat -c %s "$f")
  trailer=$(tail -c 40 "$f" | head -c 12 | od -An -tu1)
  sig_len=$(awk '{print $9 * 16777216 + $10 * 65536 + $11 * 256 + $12}' <<<"$trailer")
  extra=$(awk '{print $4 + $5}' <<<"$trailer")
  truncate -s $((size - 28 - 12 - sig_len - extra)) "$f"
  [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "stripping the signature broke $f"
}

gm="$g/usr/lib/modules/$kver"
mkdir -p "$gm" "$g/etc/svcplane-vm"
: >"$gm/modules.dep"
: >"$g/etc/svcplane-vm/modules"
for n in "${order[@]}"; do
  rel=${ko[$n]#"$mdir/"}
  install -D -m 0644 "${ko[$n]}" "$gm/$rel"
  strip_signature "$gm/$rel"
  echo "$n" >>"$g/etc/svcplane-vm/modules"
  line="$rel:"
  deps=($(closure_of "$n"))
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do line+=" ${ko[${deps[$i]}]#"$mdir/"}"; done
  echo "$line" >>"$gm/modules.dep"
done
cp "$mdir/modules.builtin" "$gm/" 2>/dev/null || true
: >"$gm/modules.alias"
log "kernel $kver: ${#order[@]} modules"

install -m 0755 "$HERE/init.sh" "$g/init"
install -m 0644 "$HERE/lib.sh" "$g/etc/svcplane-vm/lib.sh"

versions=""
for p in "$kpkg" "${tools[@]}"; do
  versions+="$(dpkg-deb -f "$(deb_of "$p")" Package Version | paste -sd= | tr -d ' ' | sed 's/Package://; s/=Version:/=/') "
done
cat >"$out/vm.env" <<EOF
KERNEL_VERSION=$kver
QEMU=$(command -v qemu-system-x86_64)
QEMU_FIRMWARE_DIR=/usr/share/qemu
BIOS=qboot.rom
PACKAGES=$versions
EOF
echo "$STAMP" >"$out/stamp"

rm -rf "$CACHE/vm.old"
[ -d "$CACHE/vm" ] && mv "$CACHE/vm" "$CACHE/vm.old"
mv "$out" "$CACHE/vm"
rm -rf "$CACHE/vm.old"
log "ready in $CACHE/vm ($(du -sh "$CACHE/vm" | cut -f1)): $versions"
