//! Decoder tests against objects encoded with k8s-pb's prost types (independent of the decoder),
//! written the way Go's marshaller writes them: non-pointer fields present even when zero.

use std::collections::BTreeMap;

use k8s_pb::api::core::v1 as core;
use k8s_pb::api::discovery::v1 as discovery;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use prost::Message as _;
use serde_json::{json, Value};

use super::{decode_body, pointer_fields::POINTER_FIELDS, schema, MAGIC};

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// The body `kubectl` sends: magic, then `runtime.Unknown` around the object.
fn body(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn decode(api_version: &str, kind: &str, object: &impl prost::Message) -> Value {
    decode_body(&body(api_version, kind, object)).expect("decodes")
}

/// ObjectMeta as Go writes it for a new object: zero strings and a zero creationTimestamp.
fn meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time {
            seconds: Some(0),
            nanos: Some(0),
        }),
        ..Default::default()
    }
}

fn int_or_string_int(v: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: s(""),
    }
}

fn int_or_string_str(v: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    }
}

#[test]
fn service_ports_decode_with_named_and_numeric_target_ports() {
    let svc = core::Service {
        metadata: Some(meta::ObjectMeta {
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            ..meta("web")
        }),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: Some(int_or_string_str("http-alt")),
                    node_port: Some(0),
                    app_protocol: None,
                },
                core::ServicePort {
                    name: s("https"),
                    protocol: s("TCP"),
                    port: Some(443),
                    target_port: Some(int_or_string_int(8443)),
                    node_port: Some(0),
                    app_protocol: None,
                },
            ],
            selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            external_name: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    assert_eq!(
        decode("v1", "Service", &svc),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http-alt"},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 8443},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn go_zero_scalars_are_dropped_but_pointer_and_required_zeros_are_kept() {
    let svc = core::Service {
        metadata: Some(meta("lb")),
        spec: Some(core::ServiceSpec {
            // Non-pointer, omitempty: the Go server cannot tell "" from absent.
            r#type: s(""),
            // Go pointers: a written false/"" is a choice.
            allocate_load_balancer_node_ports: Some(false),
            load_balancer_class: s(""),
            ports: vec![core::ServicePort {
                // `port` is required (no omitempty): Go's JSON writes 0 too.
                port: Some(0),
                target_port: Some(int_or_string_int(0)),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let v = decode("v1", "Service", &svc);
    assert_eq!(
        v["spec"],
        json!({
            "ports": [{"port": 0}],
            "allocateLoadBalancerNodePorts": false,
            "loadBalancerClass": "",
        })
    );
    assert!(
        v.get("status").is_none(),
        "an unset pointer struct stays absent"
    );
}

#[test]
fn endpointslice_conditions_false_survive() {
    let slice = discovery::EndpointSlice {
        metadata: Some(meta("web-abc")),
        address_type: s("IPv4"),
        endpoints: vec![discovery::Endpoint {
            addresses: vec!["10.0.0.1".into()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(false),
                serving: Some(true),
                terminating: Some(false),
            }),
            node_name: s("node-a"),
            ..Default::default()
        }],
        ports: vec![discovery::EndpointPort {
            name: s(""),
            protocol: s("TCP"),
            port: Some(8080),
            app_protocol: None,
        }],
    };
    let v = decode("discovery.k8s.io/v1", "EndpointSlice", &slice);
    assert_eq!(
        v["endpoints"][0]["conditions"],
        json!({"ready": false, "serving": true, "terminating": false})
    );
    assert_eq!(v["addressType"], "IPv4");
    assert_eq!(
        v["ports"],
        json!([{"name": "", "protocol": "TCP", "port": 8080}]),
        "EndpointPort.name is a *string: an empty name is kept"
    );
}

#[test]
fn pod_containers_ports_and_resource_quantities_decode() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            labels: BTreeMap::from([("run".to_string(), "p".to_string())]),
            ..meta("p")
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("p"),
                image: s("nginx"),
                ports: vec![core::ContainerPort {
                    name: s(""),
                    host_port: Some(0),
                    container_port: Some(80),
                    protocol: s("TCP"),
                    host_ip: s(""),
                }],
                resources: Some(core::ResourceRequirements {
                    limits: BTreeMap::from([("cpu".to_string(), Quantity { string: s("500m") })]),
                    requests: BTreeMap::from([(
                        "memory".to_string(),
                        Quantity { string: s("64Mi") },
                    )]),
                    claims: vec![],
                }),
                termination_message_path: s(""),
                image_pull_policy: s(""),
                stdin: Some(false),
                tty: Some(false),
                ..Default::default()
            }],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(0),
            dns_policy: s(""),
            host_network: Some(false),
            ..Default::default()
        }),
        status: Some(core::PodStatus::default()),
    };
    let v = decode("v1", "Pod", &pod);
    assert_eq!(
        v["spec"],
        json!({
            "containers": [{
                "name": "p",
                "image": "nginx",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
        })
    );
    assert_eq!(v["status"], json!({}));
    assert_eq!(v["metadata"], json!({"name": "p", "labels": {"run": "p"}}));
}

#[test]
fn pod_volume_sources_inline_into_the_volume() {
    let pod = core::Pod {
        metadata: Some(meta("v")),
        spec: Some(core::PodSpec {
            volumes: vec![core::Volume {
                name: s("cfg"),
                volume_source: Some(core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: s("settings"),
                        }),
                        default_mode: Some(0o644),
                        optional: Some(false),
                        items: vec![],
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        status: None,
    };
    let v = decode("v1", "Pod", &pod);
    assert_eq!(
        v["spec"]["volumes"],
        json!([{"name": "cfg", "configMap": {"name": "settings", "defaultMode": 420, "optional": false}}])
    );
}

#[test]
fn secret_data_is_base64_as_in_json() {
    let secret = core::Secret {
        metadata: Some(meta("s")),
        immutable: None,
        data: BTreeMap::from([("a".to_string(), b"b\x00\xff".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    assert_eq!(
        decode("v1", "Secret", &secret),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"a": "YgD/"},
            "type": "Opaque",
        })
    );
}

#[test]
fn configmap_data_and_binary_data_decode() {
    let cm = core::ConfigMap {
        metadata: Some(meta("c")),
        immutable: Some(false),
        data: BTreeMap::from([
            ("a".to_string(), "b".to_string()),
            ("empty".to_string(), String::new()),
        ]),
        binary_data: BTreeMap::from([("bin".to_string(), vec![1, 2, 3])]),
    };
    assert_eq!(
        decode("v1", "ConfigMap", &cm),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "immutable": false,
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "AQID"},
        })
    );
}

#[test]
fn namespace_decodes_with_empty_spec_and_status() {
    let ns = core::Namespace {
        metadata: Some(meta("x")),
        spec: Some(core::NamespaceSpec { finalizers: vec![] }),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            conditions: vec![],
        }),
    };
    assert_eq!(
        decode("v1", "Namespace", &ns),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "x"},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn times_decode_as_rfc3339_and_micro_times_with_microseconds() {
    let mut m = meta("t");
    m.creation_timestamp = Some(meta::Time {
        seconds: Some(1_700_000_000),
        nanos: Some(0),
    });
    m.deletion_timestamp = Some(meta::Time {
        seconds: Some(1_700_000_060),
        nanos: Some(999_999_999),
    });
    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(m),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("me"),
            lease_duration_seconds: Some(0),
            acquire_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_789),
            }),
            ..Default::default()
        }),
    };
    let v = decode("coordination.k8s.io/v1", "Lease", &lease);
    assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["metadata"]["deletionTimestamp"], "2023-11-14T22:14:20Z");
    assert_eq!(
        v["spec"],
        json!({
            "holderIdentity": "me",
            "leaseDurationSeconds": 0,
            "acquireTime": "2023-11-14T22:13:20.123456Z",
        })
    );
}

#[test]
fn repeated_message_field_occurrences_merge() {
    // Protobuf: a non-repeated message sent twice merges (labels from both halves).
    let first = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s("m"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let second = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            namespace: s("ns"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut raw = first.encode_to_vec();
    raw.extend(second.encode_to_vec());
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut b = MAGIC.to_vec();
    b.extend(unknown.encode_to_vec());
    let v = decode_body(&b).unwrap();
    assert_eq!(v["metadata"], json!({"name": "m", "namespace": "ns"}));
}

#[test]
fn body_without_the_magic_prefix_is_a_bad_request() {
    let err = decode_body(b"{\"kind\":\"ConfigMap\"}").unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("expected prefix [107 56 115 0]"),
        "{}",
        err.message
    );
}

#[test]
fn truncated_object_is_a_bad_request() {
    let cm = core::ConfigMap {
        metadata: Some(meta("c")),
        ..Default::default()
    };
    let mut b = body("v1", "ConfigMap", &cm);
    b.truncate(b.len() - 3);
    let err = decode_body(&b).unwrap_err();
    assert_eq!(err.code, 400, "{}", err.message);
}

#[test]
fn wrong_wire_type_is_a_bad_request_naming_the_field() {
    // ServiceSpec.ports (tag 1) sent as a varint.
    let spec = vec![0x08, 0x01];
    let mut raw = vec![0x12, spec.len() as u8];
    raw.extend(spec);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("Service"),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut b = MAGIC.to_vec();
    b.extend(unknown.encode_to_vec());
    let err = decode_body(&b).unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("spec.ports[0]: wire type varint"),
        "{}",
        err.message
    );
}

#[test]
fn kind_without_a_protobuf_schema_is_unsupported_media_type() {
    let err = decode_body(&body(
        "example.com/v1",
        "Widget",
        &core::ConfigMap::default(),
    ))
    .unwrap_err();
    assert_eq!(err.code, 415);
    assert!(
        err.message.contains("example.com/v1 Widget"),
        "{}",
        err.message
    );
}

#[test]
fn envelope_without_kind_yields_only_what_it_has() {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: None,
        }),
        raw: Some(vec![]),
        ..Default::default()
    };
    let mut b = MAGIC.to_vec();
    b.extend(unknown.encode_to_vec());
    assert_eq!(decode_body(&b).unwrap(), json!({"apiVersion": "v1"}));
}

#[test]
fn every_pointer_field_names_a_scalar_field_of_the_schema() {
    for (message, field) in POINTER_FIELDS {
        let msg = schema::MESSAGES
            .iter()
            .find(|m| m.name == *message)
            .unwrap_or_else(|| panic!("no message {message}"));
        assert!(
            msg.fields.iter().any(|f| f.json == *field),
            "{message} has no field {field}"
        );
    }
}

#[test]
fn every_served_builtin_kind_has_a_protobuf_schema() {
    for info in crate::resources::builtin_resources() {
        assert!(
            super::message_for(&info.api_version(), &info.kind).is_some(),
            "{} {}",
            info.api_version(),
            info.kind
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut b = MAGIC.to_vec();
        b.extend(tail);
        if let Err(e) = decode_body(&b) {
            prop_assert!(e.code == 400 || e.code == 415, "{}", e.message);
        }
    }

    #[test]
    fn random_object_bytes_never_panic(
        kind in 0usize..schema::KINDS.len(),
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (api_version, kind, _) = schema::KINDS[kind];
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
            raw: Some(raw),
            ..Default::default()
        };
        let mut b = MAGIC.to_vec();
        b.extend(unknown.encode_to_vec());
        if let Err(e) = decode_body(&b) {
            prop_assert_eq!(e.code, 400, "{}", e.message);
        }
    }
}

/// A JSON name the generator got wrong would be dropped by k8s-openapi's typed round trip.
#[test]
fn decoded_pod_round_trips_through_k8s_openapi_unchanged() {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            annotations: BTreeMap::from([("a".to_string(), "b".to_string())]),
            owner_references: vec![meta::OwnerReference {
                api_version: s("v1"),
                kind: s("Service"),
                name: s("web"),
                uid: s("u-1"),
                controller: Some(true),
                block_owner_deletion: Some(false),
            }],
            ..meta("rich")
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("app"),
                image: s("nginx"),
                command: vec!["sh".into(), "-c".into()],
                env: vec![core::EnvVar {
                    name: s("PASS"),
                    value: s(""),
                    value_from: Some(core::EnvVarSource {
                        secret_key_ref: Some(core::SecretKeySelector {
                            local_object_reference: Some(core::LocalObjectReference {
                                name: s("creds"),
                            }),
                            key: s("pass"),
                            optional: Some(false),
                        }),
                        ..Default::default()
                    }),
                }],
                readiness_probe: Some(core::Probe {
                    handler: Some(core::ProbeHandler {
                        http_get: Some(core::HttpGetAction {
                            path: s("/healthz"),
                            port: Some(int_or_string_str("http")),
                            host: s(""),
                            scheme: s("HTTP"),
                            http_headers: vec![],
                        }),
                        ..Default::default()
                    }),
                    initial_delay_seconds: Some(5),
                    period_seconds: Some(10),
                    ..Default::default()
                }),
                security_context: Some(core::SecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(0),
                    allow_privilege_escalation: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            tolerations: vec![core::Toleration {
                key: s("node.kubernetes.io/not-ready"),
                operator: s("Exists"),
                value: s(""),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
            }],
            node_selector: BTreeMap::from([("zone".to_string(), "a".to_string())]),
            host_network: Some(true),
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode("v1", "Pod", &pod);
    let typed: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(decoded.clone()).expect("k8s-openapi reads it");
    let mut again = serde_json::to_value(&typed).expect("serializes");
    again["apiVersion"] = json!("v1");
    again["kind"] = json!("Pod");
    assert_eq!(again, decoded);
    let c = &decoded["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["env"][0]["valueFrom"]["secretKeyRef"]["name"], "creds");
    assert_eq!(c["securityContext"]["runAsUser"], 0);
    assert_eq!(
        decoded["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        false
    );
    assert_eq!(decoded["spec"]["hostNetwork"], true);
}

#[test]
fn schema_was_generated_from_the_locked_k8s_pb_version() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("Cargo.lock");
    let version = lock
        .split("name = \"k8s-pb\"\nversion = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("k8s-pb in Cargo.lock");
    let header = include_str!("schema.rs").lines().nth(1).unwrap_or_default();
    assert!(
        header.contains(&format!("k8s-pb {version} ")),
        "schema.rs is stale (header {header:?}, locked k8s-pb {version}): rerun scripts/gen-protobuf-schema.py"
    );
}

#[test]
fn delete_options_keep_a_zero_grace_period_and_preconditions() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("u-1"),
            resource_version: None,
        }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    assert_eq!(
        super::decode_delete_options(&body("discovery.k8s.io/v1", "DeleteOptions", &opts)).unwrap(),
        json!({
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        })
    );
    let err = super::decode_delete_options(&body("v1", "ConfigMap", &opts)).unwrap_err();
    assert_eq!(err.code, 400);
}

/// k8s-pb follows a newer Kubernetes than the one served (v1.33): its newer fields are unknown
/// tags to a v1.33 decoder and are skipped, not stored.
#[test]
fn fields_newer_than_the_served_version_are_skipped_like_unknown_tags() {
    let pod = core::Pod {
        metadata: Some(meta("n")),
        spec: Some(core::PodSpec {
            hostname_override: s("custom"),
            hostname: s("h"),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(decode("v1", "Pod", &pod)["spec"], json!({"hostname": "h"}));
}

#[test]
fn managed_fields_carry_fields_v1_as_json_and_their_time() {
    let mut m = meta("cm");
    m.managed_fields = vec![meta::ManagedFieldsEntry {
        manager: s("kubectl-create"),
        operation: s("Update"),
        api_version: s("v1"),
        time: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(br#"{"f:data":{".":{},"f:a":{}}}"#.to_vec()),
        }),
        subresource: s(""),
    }];
    let cm = core::ConfigMap {
        metadata: Some(m),
        ..Default::default()
    };
    assert_eq!(
        decode("v1", "ConfigMap", &cm)["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2023-11-14T22:13:20Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}}},
        }])
    );
}

#[test]
fn crd_schemas_decode_with_upstream_json_forms() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let string_schema = ext::JsonSchemaProps {
        r#type: s("string"),
        default: Some(ext::Json {
            raw: Some(br#""x""#.to_vec()),
        }),
        nullable: Some(false),
        max_length: Some(0),
        ..Default::default()
    };
    let root = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: BTreeMap::from([
            ("name".to_string(), string_schema.clone()),
            (
                "tags".to_string(),
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string_schema.clone())),
                        j_son_schemas: vec![],
                    })),
                    ..Default::default()
                },
            ),
        ]),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        x_kubernetes_preserve_unknown_fields: Some(false),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta("widgets.example.com")),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(false),
                storage: Some(true),
                deprecated: Some(false),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(root),
                }),
                ..Default::default()
            }],
            preserve_unknown_fields: Some(false),
            ..Default::default()
        }),
        status: None,
    };
    let v = decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    let version = &v["spec"]["versions"][0];
    assert_eq!(
        version["served"], false,
        "served is required: its false is kept"
    );
    assert_eq!(version["storage"], true);
    assert!(version.get("deprecated").is_none());
    let string = json!({"type": "string", "default": "x", "maxLength": 0});
    assert_eq!(
        version["schema"]["openAPIV3Schema"],
        json!({
            "type": "object",
            "properties": {
                "name": string,
                "tags": {"type": "array", "items": string},
            },
            "additionalProperties": false,
            "x-kubernetes-preserve-unknown-fields": false,
        })
    );
}
