//! Webhook metrics, registered once in their own registry.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The webhook's Prometheus metrics.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    registry: Registry,
    /// `svcplane_webhook_requests_total{kind,operation,allowed}`.
    pub requests: IntCounterVec,
    /// `svcplane_webhook_request_duration_seconds{kind}`: time to answer one review.
    pub latency: HistogramVec,
}

impl WebhookMetrics {
    /// Create and register the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "svcplane_webhook_requests_total",
                "AdmissionReviews answered, by kind, operation and verdict.",
            ),
            &["kind", "operation", "allowed"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "svcplane_webhook_request_duration_seconds",
                "Time to answer one AdmissionReview (decode, default, validate, encode).",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0,
            ]),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(WebhookMetrics {
            registry,
            requests,
            latency,
        })
    }

    /// Record one answered review.
    pub fn observe(&self, kind: &str, operation: &str, allowed: bool, seconds: f64) {
        self.requests
            .with_label_values(&[kind, operation, if allowed { "true" } else { "false" }])
            .inc();
        self.latency.with_label_values(&[kind]).observe(seconds);
    }

    /// The Prometheus text exposition of all metrics.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
