//! What the proxy needs of its own Node.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;

use super::family::Family;
use super::labels::LABEL_TOPOLOGY_ZONE;

/// This node as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// `metadata.name`.
    pub name: String,
    /// `topology.kubernetes.io/zone`, `""` when unlabelled.
    pub zone: String,
    /// `status.addresses` of type `InternalIP` then `ExternalIP`, in status order, without
    /// duplicates: where NodePorts listen (before `--nodeport-addresses` filtering).
    pub addresses: Vec<IpAddr>,
    /// The first address of each family, `InternalIP`s before `ExternalIP`s (kube-proxy's
    /// "primary" node IPs, upstream `utilnode.GetNodeHostIPs`).
    pub primary: Vec<IpAddr>,
}

impl NodeInfo {
    /// Reads a Node object.
    pub fn from_node(node: &Node) -> NodeInfo {
        let zone = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
            .cloned()
            .unwrap_or_default();
        let status_addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_deref())
            .unwrap_or_default();
        let mut addresses: Vec<IpAddr> = Vec::new();
        let mut primary: Vec<IpAddr> = Vec::new();
        for wanted in ["InternalIP", "ExternalIP"] {
            for a in status_addresses.iter().filter(|a| a.type_ == wanted) {
                let Ok(ip) = a.address.trim().parse::<IpAddr>() else {
                    continue;
                };
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
                if primary.iter().all(|p| Family::of(*p) != Family::of(ip)) {
                    primary.push(ip);
                }
            }
        }
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            zone,
            addresses,
            primary,
        }
    }
}
