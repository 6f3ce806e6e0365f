//! Resolving Service ports per Pod and grouping endpoints by the resulting port set.
//!
//! Mirrors upstream `FindPort`, `getEndpointPorts` and `endpointutil.NewPortMapKey`.

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointPort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Protocol a Service port has when `protocol` is unset (API default).
pub const DEFAULT_PROTOCOL: &str = "TCP";

/// Order-insensitive identity of a set of EndpointSlice ports (upstream `PortMapKey`).
/// Endpoints whose resolved ports are equal share slices; a different set means a
/// different slice family.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapKey(String);

impl PortMapKey {
    /// Builds the key from EndpointSlice ports; `None` and empty are the same key.
    pub fn new(ports: &[EndpointPort]) -> Self {
        let mut parts: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}\u{1}{}\u{1}{}\u{1}{}",
                    p.name.as_deref().unwrap_or(""),
                    p.protocol.as_deref().unwrap_or(""),
                    p.port.map(|n| n.to_string()).unwrap_or_default(),
                    p.app_protocol.as_deref().unwrap_or("\u{2}"),
                )
            })
            .collect();
        parts.sort();
        PortMapKey(parts.join("\u{3}"))
    }

    /// Key of an optional port list as stored on an EndpointSlice.
    pub fn of_slice_ports(ports: Option<&Vec<EndpointPort>>) -> Self {
        Self::new(ports.map(|p| p.as_slice()).unwrap_or(&[]))
    }
}

/// Protocol of a Service port, defaulted like the API server does.
pub fn service_port_protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL)
}

/// Resolves `targetPort` of one Service port against a Pod (upstream `FindPort`): a number
/// is used as is (unset means `port`, the API default); a name is looked up among the
/// container ports of the Pod's containers and restartable (sidecar) init containers with
/// the same name and protocol. `None` when a named port is not found.
pub fn find_port(pod: &Pod, svc_port: &ServicePort) -> Option<i32> {
    match &svc_port.target_port {
        None => Some(svc_port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            // A numeric string is how some clients send an int; the API server would have
            // normalised it, accept it the same way.
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            let protocol = service_port_protocol(svc_port);
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or(DEFAULT_PROTOCOL) == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// EndpointSlice ports of a Service for one Pod (upstream `getEndpointPorts`): one entry per
/// Service port whose target resolves, with `name`, `port`, `protocol` and `appProtocol`.
/// Headless Services may have no ports at all.
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    spec.ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(service_port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, ServiceSpec};

    fn pod_with_ports(ports: &[(&str, i32, &str)]) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(n, p, proto)| ContainerPort {
                                name: Some((*n).into()),
                                container_port: *p,
                                protocol: Some((*proto).into()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn svc_port(name: &str, port: i32, target: Option<IntOrString>, proto: &str) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: target,
            protocol: Some(proto.into()),
            ..Default::default()
        }
    }

    #[test]
    fn find_port_resolves_targets_like_upstream_find_port() {
        let pod = pod_with_ports(&[("http", 8080, "TCP"), ("dns", 5353, "UDP")]);
        let cases = [
            (
                "numeric target is used as is",
                svc_port("a", 80, Some(IntOrString::Int(9376)), "TCP"),
                Some(9376),
            ),
            (
                "unset target defaults to port",
                svc_port("a", 80, None, "TCP"),
                Some(80),
            ),
            (
                "named target resolves by name",
                svc_port("a", 80, Some(IntOrString::String("http".into())), "TCP"),
                Some(8080),
            ),
            (
                "named target needs matching protocol",
                svc_port("a", 80, Some(IntOrString::String("http".into())), "UDP"),
                None,
            ),
            (
                "named udp target",
                svc_port("a", 53, Some(IntOrString::String("dns".into())), "UDP"),
                Some(5353),
            ),
            (
                "unknown name does not resolve",
                svc_port("a", 80, Some(IntOrString::String("nope".into())), "TCP"),
                None,
            ),
        ];
        for (why, sp, want) in cases {
            assert_eq!(find_port(&pod, &sp), want, "{why}");
        }
    }

    #[test]
    fn find_port_looks_into_sidecar_init_containers_only() {
        let mut pod = pod_with_ports(&[]);
        let spec = pod.spec.as_mut().unwrap();
        let mk = |policy: Option<&str>, port| Container {
            name: "side".into(),
            restart_policy: policy.map(String::from),
            ports: Some(vec![ContainerPort {
                name: Some("metrics".into()),
                container_port: port,
                ..Default::default()
            }]),
            ..Default::default()
        };
        spec.init_containers = Some(vec![mk(None, 1111), mk(Some("Always"), 2222)]);
        let sp = svc_port("m", 9, Some(IntOrString::String("metrics".into())), "TCP");
        assert_eq!(find_port(&pod, &sp), Some(2222));
    }

    #[test]
    fn port_map_key_ignores_order_but_not_numbers() {
        let a = EndpointPort {
            name: Some("a".into()),
            port: Some(1),
            protocol: Some("TCP".into()),
            app_protocol: None,
        };
        let b = EndpointPort {
            name: Some("b".into()),
            port: Some(2),
            protocol: Some("TCP".into()),
            app_protocol: None,
        };
        let b3 = EndpointPort {
            port: Some(3),
            ..b.clone()
        };
        assert_eq!(
            PortMapKey::new(&[a.clone(), b.clone()]),
            PortMapKey::new(&[b.clone(), a.clone()])
        );
        assert_ne!(PortMapKey::new(&[a.clone(), b]), PortMapKey::new(&[a, b3]));
        assert_eq!(PortMapKey::of_slice_ports(None), PortMapKey::new(&[]));
    }

    #[test]
    fn endpoint_ports_skip_unresolvable_and_copy_app_protocol() {
        let pod = pod_with_ports(&[("http", 8080, "TCP")]);
        let mut p1 = svc_port("web", 80, Some(IntOrString::String("http".into())), "TCP");
        p1.app_protocol = Some("http".into());
        let p2 = svc_port("grpc", 90, Some(IntOrString::String("grpc".into())), "TCP");
        let svc = Service {
            spec: Some(ServiceSpec {
                ports: Some(vec![p1, p2]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ports = endpoint_ports(&svc, &pod);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(8080));
        assert_eq!(ports[0].name.as_deref(), Some("web"));
        assert_eq!(ports[0].app_protocol.as_deref(), Some("http"));
    }
}
