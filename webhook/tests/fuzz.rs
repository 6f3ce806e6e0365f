//! Bounded fuzzing (proptest): arbitrary JSON and arbitrary mutations of valid objects fed to
//! `validate_object` and the AdmissionReview handler must never panic, and every denial
//! must carry a message. Case counts keep the run well under 30 s.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use svcplane_rules::validate_object;
use svcplane_webhook::admission::{review, review_general};

const WORDS: &[&str] = &[
    "",
    "None",
    "10.0.0.1",
    "::1",
    "fd00::1",
    "127.0.0.1",
    "0.0.0.0",
    "10.0.0.0/8",
    "010.0.0.1",
    "TCP",
    "UDP",
    "SCTP",
    "ClusterIP",
    "NodePort",
    "LoadBalancer",
    "ExternalName",
    "Local",
    "Cluster",
    "ClientIP",
    "SingleStack",
    "RequireDualStack",
    "PreferDualStack",
    "IPv4",
    "IPv6",
    "FQDN",
    "http",
    "a/b/c",
    "kubernetes.io/h2c",
    "-x",
    "x.",
    "ü",
    "\u{0}",
    "PreferClose",
    "Service",
    "v1",
    "EndpointSlice",
    "discovery.k8s.io/v1",
    "Endpoints",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(65535),
            Just(65536),
            Just(86400),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(i64::from(i32::MAX) + 1),
            any::<i64>()
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        prop::sample::select(WORDS).prop_map(Value::from),
        "[a-zA-Z0-9./:_-]{0,12}".prop_map(Value::from),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "type",
    "ports",
    "port",
    "targetPort",
    "nodePort",
    "protocol",
    "clusterIP",
    "clusterIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "selector",
    "sessionAffinity",
    "sessionAffinityConfig",
    "clientIP",
    "timeoutSeconds",
    "externalIPs",
    "addressType",
    "endpoints",
    "addresses",
    "hints",
    "forZones",
    "subsets",
    "ip",
    "generateName",
    "x",
];

fn valid_objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
                "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}},
                "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "loadBalancerSourceRanges": ["10.0.0.0/8"]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-1", "namespace": "default"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"], "hints": {"forZones": [{"name": "a"}]}}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"name": "http", "port": 80}]}]}),
    ]
}

/// Replace the value at a random existing path (objects by key, arrays by index).
fn mutate(mut v: Value, choices: &[(usize, Value)]) -> Value {
    for (pick, new) in choices {
        let mut cur = &mut v;
        let mut depth = pick % 5;
        loop {
            let next_key = match cur {
                Value::Object(m) if !m.is_empty() && depth > 0 => {
                    let k = m.keys().nth(pick % m.len()).cloned();
                    k.map(PathStep::Key)
                }
                Value::Array(a) if !a.is_empty() && depth > 0 => {
                    Some(PathStep::Idx(pick % a.len()))
                }
                _ => None,
            };
            match next_key {
                Some(PathStep::Key(k)) => cur = cur.get_mut(&k).unwrap(),
                Some(PathStep::Idx(i)) => cur = cur.get_mut(i).unwrap(),
                None => break,
            }
            depth -= 1;
        }
        *cur = new.clone();
    }
    v
}

enum PathStep {
    Key(String),
    Idx(usize),
}

fn wrap(obj: &Value, old: Option<&Value>, op: &str) -> Vec<u8> {
    let kind = obj.get("kind").cloned().unwrap_or(json!("Service"));
    let group = if kind == "EndpointSlice" {
        "discovery.k8s.io"
    } else {
        ""
    };
    let mut req = json!({"uid": "fuzz", "kind": {"group": group, "version": "v1", "kind": kind},
        "operation": op, "namespace": "default", "object": obj});
    if let Some(o) = old {
        req["oldObject"] = o.clone();
    }
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}),
    )
    .unwrap()
}

fn check_review(body: &[u8]) {
    if let Ok(out) = review(body) {
        assert_eq!(out.body["response"]["uid"], "fuzz");
        if !out.allowed {
            let msg = out.body["response"]["status"]["message"]
                .as_str()
                .unwrap_or("");
            assert!(!msg.is_empty(), "denial without message: {}", out.body);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json(), old in proptest::option::of(arb_json())) {
        let _ = validate_object(&v, old.as_ref());
        check_review(&wrap(&v, old.as_ref(), if old.is_some() { "UPDATE" } else { "CREATE" }));
        let _ = review(v.to_string().as_bytes());
    }

    #[test]
    fn mutated_valid_objects_never_panic(
        which in 0usize..3,
        choices in prop::collection::vec((any::<usize>(), leaf()), 1..4),
        as_update in any::<bool>(),
    ) {
        let base = valid_objects()[which].clone();
        let mutated = mutate(base.clone(), &choices);
        let old = as_update.then_some(&base);
        let _ = validate_object(&mutated, old);
        let body = wrap(&mutated, old, if as_update { "UPDATE" } else { "CREATE" });
        check_review(&body);
        // The typed fast path must answer exactly like the general JSON-tree path.
        prop_assert_eq!(review(&body).ok(), review_general(&body).ok());
    }

    #[test]
    fn arbitrary_objects_of_known_kinds_never_panic(which in 0usize..3, body in arb_json(), as_update in any::<bool>()) {
        let (api_version, kind) = [("v1", "Service"), ("discovery.k8s.io/v1", "EndpointSlice"), ("v1", "Endpoints")][which];
        let mut obj = match body { Value::Object(m) => Value::Object(m), other => json!({"spec": other}) };
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        let old = as_update.then(|| valid_objects()[which].clone());
        let _ = validate_object(&obj, old.as_ref());
        check_review(&wrap(&obj, old.as_ref(), if as_update { "UPDATE" } else { "CREATE" }));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = review(&bytes);
    }
}

#[test]
fn base_objects_are_valid() {
    for obj in valid_objects() {
        let v = validate_object(&obj, None).unwrap();
        assert!(v.errors.is_empty(), "{obj}: {:?}", v.errors);
    }
}
