//! From the gathered objects to the [`Report`]: a pure function, unit-testable without a
//! server.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use svcplane_dataplane::model::{ServiceInfo, SliceInfo};

use super::addresses::addresses;
use super::checks::findings;
use super::forwarding::NodeModel;
use super::gather::Gathered;
use super::report::{
    NodeReport, Report, ServiceSummary, SliceEndpointReport, SlicePortReport, SliceReport,
    API_VERSION, KIND,
};
use super::wording::LocalPolicies;

/// `--node` named a Node that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNode(pub String);

impl std::fmt::Display for UnknownNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--node {}: no such Node", self.0)
    }
}

impl std::error::Error for UnknownNode {}

/// Explains the gathered Service; with `only_node`, the per-node part covers that Node only
/// (findings still look at every Node).
pub fn explain(gathered: &Gathered, only_node: Option<&str>) -> Result<Report, UnknownNode> {
    if let Some(wanted) = only_node {
        if !gathered
            .nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(wanted))
        {
            return Err(UnknownNode(wanted.to_string()));
        }
    }
    let service = &gathered.service;
    let info = ServiceInfo::from_service(service);
    let policies = LocalPolicies {
        internal: info.as_ref().is_some_and(|i| i.internal_policy_local),
        external: info.as_ref().is_some_and(|i| i.external_policy_local),
    };
    let all_nodes: Vec<NodeReport> = gathered
        .nodes
        .iter()
        .filter_map(|node| NodeModel::new(node, service, &gathered.slices).report(policies))
        .collect();
    let found = findings(gathered, &all_nodes, info.is_some(), policies.external);
    let nodes = all_nodes
        .into_iter()
        .filter(|n| only_node.is_none_or(|wanted| n.name == wanted))
        .collect();
    Ok(Report {
        kind: KIND,
        api_version: API_VERSION,
        service: summary(service, info.as_ref()),
        addresses: addresses(service, &gathered.service_cidrs, &gathered.pools),
        endpoint_slices: gathered.slices.iter().map(slice_report).collect(),
        nodes,
        findings: found,
    })
}

fn summary(service: &Service, info: Option<&ServiceInfo>) -> ServiceSummary {
    let spec = service.spec.clone().unwrap_or_default();
    let type_ = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let external = matches!(type_.as_str(), "NodePort" | "LoadBalancer")
        || spec.external_ips.as_ref().is_some_and(|e| !e.is_empty());
    ServiceSummary {
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone().unwrap_or_default(),
        type_,
        selector: spec.selector.clone(),
        internal_traffic_policy: spec
            .internal_traffic_policy
            .clone()
            .unwrap_or_else(|| "Cluster".into()),
        external_traffic_policy: external.then(|| {
            spec.external_traffic_policy
                .clone()
                .unwrap_or_else(|| "Cluster".into())
        }),
        traffic_distribution: spec.traffic_distribution.clone(),
        proxied: info.is_some(),
        proxy_warnings: info.map(|i| i.warnings.clone()).unwrap_or_default(),
    }
}

fn slice_report(slice: &EndpointSlice) -> SliceReport {
    SliceReport {
        name: slice.metadata.name.clone().unwrap_or_default(),
        address_type: slice.address_type.clone(),
        ignored: SliceInfo::from_slice(slice).is_none().then(|| {
            "ignored by node agents (headless or another proxy's label, or not an IP \
             addressType)"
                .to_string()
        }),
        ports: slice
            .ports
            .iter()
            .flatten()
            .map(|p| SlicePortReport {
                name: p.name.clone().unwrap_or_default(),
                port: p.port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
            .collect(),
        endpoints: slice
            .endpoints
            .iter()
            .map(|ep| {
                let conditions = ep.conditions.clone().unwrap_or_default();
                let hints = ep.hints.clone().unwrap_or_default();
                SliceEndpointReport {
                    addresses: ep.addresses.clone(),
                    // EndpointSlice API: unset ready and serving mean true.
                    ready: conditions.ready.unwrap_or(true),
                    serving: conditions.serving.unwrap_or(true),
                    terminating: conditions.terminating.unwrap_or(false),
                    node_name: ep.node_name.clone(),
                    zone: ep.zone.clone(),
                    for_zones: hints
                        .for_zones
                        .iter()
                        .flatten()
                        .map(|z| z.name.clone())
                        .collect(),
                    for_nodes: hints
                        .for_nodes
                        .iter()
                        .flatten()
                        .map(|n| n.name.clone())
                        .collect(),
                    target_ref: ep.target_ref.as_ref().map(|r| {
                        format!(
                            "{}/{}",
                            r.kind.as_deref().unwrap_or("Object"),
                            r.name.as_deref().unwrap_or_default()
                        )
                    }),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::gather::Pools;
    use crate::explain::render::{render, Format};
    use serde_json::json;
    use svcplane_dataplane::model::Exclusion;

    /// Two nodes in two zones; `internalTrafficPolicy: Local`; one ready endpoint on node-a and
    /// one not-ready endpoint on node-b.
    fn gathered() -> Gathered {
        let node = |name: &str, zone: &str| {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            }))
            .unwrap()
        };
        Gathered {
            service: serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.0.0.20", "clusterIPs": ["10.0.0.20"],
                         "internalTrafficPolicy": "Local",
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            }))
            .unwrap(),
            slices: vec![serde_json::from_value(json!({
                "metadata": {"name": "web-1", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": ["10.244.1.5"], "nodeName": "node-a", "zone": "zone-a",
                     "conditions": {"ready": true}},
                    {"addresses": ["10.244.2.5"], "nodeName": "node-b", "zone": "zone-b",
                     "conditions": {"ready": false, "serving": false, "terminating": false}},
                ],
            }))
            .unwrap()],
            pods: Vec::new(),
            nodes: vec![node("node-a", "zone-a"), node("node-b", "zone-b")],
            namespace_labels: Default::default(),
            pools: Pools::NotInstalled,
            service_cidrs: vec!["10.0.0.0/24".parse().unwrap()],
        }
    }

    #[test]
    fn local_policy_uses_only_the_nodes_own_ready_endpoints() {
        let report = explain(&gathered(), None).unwrap();
        assert_eq!(report.nodes.len(), 2);
        let b = &report.nodes[1].ports[0];
        assert!(!b.cluster.in_use);
        let verdicts: Vec<(String, Option<Exclusion>)> = b
            .local
            .endpoints
            .iter()
            .map(|e| (e.address.to_string(), e.reason))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("10.244.1.5".to_string(), Some(Exclusion::NotLocal)),
                ("10.244.2.5".to_string(), Some(Exclusion::NotReady)),
            ]
        );
        assert!(report.nodes[0].ports[0].local.endpoints[0].used);
        // 10.0.0.20 is offset 19 of a /24: above the static band of 16.
        assert_eq!(
            report.addresses.cluster_ips[0].allocation.band,
            crate::explain::report::Band::Dynamic
        );
    }

    #[test]
    fn only_node_narrows_the_report_and_unknown_nodes_are_errors() {
        let report = explain(&gathered(), Some("node-b")).unwrap();
        assert_eq!(report.nodes.len(), 1);
        assert_eq!(report.nodes[0].name, "node-b");
        assert_eq!(
            explain(&gathered(), Some("node-z")).unwrap_err(),
            UnknownNode("node-z".into())
        );
    }

    #[test]
    fn text_and_wide_say_why_in_words_and_json_by_stable_names() {
        let report = explain(&gathered(), Some("node-b")).unwrap();
        let text = render(&report, Format::Text);
        assert!(
            text.contains("ClusterIP 10.0.0.20:80 -> local set (no endpoint: rejected)"),
            "{text}"
        );
        assert!(
            text.contains("    local set: 0 of 2 endpoint(s)\n"),
            "{text}"
        );
        assert!(
            text.contains("excluded  10.244.2.5:8080  not ready\n"),
            "{text}"
        );
        let wide = render(&report, Format::Wide);
        assert!(
            wide.contains("ENDPOINT         NODE    ZONE    CLUSTER  LOCAL"),
            "{wide}"
        );
        assert!(
            wide.contains("10.244.2.5:8080  node-b  zone-b  -        not ready"),
            "{wide}"
        );
        let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(
            json["nodes"][0]["ports"][0]["local"]["endpoints"][0]["reason"],
            "NotLocal"
        );
        assert_eq!(
            json["addresses"]["clusterIPs"][0]["allocation"]["band"],
            "Dynamic"
        );
    }
}
