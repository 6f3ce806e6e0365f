//! What a stored Service holds in the allocators: its ClusterIPs, its node ports and its
//! health-check node port (upstream `releaseAllocatedResources`, `collectServiceNodePorts`
//! and the repair controllers' view of a Service).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use svcplane_rules::ip::parse_ip_sloppy;
use svcplane_rules::{needs_hc_node_port, spec_type};

/// One allocated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Held {
    /// A ClusterIP (`spec.clusterIPs[*]`).
    ClusterIp(IpAddr),
    /// A node port (`spec.ports[*].nodePort` or `spec.healthCheckNodePort`).
    NodePort(i32),
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::ClusterIp(ip) => write!(f, "ClusterIP {ip}"),
            Held::NodePort(port) => write!(f, "NodePort {port}"),
        }
    }
}

/// The values one Service holds, deduplicated (a TCP and a UDP port of the same number share
/// one node port, as upstream allows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// ClusterIPs that parse as IPs, in `spec.clusterIPs` order.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.clusterIPs` entries that are not IPs (repair reports them as `ClusterIPNotValid`).
    pub invalid_cluster_ips: Vec<String>,
    /// Node ports, including the health-check node port, ascending.
    pub node_ports: BTreeSet<i32>,
}

impl Holdings {
    /// Every held value.
    pub fn values(&self) -> impl Iterator<Item = Held> + '_ {
        self.cluster_ips
            .iter()
            .map(|ip| Held::ClusterIp(*ip))
            .chain(self.node_ports.iter().map(|p| Held::NodePort(*p)))
    }

    /// Whether `value` is among them.
    pub fn contains(&self, value: Held) -> bool {
        match value {
            Held::ClusterIp(ip) => self.cluster_ips.contains(&ip),
            Held::NodePort(p) => self.node_ports.contains(&p),
        }
    }
}

/// Whether the Service gets ClusterIPs at all: not ExternalName and not headless
/// (upstream `allocClusterIPs` / `releaseClusterIPs`).
pub fn gets_cluster_ips(svc: &Service) -> bool {
    let spec = svc.spec.as_ref();
    let headless = spec
        .and_then(|s| s.cluster_ips.as_ref())
        .and_then(|ips| ips.first())
        .is_some_and(|ip| ip == "None")
        || spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    spec_type(svc) != "ExternalName" && !headless
}

/// What `svc` holds: upstream releases `clusterIPs` unless ExternalName or headless, every
/// non-zero `ports[*].nodePort` whatever the type, and `healthCheckNodePort` when the Service
/// needs one (LoadBalancer with `externalTrafficPolicy: Local`).
pub fn holdings(svc: &Service) -> Holdings {
    let mut out = Holdings::default();
    let Some(spec) = svc.spec.as_ref() else {
        return out;
    };
    if gets_cluster_ips(svc) {
        for ip in spec.cluster_ips.iter().flatten() {
            if ip.is_empty() {
                continue;
            }
            match parse_ip_sloppy(ip) {
                Some(parsed) if !out.cluster_ips.contains(&parsed) => out.cluster_ips.push(parsed),
                Some(_) => {}
                None => out.invalid_cluster_ips.push(ip.clone()),
            }
        }
    }
    for port in spec.ports.iter().flatten() {
        if let Some(np) = port.node_port.filter(|p| *p != 0) {
            out.node_ports.insert(np);
        }
    }
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if needs_hc_node_port(spec_type(svc), etp) {
        if let Some(hc) = spec.health_check_node_port.filter(|p| *p != 0) {
            out.node_ports.insert(hc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    fn svc(spec: ServiceSpec) -> Service {
        Service {
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn port(port: i32, protocol: &str, node_port: i32) -> ServicePort {
        ServicePort {
            port,
            protocol: Some(protocol.into()),
            node_port: Some(node_port),
            ..Default::default()
        }
    }

    #[test]
    fn tcp_and_udp_on_one_node_port_hold_it_once() {
        let h = holdings(&svc(ServiceSpec {
            type_: Some("NodePort".into()),
            cluster_ip: Some("10.0.0.10".into()),
            cluster_ips: Some(vec!["10.0.0.10".into()]),
            ports: Some(vec![port(53, "TCP", 30053), port(53, "UDP", 30053)]),
            ..Default::default()
        }));
        assert_eq!(h.node_ports.into_iter().collect::<Vec<_>>(), vec![30053]);
        assert_eq!(h.cluster_ips, vec!["10.0.0.10".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn headless_and_external_name_hold_no_cluster_ips() {
        let headless = svc(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some("None".into()),
            cluster_ips: Some(vec!["None".into()]),
            ..Default::default()
        });
        assert!(holdings(&headless).cluster_ips.is_empty());
        let external = svc(ServiceSpec {
            type_: Some("ExternalName".into()),
            cluster_ips: Some(vec!["10.0.0.1".into()]),
            ..Default::default()
        });
        assert!(holdings(&external).cluster_ips.is_empty());
    }

    #[test]
    fn health_check_port_is_held_only_for_local_load_balancers() {
        let mut spec = ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some("Local".into()),
            health_check_node_port: Some(31000),
            ..Default::default()
        };
        assert!(holdings(&svc(spec.clone())).node_ports.contains(&31000));
        spec.external_traffic_policy = Some("Cluster".into());
        assert!(!holdings(&svc(spec)).node_ports.contains(&31000));
    }

    #[test]
    fn unparsable_cluster_ips_are_reported_apart() {
        let h = holdings(&svc(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some("bogus".into()),
            cluster_ips: Some(vec!["bogus".into()]),
            ..Default::default()
        }));
        assert!(h.cluster_ips.is_empty());
        assert_eq!(h.invalid_cluster_ips, vec!["bogus".to_string()]);
    }
}
