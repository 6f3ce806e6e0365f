//! HTTP endpoints of the node agent, as kube-proxy serves them: the agent's `/healthz` and
//! `/livez` (healthy while no change has waited longer than the health timeout), `/metrics`,
//! a debug view of the table, and one health-check listener per
//! `spec.healthCheckNodePort` that load balancers probe (`pkg/proxy/healthcheck`): 200 while
//! the node has local endpoints for the Service, 503 otherwise.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::agent::AgentStatus;
use crate::metrics::AgentMetrics;
use crate::model::{render_json, render_text, ServiceName};

/// Whether the agent is healthy at `now`: nothing waits for a sync longer than `timeout`
/// (kube-proxy's `ProxierHealthServer.IsHealthy`).
pub fn is_healthy(status: &AgentStatus, timeout: Duration, now: Instant) -> bool {
    match status.oldest_pending {
        None => status.synced,
        Some(since) => now.saturating_duration_since(since) < timeout,
    }
}

#[derive(Clone)]
struct AgentState {
    status: watch::Receiver<AgentStatus>,
    metrics: Option<AgentMetrics>,
    timeout: Duration,
}

/// The agent's own endpoints: `/healthz`, `/livez`, `/metrics` (when `metrics` is given),
/// `/debug/table` and its alias `/table` (text; `?o=json` for JSON; `?service=NAMESPACE/NAME`
/// for one Service's rows).
pub fn agent_router(
    status: watch::Receiver<AgentStatus>,
    metrics: Option<AgentMetrics>,
    timeout: Duration,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/debug/table", get(table))
        .route("/table", get(table))
        .with_state(AgentState {
            status,
            metrics,
            timeout,
        })
}

fn json_response(code: StatusCode, body: String) -> Response {
    let mut response = (code, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn healthz(State(state): State<AgentState>) -> Response {
    let status = state.status.borrow().clone();
    let healthy = is_healthy(&status, state.timeout, Instant::now());
    let now = jiff::Timestamp::now();
    let last_updated = if healthy {
        now.to_string()
    } else {
        status.last_sync.map(|t| t.to_string()).unwrap_or_default()
    };
    let body = format!(
        r#"{{"lastUpdated": "{last_updated}","currentTime": "{now}", "nodeEligible": true}}"#
    );
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, body)
}

async fn metrics_text(State(state): State<AgentState>) -> Response {
    match &state.metrics {
        Some(m) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            m.encode(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn table(
    State(state): State<AgentState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (table, node) = {
        let status = state.status.borrow();
        let table = match query.get("service").and_then(|s| s.split_once('/')) {
            Some((namespace, name)) => status.table.only(&ServiceName::new(namespace, name)),
            None => status.table.clone(),
        };
        (table, status.node.clone())
    };
    if query.get("o").map(String::as_str) == Some("json") {
        json_response(StatusCode::OK, render_json(&table, &node).to_string())
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            render_text(&table, &node),
        )
            .into_response()
    }
}

/// The answer of a Service's health-check node port (kube-proxy `hcHandler.ServeHTTP`):
/// status code and JSON body.
pub fn health_check_answer(
    service: &ServiceName,
    local_endpoints: usize,
    proxy_healthy: bool,
) -> (StatusCode, String) {
    let code = if local_endpoints > 0 && proxy_healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "service": {"namespace": service.namespace, "name": service.name},
        "localEndpoints": local_endpoints,
        "serviceProxyHealthy": proxy_healthy,
    })
    .to_string();
    (code, body)
}

/// Keeps one listener per health-check node port in the published table, on `bind` (all
/// addresses of the node by default), answering from the latest status. Runs until the status
/// sender is dropped.
pub async fn serve_health_checks(
    mut status: watch::Receiver<AgentStatus>,
    bind: IpAddr,
    timeout: Duration,
) {
    let mut listeners: HashMap<u16, (ServiceName, JoinHandle<()>)> = HashMap::new();
    loop {
        let wanted: HashMap<u16, ServiceName> = status
            .borrow_and_update()
            .table
            .services()
            .filter_map(|s| {
                s.health_check
                    .as_ref()
                    .map(|h| (h.node_port, s.service.clone()))
            })
            .collect();
        listeners.retain(|port, (service, task)| {
            let keep = wanted.get(port) == Some(service);
            if !keep {
                task.abort();
            }
            keep
        });
        for (port, service) in wanted {
            if listeners.contains_key(&port) {
                continue;
            }
            let addr = SocketAddr::new(bind, port);
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    let router = health_check_router(service.clone(), status.clone(), timeout);
                    let task = tokio::spawn(async move {
                        let _ = axum::serve(listener, router).await;
                    });
                    tracing::info!(service = %service, %addr, "health-check node port listening");
                    listeners.insert(port, (service, task));
                }
                Err(err) => {
                    tracing::error!(service = %service, %addr, error = %err, "cannot listen on the health-check node port");
                }
            }
        }
        if status.changed().await.is_err() {
            break;
        }
    }
    for (_, (_, task)) in listeners {
        task.abort();
    }
}

fn health_check_router(
    service: ServiceName,
    status: watch::Receiver<AgentStatus>,
    timeout: Duration,
) -> Router {
    Router::new().fallback(move || {
        let status = status.borrow().clone();
        let service = service.clone();
        async move {
            let local = status
                .table
                .service(&service)
                .and_then(|s| s.health_check.as_ref())
                .map(|h| h.local_endpoints)
                .unwrap_or(0);
            let healthy = is_healthy(&status, timeout, Instant::now());
            let (code, body) = health_check_answer(&service, local, healthy);
            let mut response = json_response(code, body);
            if let Ok(weight) = HeaderValue::from_str(&local.to_string()) {
                response
                    .headers_mut()
                    .insert("x-load-balancing-endpoint-weight", weight);
            }
            response
        }
    })
}
