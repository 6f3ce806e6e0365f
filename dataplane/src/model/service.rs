//! What the dataplane needs of a Service, read once from the API object (kube-proxy's
//! `newBaseServiceInfo` in `pkg/proxy/serviceport.go`).

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;

use super::family::Family;
use super::labels::{LABEL_HEADLESS, LABEL_SERVICE_PROXY_NAME};
use super::names::{Protocol, ServiceName, ServicePortName};

/// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (upstream
/// `v1.DefaultClientIPServiceAffinitySeconds`, 3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10_800;

/// One port of a proxied Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortInfo {
    /// Service, port name and protocol: the key EndpointSlice ports are matched by.
    pub name: ServicePortName,
    /// `spec.ports[].port`.
    pub port: u16,
    /// `spec.ports[].nodePort` of a NodePort or LoadBalancer Service, if allocated.
    pub node_port: Option<u16>,
}

/// A Service the proxy forwards for: neither headless nor `ExternalName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `namespace/name`.
    pub name: ServiceName,
    /// `spec.clusterIPs` (or `spec.clusterIP`), at most one per family.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip` of a LoadBalancer Service whose `ipMode` is unset or
    /// `VIP`; a load balancer in `Proxy` mode delivers traffic to the nodes itself (KEP-1860,
    /// upstream `proxyutil.IsVIPMode`).
    pub load_balancer_ips: Vec<IpAddr>,
    /// `spec.loadBalancerSourceRanges`; empty admits every source. kube-proxy does not read the
    /// older `service.beta.kubernetes.io/load-balancer-source-ranges` annotation (only cloud
    /// providers do), and neither do we.
    pub source_ranges: Vec<IpNet>,
    /// The ports, in `spec.ports` order.
    pub ports: Vec<ServicePortInfo>,
    /// `externalTrafficPolicy: Local` on an externally accessible Service
    /// (upstream `apiservice.ExternalPolicyLocal`).
    pub external_policy_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_policy_local: bool,
    /// `sessionAffinity: ClientIP`: the stickiness timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// `spec.healthCheckNodePort` of a LoadBalancer Service with `externalTrafficPolicy:
    /// Local` (upstream `apiservice.NeedsHealthCheck`).
    pub health_check_node_port: Option<u16>,
    /// Values the proxy could not use and skipped, one message each (logged by the caller).
    pub warnings: Vec<String>,
}

impl ServiceInfo {
    /// Reads a Service. `None` when the proxy has nothing to do for it: headless
    /// (`clusterIP: None`), no ClusterIP yet, or `type: ExternalName` (upstream
    /// `proxyutil.ShouldSkipService`), or labelled `service.kubernetes.io/service-proxy-name`
    /// (another proxy's) or `service.kubernetes.io/headless` (kube-proxy's informers select
    /// only objects without either label).
    /// Unusable values are skipped and reported in [`ServiceInfo::warnings`], never fatal.
    pub fn from_service(service: &Service) -> Option<ServiceInfo> {
        let name = ServiceName::new(
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone()?,
        );
        if service.metadata.labels.as_ref().is_some_and(|l| {
            l.contains_key(LABEL_SERVICE_PROXY_NAME) || l.contains_key(LABEL_HEADLESS)
        }) {
            return None;
        }
        let spec = service.spec.as_ref()?;
        let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
        if service_type == "ExternalName" {
            return None;
        }
        let mut warnings = Vec::new();
        let cluster_ip_strings: Vec<&String> = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.iter().collect(),
            _ => spec.cluster_ip.iter().collect(),
        };
        if cluster_ip_strings
            .iter()
            .any(|ip| ip.as_str() == "None" || ip.is_empty())
            || cluster_ip_strings.is_empty()
        {
            return None;
        }
        let mut cluster_ips: Vec<IpAddr> = Vec::new();
        for (i, text) in cluster_ip_strings.iter().enumerate() {
            match parse_ip(text) {
                Some(ip) if cluster_ips.iter().all(|c| Family::of(*c) != Family::of(ip)) => {
                    cluster_ips.push(ip)
                }
                Some(_) => warnings.push(format!(
                    "spec.clusterIPs[{i}]: {text:?} repeats an IP family; ignored"
                )),
                None => warnings.push(format!(
                    "spec.clusterIPs[{i}]: {text:?} is not an IP address; ignored"
                )),
            }
        }
        if cluster_ips.is_empty() {
            return None;
        }
        let external_ips = parse_ips(
            spec.external_ips.as_deref().unwrap_or_default(),
            "spec.externalIPs",
            &mut warnings,
        );
        let is_load_balancer = service_type == "LoadBalancer";
        let mut load_balancer_ips = Vec::new();
        if is_load_balancer {
            let ingress = service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_deref())
                .unwrap_or_default();
            for (i, entry) in ingress.iter().enumerate() {
                let Some(text) = entry.ip.as_deref().filter(|ip| !ip.is_empty()) else {
                    continue;
                };
                // proxyutil.IsVIPMode: unset is VIP; any other value than VIP is not.
                if entry.ip_mode.as_deref().is_some_and(|mode| mode != "VIP") {
                    continue;
                }
                match parse_ip(text) {
                    Some(ip) => load_balancer_ips.push(ip),
                    None => warnings.push(format!(
                        "status.loadBalancer.ingress[{i}].ip: {text:?} is not an IP address; ignored"
                    )),
                }
            }
        }
        let source_ranges = source_ranges(service, &mut warnings);
        let externally_accessible =
            is_load_balancer || service_type == "NodePort" || !external_ips.is_empty();
        let external_policy_local =
            externally_accessible && spec.external_traffic_policy.as_deref() == Some("Local");
        let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
        });
        let health_check_node_port = if is_load_balancer && external_policy_local {
            spec.health_check_node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
        } else {
            None
        };
        let has_node_ports = is_load_balancer || service_type == "NodePort";
        let mut ports = Vec::new();
        for (i, port) in spec.ports.as_deref().unwrap_or_default().iter().enumerate() {
            let Some(protocol) = Protocol::from_api(port.protocol.as_deref()) else {
                warnings.push(format!(
                    "spec.ports[{i}].protocol: {:?} is not supported; port ignored",
                    port.protocol.as_deref().unwrap_or_default()
                ));
                continue;
            };
            let Some(number) = u16::try_from(port.port).ok().filter(|p| *p != 0) else {
                warnings.push(format!(
                    "spec.ports[{i}].port: {} is not a valid port; port ignored",
                    port.port
                ));
                continue;
            };
            let node_port = if has_node_ports {
                port.node_port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0)
            } else {
                None
            };
            ports.push(ServicePortInfo {
                name: ServicePortName {
                    service: name.clone(),
                    port: port.name.clone().unwrap_or_default(),
                    protocol,
                },
                port: number,
                node_port,
            });
        }
        Some(ServiceInfo {
            name,
            cluster_ips,
            external_ips,
            load_balancer_ips,
            source_ranges,
            ports,
            external_policy_local,
            internal_policy_local,
            affinity_timeout,
            health_check_node_port,
            warnings,
        })
    }

    /// The ClusterIP of `family`, if the Service has one. A family without a ClusterIP is not
    /// proxied at all for this Service, NodePorts included (kube-proxy's per-family service
    /// tracker skips the Service).
    pub fn cluster_ip(&self, family: Family) -> Option<IpAddr> {
        self.cluster_ips
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim().parse().ok()
}

fn parse_ips(values: &[String], field: &str, warnings: &mut Vec<String>) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (i, text) in values.iter().enumerate() {
        match parse_ip(text) {
            Some(ip) if !out.contains(&ip) => out.push(ip),
            Some(_) => {}
            None => warnings.push(format!(
                "{field}[{i}]: {text:?} is not an IP address; ignored"
            )),
        }
    }
    out
}

/// `spec.loadBalancerSourceRanges`, whitespace trimmed as upstream does (its validation lets
/// padding through). Host bits are cleared (`10.0.0.1/8` admits `10.0.0.0/8`, as Go's
/// `net.ParseCIDR` network does). Upstream: `newBaseServiceInfo` in
/// `pkg/proxy/serviceport.go`.
fn source_ranges(service: &Service, warnings: &mut Vec<String>) -> Vec<IpNet> {
    let field = "spec.loadBalancerSourceRanges";
    let values = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_source_ranges.as_deref())
        .unwrap_or_default();
    let mut out: Vec<IpNet> = Vec::new();
    for (i, text) in values.iter().enumerate() {
        match text.trim().parse::<IpNet>() {
            Ok(net) => {
                let net = net.trunc();
                if !out.contains(&net) {
                    out.push(net);
                }
            }
            Err(_) => warnings.push(format!("{field}[{i}]: {text:?} is not a CIDR; ignored")),
        }
    }
    out
}
