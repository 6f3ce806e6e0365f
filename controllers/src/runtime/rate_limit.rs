//! Client-side rate limits, one token bucket per API client as kube-controller-manager has
//! them (`--kube-api-qps` / `--kube-api-burst`).
//!
//! kube-controller-manager builds a separate client-go client for each controller
//! (`ClientBuilder.ClientOrDie("endpointslice-controller")` and so on, in
//! `cmd/kube-controller-manager/app/discovery.go` and `core.go`), one for the shared
//! informers (`shared-informers`) and one for leader election (`leader-election`); each
//! client gets its own `flowcontrol.NewTokenBucketRateLimiter(qps, burst)`
//! (`staging/src/k8s.io/client-go/rest/config.go`, `RESTClientFor`). We do the same with
//! [`limited_client`]: every client wraps the one we are given, so they share its
//! connections (as client-go clients of one config share their transport) but not their
//! budgets.
//!
//! What counts as a request, as in client-go's `rest.Request`
//! (`staging/src/k8s.io/client-go/rest/request.go`): every request takes a token before it
//! is sent (`request()` → `tryThrottle`): gets, creates, updates, deletes, Events, and each
//! page of a list. Opening a watch does not (`Watch`: "We specifically don't want to rate
//! limit watches"); requests with `watch=true` pass straight through.

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use kube::client::Body;
use kube::Client;
use parking_lot::Mutex;
use prometheus::Histogram;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// client-go's `rest.DefaultQPS`: what a QPS of 0 means.
pub const CLIENT_GO_DEFAULT_QPS: f32 = 5.0;

/// client-go's `rest.DefaultBurst`: what a burst of 0 means.
pub const CLIENT_GO_DEFAULT_BURST: u32 = 10;

/// kube-controller-manager's `--kube-api-qps` default.
pub const KUBE_CONTROLLER_MANAGER_QPS: f32 = 20.0;

/// kube-controller-manager's `--kube-api-burst` default.
pub const KUBE_CONTROLLER_MANAGER_BURST: u32 = 30;

/// The token bucket of one client: `qps` tokens per second, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientRateLimit {
    /// Sustained requests per second (> 0).
    pub qps: f32,
    /// Requests that may be sent at once after a quiet period (≥ 1).
    pub burst: u32,
}

impl ClientRateLimit {
    /// The limit kube-controller-manager's flags describe, read as client-go reads
    /// `rest.Config.QPS` / `Burst` (`RESTClientFor`): a QPS of 0 means 5 and a burst of 0
    /// means 10 (client-go's defaults); a negative QPS means no client-side limit (`None`).
    /// A negative burst is refused, as kube-controller-manager's validation does.
    pub fn from_flags(qps: f32, burst: i32) -> Result<Option<Self>> {
        if !qps.is_finite() {
            return Err(Error::InvalidConfig {
                flag: "--kube-api-qps",
                message: format!("must be a finite number, got {qps}"),
            });
        }
        let Ok(burst) = u32::try_from(burst) else {
            return Err(Error::InvalidConfig {
                flag: "--kube-api-burst",
                message: format!("must be non-negative, got {burst}"),
            });
        };
        if qps < 0.0 {
            return Ok(None);
        }
        Ok(Some(ClientRateLimit {
            qps: if qps == 0.0 {
                CLIENT_GO_DEFAULT_QPS
            } else {
                qps
            },
            burst: if burst == 0 {
                CLIENT_GO_DEFAULT_BURST
            } else {
                burst
            },
        }))
    }

    /// kube-controller-manager's defaults: 20 requests/s, burst 30.
    pub fn kube_controller_manager_default() -> Self {
        ClientRateLimit {
            qps: KUBE_CONTROLLER_MANAGER_QPS,
            burst: KUBE_CONTROLLER_MANAGER_BURST,
        }
    }
}

/// A token bucket (golang.org/x/time/rate semantics, which client-go's limiter uses): a
/// caller reserves a token at once, possibly going into debt, and waits until the debt is
/// paid, so waiters are served in arrival order at exactly `qps`.
#[derive(Debug)]
pub struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(limit: ClientRateLimit) -> Self {
        let burst = f64::from(limit.burst.max(1));
        RateLimiter {
            qps: f64::from(limit.qps).max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a token is available and takes it; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = {
            let mut state = self.state.lock();
            let now = Instant::now();
            let elapsed = now.duration_since(state.1).as_secs_f64();
            state.0 = (state.0 + elapsed * self.qps).min(self.burst);
            state.1 = now;
            state.0 -= 1.0;
            if state.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-state.0 / self.qps)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

/// True for a watch request (`?watch=true`, or `1` as some clients spell it), which
/// client-go does not rate limit.
pub fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

/// A client sending through `client`'s connections with its own token bucket; without a
/// limit, `client` itself. Each throttled request's wait is observed in `waited` (upstream
/// `rest_client_rate_limiter_duration_seconds`).
///
/// Must be called within a Tokio runtime (the new client's request queue is a task, as in
/// `kube::Client::new`).
pub fn limited_client(
    client: &Client,
    limit: Option<ClientRateLimit>,
    waited: Histogram,
) -> Client {
    let Some(limit) = limit else {
        return client.clone();
    };
    let limiter = Arc::new(RateLimiter::new(limit));
    let inner = client.clone();
    let service = tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        let limiter = limiter.clone();
        let waited = waited.clone();
        async move {
            if !is_watch(request.uri()) {
                waited.observe(limiter.acquire().await.as_secs_f64());
            }
            // `kube::Client::send` turns an error of ours back into the `kube::Error` we
            // return here, so callers see the same errors as without the wrapper.
            inner.send(request).await
        }
    });
    Client::new(service, client.default_namespace())
}

#[cfg(test)]
mod tests;
