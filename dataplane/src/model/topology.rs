//! Endpoint selection: which endpoints of a Service port this node forwards to, for cluster
//! traffic and for node-local traffic. This is kube-proxy's `CategorizeEndpoints`
//! (`pkg/proxy/topology.go`), the one place the rules live; backends only execute its result,
//! and explanations ("why is this endpoint not used here?") come from the same predicates.

use serde::Serialize;

use super::endpoints::EndpointInfo;

/// The node the selection is made for.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    /// `metadata.name`: endpoints with this `nodeName` are local.
    pub name: &'a str,
    /// The `topology.kubernetes.io/zone` label; a Node without it is in zone `""`, which
    /// matches endpoints hinted `forZones: [{name: ""}]` as upstream.
    pub zone: &'a str,
}

/// The traffic policies of one Service port (upstream `ServicePort` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPolicy {
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local` (only meaningful when externally accessible).
    pub external_local: bool,
    /// The port has a NodePort, external IPs or load-balancer IPs in this family.
    pub externally_accessible: bool,
}

impl PortPolicy {
    /// Cluster endpoints are needed when internal traffic is `Cluster` or the port takes
    /// external traffic at all (upstream `UsesClusterEndpoints`).
    pub fn uses_cluster_endpoints(self) -> bool {
        !self.internal_local || self.externally_accessible
    }

    /// Local endpoints are needed when internal traffic is `Local`, or external traffic is
    /// `Local` on an externally accessible port (upstream `UsesLocalEndpoints`).
    pub fn uses_local_endpoints(self) -> bool {
        self.internal_local || (self.external_local && self.externally_accessible)
    }
}

/// Which topology hints cluster traffic follows (upstream `topologyModeFromHints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TopologyMode {
    /// Hints are not used: every ready endpoint is eligible.
    None,
    /// Every ready endpoint has `forNodes` hints and one names this node (KEP-3015,
    /// `trafficDistribution: PreferSameNode`).
    PreferSameNode,
    /// Every ready endpoint has `forZones` hints and one names this node's zone (KEP-2433,
    /// KEP-4444 `PreferClose` / `PreferSameZone`).
    PreferSameZone,
}

/// Why an endpoint is not in a set. Stable names: they are shown to users by explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Exclusion {
    /// Not ready, and not a serving-and-terminating fallback.
    NotReady,
    /// Serving but terminating, while ready endpoints exist (terminating endpoints carry
    /// traffic only when nothing is ready, KEP-1669).
    TerminatingWhileOthersReady,
    /// Terminating and no longer serving.
    NotServing,
    /// Its zone hints do not name this node's zone.
    HintForOtherZone,
    /// Its node hints do not name this node.
    HintForOtherNode,
    /// Runs on another node, and the set holds only this node's endpoints.
    NotLocal,
    /// The Service port does not use this set at all under its traffic policies.
    SetNotUsed,
}

/// The outcome of [`categorize`] for one Service port and family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categorized {
    /// The topology mode cluster traffic used.
    pub topology: TopologyMode,
    /// Whether the port uses cluster endpoints at all.
    pub uses_cluster: bool,
    /// Whether the port uses local endpoints at all.
    pub uses_local: bool,
    /// Cluster endpoints are serving-and-terminating ones because none is ready anywhere.
    pub cluster_fallback: bool,
    /// Local endpoints are serving-and-terminating ones because none local is ready.
    pub local_fallback: bool,
    /// Indices (into the input) of the endpoints cluster traffic goes to.
    pub cluster: Vec<usize>,
    /// Indices of the endpoints node-local traffic policies go to.
    pub local: Vec<usize>,
    /// Whether the Service has any usable endpoint anywhere (upstream `hasAnyEndpoints`).
    pub has_any: bool,
}

impl Categorized {
    /// Why `endpoint` is not in the cluster set (`None` when it is).
    pub fn cluster_exclusion(
        &self,
        endpoint: &EndpointInfo,
        node: NodeView<'_>,
    ) -> Option<Exclusion> {
        if !self.uses_cluster {
            return Some(Exclusion::SetNotUsed);
        }
        cluster_verdict(endpoint, self.topology, self.cluster_fallback, node).err()
    }

    /// Why `endpoint` is not in the local set (`None` when it is).
    pub fn local_exclusion(
        &self,
        endpoint: &EndpointInfo,
        node: NodeView<'_>,
    ) -> Option<Exclusion> {
        if !self.uses_local {
            return Some(Exclusion::SetNotUsed);
        }
        local_verdict(endpoint, self.local_fallback, node).err()
    }
}

/// Splits a Service port's endpoints into the cluster set and the local set, as kube-proxy's
/// `CategorizeEndpoints`:
/// - cluster: ready endpoints, narrowed by topology hints when every ready endpoint carries
///   them and one matches this node (node hints first, then zone hints); if none is ready
///   anywhere, the serving-and-terminating ones (hints ignored);
/// - local: this node's ready endpoints; if none, this node's serving-and-terminating ones;
///   empty when the node has neither, even if other nodes have endpoints (seed:
///   service-internal-traffic-policy, "behaves as if it has zero endpoints").
pub fn categorize(
    endpoints: &[EndpointInfo],
    policy: PortPolicy,
    node: NodeView<'_>,
) -> Categorized {
    let uses_cluster = policy.uses_cluster_endpoints();
    let uses_local = policy.uses_local_endpoints();
    let mut result = Categorized {
        topology: TopologyMode::None,
        uses_cluster,
        uses_local,
        cluster_fallback: false,
        local_fallback: false,
        cluster: Vec::new(),
        local: Vec::new(),
        has_any: false,
    };
    if uses_cluster {
        result.topology = topology_mode(endpoints, node);
        result.cluster = select(endpoints, |ep| {
            cluster_verdict(ep, result.topology, false, node).is_ok()
        });
        if result.cluster.is_empty() {
            result.cluster_fallback = true;
            result.cluster = select(endpoints, |ep| {
                cluster_verdict(ep, result.topology, true, node).is_ok()
            });
            if result.cluster.is_empty() {
                result.cluster_fallback = false;
            }
        }
        result.has_any = !result.cluster.is_empty();
    }
    if uses_local {
        let mut local_ready = false;
        let mut local_serving_terminating = false;
        for ep in endpoints {
            if ep.ready {
                result.has_any = true;
                local_ready |= ep.is_local(node.name);
            } else if ep.serving && ep.terminating {
                result.has_any = true;
                local_serving_terminating |= ep.is_local(node.name);
            }
        }
        if local_ready || local_serving_terminating {
            result.local_fallback = !local_ready;
            result.local = select(endpoints, |ep| {
                local_verdict(ep, result.local_fallback, node).is_ok()
            });
        }
    }
    result
}

fn select(endpoints: &[EndpointInfo], keep: impl Fn(&EndpointInfo) -> bool) -> Vec<usize> {
    endpoints
        .iter()
        .enumerate()
        .filter(|(_, ep)| keep(ep))
        .map(|(i, _)| i)
        .collect()
}

/// The cluster-set rule for one endpoint, given the port-wide decisions.
fn cluster_verdict(
    ep: &EndpointInfo,
    topology: TopologyMode,
    fallback: bool,
    node: NodeView<'_>,
) -> Result<(), Exclusion> {
    if fallback {
        return serving_terminating(ep);
    }
    if !ep.ready {
        return Err(not_ready_reason(ep));
    }
    match topology {
        TopologyMode::None => Ok(()),
        TopologyMode::PreferSameNode if has_hint(&ep.node_hints, node.name) => Ok(()),
        TopologyMode::PreferSameNode => Err(Exclusion::HintForOtherNode),
        TopologyMode::PreferSameZone if has_hint(&ep.zone_hints, node.zone) => Ok(()),
        TopologyMode::PreferSameZone => Err(Exclusion::HintForOtherZone),
    }
}

/// The local-set rule for one endpoint.
fn local_verdict(ep: &EndpointInfo, fallback: bool, node: NodeView<'_>) -> Result<(), Exclusion> {
    if !ep.is_local(node.name) {
        return Err(Exclusion::NotLocal);
    }
    if fallback {
        return serving_terminating(ep);
    }
    if ep.ready {
        Ok(())
    } else {
        Err(not_ready_reason(ep))
    }
}

fn serving_terminating(ep: &EndpointInfo) -> Result<(), Exclusion> {
    if ep.serving && ep.terminating {
        Ok(())
    } else if ep.terminating {
        Err(Exclusion::NotServing)
    } else {
        Err(Exclusion::NotReady)
    }
}

fn not_ready_reason(ep: &EndpointInfo) -> Exclusion {
    if ep.serving && ep.terminating {
        Exclusion::TerminatingWhileOthersReady
    } else if ep.terminating {
        Exclusion::NotServing
    } else {
        Exclusion::NotReady
    }
}

fn has_hint(hints: &Option<std::sync::Arc<[String]>>, value: &str) -> bool {
    hints
        .as_deref()
        .is_some_and(|h| h.iter().any(|name| name == value))
}

/// Upstream `topologyModeFromHints`: node hints win when every ready endpoint has node hints
/// and one names this node; else zone hints when every ready endpoint has zone hints and one
/// names this node's zone; else no topology.
fn topology_mode(endpoints: &[EndpointInfo], node: NodeView<'_>) -> TopologyMode {
    let mut all_node_hints = true;
    let mut node_match = false;
    let mut all_zone_hints = true;
    let mut zone_match = false;
    let mut any_ready = false;
    for ep in endpoints.iter().filter(|ep| ep.ready) {
        any_ready = true;
        match &ep.node_hints {
            None => all_node_hints = false,
            Some(_) => node_match |= has_hint(&ep.node_hints, node.name),
        }
        match &ep.zone_hints {
            None => all_zone_hints = false,
            Some(_) => zone_match |= has_hint(&ep.zone_hints, node.zone),
        }
    }
    if !any_ready {
        return TopologyMode::None;
    }
    if all_node_hints && node_match {
        TopologyMode::PreferSameNode
    } else if all_zone_hints && zone_match {
        TopologyMode::PreferSameZone
    } else {
        TopologyMode::None
    }
}
