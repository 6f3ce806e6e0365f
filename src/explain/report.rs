//! The explanation as data: what `-o json` prints (stable field names, camelCase as the
//! Kubernetes API spells fields) and what the text renderer reads.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use svcplane_dataplane::model::{EndpointSet, Exclusion, Family, FrontendKind, TopologyMode};

/// `kind` of the JSON document.
pub const KIND: &str = "ServiceExplanation";
/// `apiVersion` of the JSON document; bumped when a field changes meaning.
pub const API_VERSION: &str = "svcplane.io/v1alpha1";

/// One explained Service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`KIND`].
    pub kind: &'static str,
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// The Service's identity and policies.
    pub service: ServiceSummary,
    /// ClusterIPs, NodePorts and load-balancer addresses, and how each was allocated.
    pub addresses: Addresses,
    /// The Service's EndpointSlices as the API holds them.
    pub endpoint_slices: Vec<SliceReport>,
    /// Per Node: which endpoints its forwarding uses, and why the others are left out.
    pub nodes: Vec<NodeReport>,
    /// Mistakes and problems found.
    pub findings: Vec<Finding>,
}

/// The Service's identity and the policies that shape endpoint selection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSummary {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.type` (`ClusterIP` when unset).
    #[serde(rename = "type")]
    pub type_: String,
    /// `spec.selector` (absent for a selector-less Service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// `spec.internalTrafficPolicy` (`Cluster` when unset).
    pub internal_traffic_policy: String,
    /// `spec.externalTrafficPolicy` (absent for a Service that takes no external traffic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<String>,
    /// `spec.trafficDistribution`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
    /// Whether node agents forward for it at all (not headless, not `ExternalName`, has a
    /// ClusterIP, not another proxy's).
    pub proxied: bool,
    /// Values the node agent skips, as it logs them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_warnings: Vec<String>,
}

/// Which band of a range an allocated value lies in (KEP-3070, KEP-3668).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Band {
    /// The lower band dynamic allocation avoids: values there were almost always requested.
    Static,
    /// The upper band dynamic allocation takes values from first.
    Dynamic,
    /// The range is not exposed by the server, so the band is not known.
    Unknown,
}

/// How a ClusterIP or NodePort was allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// The range it came from, when the server exposes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The band within the range.
    pub band: Band,
    /// The user's configuration asked for this value (kubectl's last-applied configuration
    /// names it).
    pub requested: bool,
    /// One sentence for people.
    pub detail: String,
}

/// A ClusterIP.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIpReport {
    /// The address.
    pub ip: IpAddr,
    /// Its family.
    pub family: Family,
    /// How it was allocated.
    pub allocation: Allocation,
}

/// A NodePort of one Service port.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePortReport {
    /// `spec.ports[].name`.
    pub port_name: String,
    /// `spec.ports[].protocol`.
    pub protocol: String,
    /// `spec.ports[].port`.
    pub port: i32,
    /// `spec.ports[].nodePort`.
    pub node_port: i32,
    /// How it was allocated.
    pub allocation: Allocation,
}

/// How a load-balancer address was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LbRequest {
    /// The `svcplane.io/load-balancer-ips` annotation names it.
    Annotation,
    /// The deprecated `spec.loadBalancerIP` names it.
    SpecLoadBalancerIP,
}

/// A `status.loadBalancer.ingress[]` address.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LbIpReport {
    /// The address.
    pub ip: IpAddr,
    /// `ipMode` (`VIP` when unset).
    pub ip_mode: String,
    /// The `LoadBalancerIPPool` holding it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// How it was requested, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<LbRequest>,
    /// One sentence for people.
    pub detail: String,
}

/// The Service's addresses.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Addresses {
    /// `spec.clusterIPs`.
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Vec<ClusterIpReport>,
    /// Allocated `spec.ports[].nodePort`s.
    pub node_ports: Vec<NodePortReport>,
    /// `spec.externalIPs`.
    #[serde(rename = "externalIPs", skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<String>,
    /// `status.loadBalancer.ingress[].ip`.
    #[serde(rename = "loadBalancerIPs")]
    pub load_balancer_ips: Vec<LbIpReport>,
    /// What the cluster says about pools, when the Service is a LoadBalancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<String>,
}

/// An EndpointSlice port.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlicePortReport {
    /// `name`.
    pub name: String,
    /// `port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// `protocol`.
    pub protocol: String,
}

/// One endpoint of a slice, conditions as the EndpointSlice API defines them (unset
/// `ready`/`serving` mean true, unset `terminating` false).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpointReport {
    /// `addresses`.
    pub addresses: Vec<String>,
    /// `conditions.ready`.
    pub ready: bool,
    /// `conditions.serving`.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
    /// `nodeName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `zone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// `hints.forZones[].name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub for_zones: Vec<String>,
    /// `hints.forNodes[].name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub for_nodes: Vec<String>,
    /// `targetRef` as `Kind/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<String>,
}

/// One EndpointSlice.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceReport {
    /// `metadata.name`.
    pub name: String,
    /// `addressType`.
    pub address_type: String,
    /// Why node agents ignore it, when they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// `ports`.
    pub ports: Vec<SlicePortReport>,
    /// `endpoints`.
    pub endpoints: Vec<SliceEndpointReport>,
}

/// An address and port clients reach the Service port at on a node, from the agent's table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontendReport {
    /// How the address was derived.
    pub kind: FrontendKind,
    /// Destination address.
    pub address: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Which endpoint set it forwards to.
    pub endpoint_set: EndpointSet,
    /// How many endpoints it forwards to (0: traffic is rejected).
    pub destinations: usize,
}

/// The verdict on one endpoint for one set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointVerdict {
    /// Endpoint address.
    pub address: IpAddr,
    /// Target port.
    pub port: u16,
    /// `nodeName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `zone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Whether the set holds it.
    pub used: bool,
    /// Why it is left out (the dataplane's [`Exclusion`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Exclusion>,
    /// The reason for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One endpoint set (cluster or local) of one Service port and family on one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetReport {
    /// Whether the port uses this set at all under its traffic policies.
    pub in_use: bool,
    /// The set holds serving-and-terminating endpoints because none is ready (KEP-1669).
    pub fallback: bool,
    /// Every endpoint of the port and family, used or not.
    pub endpoints: Vec<EndpointVerdict>,
}

/// One Service port and family on one node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortForwarding {
    /// `spec.ports[].name`.
    pub port_name: String,
    /// `spec.ports[].protocol`.
    pub protocol: String,
    /// The family.
    pub family: Family,
    /// Which topology hints cluster traffic follows here.
    pub topology: TopologyMode,
    /// The virtual servers of this port and family in the node's table.
    pub frontends: Vec<FrontendReport>,
    /// Cluster traffic's set.
    pub cluster: SetReport,
    /// Node-local traffic policies' set.
    pub local: SetReport,
}

/// One Node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// `metadata.name`.
    pub name: String,
    /// `topology.kubernetes.io/zone` (empty when unlabelled).
    pub zone: String,
    /// Per Service port and family.
    pub ports: Vec<PortForwarding>,
    /// The health-check node port's answer here: local ready endpoints (LoadBalancers with
    /// `externalTrafficPolicy: Local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_local_endpoints: Option<usize>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    /// Traffic is lost or misdirected.
    Warning,
    /// Worth knowing.
    Info,
}

/// A mistake or problem, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable CamelCase code (`SelectorMatchesNoPod`, ...).
    pub code: &'static str,
    /// How serious.
    pub severity: Severity,
    /// One or two sentences for people.
    pub message: String,
}
