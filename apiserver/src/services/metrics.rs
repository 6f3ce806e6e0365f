//! `svcplane_allocator_*` metrics: per-range usage read from the allocators at scrape time
//! (so it is never stale), and error counters by kind.
//!
//! Upstream exposes `kube_apiserver_clusterip_allocator_{allocated,available}_ips{cidr}`,
//! `..._allocation_errors_total` and the repair controllers'
//! `apiserver_{clusterip,nodeport}_repair_*_errors_total{type}`; these carry the same facts
//! under one prefix, plus static/dynamic band usage (KEP-3070, KEP-3668).

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use svcplane_allocators::RangeUsage;

use super::pools::Pools;

/// Allocator metrics; register [`AllocatorMetrics::collector`] once in the server's registry.
#[derive(Clone)]
pub struct AllocatorMetrics {
    pools: Arc<Mutex<Pools>>,
    allocated: IntGaugeVec,
    available: IntGaugeVec,
    static_band_size: IntGaugeVec,
    static_band_allocated: IntGaugeVec,
    dynamic_band_allocated: IntGaugeVec,
    errors: IntCounterVec,
}

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &["range"]).expect("valid metric")
}

impl AllocatorMetrics {
    /// Metrics reading `pools`.
    pub fn new(pools: Arc<Mutex<Pools>>) -> Self {
        AllocatorMetrics {
            pools,
            allocated: gauge(
                "svcplane_allocator_allocated",
                "Allocated values (ClusterIPs or node ports) per service range.",
            ),
            available: gauge(
                "svcplane_allocator_available",
                "Free values (ClusterIPs or node ports) per service range.",
            ),
            static_band_size: gauge(
                "svcplane_allocator_static_band_size",
                "Size of the lower static band of each range (KEP-3070, KEP-3668).",
            ),
            static_band_allocated: gauge(
                "svcplane_allocator_static_band_allocated",
                "Allocated values in the static band of each range.",
            ),
            dynamic_band_allocated: gauge(
                "svcplane_allocator_dynamic_band_allocated",
                "Allocated values in the upper dynamic band of each range.",
            ),
            errors: IntCounterVec::new(
                Opts::new(
                    "svcplane_allocator_errors_total",
                    "Allocation errors of Service writes (AlreadyAllocated, NotInRange, RangeFull) and problems found by the repair audit (Duplicate, OutOfRange, NotAllocated, Invalid, Leak).",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        }
    }

    /// Counts one error of `kind`.
    pub fn count_error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }

    /// How many errors of `kind` were counted.
    pub fn errors(&self, kind: &str) -> u64 {
        self.errors.with_label_values(&[kind]).get()
    }

    /// The collector to register in a Prometheus registry.
    pub fn collector(&self) -> Box<dyn Collector> {
        Box::new(self.clone())
    }

    fn gauges(&self) -> [&IntGaugeVec; 5] {
        [
            &self.allocated,
            &self.available,
            &self.static_band_size,
            &self.static_band_allocated,
            &self.dynamic_band_allocated,
        ]
    }

    fn refresh(&self) {
        let usages: Vec<(String, RangeUsage)> = {
            let pools = self.pools.lock();
            let mut v: Vec<_> = pools
                .ips
                .allocators()
                .map(|a| (a.cidr().to_string(), a.usage()))
                .collect();
            v.push((pools.ports.range().to_string(), pools.ports.usage()));
            v
        };
        for (range, u) in usages {
            let set = |g: &IntGaugeVec, value: usize| {
                g.with_label_values(&[range.as_str()])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            };
            set(&self.allocated, u.used);
            set(&self.available, u.free());
            set(&self.static_band_size, u.static_band_size);
            set(&self.static_band_allocated, u.static_used);
            set(&self.dynamic_band_allocated, u.dynamic_used);
        }
    }
}

impl Collector for AllocatorMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut d: Vec<&Desc> = self.gauges().into_iter().flat_map(|g| g.desc()).collect();
        d.extend(self.errors.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut out: Vec<MetricFamily> = self
            .gauges()
            .into_iter()
            .flat_map(|g| g.collect())
            .collect();
        out.extend(self.errors.collect());
        out
    }
}
