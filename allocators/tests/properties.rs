//! Property tests: the allocators against a plain set model under random
//! interleavings of static allocation, dynamic allocation, release and
//! snapshot/restore.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use svcplane_allocators::{ClusterIpAllocator, Error, NodePortAllocator, PortRange, RangeBitmap};

/// One step of a random workload; `Allocate`/`Release` pick a value by index
/// (modulo the range) so that collisions with earlier allocations are common.
#[derive(Debug, Clone)]
enum Op {
    AllocateNext,
    Allocate(usize),
    Release(usize),
    SnapshotRestore,
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Op::AllocateNext),
            2 => any::<usize>().prop_map(Op::Allocate),
            3 => any::<usize>().prop_map(Op::Release),
            1 => Just(Op::SnapshotRestore),
        ],
        0..max_len,
    )
}

/// (size, band) with band <= size.
fn size_and_band() -> impl Strategy<Value = (usize, usize)> {
    (0usize..300).prop_flat_map(|size| (Just(size), 0..=size))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No offset is ever handed out twice; release makes it reusable; static and
    /// dynamic allocations never collide; counts match the model; band order holds.
    #[test]
    fn bitmap_matches_a_set_model((size, band) in size_and_band(), ops in ops(600)) {
        let mut bitmap = RangeBitmap::new(size, band).unwrap();
        let mut model = BTreeSet::new();
        for op in ops {
            match op {
                Op::AllocateNext => {
                    let dynamic_full = (band..size).all(|o| model.contains(&o));
                    match bitmap.allocate_next() {
                        Ok(offset) => {
                            prop_assert!(offset < size);
                            prop_assert!(model.insert(offset), "offset {} handed out twice", offset);
                            // Band order: a static-band value only once the upper band is full.
                            prop_assert!(offset >= band || dynamic_full,
                                "static offset {} while the dynamic band had room", offset);
                        }
                        Err(Error::RangeFull { .. }) => prop_assert_eq!(model.len(), size),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                Op::Allocate(pick) => {
                    let offset = pick % (size + 1); // sometimes exactly out of range
                    match bitmap.allocate(offset) {
                        Ok(()) => prop_assert!(offset < size && model.insert(offset)),
                        Err(Error::AlreadyAllocated { .. }) => prop_assert!(model.contains(&offset)),
                        Err(Error::NotInRange { .. }) => prop_assert_eq!(offset, size),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                Op::Release(pick) => {
                    if size == 0 {
                        continue;
                    }
                    let offset = pick % size;
                    let was = bitmap.release(offset).unwrap();
                    prop_assert_eq!(was, model.remove(&offset));
                    // Reusable straight away by a static allocation.
                    if was && pick % 2 == 0 {
                        bitmap.allocate(offset).unwrap();
                        model.insert(offset);
                    }
                }
                Op::SnapshotRestore => {
                    let restored = RangeBitmap::from_bytes(&bitmap.to_bytes()).unwrap();
                    prop_assert!(restored.iter().eq(bitmap.iter()));
                    prop_assert_eq!(restored.used_in_static_band(), bitmap.used_in_static_band());
                    prop_assert_eq!(restored.used_in_dynamic_band(), bitmap.used_in_dynamic_band());
                    prop_assert_eq!(restored.static_band_size(), band);
                    bitmap = restored;
                }
            }
            prop_assert!(bitmap.iter().eq(model.iter().copied()));
            prop_assert_eq!(bitmap.used_in_static_band(), model.range(..band).count());
            prop_assert_eq!(bitmap.used_in_dynamic_band(), model.range(band..).count());
            prop_assert_eq!(bitmap.free(), size - model.len());
        }
    }

    /// Dynamic allocation alone walks the whole range without repeats, upper band first.
    #[test]
    fn draining_hands_out_the_upper_band_then_the_lower((size, band) in size_and_band()) {
        let mut bitmap = RangeBitmap::new(size, band).unwrap();
        let order: Vec<usize> = std::iter::from_fn(|| bitmap.allocate_next().ok()).collect();
        prop_assert_eq!(order.len(), size);
        let split = size - band;
        prop_assert!(order[..split].iter().all(|o| *o >= band));
        prop_assert!(order[split..].iter().all(|o| *o < band));
        prop_assert_eq!(order.iter().collect::<BTreeSet<_>>().len(), size);
    }

    /// ClusterIPs: every handed-out IP is in the CIDR, never the network or
    /// (IPv4) broadcast address, never twice; snapshots round-trip.
    #[test]
    fn cluster_ips_are_unique_and_in_range(
        v6 in any::<bool>(),
        host_bits in 2u8..11,
        ops in ops(400),
    ) {
        let cidr: IpNet = if v6 {
            format!("fd00:10::/{}", 128 - host_bits).parse().unwrap()
        } else {
            format!("10.20.0.0/{}", 32 - host_bits).parse().unwrap()
        };
        let mut ips = ClusterIpAllocator::new(cidr).unwrap();
        let hosts: Vec<IpAddr> = cidr.hosts().collect();
        let mut model = BTreeSet::new();
        for op in ops {
            match op {
                Op::AllocateNext => match ips.allocate_next() {
                    Ok(ip) => {
                        prop_assert!(cidr.contains(&ip));
                        prop_assert_ne!(ip, cidr.network());
                        if !v6 {
                            prop_assert_ne!(ip, cidr.broadcast());
                        }
                        prop_assert!(model.insert(ip), "{} handed out twice", ip);
                    }
                    Err(Error::RangeFull { .. }) => prop_assert_eq!(model.len(), ips.usage().total),
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                },
                Op::Allocate(pick) => {
                    let ip = hosts[pick % hosts.len()];
                    match ips.allocate(ip) {
                        Ok(()) => prop_assert!(model.insert(ip)),
                        Err(Error::AlreadyAllocated { .. }) => prop_assert!(model.contains(&ip)),
                        // ipnet's hosts() includes fd00:10:: itself for IPv6.
                        Err(Error::NotInRange { .. }) => prop_assert_eq!(ip, cidr.network()),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                Op::Release(pick) => {
                    let ip = hosts[pick % hosts.len()];
                    if ip == cidr.network() {
                        continue;
                    }
                    prop_assert_eq!(ips.release(ip).unwrap(), model.remove(&ip));
                }
                Op::SnapshotRestore => {
                    ips = ClusterIpAllocator::from_snapshot(&ips.snapshot()).unwrap();
                }
            }
            prop_assert!(ips.iter().eq(model.iter().copied()));
            prop_assert_eq!(ips.usage().used, model.len());
        }
    }

    /// NodePorts: unique, within the range, upper band first; snapshots round-trip.
    #[test]
    fn node_ports_are_unique_and_in_range(
        first in 1000u16..40000,
        len in 1u16..600,
        ops in ops(800),
    ) {
        let range = PortRange::new(first, first + len - 1).unwrap();
        let mut ports = NodePortAllocator::new(range);
        let band = ports.usage().static_band_size as i32;
        let dynamic_band: Vec<i32> = (i32::from(first) + band..=i32::from(range.last())).collect();
        let mut model = BTreeSet::new();
        for op in ops {
            match op {
                Op::AllocateNext => {
                    let dynamic_full = dynamic_band.iter().all(|p| model.contains(p));
                    match ports.allocate_next() {
                        Ok(port) => {
                            prop_assert!(range.contains(port));
                            prop_assert!(port >= i32::from(first) + band || dynamic_full);
                            prop_assert!(model.insert(port), "{} handed out twice", port);
                        }
                        Err(Error::RangeFull { .. }) => prop_assert_eq!(model.len(), usize::from(len)),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                Op::Allocate(pick) => {
                    let port = i32::from(first) - 1 + (pick % (usize::from(len) + 2)) as i32;
                    match ports.allocate(port) {
                        Ok(()) => prop_assert!(model.insert(port)),
                        Err(Error::AlreadyAllocated { .. }) => prop_assert!(model.contains(&port)),
                        Err(Error::NotInRange { .. }) => prop_assert!(!range.contains(port)),
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
                Op::Release(pick) => {
                    let port = i32::from(first) + (pick % usize::from(len)) as i32;
                    prop_assert_eq!(ports.release(port).unwrap(), model.remove(&port));
                }
                Op::SnapshotRestore => {
                    ports = NodePortAllocator::from_snapshot(&ports.snapshot()).unwrap();
                }
            }
            prop_assert!(ports.iter().eq(model.iter().copied()));
        }
    }
}
