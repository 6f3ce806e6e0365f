//! What real clients (the official Python client, curl, kubectl) send and kube-apiserver
//! accepts (FACTS.md, "kube-apiserver behaviours found with real clients"; issue 14 part 2):
//! bodies without `kind`/`apiVersion`, trailing-slash discovery paths, `services/status`
//! validation and defaulting, discovery verbs, and `svcplane validate` agreeing with the
//! server's allocation errors. The last test runs the Python `kubernetes` client itself
//! (`tests/python/client_compat.py`, installed by `scripts/install-test-deps.sh`).
//!
//! Self-contained on purpose: only `svcplane_tests` (the fixture) and the workspace crates.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use svcplane_tests::Fixture;

/// A raw HTTP exchange: what kube-rs would not send (bodies without `kind`, odd paths).
struct Raw {
    status: u16,
    body: Value,
}

async fn raw(fx: &Fixture, method: &str, path: &str, content_type: &str, body: Value) -> Raw {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::Client::new().request(method.clone(), format!("{}{path}", fx.url));
    if method != reqwest::Method::GET {
        let text = if content_type == "application/apply-patch+yaml" {
            serde_json::to_string(&body).expect("json is yaml")
        } else {
            body.to_string()
        };
        req = req.header("Content-Type", content_type).body(text);
    }
    let resp = req.send().await.expect("request reaches the server");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    Raw {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn get(fx: &Fixture, path: &str) -> Raw {
    raw(fx, "GET", path, "", Value::Null).await
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

fn cause_fields(body: &Value) -> Vec<String> {
    body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
        .collect()
}

// --- kind/apiVersion from the URL -------------------------------------------------------

/// `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go` and `update.go` decode the
/// body with the URL's GroupVersionKind as the default (`decoder.Decode(body, &defaultGVK,
/// original)`), so a body without `kind`/`apiVersion` is a body of the addressed resource.
#[tokio::test]
async fn create_update_and_status_bodies_without_kind_take_it_from_the_url() {
    let fx = Fixture::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let created = raw(
        &fx,
        "POST",
        cms,
        JSON,
        json!({"metadata": {"name": "no-kind"}, "data": {"a": "1"}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["kind"], "ConfigMap");
    assert_eq!(created.body["apiVersion"], "v1");

    // Only `kind` missing, and only `apiVersion` missing.
    let only_version = raw(
        &fx,
        "POST",
        cms,
        JSON,
        json!({"apiVersion": "v1", "metadata": {"name": "only-version"}}),
    )
    .await;
    assert_eq!(only_version.status, 201, "{}", only_version.body);
    let only_kind = raw(
        &fx,
        "POST",
        cms,
        JSON,
        json!({"kind": "ConfigMap", "metadata": {"name": "only-kind"}}),
    )
    .await;
    assert_eq!(only_kind.status, 201, "{}", only_kind.body);
    assert_eq!(only_kind.body["apiVersion"], "v1");

    let replaced = raw(
        &fx,
        "PUT",
        &format!("{cms}/no-kind"),
        JSON,
        json!({"metadata": {"name": "no-kind"}, "data": {"a": "2"}}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["kind"], "ConfigMap");
    assert_eq!(replaced.body["data"]["a"], "2");

    // A cluster-scoped kind (what `create_namespace(V1Namespace(metadata=...))` sends) and a
    // group other than core.
    let ns = raw(
        &fx,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "no-kind-ns"}}),
    )
    .await;
    assert_eq!(ns.status, 201, "{}", ns.body);
    assert_eq!(ns.body["kind"], "Namespace");
    let lease = raw(
        &fx,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        JSON,
        json!({"metadata": {"name": "l"}}),
    )
    .await;
    assert_eq!(lease.status, 201, "{}", lease.body);
    assert_eq!(lease.body["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(lease.body["kind"], "Lease");

    // A status subresource write.
    let svc = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/services",
        JSON,
        json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(svc.status, 201, "{}", svc.body);
    let mut status_body = svc.body.clone();
    status_body.as_object_mut().unwrap().remove("kind");
    status_body.as_object_mut().unwrap().remove("apiVersion");
    status_body["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}});
    let status = raw(
        &fx,
        "PUT",
        "/api/v1/namespaces/default/services/lb/status",
        JSON,
        status_body,
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["kind"], "Service");
    assert_eq!(
        status.body["status"]["loadBalancer"]["ingress"][0]["ip"],
        "192.0.2.7"
    );
    fx.server.shutdown().await;
}

/// `handlers/create.go`: `the API version in the data (%s) does not match the expected API
/// version (%v)`, 400 BadRequest, for a body whose apiVersion is not the URL's.
#[tokio::test]
async fn a_body_of_another_api_version_is_a_bad_request_with_upstreams_message() {
    let fx = Fixture::start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let wrong = raw(
        &fx,
        "POST",
        cms,
        JSON,
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert_eq!(wrong.body["reason"], "BadRequest");
    assert_eq!(
        wrong.body["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let created = raw(&fx, "POST", cms, JSON, json!({"metadata": {"name": "x"}})).await;
    assert_eq!(created.status, 201);
    let wrong_put = raw(
        &fx,
        "PUT",
        &format!("{cms}/x"),
        JSON,
        json!({"apiVersion": "discovery.k8s.io/v1", "metadata": {"name": "x"}}),
    )
    .await;
    assert_eq!(wrong_put.status, 400, "{}", wrong_put.body);
    assert_eq!(
        wrong_put.body["message"],
        "the API version in the data (discovery.k8s.io/v1) does not match the expected API version (v1)"
    );
    let wrong_kind = raw(
        &fx,
        "POST",
        cms,
        JSON,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "y"}}),
    )
    .await;
    assert_eq!(wrong_kind.status, 400, "{}", wrong_kind.body);
    assert_eq!(wrong_kind.body["reason"], "BadRequest");
    fx.server.shutdown().await;
}

/// `staging/src/k8s.io/apimachinery/pkg/runtime/conversion.go Convert_Slice_string_To_bool`:
/// a boolean query parameter is true unless it is `0` or `false` in any case, so the Python
/// client's `?watch=True` is a watch.
#[tokio::test]
async fn boolean_query_parameters_parse_as_upstream() {
    let fx = Fixture::start().await;
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=True&timeoutSeconds=1",
            fx.url
        ))
        .send()
        .await
        .expect("watch");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("stream ends after timeoutSeconds");
    assert!(
        !text.contains("ConfigMapList"),
        "watch=True answered a list: {text}"
    );
    for no in ["False", "0", "false"] {
        let list = get(
            &fx,
            &format!("/api/v1/namespaces/default/configmaps?watch={no}"),
        )
        .await;
        assert_eq!(list.body["kind"], "ConfigMapList", "watch={no}");
    }
    fx.server.shutdown().await;
}

// --- trailing slashes -------------------------------------------------------------------

/// go-restful routes kube-apiserver's `/version`, `/api/v1` and `/apis/GROUP[/VERSION]`
/// web services as `<root>/`, and `genericapiserver.installAPIGroups` registers `/apis/`
/// next to `/apis`, so each answers the same with a trailing slash (the Python client's
/// `VersionApi().get_code()` asks for `/version/`).
#[tokio::test]
async fn discovery_paths_answer_the_same_with_a_trailing_slash() {
    let fx = Fixture::start().await;
    for path in [
        "/version",
        "/api",
        "/apis",
        "/api/v1",
        "/apis/discovery.k8s.io",
        "/apis/discovery.k8s.io/v1",
    ] {
        let plain = get(&fx, path).await;
        let slashed = get(&fx, &format!("{path}/")).await;
        assert_eq!(plain.status, 200, "{path}: {}", plain.body);
        assert_eq!(slashed.status, 200, "{path}/: {}", slashed.body);
        assert_eq!(plain.body, slashed.body, "{path} and {path}/ differ");
    }
    fx.server.shutdown().await;
}

// --- services/status ----------------------------------------------------------------------

async fn service(fx: &Fixture, name: &str, ty: &str) -> Value {
    let created = raw(
        fx,
        "POST",
        "/api/v1/namespaces/default/services",
        JSON,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body
}

fn status_path(name: &str) -> String {
    format!("/api/v1/namespaces/default/services/{name}/status")
}

fn ingress(points: Value) -> Value {
    json!({"status": {"loadBalancer": {"ingress": points}}})
}

/// `pkg/apis/core/validation/validation.go ValidateLoadBalancerStatus` through
/// `ValidateServiceStatusUpdate`, for every way of writing `services/status`: the IP must
/// parse, `ipMode` must be VIP or Proxy; 422 Invalid naming `status.loadBalancer.ingress[i].*`.
#[tokio::test]
async fn validate_load_balancer_status_on_every_status_write() {
    let fx = Fixture::start().await;
    let current = service(&fx, "lb", "LoadBalancer").await;
    let bad = json!([{"ip": "not-an-ip", "ipMode": "Bogus"}]);
    let want = [
        "status.loadBalancer.ingress[0].ip",
        "status.loadBalancer.ingress[0].ipMode",
    ];
    let mut put_body = current.clone();
    put_body["status"] = ingress(bad.clone())["status"].clone();
    let writes = [
        ("PUT", JSON, put_body),
        ("PATCH", MERGE, ingress(bad.clone())),
        ("PATCH", STRATEGIC, ingress(bad.clone())),
        (
            "PATCH",
            JSON_PATCH,
            json!([{"op": "add", "path": "/status/loadBalancer/ingress", "value": bad}]),
        ),
    ];
    for (method, ct, body) in writes {
        let r = raw(&fx, method, &status_path("lb"), ct, body).await;
        assert_eq!(r.status, 422, "{method} {ct}: {}", r.body);
        assert_eq!(r.body["reason"], "Invalid", "{method} {ct}");
        assert_eq!(r.body["details"]["kind"], "Service", "{method} {ct}");
        assert_eq!(cause_fields(&r.body), want, "{method} {ct}: {}", r.body);
    }
    let applied = raw(
        &fx,
        "PATCH",
        &format!(
            "{}?fieldManager=lb-controller&force=true",
            status_path("lb")
        ),
        APPLY,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
               "status": {"loadBalancer": {"ingress": bad}}}),
    )
    .await;
    assert_eq!(applied.status, 422, "apply: {}", applied.body);
    assert_eq!(cause_fields(&applied.body), want, "apply: {}", applied.body);
    assert_eq!(
        applied.body["details"]["causes"][0]["message"],
        "Invalid value: \"not-an-ip\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
    assert_eq!(
        applied.body["details"]["causes"][1]["message"],
        "Unsupported value: \"Bogus\": supported values: \"Proxy\", \"VIP\""
    );

    // Nothing was stored.
    let stored = get(&fx, "/api/v1/namespaces/default/services/lb").await;
    assert_eq!(stored.body["status"], json!({"loadBalancer": {}}));
    fx.server.shutdown().await;
}

/// `pkg/apis/core/v1/defaults.go SetDefaults_Service` (LoadBalancerIPMode, GA in 1.32):
/// an ingress point with an `ip` and no `ipMode` gets `VIP`; `ValidateLoadBalancerStatus`
/// forbids `ipMode` without `ip`.
#[tokio::test]
async fn ip_mode_defaults_to_vip_with_an_ip_and_is_forbidden_without_one() {
    let fx = Fixture::start().await;
    service(&fx, "lb", "LoadBalancer").await;
    let defaulted = raw(
        &fx,
        "PATCH",
        &status_path("lb"),
        MERGE,
        ingress(json!([{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"}])),
    )
    .await;
    assert_eq!(defaulted.status, 200, "{}", defaulted.body);
    assert_eq!(
        defaulted.body["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb.example.com"}])
    );
    let proxy = raw(
        &fx,
        "PATCH",
        &status_path("lb"),
        MERGE,
        ingress(json!([{"ip": "192.0.2.1", "ipMode": "Proxy"}])),
    )
    .await;
    assert_eq!(proxy.status, 200, "{}", proxy.body);
    assert_eq!(
        proxy.body["status"]["loadBalancer"]["ingress"][0]["ipMode"],
        "Proxy"
    );
    let without_ip = raw(
        &fx,
        "PATCH",
        &status_path("lb"),
        MERGE,
        ingress(json!([{"hostname": "lb.example.com", "ipMode": "VIP"}])),
    )
    .await;
    assert_eq!(without_ip.status, 422, "{}", without_ip.body);
    assert_eq!(
        without_ip.body["message"],
        "Service \"lb\" is invalid: status.loadBalancer.ingress[0].ipMode: Forbidden: may not be specified when `ip` is not set"
    );
    fx.server.shutdown().await;
}

/// `ValidateLoadBalancerStatus`: with feature `AllowServiceLBStatusOnNonLB` off (its
/// default), ingress points are only allowed on `type: LoadBalancer`.
#[tokio::test]
async fn load_balancer_ingress_only_on_load_balancer_services() {
    let fx = Fixture::start().await;
    service(&fx, "plain", "ClusterIP").await;
    let r = raw(
        &fx,
        "PATCH",
        &status_path("plain"),
        MERGE,
        ingress(json!([{"ip": "192.0.2.1"}])),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "Service \"plain\" is invalid: status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"
    );
    assert_eq!(cause_fields(&r.body), ["status.loadBalancer.ingress"]);
    // An empty status stays writable.
    let empty = raw(
        &fx,
        "PATCH",
        &status_path("plain"),
        MERGE,
        json!({"status": {"loadBalancer": {}}}),
    )
    .await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    fx.server.shutdown().await;
}

/// A JSON merge patch replaces a list whole, nulls inside included; kube-apiserver decodes
/// the result into Go structs, where `"ip": null` is the empty string and is not stored.
#[tokio::test]
async fn a_merge_patch_with_a_null_ip_stores_no_null() {
    let fx = Fixture::start().await;
    service(&fx, "lb", "LoadBalancer").await;
    let r = raw(
        &fx,
        "PATCH",
        &status_path("lb"),
        MERGE,
        ingress(json!([{"ip": null, "hostname": "lb.example.com"}])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = get(&fx, "/api/v1/namespaces/default/services/lb").await;
    assert_eq!(
        stored.body["status"]["loadBalancer"]["ingress"],
        json!([{"hostname": "lb.example.com"}]),
        "{}",
        stored.body
    );
    fx.server.shutdown().await;
}

// --- discovery verbs ---------------------------------------------------------------------

/// The verbs kube-apiserver v1.32/1.33 lists for each resource svcplane serves. Upstream's
/// `endpoints/installer.go` derives them from the interfaces the resource's storage
/// implements: the generic registry store has all eight; `pkg/registry/core/namespace/storage`
/// `REST` has no `DeleteCollection`; status subresources are get/patch/update;
/// `namespaces/finalize` is update only.
const UPSTREAM_VERBS: &[(&str, &str, &[&str])] = &[
    ("v1", "configmaps", ALL_VERBS),
    ("v1", "endpoints", ALL_VERBS),
    ("v1", "events", ALL_VERBS),
    (
        "v1",
        "namespaces",
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
    ),
    ("v1", "namespaces/finalize", &["update"]),
    ("v1", "namespaces/status", STATUS_VERBS),
    ("v1", "nodes", ALL_VERBS),
    ("v1", "nodes/status", STATUS_VERBS),
    ("v1", "pods", ALL_VERBS),
    ("v1", "pods/status", STATUS_VERBS),
    ("v1", "secrets", ALL_VERBS),
    ("v1", "services", ALL_VERBS),
    ("v1", "services/status", STATUS_VERBS),
    (
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        ALL_VERBS,
    ),
    (
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        ALL_VERBS,
    ),
    (
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions/status",
        STATUS_VERBS,
    ),
    ("coordination.k8s.io/v1", "leases", ALL_VERBS),
    ("discovery.k8s.io/v1", "endpointslices", ALL_VERBS),
    ("events.k8s.io/v1", "events", ALL_VERBS),
];

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

fn sorted(verbs: &Value) -> Vec<String> {
    let mut v: Vec<String> = verbs
        .as_array()
        .expect("verbs is a list")
        .iter()
        .map(|s| s.as_str().expect("verb").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn discovery_verbs_equal_kube_apiservers_for_every_served_resource() {
    let fx = Fixture::start().await;
    let mut group_versions = vec!["v1".to_string()];
    let groups = get(&fx, "/apis").await;
    for g in groups.body["groups"].as_array().expect("groups") {
        for v in g["versions"].as_array().expect("versions") {
            group_versions.push(v["groupVersion"].as_str().unwrap().to_string());
        }
    }
    let mut checked = 0;
    for gv in &group_versions {
        let path = if gv == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{gv}")
        };
        let list = get(&fx, &path).await;
        for r in list.body["resources"].as_array().expect("resources") {
            let name = r["name"].as_str().unwrap();
            let got = sorted(&r["verbs"]);
            match UPSTREAM_VERBS
                .iter()
                .find(|(g, n, _)| g == gv && *n == name)
            {
                Some((_, _, want)) => {
                    assert_eq!(got, want.to_vec(), "{gv} {name}");
                    checked += 1;
                }
                // A resource added after this table: at least no verb upstream lacks.
                None => assert!(
                    got.iter().all(|v| ALL_VERBS.contains(&v.as_str())),
                    "{gv} {name}: {got:?}"
                ),
            }
        }
    }
    assert_eq!(
        checked,
        UPSTREAM_VERBS.len(),
        "every resource of the table is served"
    );
    fx.server.shutdown().await;
}

/// kube-apiserver registers no DELETE on the namespaces collection (its storage is no
/// `rest.CollectionDeleter`): 405, and nothing is deleted.
#[tokio::test]
async fn namespaces_have_no_deletecollection() {
    let fx = Fixture::start().await;
    let r = raw(&fx, "DELETE", "/api/v1/namespaces", JSON, json!({})).await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.body["reason"], "MethodNotAllowed");
    let ns = get(&fx, "/api/v1/namespaces/default").await;
    assert_eq!(ns.status, 200);
    assert!(ns.body["metadata"]["deletionTimestamp"].is_null());
    fx.server.shutdown().await;
}

// --- svcplane validate vs the server -----------------------------------------------------

/// `svcplane validate` runs `pkg/registry/core/service/storage/alloc.go`'s range checks
/// (`initNodePorts`, `allocClusterIPs`) offline: its verdict carries exactly the message the
/// API server (default ranges, as `svcplane dev` and the fixture use) answers `kubectl apply`.
#[tokio::test]
async fn svcplane_validate_reports_the_servers_allocation_errors() {
    use svcplane_rules::{
        validate_documents_in, ServiceRanges, DEFAULT_SERVICE_CLUSTER_IP_RANGE,
        DEFAULT_SERVICE_NODE_PORT_RANGE,
    };
    let fx = Fixture::start().await;
    let ranges = ServiceRanges::parse(
        DEFAULT_SERVICE_CLUSTER_IP_RANGE,
        DEFAULT_SERVICE_NODE_PORT_RANGE,
    )
    .expect("default ranges");
    let cases = [
        (
            "node-port-too-big",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}),
        ),
        (
            "node-port-below-range",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
        ),
        (
            "cluster-ip-outside-range",
            json!({"clusterIP": "192.168.7.7", "ports": [{"port": 80}]}),
        ),
    ];
    for (name, spec) in cases {
        let obj = json!({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": name, "namespace": "default"}, "spec": spec});
        let server = raw(
            &fx,
            "POST",
            "/api/v1/namespaces/default/services",
            JSON,
            obj.clone(),
        )
        .await;
        assert_eq!(server.status, 422, "{name}: {}", server.body);
        let cause = &server.body["details"]["causes"][0];
        let expected = format!(
            "{}: {}",
            cause["field"].as_str().unwrap(),
            cause["message"].as_str().unwrap()
        );
        let mut out = Vec::new();
        let code = validate_documents_in(&obj.to_string(), &ranges, &mut out);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code, 1, "{name}: {out}");
        assert_eq!(
            out,
            format!("Service default/{name}: rejected\n  error: {expected}\n"),
            "{name}"
        );
    }
    fx.server.shutdown().await;
}

// --- the official Python client ----------------------------------------------------------

/// The venv `scripts/install-python-client.sh` creates (same default path and version).
fn python_client_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SVCPLANE_PYTHON_VENV") {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = std::fs::read_to_string(root.join("scripts/install-python-client.sh"))
        .expect("scripts/install-python-client.sh");
    let version = script
        .lines()
        .find_map(|l| l.strip_prefix("KUBERNETES_CLIENT_VERSION="))
        .expect("the script pins KUBERNETES_CLIENT_VERSION");
    PathBuf::from(format!("/var/cache/svcplane-python/kubernetes-{version}"))
}

/// The official Python `kubernetes` client against the embedded API server:
/// `VersionApi().get_code()` (`/version/`), `create_namespace(V1Namespace(metadata=...))`
/// without kind, ConfigMap CRUD with `replace_namespaced_config_map`, a watch on Services that
/// sees ADDED, and `services/status` defaulting and validation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_crud_watch_version_and_service_status() {
    let venv = python_client_venv();
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs the Python kubernetes \
         client this test needs)",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/client_compat.py");
    let fx = Fixture::start().await;
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&fx.url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .expect("the Python client script finishes within 120 s")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python client script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    fx.server.shutdown().await;
}
