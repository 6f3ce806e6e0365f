//! The list semantics table: each row checks one upstream `patchStrategy`/`patchMergeKey` and
//! `listType`/`listMapKey` marker from `k8s.io/api`.

use svcplane_apiserver::patch::list_types::{FieldRule, ListSemantics, SmpList, SsaList};
use svcplane_apiserver::patch::{Gvk, Schema};

#[test]
fn list_semantics_match_upstream_markers() {
    let rows: &[(&str, &str, &str, SmpList, SsaList)] = &[
        // (apiVersion, kind, path, SMP, SSA)
        (
            "v1",
            "Service",
            "spec.ports",
            SmpList::MergeByKey("port"),
            SsaList::Map(&["port", "protocol"]),
        ),
        (
            "v1",
            "Service",
            "spec.clusterIPs",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Service",
            "spec.ipFamilies",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Service",
            "spec.externalIPs",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Service",
            "status.conditions",
            SmpList::MergeByKey("type"),
            SsaList::Map(&["type"]),
        ),
        (
            "v1",
            "Service",
            "status.loadBalancer.ingress",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Service",
            "metadata.finalizers",
            SmpList::MergePrimitives,
            SsaList::Set,
        ),
        (
            "v1",
            "Service",
            "metadata.ownerReferences",
            SmpList::MergeByKey("uid"),
            SsaList::Map(&["uid"]),
        ),
        (
            "v1",
            "Pod",
            "spec.containers",
            SmpList::MergeByKey("name"),
            SsaList::Map(&["name"]),
        ),
        (
            "v1",
            "Pod",
            "spec.initContainers",
            SmpList::MergeByKey("name"),
            SsaList::Map(&["name"]),
        ),
        (
            "v1",
            "Pod",
            "spec.containers[].ports",
            SmpList::MergeByKey("containerPort"),
            SsaList::Map(&["containerPort", "protocol"]),
        ),
        (
            "v1",
            "Pod",
            "spec.initContainers[].env",
            SmpList::MergeByKey("name"),
            SsaList::Map(&["name"]),
        ),
        (
            "v1",
            "Pod",
            "spec.containers[].volumeMounts",
            SmpList::MergeByKey("mountPath"),
            SsaList::Map(&["mountPath"]),
        ),
        (
            "v1",
            "Pod",
            "spec.containers[].args",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Pod",
            "spec.volumes",
            SmpList::MergeByKey("name"),
            SsaList::Map(&["name"]),
        ),
        (
            "v1",
            "Pod",
            "spec.tolerations",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Pod",
            "spec.topologySpreadConstraints",
            SmpList::MergeByKey("topologyKey"),
            SsaList::Map(&["topologyKey", "whenUnsatisfiable"]),
        ),
        (
            "v1",
            "Pod",
            "status.conditions",
            SmpList::MergeByKey("type"),
            SsaList::Map(&["type"]),
        ),
        (
            "v1",
            "Pod",
            "status.podIPs",
            SmpList::MergeByKey("ip"),
            SsaList::Map(&["ip"]),
        ),
        (
            "v1",
            "Pod",
            "status.containerStatuses",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Node",
            "spec.podCIDRs",
            SmpList::MergePrimitives,
            SsaList::Set,
        ),
        (
            "v1",
            "Node",
            "spec.taints",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "v1",
            "Node",
            "status.addresses",
            SmpList::MergeByKey("type"),
            SsaList::Map(&["type"]),
        ),
        (
            "v1",
            "Node",
            "status.conditions",
            SmpList::MergeByKey("type"),
            SsaList::Map(&["type"]),
        ),
        (
            "v1",
            "Namespace",
            "status.conditions",
            SmpList::MergeByKey("type"),
            SsaList::Map(&["type"]),
        ),
        (
            "v1",
            "Endpoints",
            "subsets",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "endpoints",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "ports",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "endpoints[].addresses",
            SmpList::Replace,
            SsaList::Set,
        ),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "webhooks",
            SmpList::MergeByKey("name"),
            SsaList::Map(&["name"]),
        ),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "webhooks[].rules",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "spec.versions",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "status.conditions",
            SmpList::Replace,
            SsaList::Map(&["type"]),
        ),
        // Custom resources: only metadata is typed.
        (
            "example.com/v1",
            "Widget",
            "spec.ports",
            SmpList::Replace,
            SsaList::Atomic,
        ),
        (
            "example.com/v1",
            "Widget",
            "metadata.finalizers",
            SmpList::MergePrimitives,
            SsaList::Set,
        ),
        // Same kind name in another group has its own table.
        (
            "example.com/v1",
            "Service",
            "spec.ports",
            SmpList::Replace,
            SsaList::Atomic,
        ),
    ];
    for (api_version, kind, path, smp, ssa) in rows {
        let schema = Schema::for_kind(&Gvk::new(api_version, kind));
        assert_eq!(
            schema.list(path),
            ListSemantics {
                smp: *smp,
                ssa: *ssa
            },
            "{api_version} {kind} {path}"
        );
    }
}

#[test]
fn atomic_maps_and_structs_match_upstream_markers() {
    let rows: &[(&str, &str, &str, bool)] = &[
        ("v1", "Service", "spec.selector", true), // +mapType=atomic
        ("v1", "Pod", "spec.nodeSelector", true), // +mapType=atomic
        ("v1", "Pod", "metadata.labels", false),  // granular map
        ("v1", "Pod", "metadata.ownerReferences[]", true), // OwnerReference +structType=atomic
        (
            "v1",
            "Pod",
            "spec.containers[].env[].valueFrom.configMapKeyRef",
            true,
        ),
        (
            "discovery.k8s.io/v1",
            "EndpointSlice",
            "endpoints[].targetRef",
            true,
        ), // ObjectReference
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "webhooks[].namespaceSelector",
            true,
        ),
        ("v1", "ConfigMap", "data", false),
    ];
    for (api_version, kind, path, atomic) in rows {
        let schema = Schema::for_kind(&Gvk::new(api_version, kind));
        assert_eq!(
            schema.is_atomic_map(path),
            *atomic,
            "{api_version} {kind} {path}"
        );
    }
    assert_eq!(
        Schema::for_kind(&Gvk::new("v1", "Service")).rule("spec.selector"),
        Some(FieldRule::AtomicMap)
    );
}

#[test]
fn only_served_builtin_kinds_are_builtin() {
    assert!(Schema::for_kind(&Gvk::new("v1", "Pod")).is_builtin());
    assert!(Schema::for_kind(&Gvk::new("coordination.k8s.io/v1", "Lease")).is_builtin());
    assert!(!Schema::for_kind(&Gvk::new("example.com/v1", "Widget")).is_builtin());
}

#[test]
fn gvk_parses_core_and_grouped_api_versions() {
    let core = Gvk::new("v1", "Service");
    assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
    assert_eq!(core.api_version(), "v1");
    let grouped = Gvk::new("discovery.k8s.io/v1", "EndpointSlice");
    assert_eq!(grouped.group, "discovery.k8s.io");
    assert_eq!(grouped.api_version(), "discovery.k8s.io/v1");
    let obj = serde_json::json!({"apiVersion": "v1", "kind": "Pod"});
    assert_eq!(Gvk::of(&obj), Some(Gvk::new("v1", "Pod")));
    assert_eq!(Gvk::of(&serde_json::json!({"kind": "Pod"})), None);
}
