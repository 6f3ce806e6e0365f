//! Reflector memory: what the controllers never read is dropped before caching (managedFields
//! everywhere; for Pods everything but identity, labels, deletion time, node, hostname,
//! container ports, phase, IPs and the Ready condition; for Nodes everything but the zone).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Endpoints, Node, Pod, PodCondition, PodSpec, PodStatus, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::labels::LABEL_TOPOLOGY_ZONE;

fn container_ports_only(c: &Container) -> Container {
    Container {
        name: c.name.clone(),
        ports: c.ports.clone(),
        restart_policy: c.restart_policy.clone(),
        ..Default::default()
    }
}

/// Keeps only what endpoint computation reads from a Pod.
pub fn strip_pod(pod: Pod) -> Pod {
    let m = pod.metadata;
    let spec = pod.spec.map(|s| PodSpec {
        node_name: s.node_name,
        hostname: s.hostname,
        subdomain: s.subdomain,
        containers: s.containers.iter().map(container_ports_only).collect(),
        init_containers: s.init_containers.map(|cs| {
            cs.iter()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                .map(container_ports_only)
                .collect()
        }),
        ..Default::default()
    });
    let status = pod.status.map(|s| PodStatus {
        phase: s.phase,
        pod_ip: s.pod_ip,
        pod_ips: s.pod_ips,
        conditions: s.conditions.map(|cs| {
            cs.into_iter()
                .filter(|c| c.type_ == "Ready")
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
    Pod {
        metadata: ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            labels: m.labels,
            deletion_timestamp: m.deletion_timestamp,
            resource_version: m.resource_version,
            ..Default::default()
        },
        spec,
        status,
    }
}

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
    use k8s_openapi::api::core::v1::{ContainerPort, NodeSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn pod_keeps_endpoint_inputs_only() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                annotations: Some([("big".to_string(), "x".repeat(1000))].into()),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("nginx".into()),
                    command: Some(vec!["run".into()]),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 80,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![
                    PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        message: Some("m".into()),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "PodScheduled".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
        };
        let s = strip_pod(pod);
        assert!(s.metadata.annotations.is_none() && s.metadata.managed_fields.is_none());
        let c = &s.spec.as_ref().unwrap().containers[0];
        assert!(c.image.is_none() && c.command.is_none());
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);
        let conds = s.status.unwrap().conditions.unwrap();
        assert_eq!(conds.len(), 1);
        assert!(conds[0].message.is_none());
        assert!(crate::endpoint_set::is_pod_ready(&Pod {
            status: Some(PodStatus {
                conditions: Some(conds),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }

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
