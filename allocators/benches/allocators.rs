//! Our band-aware next-fit bitmap against a port of the upstream strategy.
//!
//! Baseline ("upstream"): a port, for this benchmark only, of kube-apiserver's
//! `allocator.AllocationBitmap` with `randomScanStrategyWithOffset` behind
//! `ipallocator.Range`: pick a random start in the dynamic band
//! `[band, max)`, probe bit by bit (wrapping) for a free offset, and only if the
//! band is full do the same in the static band `[0, band)`. Its bitmap is a
//! plain `Vec<u64>` rather than Go's `big.Int`, which only makes the baseline
//! faster; the search algorithm is upstream's.
//!
//! Run: `cargo bench -p svcplane-allocators` (about 2-3 minutes on 2 cores).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{criterion_group, BatchSize, BenchmarkId, Criterion, SamplingMode};
use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use svcplane_allocators::{cluster_ip_static_band_size, ClusterIpAllocator};

/// Port of upstream `ipallocator.Range` over `AllocationBitmap` with
/// `randomScanStrategyWithOffset` (the baseline).
struct UpstreamRange {
    words: Vec<u64>,
    /// Usable addresses (upstream `max`).
    max: usize,
    /// Static band size (upstream `offset`, `calculateRangeOffset`).
    offset: usize,
    count: usize,
    /// Network address + 1 (upstream `base`).
    base: u128,
    v6: bool,
    rand: StdRng,
}

impl UpstreamRange {
    fn new(cidr: IpNet) -> Self {
        let host_bits = cidr.max_prefix_len() - cidr.prefix_len();
        let size: u128 = 1 << host_bits;
        let v6 = matches!(cidr, IpNet::V6(_));
        let mut max = if v6 { size.min(65536) } else { size - 1 };
        max -= 1;
        let max = max as usize;
        Self {
            words: vec![0; max.div_ceil(64)],
            max,
            offset: cluster_ip_static_band_size(size),
            count: 0,
            base: ip_to_u128(cidr.network()) + 1,
            v6,
            rand: StdRng::seed_from_u64(7),
        }
    }

    fn bit(&self, at: usize) -> bool {
        self.words[at / 64] >> (at % 64) & 1 == 1
    }

    fn set(&mut self, at: usize, value: bool) {
        if value {
            self.words[at / 64] |= 1 << (at % 64);
        } else {
            self.words[at / 64] &= !(1 << (at % 64));
        }
    }

    /// `randomScanStrategyWithOffset.AllocateBit`.
    fn allocate_bit(&mut self) -> Option<usize> {
        if self.count >= self.max {
            return None;
        }
        let subrange_max = self.max - self.offset;
        let start = self.rand.random_range(0..subrange_max);
        for i in 0..subrange_max {
            let at = self.offset + (start + i) % subrange_max;
            if !self.bit(at) {
                return Some(at);
            }
        }
        if self.offset > 0 {
            let start = self.rand.random_range(0..self.offset);
            for i in 0..self.offset {
                let at = (start + i) % self.offset;
                if !self.bit(at) {
                    return Some(at);
                }
            }
        }
        None
    }

    /// `Range.AllocateNext`.
    fn allocate_next(&mut self) -> Option<IpAddr> {
        let at = self.allocate_bit()?;
        self.set(at, true);
        self.count += 1;
        Some(self.ip_at(at))
    }

    /// `Range.Allocate`.
    fn allocate(&mut self, ip: IpAddr) -> bool {
        let at = (ip_to_u128(ip) - self.base) as usize;
        if self.bit(at) {
            return false;
        }
        self.set(at, true);
        self.count += 1;
        true
    }

    /// `Range.Release`.
    fn release(&mut self, ip: IpAddr) {
        let at = (ip_to_u128(ip) - self.base) as usize;
        if self.bit(at) {
            self.set(at, false);
            self.count -= 1;
        }
    }

    fn ip_at(&self, at: usize) -> IpAddr {
        ip_from_u128(self.base + at as u128, self.v6)
    }
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn ip_from_u128(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    }
}

fn cidr(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The same random `fraction` of a CIDR's usable addresses, for both allocators.
fn random_fill(net: IpNet, fraction: f64, seed: u64) -> Vec<IpAddr> {
    let total = ClusterIpAllocator::new(net).unwrap().usage().total;
    let mut offsets: Vec<u32> = (0..total as u32).collect();
    offsets.shuffle(&mut StdRng::seed_from_u64(seed));
    let keep = ((total as f64) * fraction).round() as usize;
    let base = ip_to_u128(net.network()) + 1;
    let v6 = matches!(net, IpNet::V6(_));
    offsets[..keep]
        .iter()
        .map(|o| ip_from_u128(base + u128::from(*o), v6))
        .collect()
}

fn filled_pair(net: IpNet, fill: &[IpAddr]) -> (ClusterIpAllocator, UpstreamRange) {
    let mut ours = ClusterIpAllocator::new(net).unwrap();
    let mut upstream = UpstreamRange::new(net);
    for ip in fill {
        ours.allocate(*ip).unwrap();
        assert!(upstream.allocate(*ip));
    }
    (ours, upstream)
}

/// Allocate every usable address of a fresh range.
fn fill_whole_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("fill_whole_range");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    for name in ["10.0.0.0/16", "10.96.0.0/12", "fd00::/108"] {
        let net = cidr(name);
        let total = ClusterIpAllocator::new(net).unwrap().usage().total;
        group.bench_function(BenchmarkId::new("ours", name), |b| {
            b.iter_batched(
                || ClusterIpAllocator::new(net).unwrap(),
                |mut ours| {
                    for _ in 0..total {
                        black_box(ours.allocate_next().unwrap());
                    }
                    ours
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("upstream", name), |b| {
            b.iter_batched(
                || UpstreamRange::new(net),
                |mut upstream| {
                    for _ in 0..total {
                        black_box(upstream.allocate_next().unwrap());
                    }
                    upstream
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// One dynamic allocation (plus the release that keeps the fill level
/// constant) in a /12 randomly filled to 50 %, 99 % and 99.99 %.
fn allocate_one_when_full(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocate_release_one_ipv4_12");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let net = cidr("10.96.0.0/12");
    for (label, fraction) in [("50%", 0.5), ("99%", 0.99), ("99.99%", 0.9999)] {
        let fill = random_fill(net, fraction, 42);
        let (mut ours, mut upstream) = filled_pair(net, &fill);
        group.bench_function(BenchmarkId::new("ours", label), |b| {
            b.iter(|| {
                let ip = ours.allocate_next().unwrap();
                ours.release(black_box(ip)).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("upstream", label), |b| {
            b.iter(|| {
                let ip = upstream.allocate_next().unwrap();
                upstream.release(black_box(ip));
            })
        });
    }
    group.finish();
}

/// Release a random allocated address and allocate a new one, at 95 % full.
fn churn_at_95_percent(c: &mut Criterion) {
    let mut group = c.benchmark_group("churn_95pct_ipv4_12");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let net = cidr("10.96.0.0/12");
    let fill = random_fill(net, 0.95, 43);
    let (mut ours, mut upstream) = filled_pair(net, &fill);
    let mut ours_live = fill.clone();
    let mut upstream_live = fill;
    let mut pick = StdRng::seed_from_u64(44);
    group.bench_function("ours", |b| {
        b.iter(|| {
            let i = pick.random_range(0..ours_live.len());
            ours.release(ours_live[i]).unwrap();
            ours_live[i] = ours.allocate_next().unwrap();
        })
    });
    let mut pick = StdRng::seed_from_u64(44);
    group.bench_function("upstream", |b| {
        b.iter(|| {
            let i = pick.random_range(0..upstream_live.len());
            upstream.release(upstream_live[i]);
            upstream_live[i] = upstream.allocate_next().unwrap();
        })
    });
    group.finish();
}

/// Memory per range: the allocator struct plus one bit per usable address.
fn report_memory() {
    println!(
        "memory: size_of::<ClusterIpAllocator>() = {} bytes",
        std::mem::size_of::<ClusterIpAllocator>()
    );
    for name in ["10.0.0.0/24", "10.0.0.0/16", "10.96.0.0/12", "fd00::/108"] {
        let allocator = ClusterIpAllocator::new(cidr(name)).unwrap();
        let total = allocator.usage().total;
        println!(
            "memory: {name}: {total} addresses, bitmap {} bytes (struct + words), {:.3} bits/address",
            allocator.memory_bytes(),
            allocator.memory_bytes() as f64 * 8.0 / total as f64
        );
    }
}

criterion_group!(
    benches,
    fill_whole_range,
    allocate_one_when_full,
    churn_at_95_percent
);

fn main() {
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
