//! The dataplane's [`Exclusion`]s in words, with the facts that make each one concrete (the
//! endpoint's node, its hints, this node's zone, the policy that asked for local endpoints).

use svcplane_dataplane::model::{EndpointInfo, Exclusion, NodeView};

/// The traffic policies that make a port use node-local endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPolicies {
    /// `internalTrafficPolicy: Local`.
    pub internal: bool,
    /// `externalTrafficPolicy: Local` on an externally reachable Service.
    pub external: bool,
}

impl LocalPolicies {
    fn names(self) -> &'static str {
        match (self.internal, self.external) {
            (true, true) => "internalTrafficPolicy and externalTrafficPolicy are Local",
            (true, false) => "internalTrafficPolicy: Local",
            (false, true) => "externalTrafficPolicy: Local",
            (false, false) => "no traffic policy is Local",
        }
    }
}

fn hints(list: &Option<std::sync::Arc<[String]>>) -> String {
    match list.as_deref() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| if n.is_empty() { "\"\"" } else { n.as_str() })
            .collect::<Vec<_>>()
            .join(","),
        _ => "none".into(),
    }
}

/// Why `endpoint` is left out of a set, for people.
pub fn describe(
    exclusion: Exclusion,
    endpoint: &EndpointInfo,
    node: NodeView<'_>,
    policies: LocalPolicies,
) -> String {
    match exclusion {
        Exclusion::NotReady => "not ready".into(),
        Exclusion::TerminatingWhileOthersReady => {
            "terminating (still serving) while ready endpoints exist: terminating endpoints get \
             traffic only when none is ready (KEP-1669)"
                .into()
        }
        Exclusion::NotServing => "terminating and no longer serving".into(),
        Exclusion::HintForOtherZone => {
            let zone = if node.zone.is_empty() {
                "\"\""
            } else {
                node.zone
            };
            format!(
                "topology hint for another zone (forZones {}; this node is in zone {zone})",
                hints(&endpoint.zone_hints)
            )
        }
        Exclusion::HintForOtherNode => format!(
            "topology hint for another node (forNodes {})",
            hints(&endpoint.node_hints)
        ),
        Exclusion::NotLocal => format!(
            "not local: runs on {} and {}, so only this node's endpoints are used",
            endpoint
                .node_name
                .as_deref()
                .map(|n| format!("node {n}"))
                .unwrap_or_else(|| "no known node".into()),
            policies.names()
        ),
        Exclusion::SetNotUsed => "set not used by this port under its traffic policies".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn endpoint() -> EndpointInfo {
        EndpointInfo {
            address: "10.244.2.5".parse().unwrap(),
            port: 8080,
            ready: true,
            serving: true,
            terminating: false,
            node_name: Some(Arc::from("node-b")),
            zone: Some(Arc::from("zone-b")),
            zone_hints: Some(Arc::from(vec!["zone-b".to_string()])),
            node_hints: None,
        }
    }

    const NODE: NodeView<'static> = NodeView {
        name: "node-a",
        zone: "zone-a",
    };

    #[test]
    fn not_local_names_the_endpoints_node_and_the_policy() {
        let text = describe(
            Exclusion::NotLocal,
            &endpoint(),
            NODE,
            LocalPolicies {
                internal: true,
                external: false,
            },
        );
        assert_eq!(
            text,
            "not local: runs on node node-b and internalTrafficPolicy: Local, so only this \
             node's endpoints are used"
        );
    }

    #[test]
    fn zone_hint_names_the_hinted_zone_and_this_nodes_zone() {
        let text = describe(
            Exclusion::HintForOtherZone,
            &endpoint(),
            NODE,
            LocalPolicies {
                internal: false,
                external: false,
            },
        );
        assert!(text.contains("forZones zone-b"), "{text}");
        assert!(text.contains("this node is in zone zone-a"), "{text}");
    }

    #[test]
    fn every_exclusion_has_distinct_wording() {
        let all = [
            Exclusion::NotReady,
            Exclusion::TerminatingWhileOthersReady,
            Exclusion::NotServing,
            Exclusion::HintForOtherZone,
            Exclusion::HintForOtherNode,
            Exclusion::NotLocal,
            Exclusion::SetNotUsed,
        ];
        let policies = LocalPolicies {
            internal: false,
            external: true,
        };
        let texts: std::collections::BTreeSet<String> = all
            .iter()
            .map(|e| describe(*e, &endpoint(), NODE, policies))
            .collect();
        assert_eq!(texts.len(), all.len());
    }
}
