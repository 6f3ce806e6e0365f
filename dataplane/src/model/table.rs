//! The desired forwarding table: per Service, the virtual servers this node must program and
//! the endpoints each forwards to. Pure data computed by [`build_service_table`]; backends
//! diff it against the kernel.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use super::config::{ProxyConfig, Scheduler};
use super::endpoints::{EndpointInfo, ServiceEndpoints};
use super::family::Family;
use super::names::{Protocol, ServiceName, ServicePortName};
use super::node::NodeInfo;
use super::service::ServiceInfo;
use super::topology::{categorize, Categorized, NodeView, PortPolicy};

/// How clients reach a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum FrontendKind {
    /// `spec.clusterIPs` : `port`.
    ClusterIP,
    /// A node address : `nodePort`.
    NodePort,
    /// `spec.externalIPs` : `port`.
    ExternalIP,
    /// `status.loadBalancer.ingress[].ip` : `port`.
    LoadBalancer,
}

impl FrontendKind {
    /// Whether the traffic counts as external for `externalTrafficPolicy`.
    pub fn is_external(self) -> bool {
        self != FrontendKind::ClusterIP
    }
}

impl fmt::Display for FrontendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrontendKind::ClusterIP => "ClusterIP",
            FrontendKind::NodePort => "NodePort",
            FrontendKind::ExternalIP => "ExternalIP",
            FrontendKind::LoadBalancer => "LoadBalancer",
        })
    }
}

/// Identity of a virtual server: what a packet's destination is matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct VirtualKey {
    /// Destination address.
    pub address: IpAddr,
    /// L4 protocol.
    pub protocol: Protocol,
    /// Destination port.
    pub port: u16,
}

impl Ord for VirtualKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (
            Family::of(self.address),
            self.address,
            self.protocol,
            self.port,
        )
            .cmp(&(
                Family::of(other.address),
                other.address,
                other.protocol,
                other.port,
            ))
    }
}

impl PartialOrd for VirtualKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for VirtualKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            IpAddr::V4(a) => write!(f, "{} {}:{}", self.protocol, a, self.port),
            IpAddr::V6(a) => write!(f, "{} [{}]:{}", self.protocol, a, self.port),
        }
    }
}

/// Which endpoint set a virtual server forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EndpointSet {
    /// [`Categorized::cluster`]: traffic policy `Cluster`.
    Cluster,
    /// [`Categorized::local`]: traffic policy `Local`.
    Local,
}

/// When traffic to a virtual server is source-NATed to the node (besides hairpin traffic, an
/// endpoint reaching itself through the Service, which backends always masquerade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Masquerade {
    /// Never: external traffic with policy `Local` keeps the client's source address.
    Never,
    /// When the source is outside `--cluster-cidr` (ClusterIPs; nothing when no CIDR is set).
    OffClusterSources,
    /// Always: external traffic with policy `Cluster` may go to another node, whose replies
    /// must come back through this one; also ClusterIPs with `--masquerade-all`.
    Always,
}

/// A real server behind a virtual server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Destination {
    /// Endpoint address.
    pub address: IpAddr,
    /// Endpoint (target) port.
    pub port: u16,
    /// Scheduler weight: 1 for every selected endpoint (kube-proxy weighs endpoints equally;
    /// backends lower it to 0 only while draining a removed endpoint).
    pub weight: u32,
    /// Runs on this node.
    pub local: bool,
    /// `conditions.ready` (false means this is a serving-and-terminating fallback).
    pub ready: bool,
}

impl Destination {
    fn from_endpoint(ep: &EndpointInfo, node: &str) -> Destination {
        Destination {
            address: ep.address,
            port: ep.port,
            weight: 1,
            local: ep.is_local(node),
            ready: ep.ready,
        }
    }
}

/// One row of the desired table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Address, protocol and port clients connect to.
    pub key: VirtualKey,
    /// How the address was derived.
    pub kind: FrontendKind,
    /// The Service port it serves.
    pub service_port: Arc<ServicePortName>,
    /// The IPVS scheduler.
    pub scheduler: Scheduler,
    /// `sessionAffinity: ClientIP` timeout in seconds (IPVS persistence).
    pub affinity_timeout: Option<u32>,
    /// Which endpoint set the destinations are.
    pub endpoint_set: EndpointSet,
    /// Where traffic goes; empty means the Service has no usable endpoint here and traffic
    /// must be rejected.
    pub destinations: Arc<[Destination]>,
    /// `loadBalancerSourceRanges` of this family for LoadBalancer addresses (empty: every
    /// source is admitted).
    pub source_ranges: Arc<[IpNet]>,
    /// Source NAT policy.
    pub masquerade: Masquerade,
}

/// `spec.healthCheckNodePort` state of a Service (kube-proxy's health-check server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// The port the health-check server listens on.
    pub node_port: u16,
    /// Distinct ready endpoint addresses on this node, over every port (upstream
    /// `EndpointsMap.LocalReadyEndpoints`).
    pub local_endpoints: usize,
}

/// Everything one Service contributes to the desired table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTable {
    /// The Service.
    pub service: ServiceName,
    /// Its virtual servers, sorted by key.
    pub virtual_servers: Vec<VirtualServer>,
    /// Health-check node port, for `externalTrafficPolicy: Local` LoadBalancers.
    pub health_check: Option<HealthCheck>,
}

/// The selection made for one Service port and family, kept for explanations.
#[derive(Debug, Clone)]
pub struct PortSelection {
    /// The Service port.
    pub service_port: Arc<ServicePortName>,
    /// The family.
    pub family: Family,
    /// The endpoints considered, in the order [`Categorized`] indexes them.
    pub endpoints: Vec<EndpointInfo>,
    /// The outcome.
    pub selection: Categorized,
}

/// Computes one Service's rows for this node. Families are those of the Service's ClusterIPs
/// (a family without a ClusterIP gets nothing, NodePorts included, as kube-proxy's per-family
/// proxiers skip such Services). Returns the table and the per-port selections it used.
pub fn build_service_table(
    info: &ServiceInfo,
    endpoints: &ServiceEndpoints,
    node: &NodeInfo,
    config: &ProxyConfig,
) -> (ServiceTable, Vec<PortSelection>) {
    let view = NodeView {
        name: &node.name,
        zone: &node.zone,
    };
    let mut rows = Vec::new();
    let mut selections = Vec::new();
    let mut local_ready_per_family = [BTreeSet::<IpAddr>::new(), BTreeSet::new()];
    for (family_index, family) in Family::ALL.into_iter().enumerate() {
        let local_ready = &mut local_ready_per_family[family_index];
        let Some(cluster_ip) = info.cluster_ip(family) else {
            continue;
        };
        let external_ips: Vec<IpAddr> = of_family(&info.external_ips, family);
        let lb_ips: Vec<IpAddr> = of_family(&info.load_balancer_ips, family);
        let node_ips = config
            .nodeport_addresses
            .select(&node.addresses, &node.primary, family);
        let source_ranges: Arc<[IpNet]> = info
            .source_ranges
            .iter()
            .filter(|n| Family::of(n.addr()) == family)
            .copied()
            .collect();
        // EndpointsMap.LocalReadyEndpoints: every slice port of the family counts, also one no
        // Service port names.
        for ((_, _, ep_family), list) in endpoints {
            if *ep_family == family {
                local_ready.extend(
                    list.iter()
                        .filter(|ep| ep.ready && ep.is_local(&node.name))
                        .map(|ep| ep.address),
                );
            }
        }
        for port in &info.ports {
            let port_endpoints = endpoints
                .get(&(port.name.port.clone(), port.name.protocol, family))
                .cloned()
                .unwrap_or_default();
            let policy = PortPolicy {
                internal_local: info.internal_policy_local,
                external_local: info.external_policy_local,
                externally_accessible: port.node_port.is_some()
                    || !external_ips.is_empty()
                    || !lb_ips.is_empty(),
            };
            let selection = categorize(&port_endpoints, policy, view);
            let pick = |indices: &[usize]| -> Arc<[Destination]> {
                indices
                    .iter()
                    .map(|i| Destination::from_endpoint(&port_endpoints[*i], &node.name))
                    .collect()
            };
            let cluster = pick(&selection.cluster);
            let local = pick(&selection.local);
            let service_port = Arc::new(port.name.clone());
            let mut row = |address: IpAddr, number: u16, kind: FrontendKind| {
                let local_policy = if kind.is_external() {
                    info.external_policy_local
                } else {
                    info.internal_policy_local
                };
                let masquerade = match (kind, local_policy) {
                    (FrontendKind::ClusterIP, _) if config.masquerade_all => Masquerade::Always,
                    (FrontendKind::ClusterIP, _) => Masquerade::OffClusterSources,
                    (_, true) => Masquerade::Never,
                    (_, false) => Masquerade::Always,
                };
                rows.push(VirtualServer {
                    key: VirtualKey {
                        address,
                        protocol: port.name.protocol,
                        port: number,
                    },
                    kind,
                    service_port: service_port.clone(),
                    scheduler: config.scheduler,
                    affinity_timeout: info.affinity_timeout,
                    endpoint_set: if local_policy {
                        EndpointSet::Local
                    } else {
                        EndpointSet::Cluster
                    },
                    destinations: if local_policy {
                        local.clone()
                    } else {
                        cluster.clone()
                    },
                    source_ranges: if kind == FrontendKind::LoadBalancer {
                        source_ranges.clone()
                    } else {
                        Arc::from([])
                    },
                    masquerade,
                });
            };
            row(cluster_ip, port.port, FrontendKind::ClusterIP);
            for ip in &external_ips {
                row(*ip, port.port, FrontendKind::ExternalIP);
            }
            for ip in &lb_ips {
                row(*ip, port.port, FrontendKind::LoadBalancer);
            }
            if let Some(node_port) = port.node_port {
                for ip in &node_ips {
                    row(*ip, node_port, FrontendKind::NodePort);
                }
            }
            selections.push(PortSelection {
                service_port,
                family,
                endpoints: port_endpoints,
                selection,
            });
        }
    }
    rows.sort_by_key(|vs| vs.key);
    rows.dedup_by(|later, earlier| later.key == earlier.key);
    // Each of kube-proxy's per-family proxiers counts its own family's addresses; a dual-stack
    // Pod is one local endpoint, not two.
    let health_check = info.health_check_node_port.map(|node_port| HealthCheck {
        node_port,
        local_endpoints: local_ready_per_family
            .iter()
            .map(BTreeSet::len)
            .max()
            .unwrap_or(0),
    });
    (
        ServiceTable {
            service: info.name.clone(),
            virtual_servers: rows,
            health_check,
        },
        selections,
    )
}

fn of_family(ips: &[IpAddr], family: Family) -> Vec<IpAddr> {
    ips.iter()
        .copied()
        .filter(|ip| Family::of(*ip) == family)
        .collect()
}
