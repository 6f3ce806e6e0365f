//! The HTTP(S) server: accepting connections, routing requests to discovery, health, metrics and
//! the resource handlers, and the handle (`RunningServer`) tests and `svcplane dev` hold.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::codec::{
    add_warnings, error_response, json_response, value_response, Body, MAX_BODY_BYTES,
};
use crate::error::ApiError;
use crate::request::{parse_resource_path, Query, Verb};
use crate::state::{AppState, Config};
use crate::{discovery, gc, handlers, persist, watch as watch_mod, Error};
use svcplane_webhook::connections::{self, ConnectionInfo};

/// A started server. Dropping it does not stop the server; call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// Base URL (`http://127.0.0.1:PORT` or `https://...`).
    pub url: String,
    /// The CA certificate (PEM) to trust in HTTPS mode.
    pub ca_pem: Option<String>,
    /// The admin client certificate and key (PEM) the kubeconfig uses in HTTPS mode.
    admin_cert: Option<(String, String)>,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// How long a shutdown waits for in-flight requests to finish before closing their
/// connections (kube-apiserver similarly bounds its graceful termination).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The warning for a server reachable from other hosts that authorizes every request
/// (`--authorization-mode=AlwaysAllow`, the default): whoever reaches the port reads and
/// changes every object, Secrets included. `None` on a loopback address.
pub fn exposure_warning(addr: SocketAddr, tls: bool) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    let scope = if addr.ip().is_unspecified() {
        "every network interface"
    } else {
        "a non-loopback address"
    };
    Some(format!(
        "the embedded API server listens on {addr} ({scope}) without authorization \
         (--authorization-mode=AlwaysAllow): anyone who can reach it can read and change every object, Secrets \
         included{}. Listen on 127.0.0.1, or use --authorization-mode=RBAC, unless this is intended.",
        if tls { "" } else { ", over plain HTTP" }
    ))
}

impl RunningServer {
    /// The supported inspection API for tests (allocations, watch history, repair passes,
    /// OpenAPI documents): see [`crate::testing`].
    pub fn inspect(&self) -> crate::testing::Inspector {
        crate::testing::Inspector::new(self.state.clone())
    }

    /// Creates the objects of a multi-document YAML (or JSON) manifest through the write
    /// pipeline, as `kubectl create` would, then writes each object's `status` through the
    /// status subresource when it has one.
    /// Returns `kind/name` of each object created.
    pub async fn apply_manifests(&self, text: &str) -> Result<Vec<String>, Error> {
        crate::bootstrap::apply_manifests(&self.state, text).await
    }

    /// Creates an object through the write pipeline, first deleting a stored object of the
    /// same kind and name (a configuration an earlier run left in the state file). Returns
    /// the created object's JSON.
    pub async fn replace_object(&self, obj: serde_json::Value) -> Result<String, ApiError> {
        crate::bootstrap::replace(&self.state, obj).await
    }

    /// Fault injection controls.
    pub fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }

    /// Metrics in Prometheus text format (same as `GET /metrics`).
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.state)
    }

    /// A kubeconfig for `kubectl` and kube-rs pointing at this server, as its admin (a
    /// `system:masters` user: a client certificate signed by the server's CA in HTTPS mode, a
    /// bearer token generated at start over plain HTTP).
    pub fn kubeconfig(&self) -> String {
        let credentials = match &self.admin_cert {
            Some((cert_pem, key_pem)) => {
                crate::kubeconfig::Credentials::ClientCertificate { cert_pem, key_pem }
            }
            None => crate::kubeconfig::Credentials::Token(&self.state.admin_token),
        };
        crate::kubeconfig::render(&self.url, self.ca_pem.as_deref(), &credentials)
    }

    /// A kubeconfig like [`RunningServer::kubeconfig`] that authenticates with `token`
    /// instead (a ServiceAccount token, a `--token-auth-file` token, or none when empty).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        crate::kubeconfig::render(
            &self.url,
            self.ca_pem.as_deref(),
            &crate::kubeconfig::Credentials::Token(token),
        )
    }

    /// The warning to show when the server is reachable from other hosts (see
    /// [`exposure_warning`]); none over HTTPS with `--authorization-mode=RBAC`, where
    /// requests are authenticated and authorized.
    pub fn exposure_warning(&self) -> Option<String> {
        if self.ca_pem.is_some()
            && self.state.authorizer.mode() == crate::state::AuthorizationMode::Rbac
        {
            return None;
        }
        exposure_warning(self.addr, self.ca_pem.is_some())
    }

    /// Stops gracefully: stops accepting connections, lets in-flight requests finish (open
    /// watches end, as when upstream's server terminates them; anything still running after
    /// [`SHUTDOWN_GRACE`] is cut), ends background tasks, then writes a final snapshot, so
    /// every acknowledged write is in the state file.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.state.faults.drop_watches();
        if let Err(err) = self.accept.await {
            tracing::warn!(%err, "connection handling ended abnormally");
        }
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(path) = &self.state.config.state_file {
            let state = self.state.clone();
            let path = path.clone();
            let saved = tokio::task::spawn_blocking(move || persist::save(&state, &path)).await;
            match saved {
                Ok(Ok(())) => tracing::info!("final state snapshot written"),
                Ok(Err(err)) => tracing::error!(%err, "final state snapshot failed"),
                Err(err) => tracing::error!(%err, "final state snapshot task failed"),
            }
        }
    }
}

/// Starts the server: loads persisted state, bootstraps default objects, binds and serves.
pub async fn start(config: Config) -> Result<RunningServer, Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Bind(config.listen, e))?;
    let certs = if config.tls {
        Some(crate::tls::generate(addr.ip())?)
    } else {
        None
    };
    let state = AppState::new(config.clone())?;
    if let Some(path) = &config.state_file {
        persist::load(&state, path)?;
    }
    crate::bootstrap::run(&state).await?;
    crate::authz::bootstrap(&state).await?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let url = format!(
        "{}://{host}",
        if certs.is_some() { "https" } else { "http" }
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let acceptor = certs
        .as_ref()
        .map(|c| tokio_rustls::TlsAcceptor::from(c.server_config.clone()));
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor,
        state.clone(),
        shutdown_rx,
        host,
    ));
    tasks.push(tokio::spawn(gc::run(state.clone())));
    tasks.push(crate::repair_task::spawn(state.clone()));
    if let Some(path) = config.state_file.clone() {
        tasks.push(tokio::spawn(persist::run(state.clone(), path)));
    }
    tracing::info!(%url, "embedded API server listening");
    let rbac = config.authorization_mode == crate::state::AuthorizationMode::Rbac;
    if let Some(warning) = exposure_warning(addr, certs.is_some()).filter(|_| !rbac) {
        tracing::warn!("{warning}");
    }
    Ok(RunningServer {
        addr,
        url,
        admin_cert: certs
            .as_ref()
            .map(|c| (c.admin_cert_pem.clone(), c.admin_key_pem.clone())),
        ca_pem: certs.map(|c| c.ca_pem),
        state,
        shutdown: shutdown_tx,
        accept,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
    public_addr: SocketAddr,
) {
    let limits = state.config.connections.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(route(state, req, public_addr).await) }
    });
    let stopped = async move {
        let _ = shutdown.changed().await;
    };
    connections::serve(listener, acceptor, limits, service, stopped, SHUTDOWN_GRACE).await;
}

fn render_metrics(state: &AppState) -> String {
    for r in state.registry.all() {
        state
            .metrics
            .objects
            .with_label_values(&[&r.plural])
            .set(state.store.count(&r.key()) as i64);
    }
    state
        .metrics
        .resource_version
        .set(state.store.current_rv() as i64);
    state
        .metrics
        .history_bytes
        .set(state.store.history_bytes() as i64);
    state.metrics.render()
}

/// Routes one request and records `apiserver_request_total` and latency.
async fn route(
    state: Arc<AppState>,
    req: Request<Incoming>,
    public_addr: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let conn = req.extensions().get::<ConnectionInfo>().cloned();
    let http1 = req.version() < http::Version::HTTP_2;
    let request_timeout = state.config.request_timeout;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let headers = req.headers().clone();
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let user = match crate::authz::admit(
        &state,
        &method,
        &path,
        &query,
        &headers,
        conn.as_ref().and_then(|c| c.client_certificate.as_deref()),
    ) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    if path == "/debug/faults" {
        return faults_endpoint(&state, &method, req).await;
    }
    if let (&Method::POST, Some(review)) = (&method, crate::access_review::Review::at(&path)) {
        let answer = match read_body(req, request_timeout).await {
            Ok(body) => crate::access_review::answer(
                review,
                &body,
                content_type.as_deref(),
                &user,
                &state.authorizer,
                &state.store,
            ),
            Err(e) => Err(e),
        };
        let resp = match answer {
            Ok(review) => value_response(201, &review),
            Err(e) => error_response(&e),
        };
        record_non_resource(&state, &method, &path, resp.status().as_u16(), started);
        return resp;
    }
    // Non-resource paths.
    let simple = match (method.clone(), path.as_str()) {
        (Method::GET, "/healthz" | "/readyz" | "/livez") => Some(text(200, "ok")),
        (Method::GET, "/metrics") => {
            // Counted before rendering, so even the first scrape of a fresh server (nothing
            // else requested yet, as after `svcplane dev` loads its examples in-process) shows
            // `apiserver_request_total`.
            record_non_resource(&state, &method, &path, 200, started);
            Some(text(200, &render_metrics(&state)))
        }
        // kube-apiserver serves the root discovery documents with and without a trailing
        // slash (go-restful routes `/version` and `/api` as `<root>/`; `/apis/` is registered
        // next to `/apis` in `genericapiserver.installAPIGroups`).
        (Method::GET, "/version" | "/version/") => Some(value_response(200, &discovery::version())),
        (Method::GET, "/api" | "/api/") => Some(value_response(
            200,
            &discovery::core_versions(&public_addr.to_string()),
        )),
        (Method::GET, "/apis" | "/apis/") => {
            Some(value_response(200, &discovery::group_list(&state.registry)))
        }
        (Method::GET, "/openapi/v2") => Some(crate::openapi_v2::document_response(
            headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )),
        (Method::GET, "/openapi/v3") => {
            Some(value_response(200, &discovery::openapi_index_for(&state)))
        }
        (Method::GET, p) if p.starts_with("/openapi/v3/") => Some(
            match p
                .strip_prefix("/openapi/v3/")
                .and_then(|rest| discovery::openapi_document_for(&state, rest))
            {
                Some(doc) => value_response(200, &doc),
                None => error_response(&ApiError::path_not_found()),
            },
        ),
        (Method::GET, "/debug/allocators") => {
            Some(value_response(200, &state.services.usage_json()))
        }
        (Method::GET, p)
            if p.starts_with("/apis/") && p.trim_matches('/').split('/').count() == 2 =>
        {
            let group = p.trim_matches('/').split('/').nth(1).unwrap_or_default();
            Some(match discovery::group(&state.registry, group) {
                Some(g) => value_response(200, &g),
                None => error_response(&ApiError::path_not_found()),
            })
        }
        _ => None,
    };
    if let Some(resp) = simple {
        if path != "/metrics" {
            record_non_resource(&state, &method, &path, resp.status().as_u16(), started);
        }
        return resp;
    }
    let rr = match parse_resource_path(
        &state.registry,
        &method,
        &path,
        &query,
        content_type.as_deref(),
    ) {
        Ok(Some(rr)) => rr,
        Ok(None) => {
            // Discovery of a group version.
            let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
            let (group, version) = match segs.as_slice() {
                ["api", v] => ("", *v),
                ["apis", g, v] => (*g, *v),
                _ => ("", ""),
            };
            let resp = match (method == Method::GET)
                .then(|| discovery::resource_list(&state.registry, group, version))
                .flatten()
            {
                Some(list) => value_response(200, &list),
                None => error_response(&ApiError::path_not_found()),
            };
            if resp.status() == http::StatusCode::OK {
                record_non_resource(&state, &method, &path, 200, started);
            }
            return resp;
        }
        Err(err) => return error_response(&err),
    };
    let group = rr.info.group.clone();
    let version = rr.info.version.clone();
    let resource = rr.info.plural.clone();
    let subresource = rr.subresource.clone().unwrap_or_default();
    let verb = rr.verb;

    let response = async {
        if let Some(latency) = state.faults.latency() {
            tokio::time::sleep(latency).await;
        }
        state.faults.check(
            verb.name(),
            &resource,
            rr.name.as_deref().unwrap_or_default(),
        )?;
        let body = if verb.is_write() {
            read_body(req, request_timeout).await?
        } else {
            bytes::Bytes::new()
        };
        if verb == Verb::Watch {
            if let Err(e) = watch_mod::wait_until_fresh(&state, &query).await {
                return Ok(watch_mod::error_stream(&e));
            }
            return watch_mod::watch(&state, &rr, &query, &headers, conn.as_ref(), http1);
        }
        let reply = handlers::handle(&state, &rr, &user, &query, &headers, &body).await?;
        let mut resp = reply.response;
        add_warnings(&mut resp, &reply.warnings);
        Ok::<_, ApiError>(resp)
    }
    .await;
    let response = response.unwrap_or_else(|e| error_response(&e));
    let code = response.status().as_u16().to_string();
    state
        .metrics
        .requests
        .with_label_values(&[
            verb.metric_label(),
            &group,
            &version,
            &resource,
            &subresource,
            &code,
        ])
        .inc();
    if verb != Verb::Watch {
        state
            .metrics
            .latency
            .with_label_values(&[
                verb.metric_label(),
                &group,
                &version,
                &resource,
                &subresource,
            ])
            .observe(started.elapsed().as_secs_f64());
    }
    tracing::debug!(verb = verb.metric_label(), %resource, %code, path, "request");
    response
}

/// Counts a served non-resource request (`/healthz`, `/metrics`, discovery, OpenAPI) the way
/// kube-apiserver does: empty group, version and resource, the path as `subresource`
/// (e.g. `apiserver_request_total{verb="GET",subresource="/readyz",...}`). Only paths that
/// were served are counted, so unknown paths cannot grow the label set.
fn record_non_resource(state: &AppState, method: &Method, path: &str, code: u16, started: Instant) {
    let verb = method.as_str();
    let code = code.to_string();
    state
        .metrics
        .requests
        .with_label_values(&[verb, "", "", "", path, &code])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[verb, "", "", "", path])
        .observe(started.elapsed().as_secs_f64());
}

/// Reads a request body up to the 3 MiB limit (413 beyond, as upstream), within `timeout`
/// (504 beyond, as upstream's request timeout answers).
async fn read_body(
    req: Request<Incoming>,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES);
    let Ok(read) = tokio::time::timeout(timeout, limited.collect()).await else {
        return Err(ApiError::timeout(format!(
            "request did not complete within requested timeout - the request body did not arrive within {}s",
            timeout.as_secs()
        )));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(format!(
                "the request body is larger than the limit of {MAX_BODY_BYTES} bytes"
            )))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "reading the request body failed: {err}"
        ))),
    }
}

fn text(status: u16, body: &str) -> Response<Body> {
    let mut resp = json_response(status, body.to_string());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET/POST/DELETE /debug/faults` (only with `faults_endpoint`). POST takes a
/// [`crate::faults::FaultConfig`] plus optional `dropWatches` and `expireHistory` actions.
async fn faults_endpoint(
    state: &Arc<AppState>,
    method: &Method,
    req: Request<Incoming>,
) -> Response<Body> {
    if !state.config.faults_endpoint {
        return error_response(&ApiError::path_not_found());
    }
    match *method {
        Method::GET => value_response(200, &json!(state.faults.get())),
        Method::DELETE => {
            state.faults.clear();
            value_response(200, &json!(state.faults.get()))
        }
        Method::POST => {
            let body = match read_body(req, state.config.request_timeout).await {
                Ok(b) => b,
                Err(e) => return error_response(&e),
            };
            let value: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid fault configuration: {e}"
                    )))
                }
            };
            let config: crate::faults::FaultConfig = match serde_json::from_value(value.clone()) {
                Ok(c) => c,
                Err(e) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid fault configuration: {e}"
                    )))
                }
            };
            if let Err(msg) = state.faults.set(config) {
                return error_response(&ApiError::bad_request(msg));
            }
            if value["dropWatches"] == true {
                state.faults.drop_watches();
            }
            if value["expireHistory"] == true {
                state.store.compact_all();
            }
            value_response(200, &json!(state.faults.get()))
        }
        _ => error_response(&ApiError::method_not_allowed("use GET, POST or DELETE")),
    }
}
