//! The allocation-time checks that need no cluster state: a user-chosen ClusterIP must lie in
//! `--service-cluster-ip-range`, a user-chosen nodePort in `--service-node-port-range`, and
//! the Service's IP families must be ones the range configures. kube-apiserver makes them in
//! the Service storage's `BeginCreate` (`pkg/registry/core/service/storage/alloc.go`:
//! `initIPFamilyFields`, `allocClusterIPs`, `initNodePorts`), before validation, so when one
//! fails it is the only error a client sees. `svcplane validate` runs them offline with the
//! same allocators and messages as the embedded API server.

use k8s_openapi::api::core::v1::Service;
use svcplane_allocators::{DualStackClusterIps, IpFamily, NodePortAllocator, PortRange};

use crate::cluster_ips::cluster_ips;
use crate::field_error::{BadValue, FieldError};
use crate::ip::parse_ip_sloppy;
use crate::ip_families::{init_ip_family_fields, ClusterFamilies};
use crate::service_model::{needs_node_port, spec_type};

/// svcplane's default `--service-cluster-ip-range` (the embedded API server, `svcplane dev`
/// and `svcplane validate`): `10.96.0.0/12`, the range kubeadm gives every cluster (kubeadm
/// `constants.DefaultServicesSubnet`, `networking.serviceSubnet`), so that manifests written
/// for a typical cluster validate and allocate here as they would there.
///
/// Not to be confused with [`svcplane_allocators::FALLBACK_SERVICE_CLUSTER_IP_RANGE`]
/// (`10.0.0.0/24`): what kube-apiserver itself falls back to, with a deprecation warning,
/// when its flag is given empty (upstream `kubeoptions.DefaultServiceIPCIDR`); the allocators
/// apply that one to an empty flag value, as upstream does. kube-apiserver's flag shows no
/// default of its own.
pub const DEFAULT_SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/12";

/// The default `--service-node-port-range`, `30000-32767` (upstream
/// `kubeoptions.DefaultServiceNodePortRange`), defined in the allocators.
pub use svcplane_allocators::DEFAULT_SERVICE_NODE_PORT_RANGE;

/// The configured Service ranges (the API server's `--service-cluster-ip-range` and
/// `--service-node-port-range`).
#[derive(Debug, Clone)]
pub struct ServiceRanges {
    cluster_ips: DualStackClusterIps,
    node_ports: NodePortAllocator,
}

impl ServiceRanges {
    /// Parses the two flag values as the API server does; the error names the bad flag.
    pub fn parse(cluster_ip_range: &str, node_port_range: &str) -> Result<Self, String> {
        let cluster_ips = DualStackClusterIps::parse(cluster_ip_range)
            .map_err(|e| format!("--service-cluster-ip-range: {e}"))?;
        let ports = PortRange::parse(node_port_range)
            .map_err(|e| format!("--service-node-port-range: {e}"))?;
        Ok(ServiceRanges {
            cluster_ips,
            node_ports: NodePortAllocator::new(ports),
        })
    }

    /// The default ranges: [`DEFAULT_SERVICE_CLUSTER_IP_RANGE`] and
    /// [`DEFAULT_SERVICE_NODE_PORT_RANGE`].
    pub fn defaults() -> Self {
        Self::parse(
            DEFAULT_SERVICE_CLUSTER_IP_RANGE,
            DEFAULT_SERVICE_NODE_PORT_RANGE,
        )
        .expect("the default ranges parse")
    }

    /// The service IP families the cluster range configures.
    pub fn families(&self) -> ClusterFamilies {
        ClusterFamilies {
            primary: self.cluster_ips.primary_family().as_str().to_string(),
            secondary: self
                .cluster_ips
                .secondary()
                .map(|a| a.family().as_str().to_string()),
        }
    }

    /// The errors creating `svc` (defaulted, as after `prepare_service_create`) would get from
    /// allocation on an empty cluster: IP family errors, then the first ClusterIP outside its
    /// range, then the first nodePort outside the node port range. Empty when it would
    /// allocate.
    pub fn create_errors(&self, svc: &Service) -> Vec<FieldError> {
        let mut svc = svc.clone();
        let errs = init_ip_family_fields(&mut svc, None, &self.families());
        if !errs.is_empty() {
            return errs;
        }
        if let Some(err) = self.cluster_ip_error(&svc) {
            return vec![err];
        }
        self.node_port_error(&svc).into_iter().collect()
    }

    /// Upstream `allocClusterIPs`: every user-chosen ClusterIP must be allocatable in the
    /// range of its family (`spec.clusterIPs: Invalid value: []string{...}: failed to
    /// allocate IP ...: the provided IP (...) is not in the valid range...`).
    fn cluster_ip_error(&self, svc: &Service) -> Option<FieldError> {
        if spec_type(svc) == "ExternalName" {
            return None;
        }
        let ips = cluster_ips(svc);
        if ips.first().map(String::as_str) == Some("None") {
            return None;
        }
        for requested in ips.iter().filter(|ip| !ip.is_empty()) {
            let Some(ip) = parse_ip_sloppy(requested) else {
                continue;
            };
            let family = if ip.is_ipv4() {
                IpFamily::IPv4
            } else {
                IpFamily::IPv6
            };
            let Some(allocator) = self.cluster_ips.for_family(family) else {
                continue;
            };
            if let Err(e) = allocator.check_allocatable(ip) {
                return Some(FieldError::invalid(
                    "spec.clusterIPs",
                    BadValue::strings(&ips),
                    format!("failed to allocate IP {requested}: {e}"),
                ));
            }
        }
        None
    }

    /// Upstream `initNodePorts`: ports sharing a `port` number share one node port, so the
    /// first port of each number is checked with the first nodePort given for that number
    /// (`spec.ports[i].nodePort: Invalid value: N: provided port is not in the valid
    /// range...`).
    fn node_port_error(&self, svc: &Service) -> Option<FieldError> {
        if !needs_node_port(spec_type(svc)) {
            return None;
        }
        let ports = svc.spec.as_ref()?.ports.as_deref().unwrap_or_default();
        let node_port = |i: usize| ports[i].node_port.unwrap_or(0);
        let mut seen = std::collections::HashMap::new();
        for i in 0..ports.len() {
            let number = ports[i].port;
            let requested = match seen.get(&number) {
                None => {
                    let shared = (0..ports.len())
                        .filter(|&j| ports[j].port == number)
                        .map(node_port)
                        .find(|&n| n != 0)
                        .unwrap_or(0);
                    seen.insert(number, shared);
                    shared
                }
                Some(&shared) if node_port(i) != 0 && node_port(i) != shared => node_port(i),
                Some(_) => 0,
            };
            if requested == 0 {
                continue;
            }
            if let Err(e) = self.node_ports.check_allocatable(requested) {
                return Some(FieldError::invalid(
                    format!("spec.ports[{i}].nodePort"),
                    requested,
                    e.to_string(),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        let mut svc: Service =
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).unwrap();
        crate::defaults::default_service(&mut svc);
        crate::defaults::prepare_service_create(&mut svc);
        svc
    }

    fn errors(ranges: &ServiceRanges, spec: serde_json::Value) -> Vec<String> {
        ranges
            .create_errors(&service(spec))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn alloc_go_allocation_checks_without_cluster_state() {
        let ranges = ServiceRanges::parse("10.96.0.0/12", "30000-32767").unwrap();
        // (upstream rule, spec, expected errors)
        let rows: &[(&str, serde_json::Value, &[&str])] = &[
            ("initNodePorts: nodePort above 65535", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}),
                &["spec.ports[0].nodePort: Invalid value: 70000: provided port is not in the valid range. The range of valid ports is 30000-32767"]),
            ("initNodePorts: nodePort below the range", json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "nodePort": 8080}]}),
                &["spec.ports[1].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"]),
            ("nodePort in range", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}), &[]),
            ("allocClusterIPs: clusterIP outside the range", json!({"clusterIP": "192.168.1.5", "ports": [{"port": 80}]}),
                &["spec.clusterIPs: Invalid value: []string{\"192.168.1.5\"}: failed to allocate IP 192.168.1.5: the provided IP (192.168.1.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12"]),
            ("clusterIP in range", json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}), &[]),
            ("headless", json!({"clusterIP": "None", "ports": [{"port": 80}]}), &[]),
            ("initIPFamilyFields: family not configured", json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}),
                &["spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"]),
        ];
        for (rule, spec, want) in rows {
            assert_eq!(
                errors(&ranges, spec.clone()),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{rule}"
            );
        }
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let err = ServiceRanges::parse("10.96.0.0/12", "32767-30000").unwrap_err();
        assert!(err.starts_with("--service-node-port-range: "), "{err}");
        let err = ServiceRanges::parse("not-a-cidr", "30000-32767").unwrap_err();
        assert!(err.starts_with("--service-cluster-ip-range: "), "{err}");
    }
}
