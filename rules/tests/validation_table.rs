//! Table-driven validation tests: each row names the upstream rule it checks and asserts the
//! field paths of every error (sorted), and for many rows the exact message and warnings.
//!
//! Rows live in `tests/data/validation_table.yaml`; each row merge-patches (RFC 7386) a
//! base object (`clusterip`, `nodeport`, `lb`, `externalname`, `headless`, `slice`,
//! `endpoints`) and, for updates, an old object.

use serde::Deserialize;
use serde_json::{json, Value};
use svcplane_rules::{validate_object, DecodeError};

#[derive(Debug, Deserialize)]
struct Row {
    rule: String,
    base: String,
    #[serde(default)]
    patch: Value,
    #[serde(default)]
    old: Option<String>,
    #[serde(default)]
    old_patch: Value,
    fields: Vec<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    no_warnings: bool,
}

fn base(name: &str) -> Value {
    match name {
        "clusterip" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        "nodeport" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}}),
        "lb" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        "externalname" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        "headless" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        "dualstack" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}],
                "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10", "fd00::10"],
                "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack"}}),
        "stored" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}],
                "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}}),
        "stored_lb" => json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080}],
                "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
                "loadBalancerClass": "example.com/lb"}}),
        "slice" => json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc12", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        "endpoints" => json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 8080}]}]}),
        other => panic!("unknown base {other}"),
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = json!({});
        }
        let t = target.as_object_mut().unwrap();
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

fn build(base_name: &str, patch: &Value) -> Value {
    let mut v = base(base_name);
    if !patch.is_null() {
        merge(&mut v, patch);
    }
    v
}

fn rows() -> Vec<Row> {
    let text = include_str!("data/validation_table.yaml");
    serde_yaml::from_str(text).expect("table parses")
}

#[test]
fn validation_table_matches_upstream_field_paths_and_messages() {
    let rows = rows();
    assert!(rows.len() >= 200, "table has {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let obj = build(&row.base, &row.patch);
        let old = row.old.as_ref().map(|o| build(o, &row.old_patch));
        let verdict = match validate_object(&obj, old.as_ref()) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("[{}] decode error: {e}", row.rule));
                continue;
            }
        };
        let mut got: Vec<String> = verdict.errors.iter().map(|e| e.field.clone()).collect();
        got.sort();
        let mut want = row.fields.clone();
        want.sort();
        if got != want {
            failures.push(format!(
                "[{}] fields: want {want:?}, got {got:?} ({})",
                row.rule,
                verdict
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            continue;
        }
        if let Some(msg) = &row.message {
            if !verdict.errors.iter().any(|e| &e.to_string() == msg) {
                failures.push(format!(
                    "[{}] message: want {msg:?}, got {:?}",
                    row.rule,
                    verdict
                        .errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                ));
            }
        }
        for w in &row.warnings {
            if !verdict.warnings.iter().any(|got| got.contains(w.as_str())) {
                failures.push(format!(
                    "[{}] warning {w:?} missing from {:?}",
                    row.rule, verdict.warnings
                ));
            }
        }
        if row.no_warnings && !verdict.warnings.is_empty() {
            failures.push(format!(
                "[{}] unexpected warnings {:?}",
                row.rule, verdict.warnings
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn fields_of(obj: &Value) -> Vec<String> {
    validate_object(obj, None)
        .unwrap()
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn endpoint_slice_holds_at_most_1000_endpoints() {
    let mut s = base("slice");
    s["endpoints"] = Value::Array(
        (0..1001)
            .map(|i| json!({"addresses": [format!("10.2.{}.{}", i / 250, i % 250 + 1)]}))
            .collect(),
    );
    assert_eq!(
        fields_of(&s),
        vec!["endpoints: Too many: 1001: must have at most 1000 items"]
    );
    s["endpoints"].as_array_mut().unwrap().pop();
    assert!(fields_of(&s).is_empty());
}

#[test]
fn endpoint_slice_holds_at_most_100_ports_and_100_addresses_per_endpoint() {
    let mut s = base("slice");
    s["ports"] = Value::Array(
        (0..101)
            .map(|i| json!({"name": format!("p{i}"), "port": 1000 + i}))
            .collect(),
    );
    assert_eq!(
        fields_of(&s),
        vec!["ports: Too many: 101: must have at most 100 items"]
    );
    let mut s = base("slice");
    s["endpoints"][0]["addresses"] = Value::Array(
        (0..101)
            .map(|i| json!(format!("10.3.0.{}", i + 1)))
            .collect(),
    );
    assert_eq!(
        fields_of(&s),
        vec!["endpoints[0].addresses: Too many: 101: must have at most 100 items"]
    );
}

#[test]
fn endpoints_over_1000_addresses_are_accepted_with_a_warning() {
    let mut e = base("endpoints");
    e["subsets"][0]["addresses"] = Value::Array(
        (0..1001)
            .map(|i| json!({"ip": format!("10.4.{}.{}", i / 250, i % 250 + 1)}))
            .collect(),
    );
    let v = validate_object(&e, None).unwrap();
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    e["subsets"][0]["addresses"].as_array_mut().unwrap().pop();
    assert!(validate_object(&e, None).unwrap().warnings.is_empty());
}

#[test]
fn decode_errors_name_the_field() {
    let mut s = base("clusterip");
    s["spec"]["ports"][0]["port"] = json!("eighty");
    match validate_object(&s, None) {
        Err(DecodeError::Field { path, .. }) => assert_eq!(path, "spec.ports[0].port"),
        other => panic!("{other:?}"),
    }
    let mut s = base("slice");
    s["endpoints"][0]["addresses"] = json!("10.0.0.1");
    match validate_object(&s, None) {
        Err(DecodeError::Field { path, .. }) => assert_eq!(path, "endpoints[0].addresses"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_kinds_and_kind_mismatch_are_decode_errors() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    assert!(matches!(
        validate_object(&cm, None),
        Err(DecodeError::UnknownKind { .. })
    ));
    assert!(matches!(
        validate_object(&json!({"kind": "Service"}), None),
        Err(DecodeError::MissingTypeMeta)
    ));
    assert!(matches!(
        validate_object(&json!([1]), None),
        Err(DecodeError::NotAnObject(_))
    ));
    assert!(matches!(
        validate_object(&base("clusterip"), Some(&base("endpoints"))),
        Err(DecodeError::KindMismatch { .. })
    ));
}
