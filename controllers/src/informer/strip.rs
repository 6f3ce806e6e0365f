//! Reflector memory: what the controllers never read is dropped before caching (managedFields
//! everywhere; for Nodes everything but the zone and what the topology cache reads; Pods are
//! cached in the compact [`crate::informer::cached_pod::CachedPod`] form, EndpointSlices and Endpoints
//! in the [`crate::informer::cached_object`] form).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Node, NodeCondition, NodeStatus, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::informer::cached_object::{CachedEndpoints, CachedSlice};
use crate::labels::{
    ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE, LABEL_NODE_ROLE_CONTROL_PLANE,
    LABEL_NODE_ROLE_MASTER, LABEL_TOPOLOGY_ZONE,
};

/// Keeps only a Node's name, its zone and control-plane role labels, its `Ready` condition
/// (type and status) and `status.allocatable.cpu`: what endpoints and the topology cache
/// (`service.kubernetes.io/topology-mode: Auto`) read.
pub fn strip_node(node: Node) -> Node {
    let labels: BTreeMap<String, String> = node
        .metadata
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            k == LABEL_TOPOLOGY_ZONE
                || k == LABEL_NODE_ROLE_CONTROL_PLANE
                || k == LABEL_NODE_ROLE_MASTER
        })
        .collect();
    let status = node.status.unwrap_or_default();
    let ready: Vec<NodeCondition> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ == "Ready")
        .map(|c| NodeCondition {
            type_: c.type_,
            status: c.status,
            ..Default::default()
        })
        .collect();
    let cpu = status
        .allocatable
        .and_then(|mut a| a.remove("cpu"))
        .map(|q| BTreeMap::from([("cpu".to_string(), q)]));
    let status = (!ready.is_empty() || cpu.is_some()).then(|| NodeStatus {
        conditions: (!ready.is_empty()).then_some(ready),
        allocatable: cpu,
        ..Default::default()
    });
    Node {
        metadata: ObjectMeta {
            name: node.metadata.name,
            resource_version: node.metadata.resource_version,
            labels: (!labels.is_empty()).then_some(labels),
            ..Default::default()
        },
        spec: None,
        status,
    }
}

/// Drops a Service's managedFields, status and every annotation but the topology-mode pair
/// (`service.kubernetes.io/topology-mode`, `service.kubernetes.io/topology-aware-hints`).
pub fn strip_service(mut svc: Service) -> Service {
    svc.metadata.managed_fields = None;
    svc.metadata.annotations = svc
        .metadata
        .annotations
        .take()
        .map(|a| {
            a.into_iter()
                .filter(|(k, _)| {
                    k == ANNOTATION_TOPOLOGY_MODE || k == ANNOTATION_TOPOLOGY_AWARE_HINTS
                })
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|a| !a.is_empty());
    svc.status = None;
    svc
}

/// Drops an EndpointSlice's managedFields and keeps the rest in the compact
/// [`CachedSlice`] form.
pub fn strip_slice(slice: EndpointSlice) -> CachedSlice {
    CachedSlice::new(slice)
}

/// Drops an Endpoints object's managedFields and keeps the rest in the compact
/// [`CachedEndpoints`] form.
pub fn strip_endpoints(ep: Endpoints) -> CachedEndpoints {
    CachedEndpoints::new(ep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;

    #[test]
    fn node_keeps_zone_only() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some(
                    [
                        (LABEL_TOPOLOGY_ZONE.to_string(), "z1".to_string()),
                        ("other".to_string(), "x".to_string()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: None,
        };
        let s = strip_node(node);
        assert_eq!(s.metadata.labels.unwrap().len(), 1);
        assert!(s.spec.is_none());
        assert!(s.status.is_none());
    }

    #[test]
    fn node_keeps_ready_condition_allocatable_cpu_and_role_labels() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {
                "topology.kubernetes.io/zone": "z1",
                "node-role.kubernetes.io/control-plane": "",
                "kubernetes.io/hostname": "n1"}},
            "status": {
                "allocatable": {"cpu": "3500m", "memory": "8Gi"},
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok"}
                ]
            }
        }))
        .unwrap();
        let s = strip_node(node);
        let labels = s.metadata.labels.unwrap();
        assert_eq!(
            labels.keys().map(String::as_str).collect::<Vec<_>>(),
            vec![
                "node-role.kubernetes.io/control-plane",
                "topology.kubernetes.io/zone"
            ]
        );
        let status = s.status.unwrap();
        let alloc = status.allocatable.unwrap();
        assert_eq!(alloc.len(), 1);
        assert_eq!(alloc["cpu"].0, "3500m");
        let conds = status.conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(
            (conds[0].type_.as_str(), conds[0].status.as_str()),
            ("Ready", "True")
        );
        assert!(conds[0].reason.is_none());
    }

    #[test]
    fn service_keeps_only_topology_annotations() {
        let mut svc = Service::default();
        svc.metadata.annotations = Some(
            [
                (ANNOTATION_TOPOLOGY_MODE.to_string(), "Auto".to_string()),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{}".to_string(),
                ),
            ]
            .into(),
        );
        let s = strip_service(svc);
        assert_eq!(s.metadata.annotations.unwrap().len(), 1);
        let mut plain = Service::default();
        plain.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        assert!(strip_service(plain).metadata.annotations.is_none());
    }
}
