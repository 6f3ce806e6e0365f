//! Correctness under hostile or faulty clients (issue 15, "Correctness"): no spurious 409 for
//! patches without a precondition, duplicate fields and type errors reported as kube-apiserver
//! does, unparsable `resourceVersion`s and forged `continue` tokens refused, large objects
//! answered by the webhook, managedFields of huge lists kept as small as upstream stores them.
//! Everything runs against the embedded server on loopback, bounded in count and time.

use crate::apiserver::support as apiserver_support;

use std::sync::Arc;

use apiserver_support::{raw, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use svcplane_tests::Fixture;

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";
const SVC_PATH: &str = "/api/v1/namespaces/default/services";

// ---------------------------------------------------------------------------------------------
// PATCH and apply without a precondition (upstream `patcher.patchResource` re-applies the patch
// to the fresh object inside `GuaranteedUpdate`; FACTS.md: "clients never see 409 for it").
// ---------------------------------------------------------------------------------------------

/// One writer's way of setting `data[key] = value` on the shared ConfigMap.
#[derive(Clone, Copy, Debug)]
enum Writer {
    Merge,
    Strategic,
    JsonPatch,
    Apply,
}

const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patches_and_applies_without_precondition_never_conflict_under_contention() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "busy"}, "data": {"seed": "0"}}))
            .unwrap(),
    )
    .await
    .unwrap();

    let conflicts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let kind = [
            Writer::Merge,
            Writer::Strategic,
            Writer::JsonPatch,
            Writer::Apply,
        ][w % 4];
        // Each writer has its own connection pool, as separate clients would.
        let client = fx.new_client().await;
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            let cms: Api<ConfigMap> = Api::default_namespaced(client);
            let manager = format!("writer-{w}");
            let mut applied = serde_json::Map::new();
            for i in 0..WRITES_PER_WRITER {
                let key = format!("w{w}-{i}");
                let patch = match kind {
                    Writer::Merge => Patch::Merge(json!({"data": {&key: "v"}})),
                    Writer::Strategic => Patch::Strategic(json!({"data": {&key: "v"}})),
                    Writer::JsonPatch => Patch::Json(
                        serde_json::from_value(
                            json!([{"op": "add", "path": format!("/data/{key}"), "value": "v"}]),
                        )
                        .unwrap(),
                    ),
                    // An applier sends everything it owns each time (dropping a key would
                    // remove it, as server-side apply does).
                    Writer::Apply => {
                        applied.insert(key.clone(), json!("v"));
                        Patch::Apply(json!({
                            "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "busy"}, "data": applied,
                        }))
                    }
                };
                let params = match kind {
                    Writer::Apply => PatchParams::apply(&manager),
                    _ => PatchParams {
                        field_manager: Some(manager.clone()),
                        ..Default::default()
                    },
                };
                match cms.patch("busy", &params, &patch).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => panic!("{kind:?} writer {w}, write {i}: {e}"),
                }
            }
        }));
    }
    let all = futures::future::join_all(tasks);
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("the writers finish within 2 minutes")
        .into_iter()
        .for_each(|r| r.expect("writer task"));

    let refused = conflicts.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        refused,
        0,
        "{refused} of {} patches/applies without a precondition answered 409",
        WRITERS * WRITES_PER_WRITER
    );
    let data = cms.get("busy").await.unwrap().data.unwrap_or_default();
    let missing: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..WRITES_PER_WRITER).map(move |i| format!("w{w}-{i}")))
        .filter(|k| data.get(k).map(String::as_str) != Some("v"))
        .collect();
    assert!(missing.is_empty(), "changes lost: {missing:?}");
    assert_eq!(data["seed"], "0");
}

#[tokio::test]
async fn a_patch_or_apply_carrying_a_stale_resource_version_still_conflicts() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    let first = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "pre"}, "data": {"k": "1"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let stale = first.resource_version().unwrap();
    cms.patch(
        "pre",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();

    let merge = Patch::Merge(json!({"metadata": {"resourceVersion": stale}, "data": {"k": "m"}}));
    let strategic =
        Patch::Strategic(json!({"metadata": {"resourceVersion": stale}, "data": {"k": "s"}}));
    let json_patch = Patch::Json::<Value>(
        serde_json::from_value(json!([
            {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
            {"op": "replace", "path": "/data/k", "value": "j"},
        ]))
        .unwrap(),
    );
    for (what, patch) in [
        ("merge", merge),
        ("strategic", strategic),
        ("json", json_patch),
    ] {
        let st = status(cms.patch("pre", &PatchParams::default(), &patch).await);
        assert_eq!(st.code, 409, "{what}: {st:?}");
        assert_eq!(st.reason, "Conflict", "{what}");
    }
    let st = status(
        cms.patch(
            "pre",
            &PatchParams::apply("late"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "pre", "resourceVersion": stale}, "data": {"k": "a"},
            })),
        )
        .await,
    );
    assert_eq!(st.code, 409, "apply: {st:?}");
    assert_eq!(cms.get("pre").await.unwrap().data.unwrap()["k"], "2");
}

// ---------------------------------------------------------------------------------------------
// resourceVersion and continue parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unparsable_resource_version_is_400_on_get_list_and_watch() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "one"}})).unwrap(),
    )
    .await
    .unwrap();
    // Upstream: the storage layer's `invalid resource version: ...` around
    // `APIObjectVersioner.ParseResourceVersion`'s field error (Go's strconv.ParseUint).
    for (rv, reason) in [
        ("abc", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("+5", "invalid syntax"),
        ("99999999999999999999", "value out of range"),
    ] {
        let expected = format!(
            "invalid resource version: resourceVersion: Invalid value: \"{rv}\": strconv.ParseUint: parsing \"{rv}\": {reason}"
        );
        for path in [
            format!("{CM_PATH}/one?resourceVersion={}", urlencode(rv)),
            format!("{CM_PATH}?resourceVersion={}", urlencode(rv)),
            format!("{CM_PATH}?watch=true&resourceVersion={}", urlencode(rv)),
        ] {
            let r = raw(&fx, "GET", &path, None, Vec::<u8>::new()).await;
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            assert_eq!(r.body["reason"], "BadRequest", "{path}");
            assert_eq!(r.body["message"], expected.as_str(), "{path}");
        }
    }
    // Valid ones still work.
    for path in [
        format!("{CM_PATH}/one?resourceVersion=0"),
        format!("{CM_PATH}?resourceVersion=0"),
        format!("{CM_PATH}?resourceVersion="),
    ] {
        assert_eq!(
            raw(&fx, "GET", &path, None, Vec::<u8>::new()).await.status,
            200,
            "{path}"
        );
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
}

/// A continue token as this server encodes it (hex of `{"rv", "ns", "name"}`), so a client
/// can forge one that decodes fine but names a revision or key of its choosing.
fn forge_continue(rv: u64, ns: &str, name: &str) -> String {
    json!({"rv": rv, "ns": ns, "name": name})
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_forged_continue_token_is_refused_not_reported_back() {
    let fx = Fixture::start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(fx.client.clone());
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    // A genuine token works and reports the first page's revision.
    let first = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap()
        .to_string();
    let page_rv = first.body["metadata"]["resourceVersion"].clone();
    let second = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1&continue={token}"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["metadata"]["resourceVersion"], page_rv);

    let cases = [
        (
            forge_continue(1_000_000_000_000_000, "default", "cm-0"),
            "invalid continue token: continue key is not valid: encoded resourceVersion 1000000000000000 is newer than the server's current resourceVersion",
        ),
        (
            forge_continue(0, "default", "cm-0"),
            "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ),
        (
            forge_continue(1, "default", ""),
            "invalid continue token: continue key is not valid: encoded start key empty (version meta.k8s.io/v1)",
        ),
    ];
    for (forged, message) in cases {
        let r = raw(
            &fx,
            "GET",
            &format!("{CM_PATH}?limit=1&continue={forged}"),
            None,
            Vec::<u8>::new(),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["reason"], "BadRequest");
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(message),
            "{}",
            r.body
        );
        assert!(
            r.body["metadata"]["resourceVersion"].is_null(),
            "no list is reported for a forged token: {}",
            r.body
        );
    }
    // Upstream refuses a resourceVersion next to a continue token.
    let r = raw(
        &fx,
        "GET",
        &format!("{CM_PATH}?limit=1&continue={token}&resourceVersion=5"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "specifying resource version is not allowed when using continue"
    );
}

// ---------------------------------------------------------------------------------------------
// Duplicate fields under each fieldValidation mode (upstream
// test/integration/apiserver/field_validation_test.go, adapted to a Service).
// ---------------------------------------------------------------------------------------------

/// The texts of the `Warning: 299 - "..."` headers.
fn warnings(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("299 - \"")?.strip_suffix('"'))
        .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
        .collect()
}

fn with_validation(path: &str, mode: Option<&str>) -> String {
    match mode {
        Some(m) => format!("{path}?fieldValidation={m}"),
        None => path.to_string(),
    }
}

const INVALID_SERVICE_JSON: &str = r#"{
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "dupename",
        "name": "final-name",
        "labels": {"app": "web"},
        "unknownMeta": "metaVal"
    },
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "type": "ClusterIP",
        "type": "NodePort",
        "ports": [{
            "port": 80,
            "unknownNested": "val1",
            "name": "first",
            "name": "http"
        }]
    }
}"#;

/// What upstream's `transformDecodeError` puts before a create's or update's strict error
/// (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go`); patches have none.
const SVC_PREFIX: &str = "Service in version \"v1\" cannot be handled as a Service: ";

const INVALID_SERVICE_YAML: &str = "apiVersion: v1
kind: Service
metadata:
  name: dupename
  name: final-name
  unknownMeta: metaVal
  labels:
    app: web
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  type: ClusterIP
  type: NodePort
  ports:
  - port: 80
    unknownNested: val1
    name: first
    name: http
";

#[tokio::test]
async fn duplicate_fields_in_a_create_are_reported_per_field_validation_mode() {
    let fx = Fixture::start().await;
    let json_findings = [
        r#"duplicate field "metadata.name""#,
        r#"unknown field "metadata.unknownMeta""#,
        r#"unknown field "spec.unknown1""#,
        // Both unknown and repeated: reported once, as unknown (typed decoding).
        r#"unknown field "spec.unknownDupe""#,
        r#"duplicate field "spec.type""#,
        r#"unknown field "spec.ports[0].unknownNested""#,
        r#"duplicate field "spec.ports[0].name""#,
    ];
    let yaml_findings = [
        r#"line 5: key "name" already set in map"#,
        r#"line 12: key "unknownDupe" already set in map"#,
        r#"line 14: key "type" already set in map"#,
        r#"line 19: key "name" already set in map"#,
        r#"unknown field "metadata.unknownMeta""#,
        r#"unknown field "spec.unknown1""#,
        r#"unknown field "spec.unknownDupe""#,
        r#"unknown field "spec.ports[0].unknownNested""#,
    ];
    for (content_type, body, findings, strict_error) in [
        (
            "application/json",
            INVALID_SERVICE_JSON,
            &json_findings[..],
            format!(
                "{SVC_PREFIX}strict decoding error: {}",
                json_findings.join(", ")
            ),
        ),
        (
            "application/yaml",
            INVALID_SERVICE_YAML,
            &yaml_findings[..],
            format!(
                "{SVC_PREFIX}strict decoding error: yaml: unmarshal errors:\n  {}, {}",
                yaml_findings[..4].join("\n  "),
                yaml_findings[4..].join(", ")
            ),
        ),
    ] {
        for mode in [Some("Strict"), Some("Warn"), None, Some("Ignore")] {
            let what = format!("{content_type} fieldValidation={mode:?}");
            let r = raw(
                &fx,
                "POST",
                &with_validation(SVC_PATH, mode),
                Some(content_type),
                body.to_string(),
            )
            .await;
            let got = warnings(&r.headers);
            if mode == Some("Strict") {
                assert_eq!(r.status, 400, "{what}: {}", r.body);
                assert_eq!(r.body["reason"], "BadRequest", "{what}");
                assert_eq!(r.body["message"], strict_error.as_str(), "{what}");
                continue;
            }
            assert_eq!(r.status, 201, "{what}: {}", r.body);
            // The last of repeated keys wins, unknown fields are dropped.
            assert_eq!(r.body["metadata"]["name"], "final-name", "{what}");
            assert_eq!(r.body["spec"]["type"], "NodePort", "{what}");
            assert_eq!(r.body["spec"]["ports"][0]["name"], "http", "{what}");
            assert!(r.body["spec"]["unknown1"].is_null(), "{what}");
            let expected: Vec<String> = if mode == Some("Ignore") {
                Vec::new()
            } else {
                findings.iter().map(|f| f.to_string()).collect()
            };
            assert_eq!(got, expected, "{what}");
            let del = raw(
                &fx,
                "DELETE",
                &format!("{SVC_PATH}/final-name"),
                None,
                Vec::<u8>::new(),
            )
            .await;
            assert_eq!(del.status, 200, "{what}: {}", del.body);
        }
    }
}

#[tokio::test]
async fn duplicate_fields_in_an_update_are_reported_too() {
    let fx = Fixture::start().await;
    let created = raw(
        &fx,
        "POST",
        CM_PATH,
        Some("application/json"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "data": {"k": "1"}}).to_string(),
    )
    .await;
    assert_eq!(created.status, 201);
    let body = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "data": {"k": "2", "k": "3"}}"#;
    let r = raw(
        &fx,
        "PUT",
        &format!("{CM_PATH}/u?fieldValidation=Strict"),
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.k""#
    );
    let r = raw(
        &fx,
        "PUT",
        &format!("{CM_PATH}/u"),
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(warnings(&r.headers), [r#"duplicate field "data.k""#]);
    assert_eq!(r.body["data"]["k"], "3");
}

#[tokio::test]
async fn duplicate_fields_in_patches_are_reported_per_field_validation_mode() {
    let fx = Fixture::start().await;
    let created = raw(
        &fx,
        "POST",
        SVC_PATH,
        Some("application/json"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"}, "spec": {"ports": [{"port": 80}]}}).to_string(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("{SVC_PATH}/p");
    let merge = r#"{"spec": {"unknown1": "v", "sessionAffinity": "ClientIP", "sessionAffinity": "None", "selector": {"a": "1", "a": "2"}}}"#;
    let merge_findings = [
        r#"duplicate field "spec.sessionAffinity""#,
        r#"duplicate field "spec.selector.a""#,
        r#"unknown field "spec.unknown1""#,
    ];
    let json_patch = r#"[
        {"op": "add", "path": "/spec/unknown1", "value": "v", "foo": "bar"},
        {"op": "add", "path": "/metadata/labels", "path": "/spec/selector", "value": {"a": "1"}}
    ]"#;
    let json_patch_findings = [
        r#"json patch unknown field "[0].foo""#,
        r#"json patch duplicate field "[1].path""#,
        r#"unknown field "spec.unknown1""#,
    ];
    for (content_type, body, findings) in [
        ("application/merge-patch+json", merge, &merge_findings[..]),
        (
            "application/strategic-merge-patch+json",
            merge,
            &merge_findings[..],
        ),
        (
            "application/json-patch+json",
            json_patch,
            &json_patch_findings[..],
        ),
    ] {
        for mode in [Some("Strict"), Some("Warn"), None, Some("Ignore")] {
            let what = format!("{content_type} fieldValidation={mode:?}");
            let r = raw(
                &fx,
                "PATCH",
                &with_validation(&path, mode),
                Some(content_type),
                body.to_string(),
            )
            .await;
            if mode == Some("Strict") {
                assert_eq!(r.status, 400, "{what}: {}", r.body);
                assert_eq!(
                    r.body["message"],
                    format!("strict decoding error: {}", findings.join(", ")).as_str(),
                    "{what}"
                );
                continue;
            }
            assert_eq!(r.status, 200, "{what}: {}", r.body);
            let expected: Vec<String> = if mode == Some("Ignore") {
                Vec::new()
            } else {
                findings.iter().map(|f| f.to_string()).collect()
            };
            assert_eq!(warnings(&r.headers), expected, "{what}");
            assert!(r.body["spec"]["unknown1"].is_null(), "{what}");
        }
    }

    // Server-side apply: the YAML duplicates, in yaml.v2's words.
    let apply = "apiVersion: v1\nkind: Service\nmetadata:\n  name: p\nspec:\n  sessionAffinity: ClientIP\n  sessionAffinity: None\n";
    for mode in [Some("Strict"), Some("Warn"), None, Some("Ignore")] {
        let what = format!("apply fieldValidation={mode:?}");
        let url = match mode {
            Some(m) => format!("{path}?fieldManager=dup&fieldValidation={m}"),
            None => format!("{path}?fieldManager=dup"),
        };
        let r = raw(
            &fx,
            "PATCH",
            &url,
            Some("application/apply-patch+yaml"),
            apply.to_string(),
        )
        .await;
        if mode == Some("Strict") {
            assert_eq!(r.status, 400, "{what}: {}", r.body);
            assert_eq!(
                r.body["message"],
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"sessionAffinity\" already set in map",
                "{what}"
            );
            continue;
        }
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        let expected: Vec<&str> = if mode == Some("Ignore") {
            Vec::new()
        } else {
            vec![r#"line 7: key "sessionAffinity" already set in map"#]
        };
        assert_eq!(warnings(&r.headers), expected, "{what}");
        assert_eq!(r.body["spec"]["sessionAffinity"], "None", "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Type errors name their field
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_value_of_the_wrong_type_is_reported_with_its_field_as_upstream() {
    let fx = Fixture::start().await;
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t"}, "spec": {"ports": [{"name": 1, "port": 80}]}}),
            "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal number into Go struct field ServicePort.spec.ports.name of type string",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "t", "labels": {"a": true}}}),
            "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string",
        ),
    ];
    for (body, message) in cases {
        let r = raw(
            &fx,
            "POST",
            SVC_PATH,
            Some("application/json"),
            body.to_string(),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["reason"], "BadRequest");
        assert_eq!(r.body["message"], message);
    }
    // Through a patch too (the patched object is decoded the same way).
    let created = raw(
        &fx,
        "POST",
        CM_PATH,
        Some("application/json"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}}).to_string(),
    )
    .await;
    assert_eq!(created.status, 201);
    let r = raw(
        &fx,
        "PATCH",
        &format!("{CM_PATH}/t"),
        Some("application/merge-patch+json"),
        json!({"data": {"k": 5}}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
    );
}

// ---------------------------------------------------------------------------------------------
// Large objects: the webhook answers them, managedFields are dropped when they do not fit
// ---------------------------------------------------------------------------------------------

/// A Service with `n` named TCP ports.
fn service_with_ports(name: &str, n: usize) -> Value {
    let ports: Vec<Value> = (1..=n)
        .map(|p| json!({"name": format!("p{p}"), "port": p}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": ports},
    })
}

/// Starts our webhook server (TLS) and registers it for Service writes.
async fn register_svcplane_webhook(
    fx: &Fixture,
) -> (tempfile::TempDir, tokio::sync::oneshot::Sender<()>) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let certs = svcplane_webhook::generate_certs(dir.path(), &["127.0.0.1".into()]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = svcplane_webhook::TlsFiles {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        reload_interval: std::time::Duration::from_secs(10),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = svcplane_webhook::ServeOptions::new().unwrap();
    tokio::spawn(async move {
        let _ = svcplane_webhook::serve(listener, tls, options, async {
            let _ = stopped.await;
        })
        .await;
    });
    let ca =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&certs.ca_cert).unwrap());
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "svcplane"},
        "webhooks": [{
            "name": "services.svcplane.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 30,
            "clientConfig": {"url": format!("https://{addr}/validate"), "caBundle": ca},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"]}],
        }],
    });
    let r = raw(
        fx,
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some("application/json"),
        config.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (dir, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_a_service_with_20000_ports() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    let _webhook = register_svcplane_webhook(&fx).await;
    // ~3.4 MB under review (1.3 MB of object, 2.1 MB of managedFields): more than the 3 MiB
    // the webhook accepted before, which answered 413 and the client got a 500.
    let body = service_with_ports("wide", 20_000).to_string();
    let r = raw(&fx, "POST", SVC_PATH, Some("application/json"), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // An update's review carries the object and its old version; the webhook's real answer
    // (here a denial naming the field) reaches the client, not "failed calling webhook".
    let r = raw(
        &fx,
        "PATCH",
        &format!("{SVC_PATH}/wide"),
        Some("application/json-patch+json"),
        json!([{"op": "replace", "path": "/spec/ports/19999/name", "value": "p1"}]).to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.ports[19999].name"), "{message}");
    assert!(!message.contains("failed calling webhook"), "{message}");
}

#[tokio::test]
async fn managed_fields_are_dropped_only_when_the_object_would_not_fit_otherwise() {
    let _heavy = crate::heavy::heavy().await;
    let fx = Fixture::start().await;
    // 15,000 ports: ~1 MB of object and ~1.6 MB of per-port managedFields entries, more than
    // etcd's 1.5 MiB; upstream stores such an object without its managedFields.
    let r = raw(
        &fx,
        "POST",
        SVC_PATH,
        Some("application/json"),
        service_with_ports("huge", 15_000).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let stored = raw(
        &fx,
        "GET",
        &format!("{SVC_PATH}/huge"),
        None,
        Vec::<u8>::new(),
    )
    .await;
    let size = stored.body.to_string().len();
    assert!(size <= 1_572_864, "stored object is {size} bytes");
    assert!(
        stored.body["metadata"]["managedFields"].is_null(),
        "managedFields kept although the object does not fit with them"
    );
    assert_eq!(
        stored.body["spec"]["ports"].as_array().unwrap().len(),
        15_000
    );

    // 2,000 ports fit with their managedFields: they are kept, one entry per port as upstream.
    let r = raw(
        &fx,
        "POST",
        SVC_PATH,
        Some("application/json"),
        service_with_ports("wide", 2_000).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let fields = &r.body["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"];
    assert_eq!(
        fields.as_object().map(|m| m.len()),
        Some(2_001),
        "'.' and one entry per port"
    );
    assert!(
        fields[r#"k:{"port":1,"protocol":"TCP"}"#].is_object(),
        "{}",
        fields.to_string().chars().take(200).collect::<String>()
    );

    // An object that does not fit even without managedFields is refused with 413. (300 KB of
    // control characters are 1.8 MB of JSON escapes: within ConfigMap's 1 MiB data limit,
    // beyond what the store keeps.)
    let big = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
        "data": {"a": "\u{1}".repeat(300_000)},
    });
    let r = raw(
        &fx,
        "POST",
        CM_PATH,
        Some("application/json"),
        big.to_string(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("etcdserver: request is too large"),
        "{}",
        r.body["message"]
    );
}
