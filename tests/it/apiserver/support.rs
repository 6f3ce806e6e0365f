//! Helpers shared by the `apiserver_*` integration suites: raw HTTP requests (for what kube-rs
//! cannot express, such as malformed bodies), `Status` extraction and polling.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{json, Value};
use svcplane_tests::Fixture;

/// A raw HTTP response: status code, the body parsed as JSON (or `Value::String` when it is
/// not JSON) and the response headers.
pub struct Raw {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

/// Sends a raw request to the fixture (plain HTTP) and decodes the response.
pub async fn raw(
    fixture: &Fixture,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Raw {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
    let mut req = client.request(method, format!("{}{}", fixture.url, path));
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .expect("request reaches the server");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Raw {
        status,
        body,
        headers,
    }
}

/// GET a path and parse JSON.
pub async fn get_json(fixture: &Fixture, path: &str) -> Raw {
    raw(fixture, "GET", path, None, Vec::<u8>::new()).await
}

/// The `Status` of a failed kube-rs call; panics (failing the test) on success or transport errors.
pub fn status<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error Status, got {other:?}"),
    }
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Creates a namespace.
pub async fn create_namespace(fixture: &Fixture, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(fixture.client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace"),
    )
    .await
    .expect("namespace created");
}

/// A dynamic API for any served resource.
pub fn dynamic(
    fixture: &Fixture,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match namespace {
        Some(ns) => Api::namespaced_with(fixture.client.clone(), ns, &ar),
        None => Api::all_with(fixture.client.clone(), &ar),
    }
}

/// A minimal ConfigMap body.
pub fn configmap(name: &str, labels: Value) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .expect("configmap")
}

/// A minimal, unscheduled Pod body (deletes complete immediately).
pub fn pod(name: &str, node: Option<&str>) -> k8s_openapi::api::core::v1::Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}
