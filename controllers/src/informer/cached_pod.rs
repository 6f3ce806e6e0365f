//! The compact form Pods are cached in. A `k8s_openapi` `Pod` is several kilobytes in memory
//! even when almost every field is unset (the structs hold every optional field inline), so
//! the cache keeps only what endpoint computation reads and rebuilds a `Pod` for the few
//! Pods a sync selects. Values Pods of one workload share (labels, ports, node, namespace,
//! phase, condition status) are interned ([`PodInterner`]): one copy per distinct value.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::informer::cache::Cacheable;
use crate::informer::intern::Interner;

/// A container port, with whether it belongs to a restartable (sidecar) init container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// The metadata the controllers read from a Pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodMeta {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.namespace` (interned).
    pub namespace: Option<Arc<str>>,
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// `metadata.labels` (interned: Pods with equal labels share one map).
    pub labels: Option<Arc<BTreeMap<String, String>>>,
    /// `metadata.deletionTimestamp`.
    pub deletion_timestamp: Option<Time>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
}

/// What the controllers read from a Pod.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPod {
    /// name, namespace, uid, labels, deletionTimestamp, resourceVersion.
    pub metadata: PodMeta,
    /// `spec.nodeName` (interned).
    pub node_name: Option<Arc<str>>,
    /// `spec.hostname`.
    pub hostname: Option<String>,
    /// `spec.subdomain`.
    pub subdomain: Option<String>,
    /// Container ports (interned).
    pub ports: Arc<[CachedPort]>,
    /// `status.phase` (interned).
    pub phase: Option<Arc<str>>,
    /// `status.podIP`.
    pub pod_ip: Option<String>,
    /// `status.podIPs[].ip`.
    pub pod_ips: Vec<String>,
    /// `Ready` condition status, if the condition exists (interned).
    pub ready: Option<Arc<str>>,
    /// `Ready` condition `lastTransitionTime` in Unix seconds (all `metav1.Time` carries on
    /// the wire; 16 bytes where a `jiff::Timestamp` option takes 24): the Pod's trigger time
    /// for `endpoints.kubernetes.io/last-change-trigger-time` ([`crate::trigger_time`]).
    pub ready_since: Option<i64>,
}

/// The shared values of one Pod cache.
#[derive(Default)]
pub struct PodInterner {
    strings: Interner<str>,
    labels: Interner<BTreeMap<String, String>>,
    ports: Interner<[CachedPort]>,
}

impl PodInterner {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    fn string(&self, s: Option<String>) -> Option<Arc<str>> {
        s.map(|s| self.strings.intern(&s, || Arc::from(s.as_str())))
    }
}

impl CachedPod {
    /// Keeps what the controllers read, sharing repeated values through `interner`.
    pub fn from_pod(pod: Pod, interner: &PodInterner) -> Self {
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
        let ready = status
            .conditions
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        CachedPod {
            metadata: PodMeta {
                name: m.name,
                namespace: interner.string(m.namespace),
                uid: m.uid,
                labels: m.labels.map(|l| interner.labels.intern_owned(l)),
                deletion_timestamp: m.deletion_timestamp,
                resource_version: m.resource_version,
            },
            node_name: interner.string(spec.node_name),
            hostname: spec.hostname,
            subdomain: spec.subdomain,
            ports: interner
                .ports
                .intern(&ports, || Arc::from(ports.as_slice())),
            phase: interner.string(status.phase),
            pod_ip: status.pod_ip,
            pod_ips: status.pod_ips.into_iter().flatten().map(|p| p.ip).collect(),
            ready: interner.string(ready.as_ref().map(|c| c.status.clone())),
            ready_since: ready
                .and_then(|c| c.last_transition_time)
                .map(|t| t.0.as_second()),
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
        let m = &self.metadata;
        Pod {
            metadata: ObjectMeta {
                name: m.name.clone(),
                namespace: m.namespace.as_deref().map(String::from),
                uid: m.uid.clone(),
                labels: m.labels.as_deref().cloned(),
                deletion_timestamp: m.deletion_timestamp.clone(),
                resource_version: m.resource_version.clone(),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: self.node_name.as_deref().map(String::from),
                hostname: self.hostname.clone(),
                subdomain: self.subdomain.clone(),
                containers: vec![container(false)],
                init_containers: has_sidecar_ports.then(|| vec![container(true)]),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: self.phase.as_deref().map(String::from),
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
                        status: s.to_string(),
                        last_transition_time: self
                            .ready_since
                            .and_then(|s| Timestamp::from_second(s).ok())
                            .map(Time),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }
}

impl Cacheable for CachedPod {
    fn cache_namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn cache_name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    fn cache_labels(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.labels.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slices::endpoint_set::{is_pod_ready, pod_ips, should_set_hostname};
    use crate::slices::port_map::find_port;
    use crate::trigger_time::pod_trigger_time;
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
                    last_transition_time: Some(Time("2025-03-04T05:06:07Z".parse().unwrap())),
                    message: Some("dropped".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        };
        let back_cached = CachedPod::from_pod(pod.clone(), &PodInterner::new());
        let back = back_cached.to_pod();
        assert!(back.metadata.annotations.is_none());
        assert_eq!(back.metadata.labels, pod.metadata.labels);
        assert!(is_pod_ready(&back));
        assert_eq!(
            pod_trigger_time(&back),
            Some("2025-03-04T05:06:07Z".parse().unwrap())
        );
        assert_eq!(pod_trigger_time(&back), pod_trigger_time(&pod));
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
        // The Ready transition time costs at most 16 bytes a cached Pod.
        assert!(std::mem::size_of_val(&back_cached.ready_since) <= 16);
        assert!(
            std::mem::size_of::<CachedPod>() * 7 < std::mem::size_of::<Pod>(),
            "compact: {} vs {}",
            std::mem::size_of::<CachedPod>(),
            std::mem::size_of::<Pod>()
        );
    }

    #[test]
    fn pods_of_one_workload_share_labels_ports_and_node() {
        let interner = PodInterner::new();
        let pod = |name: &str, ip: &str| Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "app".into(),
                    ports: Some(vec![ContainerPort {
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                ..Default::default()
            }),
        };
        let a = CachedPod::from_pod(pod("a", "10.0.0.1"), &interner);
        let b = CachedPod::from_pod(pod("b", "10.0.0.2"), &interner);
        let (la, lb) = (a.metadata.labels.unwrap(), b.metadata.labels.unwrap());
        assert!(Arc::ptr_eq(&la, &lb));
        assert!(Arc::ptr_eq(&a.ports, &b.ports));
        assert!(Arc::ptr_eq(
            a.node_name.as_ref().unwrap(),
            b.node_name.as_ref().unwrap()
        ));
        assert_ne!(a.pod_ip, b.pod_ip);
    }
}
