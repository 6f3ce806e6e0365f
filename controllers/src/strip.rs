//! Reflector memory: what the controllers never read is dropped before caching (managedFields
//! everywhere; for Nodes everything but the zone; Pods are cached in the compact
//! [`crate::cached_pod::CachedPod`] form).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::LABEL_TOPOLOGY_ZONE;

/// Keeps only a Node's name and zone label.
pub fn strip_node(node: Node) -> Node {
    let zone = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
        .cloned();
    Node {
        metadata: ObjectMeta {
            name: node.metadata.name,
            resource_version: node.metadata.resource_version,
            labels: zone.map(|z| BTreeMap::from([(LABEL_TOPOLOGY_ZONE.to_string(), z)])),
            ..Default::default()
        },
        spec: None,
        status: None,
    }
}

/// Drops a Service's managedFields, annotations and status.
pub fn strip_service(mut svc: Service) -> Service {
    svc.metadata.managed_fields = None;
    svc.metadata.annotations = None;
    svc.status = None;
    svc
}

/// Drops an EndpointSlice's managedFields.
pub fn strip_slice(mut slice: EndpointSlice) -> EndpointSlice {
    slice.metadata.managed_fields = None;
    slice
}

/// Drops an Endpoints object's managedFields.
pub fn strip_endpoints(mut ep: Endpoints) -> Endpoints {
    ep.metadata.managed_fields = None;
    ep
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
    }
}
