//! The validating admission webhook server: axum over TLS (rustls, ring) with
//! `POST /validate`, `/healthz`, `/readyz` and `/metrics`.
//!
//! One path serves every kind: the handler dispatches on `request.kind`.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admission::{review, review_error_body};
use crate::metrics::WebhookMetrics;
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
/// Time allowed for a TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown waits for reviews in flight before closing their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Options shared by the TLS and plain-HTTP servers.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Per-request timeout (reading the body and answering); on expiry HTTP 408.
    pub request_timeout: Duration,
    /// Metrics to record into and expose on `/metrics`.
    pub metrics: WebhookMetrics,
}

impl ServeOptions {
    /// Defaults: 10 s per request, fresh metrics.
    pub fn new() -> Result<Self, Error> {
        Ok(ServeOptions {
            request_timeout: Duration::from_secs(10),
            metrics: WebhookMetrics::new().map_err(|e| Error::Metrics(e.to_string()))?,
        })
    }
}

async fn validate(State(metrics): State<WebhookMetrics>, body: Bytes) -> Response {
    let start = Instant::now();
    match review(&body) {
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

async fn metrics_handler(State(metrics): State<WebhookMetrics>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
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
        .with_state(options.metrics.clone())
}

/// Serve the webhook over TLS on `listener` until `shutdown` completes, then stop accepting
/// and let the reviews in flight be answered (for at most [`SHUTDOWN_GRACE`]) before
/// returning. The certificate is re-read when its files change (checked every
/// `tls.reload_interval`).
pub async fn serve(
    listener: TcpListener,
    tls: TlsFiles,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let resolver = ReloadingCert::new(tls)?;
    let watcher = resolver.spawn_watcher();
    let acceptor = TlsAcceptor::from(server_config(resolver)?);
    let app = router(&options);
    tokio::pin!(shutdown);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let app = app.clone();
                let stop = stop_rx.clone();
                connections.spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    serve_connection(TokioIo::new(stream), app, stop).await;
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            "reviews in flight did not finish within {SHUTDOWN_GRACE:?}; closing their connections"
        );
        connections.shutdown().await;
    }
    watcher.abort();
    Ok(())
}

/// Serves one connection until it ends, or until `stop`: then no new request is read and the
/// one in flight is answered.
async fn serve_connection<I>(io: I, app: Router, mut stop: tokio::sync::watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { drop(stop.wait_for(|stop| *stop).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with error");
    }
}

/// Serve the same routes over plain HTTP (metrics endpoint, benchmarks' baseline, tests).
pub async fn serve_plain(
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let app = router(&options);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Io("listener".into(), e.to_string()))
}
