//! Per node: which endpoints the node agent's forwarding uses for each Service port, and why
//! it leaves the others out. Nothing here decides a selection: each node gets the agent's own
//! [`ProxyModel`] fed with the same objects the agent watches, and its table and per-port
//! selections ([`ProxyModel::selections`], `categorize` underneath) are read back. Exclusion
//! reasons come from [`Categorized::cluster_exclusion`] and
//! [`Categorized::local_exclusion`], the predicates the selection itself uses.
//!
//! [`Categorized::cluster_exclusion`]: svcplane_dataplane::model::Categorized::cluster_exclusion
//! [`Categorized::local_exclusion`]: svcplane_dataplane::model::Categorized::local_exclusion

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcplane_dataplane::model::{
    EndpointInfo, Exclusion, Family, NodeInfo, NodeView, PortSelection, ProxyConfig, ProxyModel,
    ServiceName,
};

use super::report::{EndpointVerdict, FrontendReport, NodeReport, PortForwarding, SetReport};
use super::wording::{describe, LocalPolicies};

/// The node agent's view of one Service on one node.
#[derive(Debug)]
pub struct NodeModel {
    node: NodeInfo,
    model: ProxyModel,
    name: ServiceName,
}

impl NodeModel {
    /// Feeds a fresh model for `node` with the Service and its slices, as the agent on that
    /// node would have them, and commits it.
    pub fn new(node: &Node, service: &Service, slices: &[EndpointSlice]) -> NodeModel {
        let info = NodeInfo::from_node(node);
        let mut model = ProxyModel::new(ProxyConfig {
            node_name: info.name.clone(),
            ..ProxyConfig::default()
        });
        model.set_node(node);
        model.upsert_service(service);
        for slice in slices {
            model.upsert_slice(slice);
        }
        model.commit();
        let name = ServiceName::new(
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone().unwrap_or_default(),
        );
        NodeModel {
            node: info,
            model,
            name,
        }
    }

    /// The report for this node; `None` when the agent does not proxy the Service.
    pub fn report(&self, policies: LocalPolicies) -> Option<NodeReport> {
        let selections = self.model.selections(&self.name)?;
        let table = self.model.table().service(&self.name);
        let view = NodeView {
            name: &self.node.name,
            zone: &self.node.zone,
        };
        let ports = selections
            .iter()
            .map(|selection| {
                let frontends = table
                    .map(|t| {
                        t.virtual_servers
                            .iter()
                            .filter(|vs| {
                                *vs.service_port == *selection.service_port
                                    && Family::of(vs.key.address) == selection.family
                            })
                            .map(|vs| FrontendReport {
                                kind: vs.kind,
                                address: vs.key.address,
                                port: vs.key.port,
                                endpoint_set: vs.endpoint_set,
                                destinations: vs.destinations.len(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                port_report(selection, frontends, view, policies)
            })
            .collect();
        Some(NodeReport {
            name: self.node.name.clone(),
            zone: self.node.zone.clone(),
            ports,
            health_check_local_endpoints: table
                .and_then(|t| t.health_check.as_ref())
                .map(|h| h.local_endpoints),
        })
    }
}

fn port_report(
    selection: &PortSelection,
    frontends: Vec<FrontendReport>,
    view: NodeView<'_>,
    policies: LocalPolicies,
) -> PortForwarding {
    let categorized = &selection.selection;
    // `used` is membership in the selected set itself; the reason comes from the same
    // predicates the selection applied.
    let set = |in_use: bool,
               fallback: bool,
               chosen: &[usize],
               verdict: &dyn Fn(&EndpointInfo) -> Option<Exclusion>| SetReport {
        in_use,
        fallback,
        endpoints: selection
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| {
                let used = chosen.contains(&i);
                let reason = if used { None } else { verdict(ep) };
                EndpointVerdict {
                    address: ep.address,
                    port: ep.port,
                    node_name: ep.node_name.as_deref().map(str::to_string),
                    zone: ep.zone.as_deref().map(str::to_string),
                    used,
                    reason,
                    detail: reason.map(|r| describe(r, ep, view, policies)),
                }
            })
            .collect(),
    };
    PortForwarding {
        port_name: selection.service_port.port.clone(),
        protocol: selection.service_port.protocol.to_string(),
        family: selection.family,
        topology: categorized.topology,
        frontends,
        cluster: set(
            categorized.uses_cluster,
            categorized.cluster_fallback,
            &categorized.cluster,
            &|ep| categorized.cluster_exclusion(ep, view),
        ),
        local: set(
            categorized.uses_local,
            categorized.local_fallback,
            &categorized.local,
            &|ep| categorized.local_exclusion(ep, view),
        ),
    }
}
