//! Band usage of the ClusterIP and NodePort ranges, computed by feeding the Services' values
//! to `svcplane_allocators`' own allocators (so the band rule, KEP-3070 / KEP-3668, lives only
//! there).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use svcplane_allocators::{DualStackClusterIps, NodePortAllocator, PortRange};

use super::model::BandRow;

/// The ranges the page measures, parsed once.
#[derive(Debug, Clone)]
pub struct Ranges {
    cluster_ips: DualStackClusterIps,
    node_ports: PortRange,
}

impl Ranges {
    /// Parses `--service-cluster-ip-range` and `--service-node-port-range` values.
    pub fn parse(
        cluster_ip_range: &str,
        node_port_range: &str,
    ) -> Result<Self, svcplane_allocators::Error> {
        Ok(Self {
            cluster_ips: DualStackClusterIps::parse(cluster_ip_range)?,
            node_ports: PortRange::parse(node_port_range)?,
        })
    }

    /// One row per ClusterIP range (primary first) and one for the node port range.
    ///
    /// A value a Service holds twice (a NodePort shared by the TCP and UDP ports of one
    /// Service) counts once; a value outside the range counts as `outside`.
    pub fn usage(&self, services: &[Service]) -> Vec<BandRow> {
        let mut cluster_ips = self.cluster_ips.clone();
        let mut node_ports = NodePortAllocator::new(self.node_ports);
        let mut ips_outside = 0;
        let mut ports_outside = 0;
        for spec in services.iter().filter_map(|s| s.spec.as_ref()) {
            let ips = match (&spec.cluster_ips, &spec.cluster_ip) {
                (Some(ips), _) if !ips.is_empty() => ips.clone(),
                (_, Some(ip)) => vec![ip.clone()],
                _ => Vec::new(),
            };
            for ip in ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()) {
                let held = match cluster_ips.for_ip_mut(ip) {
                    Some(allocator) => allocator.allocate(ip).is_ok() || allocator.contains(ip),
                    None => false,
                };
                if !held {
                    ips_outside += 1;
                }
            }
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port)
                .chain(spec.health_check_node_port);
            for port in ports {
                if node_ports.allocate(port).is_err() && !node_ports.contains(port) {
                    ports_outside += 1;
                }
            }
        }
        let mut rows: Vec<BandRow> = cluster_ips
            .allocators()
            .map(|a| BandRow {
                kind: "ClusterIPs".into(),
                range: a.cidr().to_string(),
                usage: a.usage(),
                outside: 0,
            })
            .collect();
        if let Some(first) = rows.first_mut() {
            first.outside = ips_outside;
        }
        rows.push(BandRow {
            kind: "NodePorts".into(),
            range: self.node_ports.to_string(),
            usage: node_ports.usage(),
            outside: ports_outside,
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use svcplane_allocators::{cluster_ip_static_band_size, node_port_static_band_size};

    fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).unwrap()
    }

    #[test]
    fn counts_each_value_in_its_band_once() {
        let ranges = Ranges::parse("10.96.0.0/24,fd00::/120", "30000-32767").unwrap();
        let services = [
            // Static band of the /24 (offsets 1..=16) and the dynamic band.
            service(json!({"clusterIPs": ["10.96.0.10", "fd00::20"],
                           "ports": [{"port": 53, "nodePort": 30001, "protocol": "UDP"},
                                     {"port": 53, "nodePort": 30001, "protocol": "TCP"}]})),
            service(
                json!({"clusterIP": "10.96.0.200", "healthCheckNodePort": 32000,
                           "ports": [{"port": 80, "nodePort": 31000}]}),
            ),
            service(json!({"clusterIP": "None"})),
            service(json!({"clusterIP": "192.168.0.1", "ports": [{"port": 1, "nodePort": 80}]})),
        ];
        let rows = ranges.usage(&services);
        assert_eq!(rows.len(), 3);
        let v4 = &rows[0];
        assert_eq!(
            (v4.kind.as_str(), v4.range.as_str()),
            ("ClusterIPs", "10.96.0.0/24")
        );
        assert_eq!(v4.usage.static_band_size, cluster_ip_static_band_size(256));
        assert_eq!((v4.usage.static_used, v4.usage.dynamic_used), (1, 1));
        assert_eq!(v4.outside, 1, "192.168.0.1 is in no range");
        let v6 = &rows[1];
        assert_eq!((v6.usage.static_used, v6.usage.dynamic_used), (0, 1));
        let ports = &rows[2];
        assert_eq!(ports.range, "30000-32767");
        assert_eq!(
            ports.usage.static_band_size,
            node_port_static_band_size(2768)
        );
        assert_eq!((ports.usage.static_used, ports.usage.dynamic_used), (1, 2));
        assert_eq!(ports.outside, 1, "port 80 is outside the range");
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(Ranges::parse("not-a-cidr", "30000-32767").is_err());
        assert!(Ranges::parse("10.96.0.0/12", "3-2-1").is_err());
    }
}
