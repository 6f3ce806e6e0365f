//! Prometheus metrics of the embedded API server, named like kube-apiserver's so tests and
//! benchmarks can count API calls the same way on both (`apiserver_request_total`).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics, registered once.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `apiserver_request_total{verb,group,version,resource,subresource,code}`.
    pub requests: IntCounterVec,
    /// `apiserver_request_duration_seconds{verb,group,version,resource,subresource}`.
    pub latency: HistogramVec,
    /// `apiserver_registered_watchers{group,resource}` (open watches).
    pub watchers: IntGaugeVec,
    /// `apiserver_storage_objects{resource}`.
    pub objects: IntGaugeVec,
    /// `svcplane_apiserver_resource_version`: the newest global revision.
    pub resource_version: IntGauge,
    /// `apiserver_terminated_watchers_total{resource}`: watches ended because their client
    /// stopped reading (upstream's name).
    pub terminated_watchers: IntCounterVec,
    /// `svcplane_apiserver_watch_history_bytes`: bytes the retained watch history holds.
    pub history_bytes: IntGauge,
    /// `authentication_attempts{result}` (`success`, `failure`: upstream's name, from
    /// `staging/src/k8s.io/apiserver/pkg/endpoints/filters/metrics.go`); anonymous requests
    /// are successes of the anonymous authenticator, as upstream.
    pub authentication_attempts: IntCounterVec,
    /// `apiserver_authorization_decisions_total{type,name,decision}` (upstream's name, from
    /// `staging/src/k8s.io/apiserver/pkg/authorization/metrics`): RBAC decisions, `allowed` or
    /// `denied`, under `--authorization-mode=RBAC` (impersonation checks included).
    pub authorization_decisions: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "apiserver_request_total",
                "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and HTTP response code.",
            ),
            &["verb", "group", "version", "resource", "subresource", "code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["verb", "group", "version", "resource", "subresource"],
        )
        .expect("valid metric");
        let watchers = IntGaugeVec::new(
            Opts::new(
                "apiserver_registered_watchers",
                "Number of currently registered watchers for a given resource.",
            ),
            &["group", "resource"],
        )
        .expect("valid metric");
        let objects = IntGaugeVec::new(
            Opts::new(
                "apiserver_storage_objects",
                "Number of stored objects at the time of last check split by kind.",
            ),
            &["resource"],
        )
        .expect("valid metric");
        let resource_version = IntGauge::new(
            "svcplane_apiserver_resource_version",
            "The newest global resourceVersion of the embedded API server.",
        )
        .expect("valid metric");
        let terminated_watchers = IntCounterVec::new(
            Opts::new(
                "apiserver_terminated_watchers_total",
                "Counter of watchers closed due to unresponsiveness broken by resource type.",
            ),
            &["resource"],
        )
        .expect("valid metric");
        let history_bytes = IntGauge::new(
            "svcplane_apiserver_watch_history_bytes",
            "Bytes of object versions held by the watch history of the embedded API server.",
        )
        .expect("valid metric");
        let authentication_attempts = IntCounterVec::new(
            Opts::new(
                "authentication_attempts",
                "Counter of authenticated attempts.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let authorization_decisions = IntCounterVec::new(
            Opts::new(
                "apiserver_authorization_decisions_total",
                "Total number of terminal decisions made by an authorizer split by authorizer type, name, and decision.",
            ),
            &["type", "name", "decision"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(authentication_attempts.clone()),
            Box::new(authorization_decisions.clone()),
            Box::new(terminated_watchers.clone()),
            Box::new(history_bytes.clone()),
            Box::new(latency.clone()),
            Box::new(watchers.clone()),
            Box::new(objects.clone()),
            Box::new(resource_version.clone()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            watchers,
            objects,
            resource_version,
            terminated_watchers,
            history_bytes,
            authentication_attempts,
            authorization_decisions,
        }
    }

    /// The registry, so other in-process components (allocators in dev mode) can add metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(%err, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
