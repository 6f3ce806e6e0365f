//! The validating admission webhook server: axum over TLS (rustls, ring) with
//! `POST /validate`, `/healthz`, `/readyz` and `/metrics`.
//!
//! One path serves every kind: the handler dispatches on `request.kind`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use bytes::Bytes;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admission::review_error_body;
use crate::connections::{self, ConnectionLimits};
use crate::metrics::WebhookMetrics;
use crate::pools::{review_with, NoPools, PoolLister};
use crate::tls::{server_config, ReloadingCert, TlsFiles};
use crate::Error;

/// Largest AdmissionReview body accepted; larger bodies get HTTP 413. A review of an update
/// carries the object and its old version, each of which may be as large as kube-apiserver's
/// request limit (3 MiB; the stored object is at most etcd's 1.5 MiB, but the object under
/// review still has its managedFields, which upstream drops only when storing), plus the
/// review's own fields.
pub const MAX_BODY_BYTES: usize = 2 * API_REQUEST_LIMIT_BYTES + 256 * 1024;

/// kube-apiserver's request body limit (`maxRequestBodyBytes`, 3 MiB).
pub const API_REQUEST_LIMIT_BYTES: usize = 3 * 1024 * 1024;
/// How long a shutdown waits for reviews in flight before closing their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Options shared by the TLS and plain-HTTP servers.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Per-request timeout (reading the body and answering); on expiry HTTP 408.
    pub request_timeout: Duration,
    /// Metrics to record into and expose on `/metrics`.
    pub metrics: WebhookMetrics,
    /// Timeouts and the per-client connection cap of the listeners.
    pub limits: ConnectionLimits,
    /// The cluster's `LoadBalancerIPPool`s, for the overlap check of a pool under review
    /// (none by default).
    pub pools: Arc<dyn PoolLister>,
}

impl ServeOptions {
    /// Defaults: 10 s per request, fresh metrics, default connection limits.
    pub fn new() -> Result<Self, Error> {
        Ok(ServeOptions {
            request_timeout: Duration::from_secs(10),
            metrics: WebhookMetrics::new().map_err(|e| Error::Metrics(e.to_string()))?,
            limits: ConnectionLimits::default(),
            pools: Arc::new(NoPools),
        })
    }
}

/// What the validating route needs.
#[derive(Clone)]
struct ReviewState {
    metrics: WebhookMetrics,
    pools: Arc<dyn PoolLister>,
}

async fn validate(State(state): State<ReviewState>, body: Bytes) -> Response {
    let start = Instant::now();
    let metrics = &state.metrics;
    match review_with(&body, state.pools.as_ref()) {
        Ok(out) => {
            metrics.observe(
                &out.kind,
                &out.operation,
                out.allowed,
                start.elapsed().as_secs_f64(),
            );
            tracing::debug!(kind = %out.kind, operation = %out.operation, allowed = out.allowed, "review answered");
            Json(out.body).into_response()
        }
        Err(e) => {
            metrics.observe("", "", false, start.elapsed().as_secs_f64());
            tracing::info!(error = %e, "bad AdmissionReview");
            (StatusCode::BAD_REQUEST, Json(review_error_body(&e))).into_response()
        }
    }
}

async fn metrics_handler(State(state): State<ReviewState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn handle_timeout(err: BoxError) -> (StatusCode, String) {
    if err.is::<tower::timeout::error::Elapsed>() {
        (StatusCode::REQUEST_TIMEOUT, "request timed out".into())
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {err}"),
        )
    }
}

/// The webhook's routes with body limit and per-request timeout.
pub fn router(options: &ServeOptions) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(handle_timeout))
                .timeout(options.request_timeout),
        )
        .with_state(ReviewState {
            metrics: options.metrics.clone(),
            pools: options.pools.clone(),
        })
}

/// Serve the webhook over TLS on `listener` until `shutdown` completes, then stop accepting
/// and let the reviews in flight be answered (for at most [`SHUTDOWN_GRACE`]) before
/// returning. The certificate is re-read when its files change (checked every
/// `tls.reload_interval`). Connections get `options.limits` (handshake, header-read and idle
/// timeouts; see [`crate::connections`]).
pub async fn serve(
    listener: TcpListener,
    tls: TlsFiles,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let resolver = ReloadingCert::new(tls)?;
    let watcher = resolver.spawn_watcher();
    let acceptor = TlsAcceptor::from(server_config(resolver)?);
    let app = TowerToHyperService::new(router(&options));
    connections::serve(
        listener,
        Some(acceptor),
        options.limits,
        app,
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await;
    watcher.abort();
    Ok(())
}

/// Serve the same routes over plain HTTP (metrics endpoint, benchmarks' baseline, tests), with
/// the same connection limits.
pub async fn serve_plain(
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let app = TowerToHyperService::new(router(&options));
    connections::serve(
        listener,
        None,
        options.limits,
        app,
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await;
    Ok(())
}
