//! Names of the per-Service chains and sets, as kube-proxy's nftables mode builds them
//! (`servicePortChainNameBase`, `servicePortEndpointChainNameBase`, `hashAndTruncate` in
//! `pkg/proxy/nftables/proxier.go`): a readable `namespace/name/protocol/port` with a short hash
//! in front, so names are stable across restarts, unique, and valid nftables identifiers.

use std::net::IpAddr;
use std::sync::Arc;

use crate::model::{Destination, EndpointSet, ServicePortName};

/// A chain or set name, shared between the objects that refer to it.
pub type Name = Arc<str>;

/// Longest name the kernel accepts (`NFT_NAME_MAXLEN` 256, including the NUL).
pub const NAME_MAX: usize = 255;
/// Longest prefix we put in front of a hashed base (`firewall-`, `endpoint-`...).
const PREFIX_MAX: usize = 16;
const BASE_MAX: usize = NAME_MAX - PREFIX_MAX;

/// `HASH-name` where HASH is the first 8 base32 characters of SHA-256(`hashed`), truncated
/// with `...` when too long (the hash keeps it unique).
fn hash_and_truncate(shown: &str, hashed: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, hashed.as_bytes());
    let mut name = base32_prefix(digest.as_ref());
    name.push('-');
    name.push_str(shown);
    if name.len() > BASE_MAX {
        let mut cut = BASE_MAX - 3;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push_str("...");
    }
    name
}

/// The first 8 characters of the RFC 4648 base32 encoding of `bytes` (40 bits).
fn base32_prefix(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    for b in &bytes[..5] {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..8)
        .map(|i| ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// `namespace/name/protocol/port`, the readable part of a Service port's names.
fn service_port_base(port: &ServicePortName) -> String {
    format!(
        "{}/{}/{}/{}",
        port.service.namespace,
        port.service.name,
        port.protocol.as_str().to_ascii_lowercase(),
        port.port
    )
}

fn endpoint_base(port: &ServicePortName, address: IpAddr, target: u16) -> String {
    // Colons are not allowed in names; upstream writes IPv6 addresses with dots.
    let ip = address.to_string().replace(':', ".");
    format!("{}__{ip}/{target}", service_port_base(port))
}

/// Chain (and, for large endpoint sets, map) choosing among a Service port's endpoints for
/// one traffic policy: `service-…` for `Cluster`, `local-…` for `Local`. `variant` is `Some`
/// only when rows of one Service port disagree on their endpoints (the model never does so
/// today); it keeps the two chains apart.
pub fn policy_chain(port: &ServicePortName, set: EndpointSet, variant: Option<u64>) -> String {
    let prefix = match set {
        EndpointSet::Cluster => "service-",
        EndpointSet::Local => "local-",
    };
    let base = service_port_base(port);
    match variant {
        None => format!("{prefix}{}", hash_and_truncate(&base, &base)),
        Some(v) => {
            let shown = format!("{base}/v{v:016x}");
            format!("{prefix}{}", hash_and_truncate(&shown, &shown))
        }
    }
}

/// The chain that DNATs to one endpoint of a Service port.
pub fn endpoint_chain(port: &ServicePortName, destination: &Destination) -> String {
    let base = endpoint_base(port, destination.address, destination.port);
    format!("endpoint-{}", hash_and_truncate(&base, &base))
}

/// The dynamic set of client addresses stuck to one endpoint (`sessionAffinity: ClientIP`).
/// The timeout is part of the hashed text, so a new timeout makes a new set (a set's timeout
/// cannot change in place).
pub fn affinity_set(port: &ServicePortName, destination: &Destination, timeout: u32) -> String {
    let base = endpoint_base(port, destination.address, destination.port);
    let hashed = format!("{base}@{timeout}");
    format!("affinity-{}", hash_and_truncate(&base, &hashed))
}

/// The chain enforcing a LoadBalancer port's `loadBalancerSourceRanges`.
pub fn firewall_chain(port: &ServicePortName) -> String {
    let base = service_port_base(port);
    format!("firewall-{}", hash_and_truncate(&base, &base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, ServiceName};

    fn port(ns: &str, name: &str, port: &str) -> ServicePortName {
        ServicePortName {
            service: ServiceName::new(ns, name),
            port: port.into(),
            protocol: Protocol::Tcp,
        }
    }

    fn dest(ip: &str, port: u16) -> Destination {
        Destination {
            address: ip.parse().unwrap(),
            port,
            weight: 1,
            local: false,
            ready: true,
        }
    }

    #[test]
    fn names_match_kube_proxy_nftables_mode() {
        // Upstream proxier_test.go: "ULMVA6XW-ns1/svc1/tcp/p80" and
        // "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80".
        let p = port("ns1", "svc1", "p80");
        assert_eq!(
            policy_chain(&p, EndpointSet::Cluster, None),
            "service-ULMVA6XW-ns1/svc1/tcp/p80"
        );
        assert_eq!(
            endpoint_chain(&p, &dest("10.180.0.1", 80)),
            "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
        );
    }

    #[test]
    fn ipv6_endpoints_are_written_with_dots() {
        let name = endpoint_chain(&port("ns", "s", "dns"), &dest("fd00::1", 53));
        assert!(name.ends_with("ns/s/tcp/dns__fd00..1/53"), "{name}");
        assert!(!name.contains(':'));
    }

    #[test]
    fn long_names_are_cut_to_the_kernel_limit_and_stay_distinct() {
        let long = "n".repeat(63);
        let a = endpoint_chain(
            &port(&long, &long, &long),
            &dest("fd00:1111:2222:3333:4444:5555:6666:7777", 65535),
        );
        let b = endpoint_chain(
            &port(&long, &long, &long),
            &dest("fd00:1111:2222:3333:4444:5555:6666:7778", 65535),
        );
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert!(a.ends_with("..."));
        assert_ne!(a, b);
    }

    #[test]
    fn affinity_sets_change_name_with_their_timeout() {
        let p = port("ns", "s", "");
        let d = dest("10.0.0.1", 80);
        assert_ne!(affinity_set(&p, &d, 10), affinity_set(&p, &d, 20));
        assert!(affinity_set(&p, &d, 10).starts_with("affinity-"));
    }
}
