//! Defaulting: the one source of truth, run before validation, as the API server does.
//!
//! Mirrors upstream `SetDefaults_Service` / `SetDefaults_EndpointPort`
//! (`pkg/apis/core/v1/defaults.go`, `pkg/apis/discovery/v1/defaults.go`) and the
//! non-allocating parts of the Service REST strategy (`pkg/registry/core/service/strategy.go`:
//! `NormalizeClusterIPs`, `patchAllocatedValues`, `dropTypeDependentFields`).
//! IP-family defaulting depends on the cluster and lives in [`crate::ip_families`].

use k8s_openapi::api::core::v1::{ClientIPConfig, Endpoints, Service, SessionAffinityConfig};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::service_model::{
    externally_accessible, needs_cluster_ip, needs_hc_node_port, needs_node_port, spec_type,
};

/// Upstream `DefaultClientIPServiceAffinitySeconds` (3 hours).
pub const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i32 = 10800;

/// Warning svcplane adds when it drops `sessionAffinityConfig` (beyond upstream: a real API
/// server drops it silently; FACTS.md).
pub const DROPPED_AFFINITY_CONFIG_WARNING: &str =
    "spec.sessionAffinityConfig is ignored and dropped because spec.sessionAffinity is \"None\"";

/// Upstream `SetDefaults_Service`. Returns warnings about values it dropped.
pub fn default_service(svc: &mut Service) -> Vec<String> {
    let mut warnings = Vec::new();
    let spec = svc.spec.get_or_insert_with(Default::default);
    if spec.session_affinity.as_deref().unwrap_or("").is_empty() {
        spec.session_affinity = Some("None".into());
    }
    if spec.session_affinity.as_deref() == Some("None") && spec.session_affinity_config.is_some() {
        spec.session_affinity_config = None;
        warnings.push(DROPPED_AFFINITY_CONFIG_WARNING.to_string());
    }
    if spec.type_.as_deref().unwrap_or("").is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }
    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or("").is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    let ty = spec.type_.clone().unwrap_or_default();
    if externally_accessible(&ty, spec.external_ips.as_deref().unwrap_or(&[]))
        && spec
            .external_traffic_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let has_timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .is_some();
        if !has_timeout {
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS),
                }),
            });
        }
    }
    crate::service_status::default_load_balancer_ip_mode(svc);
    warnings
}

/// Upstream strategy `PrepareForCreate`: clear status, and fill `clusterIPs` from a singular
/// `clusterIP` (`NormalizeClusterIPs` for create).
pub fn prepare_service_create(svc: &mut Service) {
    svc.status = None;
    normalize_cluster_ips_create(svc);
}

/// Upstream `NormalizeClusterIPs` for create: an old client that only sets `clusterIP` gets
/// `clusterIPs: [clusterIP]`.
pub fn normalize_cluster_ips_create(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    if !ip.is_empty() && spec.cluster_ips.as_ref().is_none_or(|v| v.is_empty()) {
        spec.cluster_ips = Some(vec![ip]);
    }
}

fn cluster_ips(svc: &Service) -> Vec<String> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ips.clone())
        .unwrap_or_default()
}

fn cluster_ip(svc: &Service) -> String {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .unwrap_or_default()
}

/// Upstream strategy `PrepareForUpdate`: keep the old status, then `patchAllocatedValues`,
/// `NormalizeClusterIPs` and `dropTypeDependentFields`, in that order.
pub fn prepare_service_update(new: &mut Service, old: &Service) {
    new.status = old.status.clone();
    patch_allocated_values(new, old);
    normalize_cluster_ips_update(new, old);
    drop_type_dependent_fields(new, old);
}

/// Upstream `patchAllocatedValues`: a client that omits allocated values (cluster IPs, node
/// ports, health-check node port) keeps them, for idempotent `kubectl apply`.
pub fn patch_allocated_values(new: &mut Service, old: &Service) {
    let old_spec = old.spec.clone().unwrap_or_default();
    let old_type = spec_type(old).to_string();
    let new_type = spec_type(new).to_string();
    let new_spec = new.spec.get_or_insert_with(Default::default);
    if needs_cluster_ip(&old_type) && needs_cluster_ip(&new_type) {
        if new_spec.cluster_ip.as_deref().unwrap_or("").is_empty() {
            new_spec.cluster_ip = old_spec.cluster_ip.clone();
        }
        if new_spec.cluster_ips.as_ref().is_none_or(|v| v.is_empty())
            && old_spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty())
        {
            new_spec.cluster_ips = old_spec.cluster_ips.clone();
        }
    }
    if needs_node_port(&old_type) && needs_node_port(&new_type) {
        let node_port = |p: &k8s_openapi::api::core::v1::ServicePort| p.node_port.unwrap_or(0);
        let old_ports = old_spec.ports.clone().unwrap_or_default();
        let new_used: std::collections::HashSet<i32> = new_spec
            .ports
            .iter()
            .flatten()
            .map(node_port)
            .filter(|p| *p != 0)
            .collect();
        let used: std::collections::HashSet<i32> = old_ports
            .iter()
            .map(node_port)
            .filter(|p| *p != 0 && new_used.contains(p))
            .collect();
        let by_name: std::collections::HashMap<String, i32> = old_ports
            .iter()
            .map(|p| (p.name.clone().unwrap_or_default(), node_port(p)))
            .collect();
        for p in new_spec.ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0 {
                let old_val = by_name
                    .get(p.name.as_deref().unwrap_or(""))
                    .copied()
                    .unwrap_or(0);
                if old_val != 0 && !used.contains(&old_val) {
                    p.node_port = Some(old_val);
                }
            }
        }
    }
    let old_etp = old_spec.external_traffic_policy.as_deref().unwrap_or("");
    let new_etp = new_spec.external_traffic_policy.clone().unwrap_or_default();
    if needs_hc_node_port(&old_type, old_etp)
        && needs_hc_node_port(&new_type, &new_etp)
        && new_spec.health_check_node_port.unwrap_or(0) == 0
    {
        new_spec.health_check_node_port = old_spec.health_check_node_port;
    }
}

fn same_cluster_ips(a: &Service, b: &Service) -> bool {
    cluster_ips(a) == cluster_ips(b)
}

/// Upstream `NormalizeClusterIPs` for updates: keep `clusterIP` and `clusterIPs` in sync when
/// an old client only manages the singular field.
pub fn normalize_cluster_ips_update(new: &mut Service, old: &Service) {
    let old_ip = cluster_ip(old);
    let new_ip = cluster_ip(new);
    let same = same_cluster_ips(old, new);
    let spec = new.spec.get_or_insert_with(Default::default);
    if !old_ip.is_empty() && new_ip.is_empty() {
        if same {
            spec.cluster_ips = None;
        }
        return;
    }
    if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip && same {
        spec.cluster_ips = Some(vec![new_ip]);
        return;
    }
    if old_ip.is_empty()
        && !new_ip.is_empty()
        && spec.cluster_ips.as_ref().is_none_or(|v| v.is_empty())
    {
        spec.cluster_ips = Some(vec![new_ip]);
    }
}

/// Upstream `dropTypeDependentFields`: when the type changes, clear fields the new type does
/// not use, unless the user also changed them (then validation reports them).
pub fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    let old_spec = old.spec.clone().unwrap_or_default();
    let old_type = spec_type(old).to_string();
    let new_type = spec_type(new).to_string();
    let same_ips = same_cluster_ips(old, new);
    let spec = new.spec.get_or_insert_with(Default::default);
    if needs_cluster_ip(&old_type) && !needs_cluster_ip(&new_type) {
        if same_ips {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if spec.ip_families == old_spec.ip_families {
            spec.ip_families = None;
        }
        if spec.ip_family_policy == old_spec.ip_family_policy {
            spec.ip_family_policy = None;
        }
    }
    if needs_node_port(&old_type) && !needs_node_port(&new_type) {
        let node_ports = |ports: &Option<Vec<k8s_openapi::api::core::v1::ServicePort>>| {
            ports
                .iter()
                .flatten()
                .map(|p| p.node_port.unwrap_or(0))
                .collect::<Vec<_>>()
        };
        if node_ports(&spec.ports) == node_ports(&old_spec.ports) {
            for p in spec.ports.iter_mut().flatten() {
                p.node_port = None;
            }
        }
    }
    let old_etp = old_spec.external_traffic_policy.as_deref().unwrap_or("");
    let new_etp = spec.external_traffic_policy.clone().unwrap_or_default();
    if needs_hc_node_port(&old_type, old_etp)
        && !needs_hc_node_port(&new_type, &new_etp)
        && spec.health_check_node_port == old_spec.health_check_node_port
    {
        spec.health_check_node_port = None;
    }
    if old_type == "LoadBalancer" && new_type != "LoadBalancer" {
        if spec.allocate_load_balancer_node_ports.is_some()
            && spec.allocate_load_balancer_node_ports == old_spec.allocate_load_balancer_node_ports
        {
            spec.allocate_load_balancer_node_ports = None;
        }
        if spec.load_balancer_class.is_some()
            && spec.load_balancer_class == old_spec.load_balancer_class
        {
            spec.load_balancer_class = None;
        }
    }
    let old_ext = externally_accessible(&old_type, old_spec.external_ips.as_deref().unwrap_or(&[]));
    let new_ext = externally_accessible(&new_type, spec.external_ips.as_deref().unwrap_or(&[]));
    if old_ext && !new_ext && spec.external_traffic_policy == old_spec.external_traffic_policy {
        spec.external_traffic_policy = None;
    }
    // Upstream wipes the load-balancer status to its zero value; Go's `LoadBalancerStatus` is a
    // struct, so it still serializes as `loadBalancer: {}`.
    if new_type != "LoadBalancer" {
        if let Some(status) = new.status.as_mut() {
            status.load_balancer = Some(Default::default());
        }
    }
}

/// Upstream discovery `SetDefaults_EndpointPort`: `name` defaults to `""`, `protocol` to TCP.
pub fn default_endpoint_slice(slice: &mut EndpointSlice) {
    for p in slice.ports.iter_mut().flatten() {
        if p.name.is_none() {
            p.name = Some(String::new());
        }
        if p.protocol.is_none() {
            p.protocol = Some("TCP".into());
        }
    }
}

/// Upstream core `SetDefaults_EndpointPort`: `protocol` defaults to TCP.
pub fn default_endpoints(ep: &mut Endpoints) {
    for subset in ep.subsets.iter_mut().flatten() {
        for p in subset.ports.iter_mut().flatten() {
            if p.protocol.as_deref().unwrap_or("").is_empty() {
                p.protocol = Some("TCP".into());
            }
        }
    }
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

    #[test]
    fn cluster_ip_service_defaults() {
        let mut s = svc(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert!(default_service(&mut s).is_empty());
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.external_traffic_policy, None);
        let p = &spec.ports.unwrap()[0];
        assert_eq!(p.protocol.as_deref(), Some("TCP"));
        assert_eq!(p.target_port, Some(IntOrString::Int(80)));
    }

    #[test]
    fn load_balancer_defaults() {
        let mut s = svc(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            session_affinity: Some("ClientIP".into()),
            ..Default::default()
        });
        default_service(&mut s);
        let spec = s.spec.unwrap();
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            spec.session_affinity_config
                .and_then(|c| c.client_ip)
                .and_then(|c| c.timeout_seconds),
            Some(10800)
        );
    }

    #[test]
    fn external_name_gets_no_internal_traffic_policy() {
        let mut s = svc(ServiceSpec {
            type_: Some("ExternalName".into()),
            ..Default::default()
        });
        default_service(&mut s);
        assert_eq!(s.spec.unwrap().internal_traffic_policy, None);
    }

    #[test]
    fn affinity_none_drops_config_with_warning() {
        let mut s = svc(ServiceSpec {
            session_affinity_config: Some(SessionAffinityConfig {
                client_ip: Some(ClientIPConfig {
                    timeout_seconds: Some(5),
                }),
            }),
            ..Default::default()
        });
        assert_eq!(default_service(&mut s).len(), 1);
        assert!(s.spec.unwrap().session_affinity_config.is_none());
    }

    #[test]
    fn update_keeps_allocated_values_and_type_change_clears_node_ports() {
        let old = svc(ServiceSpec {
            type_: Some("NodePort".into()),
            cluster_ip: Some("10.0.0.10".into()),
            cluster_ips: Some(vec!["10.0.0.10".into()]),
            external_traffic_policy: Some("Cluster".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                node_port: Some(30080),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let mut new = svc(ServiceSpec {
            type_: Some("NodePort".into()),
            external_traffic_policy: Some("Cluster".into()),
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        });
        prepare_service_update(&mut new, &old);
        let spec = new.spec.clone().unwrap();
        assert_eq!(spec.cluster_ips, Some(vec!["10.0.0.10".to_string()]));
        assert_eq!(spec.ports.unwrap()[0].node_port, Some(30080));

        let mut to_cluster_ip = old.clone();
        to_cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        prepare_service_update(&mut to_cluster_ip, &old);
        let spec = to_cluster_ip.spec.unwrap();
        assert_eq!(spec.ports.unwrap()[0].node_port, None);
        assert_eq!(spec.external_traffic_policy, None);
    }

    #[test]
    fn endpoint_slice_ports_default_to_tcp() {
        let mut s = EndpointSlice {
            ports: Some(vec![Default::default()]),
            ..Default::default()
        };
        default_endpoint_slice(&mut s);
        let p = &s.ports.unwrap()[0];
        assert_eq!(p.protocol.as_deref(), Some("TCP"));
        assert_eq!(p.name.as_deref(), Some(""));
    }
}
