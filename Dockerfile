# syntax=docker/dockerfile:1
#
# svcplane images: one static binary, /usr/local/bin/svcplane, for every subcommand.
#
#   docker build --target svcplane      -t svcplane:0.1.0 .       # controller-manager, webhook, validate, dev
#   docker build --target svcplane-node -t svcplane-node:0.1.0 .  # node-agent
#
# Layout of both images:
#   /usr/local/bin/svcplane   static x86_64 ELF (glibc linked in with crt-static; no loader, no
#                             shared library); the ENTRYPOINT, so `docker run IMAGE webhook ...`
#   /etc/ssl/certs/           CA certificates (distroless and Debian's ca-certificates)
#   user                      65532:65532 (`nonroot`) in `svcplane`; root in `svcplane-node`,
#                             which the node agent needs for NET_ADMIN (charts/svcplane/README.md,
#                             "Privileges")
# `svcplane-node` adds, on debian:bookworm-slim: nftables (`nft`: the IPVS backend applies its
# nftables table with `nft -f -`), iproute2 (`genl`, `ip`: the chart's prepare-ipvs init
# container) and kmod (`modprobe`: the optional module-loading init container). The nftables
# backend itself talks netlink and needs no command; the distroless image has no shell, so the
# node agent cannot use it.
#
# The build needs network access to crates.io (or a vendored registry); nothing else.

ARG RUST_VERSION=1.89
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# crt-static links glibc into the binary. It must not reach build scripts and proc-macros
# (which the compiler loads as shared objects), so the target is named explicitly: RUSTFLAGS then
# apply to the target's crates only. glibc >= 2.34 has its DNS and files NSS code inside libc,
# so name resolution works in the static binary without /etc/nsswitch.conf or libnss_*.so.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin svcplane \
 && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/svcplane /out/svcplane \
 && /out/svcplane --version \
 && if ldd /out/svcplane 2>&1 | grep -q '=>'; then echo 'svcplane is not static' >&2; exit 1; fi

# The node agent: root, plus the commands the IPVS backend and the chart's init containers run.
FROM debian:${DEBIAN_RELEASE}-slim AS svcplane-node
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates iproute2 kmod nftables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/svcplane /usr/local/bin/svcplane
ENTRYPOINT ["/usr/local/bin/svcplane"]
CMD ["node-agent", "--help"]

# Controller manager, webhook, validate and dev: nothing but the binary, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot AS svcplane
COPY --from=build /out/svcplane /usr/local/bin/svcplane
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/svcplane"]
CMD ["--help"]
