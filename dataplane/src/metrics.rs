//! The node agent's Prometheus metrics (kube-proxy's `kubeproxy_*` metrics under the
//! `svcplane_proxy_` prefix), registered once per agent in its own registry.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// All node agent metrics.
#[derive(Clone)]
pub struct AgentMetrics {
    /// The registry served on `/metrics`.
    pub registry: Registry,
    /// `svcplane_proxy_sync_duration_seconds{backend,scope}` (upstream
    /// `sync_proxy_rules_duration_seconds`, split by full/partial).
    pub sync_duration: HistogramVec,
    /// `svcplane_proxy_syncs_total{backend,scope,result}`.
    pub syncs: IntCounterVec,
    /// `svcplane_proxy_network_programming_duration_seconds`: from an EndpointSlice's
    /// `last-change-trigger-time` until the kernel holds the change (upstream
    /// `network_programming_duration_seconds`).
    pub network_programming: HistogramVec,
    /// `svcplane_proxy_last_sync_timestamp_seconds` of the last successful sync.
    pub last_sync: Gauge,
    /// `svcplane_proxy_kernel_operations_total{backend}`.
    pub kernel_operations: IntCounterVec,
    /// `svcplane_proxy_conntrack_entries_deleted_total{backend}`.
    pub conntrack_deleted: IntCounterVec,
    /// `svcplane_proxy_virtual_servers`: rows of the desired table.
    pub virtual_servers: IntGauge,
    /// `svcplane_proxy_services`: Services with rows.
    pub services: IntGauge,
    /// `svcplane_proxy_service_changes_total`: Services whose rows changed.
    pub service_changes: IntCounterVec,
}

impl AgentMetrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Result<AgentMetrics, prometheus::Error> {
        let registry = Registry::new();
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            60.0, 120.0, 300.0,
        ];
        let m = AgentMetrics {
            sync_duration: HistogramVec::new(
                HistogramOpts::new(
                    "svcplane_proxy_sync_duration_seconds",
                    "Time one sync of the forwarding table took",
                )
                .buckets(latency_buckets.clone()),
                &["backend", "scope"],
            )?,
            syncs: IntCounterVec::new(
                Opts::new(
                    "svcplane_proxy_syncs_total",
                    "Syncs of the forwarding table",
                ),
                &["backend", "scope", "result"],
            )?,
            network_programming: HistogramVec::new(
                HistogramOpts::new(
                    "svcplane_proxy_network_programming_duration_seconds",
                    "Time from an EndpointSlice change (last-change-trigger-time) until the \
                     kernel holds it",
                )
                .buckets(latency_buckets),
                &["backend"],
            )?,
            last_sync: Gauge::new(
                "svcplane_proxy_last_sync_timestamp_seconds",
                "Unix time of the last successful sync",
            )?,
            kernel_operations: IntCounterVec::new(
                Opts::new(
                    "svcplane_proxy_kernel_operations_total",
                    "Kernel write operations issued by syncs",
                ),
                &["backend"],
            )?,
            conntrack_deleted: IntCounterVec::new(
                Opts::new(
                    "svcplane_proxy_conntrack_entries_deleted_total",
                    "Stale UDP conntrack entries deleted",
                ),
                &["backend"],
            )?,
            virtual_servers: IntGauge::new(
                "svcplane_proxy_virtual_servers",
                "Virtual servers in the desired table",
            )?,
            services: IntGauge::new("svcplane_proxy_services", "Services in the desired table")?,
            service_changes: IntCounterVec::new(
                Opts::new(
                    "svcplane_proxy_service_changes_total",
                    "Services whose forwarding rows changed",
                ),
                &["backend"],
            )?,
            registry,
        };
        m.registry.register(Box::new(m.sync_duration.clone()))?;
        m.registry.register(Box::new(m.syncs.clone()))?;
        m.registry
            .register(Box::new(m.network_programming.clone()))?;
        m.registry.register(Box::new(m.last_sync.clone()))?;
        m.registry.register(Box::new(m.kernel_operations.clone()))?;
        m.registry.register(Box::new(m.conntrack_deleted.clone()))?;
        m.registry.register(Box::new(m.virtual_servers.clone()))?;
        m.registry.register(Box::new(m.services.clone()))?;
        m.registry.register(Box::new(m.service_changes.clone()))?;
        Ok(m)
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
