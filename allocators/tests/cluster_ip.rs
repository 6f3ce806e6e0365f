//! ClusterIP allocation (upstream `ipallocator`, KEP-3070 static band).

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use svcplane_allocators::{cluster_ip_static_band_size, ClusterIpAllocator, Error, IpFamily};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn allocator(cidr: &str) -> ClusterIpAllocator {
    ClusterIpAllocator::new(cidr.parse::<IpNet>().unwrap()).unwrap()
}

#[test]
fn static_band_size_follows_calculate_range_offset() {
    // (cidr, band) rows computed with upstream ipallocator.calculateRangeOffset
    // (size of the whole CIDR / 16, clamped to 16..=256; 0 up to 16 addresses).
    let rows = [
        ("192.168.1.0/32", 0),
        ("192.168.1.0/28", 0),
        ("192.168.1.0/27", 16),
        ("192.168.1.0/24", 16),
        ("192.168.1.0/22", 64),
        ("192.168.1.0/20", 256),
        ("192.168.1.0/12", 256),
        ("fd00::/120", 16),
        ("fd00::/112", 256),
        ("fd00::/108", 256),
    ];
    for (cidr, band) in rows {
        assert_eq!(allocator(cidr).usage().static_band_size, band, "{cidr}");
    }
    assert_eq!(cluster_ip_static_band_size(16), 0);
    assert_eq!(cluster_ip_static_band_size(17), 16);
}

#[test]
fn ipv4_never_hands_out_network_or_broadcast() {
    let mut ips = allocator("192.168.1.0/28");
    let mut handed_out = HashSet::new();
    while let Ok(next) = ips.allocate_next() {
        handed_out.insert(next);
    }
    assert_eq!(handed_out.len(), 14);
    assert!(!handed_out.contains(&ip("192.168.1.0")));
    assert!(!handed_out.contains(&ip("192.168.1.15")));
    for reserved in ["192.168.1.0", "192.168.1.15"] {
        assert!(matches!(
            ips.allocate(ip(reserved)),
            Err(Error::NotInRange { .. })
        ));
        assert!(matches!(
            ips.release(ip(reserved)),
            Err(Error::NotInRange { .. })
        ));
        assert!(!ips.in_range(ip(reserved)));
    }
}

#[test]
fn ipv6_never_hands_out_the_network_address_but_may_the_last() {
    let mut ips = allocator("fd00::/124");
    let all: Vec<IpAddr> = std::iter::from_fn(|| ips.allocate_next().ok()).collect();
    assert_eq!(all.len(), 15);
    assert!(!all.contains(&ip("fd00::")));
    assert!(all.contains(&ip("fd00::f")));
}

#[test]
fn ipv6_larger_than_108_is_refused() {
    let err = ClusterIpAllocator::new("fd00::/107".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::InvalidRange { .. }));
    assert_eq!(
        err.to_string(),
        "specified service cluster IP range fd00::/107 is too large; for 128-bit addresses, the mask must be >= 108"
    );
    assert!(ClusterIpAllocator::new("fd00::/108".parse().unwrap()).is_ok());
}

#[test]
fn ipv4_larger_than_12_is_refused_like_kube_apiserver() {
    // validateClusterIPFlags applies maxCIDRBits = 20 to both families.
    assert!(matches!(
        ClusterIpAllocator::new("10.0.0.0/11".parse().unwrap()),
        Err(Error::InvalidRange { .. })
    ));
    assert_eq!(allocator("10.96.0.0/12").usage().total, (1 << 20) - 2);
}

#[test]
fn ipv6_108_covers_the_first_65535_addresses_like_upstream() {
    // ipallocator.New caps the IPv6 bitmap at 65536 addresses, network included.
    let mut ips = allocator("fd00::/108");
    assert_eq!(ips.usage().total, 65535);
    ips.allocate(ip("fd00::ffff")).unwrap();
    assert!(matches!(
        ips.allocate(ip("fd00::1:0")),
        Err(Error::NotInRange { .. })
    ));
}

#[test]
fn first_dynamic_cluster_ip_of_a_24_is_above_the_static_band() {
    let mut ips = allocator("10.0.0.0/24");
    let first = ips.allocate_next().unwrap();
    assert_eq!(first, ip("10.0.0.17"));
    // FACTS.md: dynamically allocated ClusterIPs of a /24 are at offset >= 16.
    let rest: Vec<IpAddr> = (0..200).map(|_| ips.allocate_next().unwrap()).collect();
    assert!(rest
        .iter()
        .all(|a| matches!(a, IpAddr::V4(v4) if v4.octets()[3] >= 17)));
}

#[test]
fn dynamic_cluster_ips_fall_into_the_static_band_only_when_the_upper_band_is_full() {
    let mut ips = allocator("10.0.0.0/24");
    for _ in 0..(254 - 16) {
        ips.allocate_next().unwrap();
    }
    assert_eq!(ips.usage().dynamic_used, 238);
    assert_eq!(ips.usage().static_used, 0);
    let fallback = ips.allocate_next().unwrap();
    assert!(
        matches!(fallback, IpAddr::V4(v4) if v4.octets()[3] <= 16),
        "{fallback}"
    );
}

#[test]
fn kubernetes_service_takes_the_first_address() {
    let mut ips = allocator("10.96.0.0/12");
    let first = ips.first_ip().unwrap();
    assert_eq!(first, ip("10.96.0.1"));
    ips.allocate(first).unwrap();
    assert_eq!(ips.usage().static_used, 1);
    assert!(allocator("10.0.0.0/31").first_ip().is_none());
}

#[test]
fn other_family_ips_are_not_in_range() {
    let mut ips = allocator("10.0.0.0/24");
    assert!(matches!(
        ips.allocate(ip("fd00::1")),
        Err(Error::NotInRange { .. })
    ));
    assert!(!ips.contains(ip("fd00::1")));
    assert_eq!(ips.family(), IpFamily::IPv4);
    assert_eq!(allocator("fd00::/120").family(), IpFamily::IPv6);
}

#[test]
fn host_bits_of_the_cidr_are_masked_off() {
    let ips = allocator("10.96.3.7/12");
    assert_eq!(ips.cidr().to_string(), "10.96.0.0/12");
}

#[test]
fn usage_counts_bands_separately() {
    let mut ips = allocator("10.0.0.0/24");
    ips.allocate(ip("10.0.0.1")).unwrap();
    ips.allocate(ip("10.0.0.16")).unwrap();
    ips.allocate(ip("10.0.0.17")).unwrap();
    ips.allocate_next().unwrap();
    let usage = ips.usage();
    assert_eq!(
        (
            usage.total,
            usage.used,
            usage.static_used,
            usage.dynamic_used,
            usage.free()
        ),
        (254, 4, 2, 2, 250)
    );
}

#[test]
fn check_allocatable_reports_without_reserving() {
    let mut ips = allocator("10.0.0.0/24");
    ips.check_allocatable(ip("10.0.0.9")).unwrap();
    assert!(!ips.contains(ip("10.0.0.9")));
    ips.allocate(ip("10.0.0.9")).unwrap();
    assert!(matches!(
        ips.check_allocatable(ip("10.0.0.9")),
        Err(Error::AlreadyAllocated { .. })
    ));
}

#[test]
fn snapshot_restores_into_a_fresh_allocator_of_the_same_cidr() {
    let mut ips = allocator("fd00::/112");
    ips.allocate(ip("fd00::1")).unwrap();
    let dynamic = ips.allocate_next().unwrap();
    let snapshot = ips.snapshot();
    assert_eq!(snapshot.range, "fd00::/112");
    let restored = ClusterIpAllocator::from_snapshot(&snapshot).unwrap();
    assert_eq!(
        restored.iter().collect::<Vec<_>>(),
        vec![ip("fd00::1"), dynamic]
    );
    assert_eq!(restored.usage(), ips.usage());
}

#[test]
fn snapshot_of_a_same_sized_other_cidr_is_refused() {
    let other = allocator("10.1.0.0/24");
    let mut ips = allocator("10.0.0.0/24");
    assert!(matches!(
        ips.restore(&other.snapshot()),
        Err(Error::MismatchedRange { .. })
    ));
}

#[test]
fn allocators_can_be_shared_behind_a_lock_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ClusterIpAllocator>();
    send_sync::<svcplane_allocators::DualStackClusterIps>();
    send_sync::<svcplane_allocators::NodePortAllocator>();
    send_sync::<Error>();
}
