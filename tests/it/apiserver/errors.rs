//! Bad input gets the right 4xx `Status` with a clear message, and never a panic or a partial
//! write (issue 2, "Bad input"; FACTS.md "Status responses").

use crate::apiserver::support as apiserver_support;

use apiserver_support::{get_json, raw, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use svcplane_tests::Fixture;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a clear message: {body}"
    );
}

async fn configmap_count(fx: &Fixture) -> usize {
    let cms: Api<ConfigMap> = Api::all(fx.client.clone());
    cms.list(&ListParams::default()).await.unwrap().items.len()
}

#[tokio::test]
async fn get_of_missing_object_is_404_with_resource_in_details() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(cms.get("missing").await);
    assert_eq!(st.code, 404);
    assert_eq!(st.reason, "NotFound");
    assert_eq!(st.message, r#"configmaps "missing" not found"#);
    let d = st.details.unwrap();
    assert_eq!(d.kind, "configmaps");
    assert_eq!(d.name, "missing");

    let r = get_json(&fx, &format!("{CM_PATH}/missing")).await;
    assert_eq!(r.status, 404);
    assert_status(&r.body, 404, "NotFound");
}

#[tokio::test]
async fn bad_requests_get_the_upstream_status_code_and_reason() {
    let fx = Fixture::start().await;
    let cm = |api_version: &str, kind: &str| {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}).to_string()
    };
    let big = {
        let mut data = String::with_capacity(3 * 1024 * 1024 + 100);
        data.push_str(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":""#,
        );
        data.push_str(&"a".repeat(3 * 1024 * 1024));
        data.push_str("\"}}");
        data
    };
    // (case, method, path, content type, body, code, reason)
    let cases: Vec<(&str, &str, String, &str, String, u16, &str)> = vec![
        ("malformed JSON", "POST", CM_PATH.into(), "application/json", "{\"apiVersion\": ".into(), 400, "BadRequest"),
        ("body is not an object", "POST", CM_PATH.into(), "application/json", "[1,2]".into(), 400, "BadRequest"),
        ("empty body", "POST", CM_PATH.into(), "application/json", String::new(), 400, "BadRequest"),
        ("wrong apiVersion", "POST", CM_PATH.into(), "application/json", cm("apps/v1", "ConfigMap"), 400, "BadRequest"),
        ("wrong kind", "POST", CM_PATH.into(), "application/json", cm("v1", "Secret"), 400, "BadRequest"),
        ("malformed YAML", "POST", CM_PATH.into(), "application/yaml", "kind: [unclosed".into(), 400, "BadRequest"),
        ("namespace mismatch", "POST", CM_PATH.into(), "application/json",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}}).to_string(), 400, "BadRequest"),
        ("unknown resource", "GET", "/api/v1/namespaces/default/widgets".into(), "application/json", String::new(), 404, "NotFound"),
        ("unknown group", "GET", "/apis/nope.example.com/v1/things".into(), "application/json", String::new(), 404, "NotFound"),
        ("unknown subresource", "GET", format!("{CM_PATH}/x/scale"), "application/json", String::new(), 404, "NotFound"),
        ("body over 3 MiB", "POST", CM_PATH.into(), "application/json", big, 413, "RequestEntityTooLarge"),
        ("malformed label selector", "GET", format!("{CM_PATH}?labelSelector=a%20in%20(b"), "application/json", String::new(), 400, "BadRequest"),
        ("unsupported field selector", "GET", format!("{CM_PATH}?fieldSelector=data.k%3Dv"), "application/json", String::new(), 400, "BadRequest"),
        ("bad limit", "GET", format!("{CM_PATH}?limit=lots"), "application/json", String::new(), 400, "BadRequest"),
        ("bad continue token", "GET", format!("{CM_PATH}?limit=1&continue=zzz"), "application/json", String::new(), 400, "BadRequest"),
        ("bad dryRun", "POST", format!("{CM_PATH}?dryRun=Some"), "application/json", cm("v1", "ConfigMap"), 400, "BadRequest"),
        ("unsupported patch type", "PATCH", format!("{CM_PATH}/x"), "text/plain", "{}".into(), 415, "UnsupportedMediaType"),
        ("invalid JSON patch", "PATCH", format!("{CM_PATH}/x"), "application/json-patch+json", "{\"op\": 1}".into(), 400, "BadRequest"),
        ("POST to a named object", "POST", format!("{CM_PATH}/x"), "application/json", cm("v1", "ConfigMap"), 405, "MethodNotAllowed"),
    ];
    for (case, method, path, ct, body, code, reason) in cases {
        let r = raw(&fx, method, &path, Some(ct), body).await;
        assert_eq!(r.status, code, "{case}: {}", r.body);
        assert_status(&r.body, code, reason);
    }
    assert_eq!(configmap_count(&fx).await, 0, "no partial writes");
    let health = get_json(&fx, "/healthz").await;
    assert_eq!(health.status, 200, "the server survived every bad request");
}

#[tokio::test]
async fn wrong_api_version_message_names_both_versions() {
    let fx = Fixture::start().await;
    let body = json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let r = raw(
        &fx,
        "POST",
        CM_PATH,
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("v2") && msg.contains("v1"), "{msg}");
}

#[tokio::test]
async fn missing_name_is_422_invalid_with_metadata_name_cause() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {}})).unwrap(),
        )
        .await,
    );
    assert_eq!(st.code, 422);
    assert_eq!(st.reason, "Invalid");
    let d = st.details.unwrap();
    assert_eq!(d.kind, "ConfigMap", "422 details.kind is the Kind");
    assert_eq!(d.causes.len(), 1);
    assert_eq!(d.causes[0].field, "metadata.name");
    assert!(
        d.causes[0]
            .message
            .contains("name or generateName is required"),
        "{}",
        d.causes[0].message
    );
}

#[tokio::test]
async fn invalid_name_is_422_with_kind_and_field() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(
        cms.create(
            &PostParams::default(),
            &apiserver_support::configmap("Not_Valid", json!({})),
        )
        .await,
    );
    assert_eq!(st.code, 422);
    assert_eq!(st.reason, "Invalid");
    let d = st.details.unwrap();
    assert_eq!(d.kind, "ConfigMap");
    assert_eq!(d.causes[0].field, "metadata.name");
    assert!(
        st.message
            .starts_with(r#"ConfigMap "Not_Valid" is invalid"#),
        "{}",
        st.message
    );
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields_and_warn_accepts_them() {
    let fx = Fixture::start().await;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "data": {}, "bogus": 1});
    let r = raw(
        &fx,
        "POST",
        &format!("{CM_PATH}?fieldValidation=Strict"),
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_status(&r.body, 400, "BadRequest");
    assert!(
        r.body["message"].as_str().unwrap().contains("bogus"),
        "{}",
        r.body
    );
    assert_eq!(configmap_count(&fx).await, 0);

    let r = raw(
        &fx,
        "POST",
        &format!("{CM_PATH}?fieldValidation=Warn"),
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let warning = r
        .headers
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        warning.contains("unknown field") && warning.contains("bogus"),
        "{warning:?}"
    );
    assert!(r.body.get("bogus").is_none(), "unknown fields are dropped");

    // A patch is checked the same way (kubectl apply patches with fieldValidation=Strict).
    let r = raw(
        &fx,
        "PATCH",
        &format!("{CM_PATH}/strict?fieldValidation=Strict"),
        Some("application/merge-patch+json"),
        json!({"data": {"a": "b"}, "extra": true}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("extra"),
        "{}",
        r.body
    );
    let r = raw(
        &fx,
        "PATCH",
        &format!("{CM_PATH}/strict"),
        Some("application/merge-patch+json"),
        json!({"data": {"a": "b"}, "extra": true}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("extra").is_none(), "{}", r.body);
    assert_eq!(r.body["data"]["a"], "b");
}

#[tokio::test]
async fn creates_in_a_missing_namespace_are_404() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(fx.client.clone(), "nowhere");
    let st = status(
        cms.create(
            &PostParams::default(),
            &apiserver_support::configmap("x", json!({})),
        )
        .await,
    );
    assert_eq!(st.code, 404);
    assert_eq!(st.message, r#"namespaces "nowhere" not found"#);
}

#[tokio::test]
async fn health_version_and_discovery_endpoints_answer() {
    let fx = Fixture::start().await;
    for p in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(get_json(&fx, p).await.status, 200, "{p}");
    }
    let v = get_json(&fx, "/version").await;
    assert_eq!(v.status, 200);
    assert!(
        v.body["gitVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with('v')),
        "{}",
        v.body
    );
    let api = get_json(&fx, "/api").await;
    assert_eq!(api.body["versions"], json!(["v1"]));
    let core = get_json(&fx, "/api/v1").await;
    let names: Vec<&str> = core.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for want in [
        "namespaces",
        "services",
        "services/status",
        "pods",
        "pods/status",
        "nodes",
        "endpoints",
        "events",
        "configmaps",
        "secrets",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let apis = get_json(&fx, "/apis").await;
    let groups: Vec<&str> = apis.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for want in [
        "discovery.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(groups.contains(&want), "{want} in {groups:?}");
    }
    let slices = get_json(&fx, "/apis/discovery.k8s.io/v1").await;
    assert!(slices.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "endpointslices"
            && r["kind"] == "EndpointSlice"
            && r["namespaced"] == true));
}

#[tokio::test]
async fn update_of_a_missing_object_is_404_and_name_mismatch_is_400() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let st = status(
        cms.replace(
            "ghost",
            &PostParams::default(),
            &apiserver_support::configmap("ghost", json!({})),
        )
        .await,
    );
    assert_eq!(st.code, 404);
    assert_eq!(st.message, r#"configmaps "ghost" not found"#);
    cms.create(
        &PostParams::default(),
        &apiserver_support::configmap("real", json!({})),
    )
    .await
    .unwrap();
    let r = raw(
        &fx,
        "PUT",
        &format!("{CM_PATH}/real"),
        Some("application/json"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_status(&r.body, 400, "BadRequest");
}
