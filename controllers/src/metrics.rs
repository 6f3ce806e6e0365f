//! Prometheus metrics (upstream `endpoint_slice_controller_*` names with the `svcplane_`
//! prefix and a `controller` label), registered once per [`Metrics`] value.

use std::collections::HashMap;

use parking_lot::Mutex;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::Result;

/// Desired `(endpoints, slices)` per `(controller, object key)`.
type DesiredByObject = HashMap<(&'static str, String), (i64, i64)>;

/// All controller metrics.
pub struct Metrics {
    /// The registry they are registered in (served on `/metrics`).
    pub registry: Registry,
    /// `svcplane_endpointslice_controller_endpoints_added_per_sync`.
    pub endpoints_added_per_sync: HistogramVec,
    /// `svcplane_endpointslice_controller_endpoints_removed_per_sync`.
    pub endpoints_removed_per_sync: HistogramVec,
    /// `svcplane_endpointslice_controller_endpointslices_changed_per_sync`.
    pub slices_changed_per_sync: HistogramVec,
    /// `svcplane_endpointslice_controller_changes_total{operation=create|update|delete}`.
    pub changes: IntCounterVec,
    /// `svcplane_endpointslice_controller_desired_endpoint_slices`.
    pub desired_slices: IntGaugeVec,
    /// `svcplane_endpointslice_controller_endpoints_desired`.
    pub desired_endpoints: IntGaugeVec,
    /// `svcplane_controller_sync_duration_seconds{controller,result}`.
    pub sync_duration: HistogramVec,
    /// `svcplane_controller_syncs_total{controller,result}` (result is `success` or the error
    /// variant name).
    pub syncs: IntCounterVec,
    /// `svcplane_controller_queue_depth{controller}`.
    pub queue_depth: IntGaugeVec,
    /// `svcplane_leader_election_master_status` (1 while leading).
    pub is_leader: IntGauge,
    /// `svcplane_rest_client_rate_limiter_duration_seconds{client}`: how long each request
    /// waited for its client's token bucket (upstream client-go
    /// `rest_client_rate_limiter_duration_seconds`); only clients with a limit observe.
    pub client_rate_limiter_duration: HistogramVec,
    /// `svcplane_lb_ipam_allocations_total`: LoadBalancer addresses handed out (written to
    /// a Service's status).
    pub lb_ipam_allocations: IntCounter,
    /// `svcplane_lb_ipam_pool_addresses{pool,family,state=total|used}`.
    pub lb_ipam_pool_addresses: IntGaugeVec,
    /// `svcplane_lb_ipam_status_writes_total{result=success|error}`: Service status writes.
    pub lb_ipam_status_writes: IntCounterVec,
    per_object: Mutex<DesiredByObject>,
}

fn buckets_count() -> Vec<f64> {
    prometheus::exponential_buckets(2.0, 2.0, 15).expect("static buckets")
}

impl Metrics {
    /// Creates and registers all metrics in a fresh registry.
    pub fn new() -> Result<Self> {
        let registry = Registry::new();
        let hist = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        };
        let m = Metrics {
            endpoints_added_per_sync: hist(
                "svcplane_endpointslice_controller_endpoints_added_per_sync",
                "Number of endpoints added on each Service sync",
                &["controller"],
                buckets_count(),
            )?,
            endpoints_removed_per_sync: hist(
                "svcplane_endpointslice_controller_endpoints_removed_per_sync",
                "Number of endpoints removed on each Service sync",
                &["controller"],
                buckets_count(),
            )?,
            slices_changed_per_sync: hist(
                "svcplane_endpointslice_controller_endpointslices_changed_per_sync",
                "Number of EndpointSlices changed on each Service sync",
                &["controller", "traffic_distribution"],
                vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            )?,
            changes: IntCounterVec::new(
                Opts::new(
                    "svcplane_endpointslice_controller_changes_total",
                    "Number of EndpointSlice and Endpoints writes",
                ),
                &["controller", "operation"],
            )?,
            desired_slices: IntGaugeVec::new(
                Opts::new(
                    "svcplane_endpointslice_controller_desired_endpoint_slices",
                    "Number of EndpointSlices that would exist with perfect endpoint allocation",
                ),
                &["controller"],
            )?,
            desired_endpoints: IntGaugeVec::new(
                Opts::new(
                    "svcplane_endpointslice_controller_endpoints_desired",
                    "Number of endpoints desired",
                ),
                &["controller"],
            )?,
            sync_duration: hist(
                "svcplane_controller_sync_duration_seconds",
                "Duration of one sync of one key",
                &["controller", "result"],
                prometheus::exponential_buckets(0.0005, 2.0, 16).expect("static buckets"),
            )?,
            syncs: IntCounterVec::new(
                Opts::new("svcplane_controller_syncs_total", "Syncs by result"),
                &["controller", "result"],
            )?,
            queue_depth: IntGaugeVec::new(
                Opts::new(
                    "svcplane_controller_queue_depth",
                    "Keys waiting in the work queue",
                ),
                &["controller"],
            )?,
            is_leader: IntGauge::new(
                "svcplane_leader_election_master_status",
                "1 while this instance holds the lease",
            )?,
            client_rate_limiter_duration: hist(
                "svcplane_rest_client_rate_limiter_duration_seconds",
                "Time a request waited for its client's rate limiter",
                &["client"],
                prometheus::exponential_buckets(0.001, 2.0, 18).expect("static buckets"),
            )?,
            lb_ipam_allocations: IntCounter::new(
                "svcplane_lb_ipam_allocations_total",
                "LoadBalancer addresses handed out to Services",
            )?,
            lb_ipam_pool_addresses: IntGaugeVec::new(
                Opts::new(
                    "svcplane_lb_ipam_pool_addresses",
                    "Addresses of a LoadBalancerIPPool by family and state (total, used)",
                ),
                &["pool", "family", "state"],
            )?,
            lb_ipam_status_writes: IntCounterVec::new(
                Opts::new(
                    "svcplane_lb_ipam_status_writes_total",
                    "Service status writes of the LoadBalancer IPAM controller by result",
                ),
                &["result"],
            )?,
            per_object: Mutex::new(HashMap::new()),
            registry,
        };
        m.registry
            .register(Box::new(m.endpoints_added_per_sync.clone()))?;
        m.registry
            .register(Box::new(m.endpoints_removed_per_sync.clone()))?;
        m.registry
            .register(Box::new(m.slices_changed_per_sync.clone()))?;
        m.registry.register(Box::new(m.changes.clone()))?;
        m.registry.register(Box::new(m.desired_slices.clone()))?;
        m.registry.register(Box::new(m.desired_endpoints.clone()))?;
        m.registry.register(Box::new(m.sync_duration.clone()))?;
        m.registry.register(Box::new(m.syncs.clone()))?;
        m.registry.register(Box::new(m.queue_depth.clone()))?;
        m.registry.register(Box::new(m.is_leader.clone()))?;
        m.registry
            .register(Box::new(m.client_rate_limiter_duration.clone()))?;
        m.registry
            .register(Box::new(m.lb_ipam_allocations.clone()))?;
        m.registry
            .register(Box::new(m.lb_ipam_pool_addresses.clone()))?;
        m.registry
            .register(Box::new(m.lb_ipam_status_writes.clone()))?;
        Ok(m)
    }

    /// Records the desired endpoints and slices of one Service (or Endpoints) so that the
    /// gauges hold the cluster totals; `None` forgets it.
    pub fn set_desired(&self, controller: &'static str, key: &str, value: Option<(i64, i64)>) {
        let mut per = self.per_object.lock();
        let k = (controller, key.to_string());
        let old = match value {
            Some(v) => per.insert(k, v),
            None => per.remove(&k),
        }
        .unwrap_or((0, 0));
        let new = value.unwrap_or((0, 0));
        self.desired_endpoints
            .with_label_values(&[controller])
            .add(new.0 - old.0);
        self.desired_slices
            .with_label_values(&[controller])
            .add(new.1 - old.1);
    }

    /// The text exposition of all metrics.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_gauges_sum_per_object_values() {
        let m = Metrics::new().unwrap();
        m.set_desired("endpointslice", "a/x", Some((10, 1)));
        m.set_desired("endpointslice", "a/y", Some((250, 3)));
        m.set_desired("endpointslice", "a/x", Some((5, 1)));
        assert_eq!(
            m.desired_endpoints
                .with_label_values(&["endpointslice"])
                .get(),
            255
        );
        m.set_desired("endpointslice", "a/y", None);
        assert_eq!(
            m.desired_slices.with_label_values(&["endpointslice"]).get(),
            1
        );
        assert!(m
            .encode()
            .contains("svcplane_endpointslice_controller_endpoints_desired"));
    }
}
