//! Kubernetes protobuf request bodies over raw HTTP, as typed client-go clients send them
//! (`Content-Type: application/vnd.kubernetes.protobuf`; upstream
//! `k8s.io/apimachinery/pkg/runtime/serializer/protobuf`): create and update (PUT), the Go
//! zero-value rules for pointer fields, and the error answers. The bodies are encoded by hand
//! here (tags from `k8s.io/api`'s `generated.proto`), independently of the server's decoder.

use serde_json::{json, Value};
use svcplane_tests::Fixture;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (string, bytes, message, map entry).
fn bytes_field(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3 | 2, &mut out);
    varint(value.len() as u64, &mut out);
    out.extend_from_slice(value);
    out
}

/// A varint field (bool, int32, int64).
fn varint_field(tag: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3, &mut out);
    varint(value, &mut out);
    out
}

fn map_entry(tag: u32, key: &str, value: &str) -> Vec<u8> {
    let entry = [
        bytes_field(1, key.as_bytes()),
        bytes_field(2, value.as_bytes()),
    ]
    .concat();
    bytes_field(tag, &entry)
}

/// `k8s\0` + `runtime.Unknown{typeMeta{apiVersion, kind}, raw}`.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [
        bytes_field(1, api_version.as_bytes()),
        bytes_field(2, kind.as_bytes()),
    ]
    .concat();
    let unknown = [bytes_field(1, &type_meta), bytes_field(2, raw)].concat();
    [b"k8s\0".to_vec(), unknown].concat()
}

/// ObjectMeta {name = 1, resourceVersion = 6 (when given)}, as Go writes it (zero strings too).
fn object_meta(name: &str, resource_version: &str) -> Vec<u8> {
    [
        bytes_field(1, name.as_bytes()),
        bytes_field(2, b""),
        bytes_field(3, b""),
        bytes_field(6, resource_version.as_bytes()),
        varint_field(7, 0),
    ]
    .concat()
}

/// ConfigMap {metadata = 1, data = 2 (map)}.
fn config_map(name: &str, resource_version: &str, data: &[(&str, &str)]) -> Vec<u8> {
    let mut raw = bytes_field(1, &object_meta(name, resource_version));
    for (k, v) in data {
        raw.extend(map_entry(2, k, v));
    }
    envelope("v1", "ConfigMap", &raw)
}

async fn send(method: reqwest::Method, url: String, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, url)
        .header("Content-Type", PROTOBUF)
        .header("Accept", format!("{PROTOBUF}, application/json"))
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn protobuf_create_then_put_updates_the_configmap() {
    let f = Fixture::start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", f.url);
    let (status, created) = send(
        reqwest::Method::POST,
        base.clone(),
        config_map("cfg", "", &[("a", "1")]),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"], json!({"a": "1"}));
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, updated) = send(
        reqwest::Method::PUT,
        format!("{base}/cfg"),
        config_map("cfg", &rv, &[("a", "2"), ("b", "")]),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"], json!({"a": "2", "b": ""}));
    assert_ne!(updated["metadata"]["resourceVersion"], json!(rv));

    // A stale resourceVersion through protobuf is the same 409 Conflict as through JSON.
    let (status, conflict) = send(
        reqwest::Method::PUT,
        format!("{base}/cfg"),
        config_map("cfg", &rv, &[("a", "3")]),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["reason"], "Conflict");
}

#[tokio::test]
async fn protobuf_endpointslice_keeps_false_conditions_and_drops_go_zero_strings() {
    let f = Fixture::start().await;
    // Endpoint {addresses = 1, conditions = 2 {ready = 1, serving = 2, terminating = 3},
    // hostname = 3 (*string, unset), nodeName = 6 (*string)}.
    let conditions = [varint_field(1, 0), varint_field(2, 1), varint_field(3, 0)].concat();
    let endpoint = [
        bytes_field(1, b"10.0.0.7"),
        bytes_field(2, &conditions),
        bytes_field(6, b"node-a"),
    ]
    .concat();
    // EndpointPort {name = 1 (*string), protocol = 2, port = 3}.
    let port = [
        bytes_field(1, b"http"),
        bytes_field(2, b"TCP"),
        varint_field(3, 8080),
    ]
    .concat();
    let raw = [
        bytes_field(1, &object_meta("web-x", "")),
        bytes_field(2, &endpoint),
        bytes_field(3, &port),
        bytes_field(4, b"IPv4"),
    ]
    .concat();
    let (status, slice) = send(
        reqwest::Method::POST,
        format!(
            "{}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            f.url
        ),
        envelope("discovery.k8s.io/v1", "EndpointSlice", &raw),
    )
    .await;
    assert_eq!(status, 201, "{slice}");
    assert_eq!(
        slice["endpoints"][0],
        json!({
            "addresses": ["10.0.0.7"],
            "conditions": {"ready": false, "serving": true, "terminating": false},
            "nodeName": "node-a",
        })
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "protocol": "TCP", "port": 8080}])
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert!(
        slice["metadata"].get("generateName").is_none(),
        "a Go zero string is not stored: {slice}"
    );
}

#[tokio::test]
async fn protobuf_body_with_another_kind_is_a_bad_request() {
    let f = Fixture::start().await;
    let (status, body) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/namespaces/default/secrets", f.url),
        config_map("cfg", "", &[]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    assert_eq!(
        body["message"],
        "the kind in the data (ConfigMap) does not match the expected kind (Secret)"
    );
}

#[tokio::test]
async fn malformed_protobuf_bodies_are_bad_requests() {
    let f = Fixture::start().await;
    let url = format!("{}/api/v1/namespaces/default/configmaps", f.url);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no magic prefix",
            b"{\"kind\":\"ConfigMap\"}".to_vec(),
            "expected prefix [107 56 115 0]",
        ),
        (
            "truncated envelope",
            config_map("cfg", "", &[("a", "1")])[..12].to_vec(),
            "not a valid runtime.Unknown",
        ),
        (
            "metadata as a varint",
            envelope("v1", "ConfigMap", &varint_field(1, 7)),
            "metadata: wire type varint",
        ),
    ];
    for (what, body, want) in cases {
        let (status, answer) = send(reqwest::Method::POST, url.clone(), body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["reason"], "BadRequest", "{what}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(want), "{what}: {message}");
    }
}

#[tokio::test]
async fn protobuf_custom_resource_is_unsupported_media_type() {
    let f = Fixture::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    });
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            f.url
        ))
        .json(&crd)
        .send()
        .await
        .expect("CRD created");
    assert_eq!(resp.status().as_u16(), 201);
    let raw = bytes_field(1, &object_meta("w", ""));
    let (status, body) = send(
        reqwest::Method::POST,
        format!("{}/apis/example.com/v1/namespaces/default/widgets", f.url),
        envelope("example.com/v1", "Widget", &raw),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["reason"], "UnsupportedMediaType");
}

/// Typed client-go clients send `DeleteOptions` as protobuf too (envelope in the client's
/// group/version); their preconditions apply as from JSON.
#[tokio::test]
async fn protobuf_delete_options_preconditions_are_checked() {
    let f = Fixture::start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", f.url);
    let (status, created) = send(
        reqwest::Method::POST,
        base.clone(),
        config_map("gone", "", &[]),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // DeleteOptions {gracePeriodSeconds = 1, preconditions = 2 {uid = 1}}.
    let delete_options = |uid: &str| {
        let raw = [
            varint_field(1, 0),
            bytes_field(2, &bytes_field(1, uid.as_bytes())),
        ]
        .concat();
        envelope("v1", "DeleteOptions", &raw)
    };
    let (status, body) = send(
        reqwest::Method::DELETE,
        format!("{base}/gone"),
        delete_options("not-the-uid"),
    )
    .await;
    assert_eq!(status, 409, "a wrong uid precondition conflicts: {body}");

    let uid = created["metadata"]["uid"].as_str().unwrap();
    let (status, body) = send(
        reqwest::Method::DELETE,
        format!("{base}/gone"),
        delete_options(uid),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(reqwest::Method::GET, format!("{base}/gone"), Vec::new()).await;
    assert_eq!(status, 404);
}

/// `gracePeriodSeconds` is a `*int64`: a protobuf 0 deletes a scheduled pod at once, 30 leaves it
/// terminating (upstream graceful deletion).
#[tokio::test]
async fn protobuf_delete_options_zero_grace_period_deletes_a_scheduled_pod_at_once() {
    let f = Fixture::start().await;
    let base = format!("{}/api/v1/namespaces/default/pods", f.url);
    let grace = |seconds: u64| envelope("v1", "DeleteOptions", &varint_field(1, seconds));
    for name in ["slow", "now"] {
        let resp = reqwest::Client::new()
            .post(base.clone())
            .json(&json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name},
                "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]},
            }))
            .send()
            .await
            .expect("pod created");
        assert_eq!(resp.status().as_u16(), 201);
    }
    let (status, body) = send(reqwest::Method::DELETE, format!("{base}/slow"), grace(30)).await;
    assert_eq!(status, 200, "{body}");
    let (status, slow) = send(reqwest::Method::GET, format!("{base}/slow"), Vec::new()).await;
    assert_eq!(status, 200, "a 30s grace period leaves the pod terminating");
    assert_eq!(slow["metadata"]["deletionGracePeriodSeconds"], 30);

    let (status, body) = send(reqwest::Method::DELETE, format!("{base}/now"), grace(0)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(reqwest::Method::GET, format!("{base}/now"), Vec::new()).await;
    assert_eq!(status, 404, "gracePeriodSeconds: 0 deletes at once");
}
