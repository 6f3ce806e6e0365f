//! The compact form Pods are cached in. A `k8s_openapi` `Pod` is several kilobytes in memory
//! even when almost every field is unset (the structs hold every optional field inline), so
//! the cache keeps only what endpoint computation reads and rebuilds a `Pod` for the few
//! Pods a sync selects.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{NamespaceResourceScope, Resource as _};

/// A container port, with whether it belongs to a restartable (sidecar) init container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPort {
    /// `name`.
    pub name: Option<String>,
    /// `containerPort`.
    pub port: i32,
    /// `protocol`.
    pub protocol: Option<String>,
    /// True for ports of init containers with `restartPolicy: Always`.
    pub sidecar: bool,
}

/// What the controllers read from a Pod.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    /// name, namespace, uid, labels, deletionTimestamp, resourceVersion.
    pub metadata: ObjectMeta,
    /// `spec.nodeName`.
    pub node_name: Option<String>,
    /// `spec.hostname`.
    pub hostname: Option<String>,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// Container ports.
    pub ports: Vec<CachedPort>,
    /// `status.phase`.
    pub phase: Option<String>,
    /// `status.podIP`.
    pub pod_ip: Option<String>,
    /// `status.podIPs[].ip`.
    pub pod_ips: Vec<String>,
    /// `Ready` condition status, if the condition exists.
    pub ready: Option<String>,
}

impl CachedPod {
    /// Keeps what the controllers read.
    pub fn from_pod(pod: Pod) -> Self {
        let m = pod.metadata;
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let port = |sidecar: bool| {
            move |p: &ContainerPort| CachedPort {
                name: p.name.clone(),
                port: p.container_port,
                protocol: p.protocol.clone(),
                sidecar,
            }
        };
        let mut ports: Vec<CachedPort> = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten().map(port(false)))
            .collect();
        ports.extend(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"))
                .flat_map(|c| c.ports.iter().flatten().map(port(true))),
        );
        CachedPod {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                labels: m.labels,
                deletion_timestamp: m.deletion_timestamp,
                resource_version: m.resource_version,
                ..Default::default()
            },
            node_name: spec.node_name,
            hostname: spec.hostname,
            subdomain: spec.subdomain,
            ports,
            phase: status.phase,
            pod_ip: status.pod_ip,
            pod_ips: status.pod_ips.into_iter().flatten().map(|p| p.ip).collect(),
            ready: status
                .conditions
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready")
                .map(|c| c.status),
        }
    }

    /// Rebuilds a `Pod` with the cached fields (what the planning functions take).
    pub fn to_pod(&self) -> Pod {
        let container = |sidecar: bool| {
            let ports: Vec<ContainerPort> = self
                .ports
                .iter()
                .filter(|p| p.sidecar == sidecar)
                .map(|p| ContainerPort {
                    name: p.name.clone(),
                    container_port: p.port,
                    protocol: p.protocol.clone(),
                    ..Default::default()
                })
                .collect();
            Container {
                name: if sidecar { "sidecars" } else { "containers" }.into(),
                ports: (!ports.is_empty()).then_some(ports),
                restart_policy: sidecar.then(|| "Always".to_string()),
                ..Default::default()
            }
        };
        let has_sidecar_ports = self.ports.iter().any(|p| p.sidecar);
        Pod {
            metadata: self.metadata.clone(),
            spec: Some(PodSpec {
                node_name: self.node_name.clone(),
                hostname: self.hostname.clone(),
                subdomain: self.subdomain.clone(),
                containers: vec![container(false)],
                init_containers: has_sidecar_ports.then(|| vec![container(true)]),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: self.phase.clone(),
                pod_ip: self.pod_ip.clone(),
                pod_ips: (!self.pod_ips.is_empty()).then(|| {
                    self.pod_ips
                        .iter()
                        .map(|ip| PodIP { ip: ip.clone() })
                        .collect()
                }),
                conditions: self.ready.as_ref().map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: s.clone(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }
}

impl kube::Resource for CachedPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(Pod::KIND)
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(Pod::GROUP)
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(Pod::VERSION)
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(Pod::URL_PATH_SEGMENT)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint_set::{is_pod_ready, pod_ips, should_set_hostname};
    use crate::port_map::find_port;
    use k8s_openapi::api::core::v1::{Service, ServicePort};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn round_trip_keeps_everything_endpoint_computation_reads() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                annotations: Some([("big".to_string(), "x".repeat(100))].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                hostname: Some("h".into()),
                subdomain: Some("web".into()),
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("nginx".into()),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                init_containers: Some(vec![Container {
                    name: "side".into(),
                    restart_policy: Some("Always".into()),
                    ports: Some(vec![ContainerPort {
                        name: Some("metrics".into()),
                        container_port: 9090,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.0.0.1".into()),
                pod_ips: Some(vec![
                    PodIP {
                        ip: "10.0.0.1".into(),
                    },
                    PodIP {
                        ip: "fd00::1".into(),
                    },
                ]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        let back = CachedPod::from_pod(pod.clone()).to_pod();
        assert!(back.metadata.annotations.is_none());
        assert_eq!(back.metadata.labels, pod.metadata.labels);
        assert!(is_pod_ready(&back));
        assert_eq!(pod_ips(&back), vec!["10.0.0.1", "fd00::1"]);
        let svc = Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(should_set_hostname(&back, &svc));
        let named = |n: &str| ServicePort {
            port: 1,
            target_port: Some(IntOrString::String(n.into())),
            ..Default::default()
        };
        assert_eq!(find_port(&back, &named("http")), Some(8080));
        assert_eq!(find_port(&back, &named("metrics")), Some(9090));
        assert!(
            std::mem::size_of::<CachedPod>() * 3 < std::mem::size_of::<Pod>(),
            "compact: {} vs {}",
            std::mem::size_of::<CachedPod>(),
            std::mem::size_of::<Pod>()
        );
    }
}
