//! NodePort allocation (upstream `portallocator`, KEP-3668 static band).

use std::collections::HashSet;

use svcplane_allocators::{node_port_static_band_size, Error, NodePortAllocator, PortRange};

fn allocator(range: &str) -> NodePortAllocator {
    NodePortAllocator::new(range.parse().unwrap())
}

#[test]
fn static_band_size_follows_calculate_range_offset() {
    // (range, band) rows computed with upstream portallocator.calculateRangeOffset.
    let rows = [
        ("30000-32767", 86),
        ("30000-30015", 0),
        ("30000-30016", 16),
        ("30000-30511", 16),
        ("30000-31023", 32),
        ("25000-30000", 128),
        ("1-65535", 128),
    ];
    for (range, band) in rows {
        assert_eq!(allocator(range).usage().static_band_size, band, "{range}");
    }
    assert_eq!(node_port_static_band_size(16), 0);
}

#[test]
fn nodeport_dynamic_allocation_prefers_upper_band() {
    let mut ports = allocator("30000-32767");
    let first = ports.allocate_next().unwrap();
    assert_eq!(first, 30086);
    // FACTS.md: dynamic NodePorts in 30000-32767 are all >= 30086.
    let all: Vec<i32> = (0..(2768 - 86 - 1))
        .map(|_| ports.allocate_next().unwrap())
        .collect();
    assert!(all.iter().all(|p| *p >= 30086));
    assert_eq!(ports.usage().static_used, 0);
    let fallback = ports.allocate_next().unwrap();
    assert!((30000..30086).contains(&fallback), "{fallback}");
}

#[test]
fn small_range_has_no_static_band() {
    let mut ports = allocator("30000-30015");
    assert_eq!(ports.usage().static_band_size, 0);
    assert_eq!(ports.allocate_next().unwrap(), 30000);
}

#[test]
fn user_chosen_ports_may_be_in_either_band() {
    let mut ports = allocator("30000-32767");
    ports.allocate(30000).unwrap();
    ports.allocate(32767).unwrap();
    let usage = ports.usage();
    assert_eq!((usage.static_used, usage.dynamic_used), (1, 1));
    assert!(ports.contains(30000));
}

#[test]
fn every_port_is_handed_out_once_then_the_range_is_full() {
    let mut ports = allocator("30000-30099");
    let handed_out: HashSet<i32> = (0..100).map(|_| ports.allocate_next().unwrap()).collect();
    assert_eq!(handed_out.len(), 100);
    assert!(handed_out.iter().all(|p| (30000..=30099).contains(p)));
    assert!(matches!(
        ports.allocate_next(),
        Err(Error::RangeFull { .. })
    ));
}

#[test]
fn out_of_range_ports_are_refused_for_allocate_and_release() {
    let mut ports = allocator("30000-32767");
    for port in [0, 29999, 32768, 70000, -1] {
        assert!(
            matches!(ports.allocate(port), Err(Error::NotInRange { .. })),
            "{port}"
        );
        assert!(
            matches!(ports.release(port), Err(Error::NotInRange { .. })),
            "{port}"
        );
        assert!(!ports.in_range(port));
    }
}

#[test]
fn released_port_can_be_allocated_again() {
    let mut ports = allocator("30000-32767");
    ports.allocate(30500).unwrap();
    assert!(ports.release(30500).unwrap());
    ports.allocate(30500).unwrap();
}

#[test]
fn snapshot_restores_ports_and_range() {
    let mut ports = allocator("30000-32767");
    ports.allocate(30001).unwrap();
    let dynamic = ports.allocate_next().unwrap();
    let restored = NodePortAllocator::from_snapshot(&ports.snapshot()).unwrap();
    assert_eq!(restored.iter().collect::<Vec<_>>(), vec![30001, dynamic]);
    assert_eq!(restored.range(), PortRange::default());
    assert_eq!(restored.usage(), ports.usage());
}
