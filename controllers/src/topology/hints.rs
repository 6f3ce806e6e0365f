//! Which topology hints a Service asks for, and the `spec.trafficDistribution` hints
//! (upstream `staging/src/k8s.io/endpointslice/trafficdist/trafficdist.go`, KEP-4444 and
//! KEP-3015).
//!
//! - `PreferClose` (KEP-4444, as kube-controller-manager v1.30–v1.32 writes it, see
//!   `shared/FACTS.md`): every ready endpoint gets `hints.forZones` with one entry, its own
//!   zone, or the empty name `""` when its Node has no zone label (`preferCloseHeuristic`
//!   of those versions turns a nil `zone` into `""`).
//! - `PreferSameZone` and `PreferSameNode` (KEP-3015, v1.33+): a ready endpoint gets a zone
//!   hint only when it has a zone; `PreferSameNode` adds `hints.forNodes` with its own Node
//!   when it has one; an endpoint with neither gets no hints. (v1.33 applies this rule to
//!   `PreferClose` too; we keep v1.32's, the behaviour recorded from a real cluster.)
//! - Not-ready endpoints get no hints; without a (known) value all hints are removed
//!   (`defaultHeuristic`).
//!
//! The annotation `service.kubernetes.io/topology-mode: Auto` (or the older
//! `service.kubernetes.io/topology-aware-hints`) takes precedence over
//! `spec.trafficDistribution`, as upstream (`canUseTrafficDistribution` is false when
//! `hintsEnabled`): its hints are not computed per endpoint here but allocated over all
//! endpoints by CPU share after planning ([`crate::topology::cache`]).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, ForNode, ForZone};

use crate::labels::{ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE};

/// The hint policy derived from a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintPolicy {
    /// No hints (field unset or unknown value).
    None,
    /// `PreferClose`: a zone hint on every ready endpoint, `""` without a zone.
    PreferClose,
    /// `PreferSameZone`: zone hints on ready endpoints that have a zone.
    SameZone,
    /// `PreferSameNode`: node and zone hints.
    SameNode,
    /// `service.kubernetes.io/topology-mode: Auto`: zone hints allocated by CPU share after
    /// planning; endpoints are planned without hints.
    TopologyAuto,
}

/// Upstream `hintsEnabled`: `service.kubernetes.io/topology-aware-hints` if present (it wins
/// when both are set), else `service.kubernetes.io/topology-mode`, equal to `Auto` or `auto`.
pub fn topology_mode_auto(service: &Service) -> bool {
    let Some(annotations) = service.metadata.annotations.as_ref() else {
        return false;
    };
    let value = annotations
        .get(ANNOTATION_TOPOLOGY_AWARE_HINTS)
        .or_else(|| annotations.get(ANNOTATION_TOPOLOGY_MODE));
    matches!(value.map(String::as_str), Some("Auto") | Some("auto"))
}

impl HintPolicy {
    /// Reads the topology annotations, then `spec.trafficDistribution`.
    pub fn for_service(service: &Service) -> Self {
        if topology_mode_auto(service) {
            return HintPolicy::TopologyAuto;
        }
        match service
            .spec
            .as_ref()
            .and_then(|s| s.traffic_distribution.as_deref())
        {
            Some("PreferClose") => HintPolicy::PreferClose,
            Some("PreferSameZone") => HintPolicy::SameZone,
            Some("PreferSameNode") => HintPolicy::SameNode,
            _ => HintPolicy::None,
        }
    }

    /// The `trafficDistribution` label value used in metrics (upstream uses the raw value,
    /// and none when the topology annotation is in force).
    pub fn metric_label(self) -> &'static str {
        match self {
            HintPolicy::None | HintPolicy::TopologyAuto => "",
            HintPolicy::PreferClose => "PreferClose",
            HintPolicy::SameZone => "PreferSameZone",
            HintPolicy::SameNode => "PreferSameNode",
        }
    }
}

/// Sets `endpoint.hints` as upstream's `preferCloseHeuristic.update` / `defaultHeuristic`
/// would (rules in the module docs): only ready endpoints get hints.
/// [`HintPolicy::TopologyAuto`] leaves none (they are allocated later over the whole
/// Service).
pub fn apply_hints(policy: HintPolicy, endpoint: &mut Endpoint) {
    let ready = endpoint
        .conditions
        .as_ref()
        .and_then(|c| c.ready)
        .unwrap_or(false);
    if matches!(policy, HintPolicy::None | HintPolicy::TopologyAuto) || !ready {
        endpoint.hints = None;
        return;
    }
    let for_zones = match (policy, endpoint.zone.as_ref()) {
        (_, Some(zone)) => Some(vec![ForZone { name: zone.clone() }]),
        (HintPolicy::PreferClose, None) => Some(vec![ForZone {
            name: String::new(),
        }]),
        (_, None) => None,
    };
    let for_nodes = match policy {
        HintPolicy::SameNode => endpoint
            .node_name
            .as_ref()
            .map(|n| vec![ForNode { name: n.clone() }]),
        _ => None,
    };
    endpoint.hints = if for_zones.is_some() || for_nodes.is_some() {
        Some(EndpointHints {
            for_zones,
            for_nodes,
        })
    } else {
        None
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn svc(td: Option<&str>) -> Service {
        Service {
            spec: Some(ServiceSpec {
                traffic_distribution: td.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ep(ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec!["10.0.0.1".into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            zone: Some("zone-a".into()),
            node_name: Some("node-1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn traffic_distribution_values_map_to_hint_policies() {
        let cases = [
            (None, HintPolicy::None),
            (Some("PreferClose"), HintPolicy::PreferClose),
            (Some("PreferSameZone"), HintPolicy::SameZone),
            (Some("PreferSameNode"), HintPolicy::SameNode),
            (Some("Bogus"), HintPolicy::None),
        ];
        for (td, want) in cases {
            assert_eq!(HintPolicy::for_service(&svc(td)), want, "{td:?}");
        }
    }

    fn annotated(pairs: &[(&str, &str)], td: Option<&str>) -> Service {
        let mut s = svc(td);
        s.metadata.annotations = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s
    }

    /// Upstream `hintsEnabled` table, and precedence over `trafficDistribution`.
    #[test]
    fn topology_annotations_map_to_auto_and_win_over_traffic_distribution() {
        const MODE: &str = ANNOTATION_TOPOLOGY_MODE;
        const OLD: &str = ANNOTATION_TOPOLOGY_AWARE_HINTS;
        type Row = (
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
            HintPolicy,
        );
        let cases: [Row; 9] = [
            (&[(MODE, "Auto")], None, HintPolicy::TopologyAuto),
            (&[(MODE, "auto")], None, HintPolicy::TopologyAuto),
            (&[(MODE, "AUTO")], None, HintPolicy::None),
            (&[(MODE, "Disabled")], None, HintPolicy::None),
            (&[(OLD, "auto")], None, HintPolicy::TopologyAuto),
            // The deprecated key, when present, decides.
            (&[(OLD, "Disabled"), (MODE, "Auto")], None, HintPolicy::None),
            (
                &[(OLD, "Auto"), (MODE, "Disabled")],
                None,
                HintPolicy::TopologyAuto,
            ),
            (
                &[(MODE, "Auto")],
                Some("PreferClose"),
                HintPolicy::TopologyAuto,
            ),
            (
                &[(MODE, "Disabled")],
                Some("PreferClose"),
                HintPolicy::PreferClose,
            ),
        ];
        for (annotations, td, want) in cases {
            let s = annotated(annotations, td);
            assert_eq!(HintPolicy::for_service(&s), want, "{annotations:?} {td:?}");
        }
    }

    #[test]
    fn topology_auto_plans_endpoints_without_hints() {
        let mut e = ep(true);
        apply_hints(HintPolicy::SameZone, &mut e);
        apply_hints(HintPolicy::TopologyAuto, &mut e);
        assert!(e.hints.is_none());
        assert_eq!(HintPolicy::TopologyAuto.metric_label(), "");
    }

    fn hints_of(e: &Endpoint) -> Option<(Vec<&str>, Vec<&str>)> {
        e.hints.as_ref().map(|h| {
            (
                h.for_zones
                    .iter()
                    .flatten()
                    .map(|z| z.name.as_str())
                    .collect(),
                h.for_nodes
                    .iter()
                    .flatten()
                    .map(|n| n.name.as_str())
                    .collect(),
            )
        })
    }

    /// Upstream `trafficdist.preferCloseHeuristic.update` / `defaultHeuristic.update`, one
    /// row per rule (zone / node of the endpoint's Node, readiness → hints).
    #[test]
    fn traffic_distribution_hints_follow_upstream_trafficdist() {
        type Hints = Option<(&'static [&'static str], &'static [&'static str])>;
        /// Case name, policy, the Node's zone, the endpoint's node, ready, hints wanted.
        type Row = (
            &'static str,
            HintPolicy,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            Hints,
        );
        let rows: [Row; 13] = [
            // v1.30–v1.32 PreferClose: every ready endpoint gets its zone as the one hint...
            (
                "PreferClose: own zone",
                HintPolicy::PreferClose,
                Some("zone-a"),
                Some("node-1"),
                true,
                Some((&["zone-a"], &[])),
            ),
            // ...and a Node without zone label gives the empty zone name (FACTS.md:
            // `hints: {forZones: [{name: ""}]}`).
            (
                "PreferClose: Node without zone → \"\"",
                HintPolicy::PreferClose,
                None,
                Some("node-1"),
                true,
                Some((&[""], &[])),
            ),
            (
                "PreferClose: no Node at all → \"\"",
                HintPolicy::PreferClose,
                None,
                None,
                true,
                Some((&[""], &[])),
            ),
            (
                "PreferClose: not ready → none",
                HintPolicy::PreferClose,
                Some("zone-a"),
                Some("node-1"),
                false,
                None,
            ),
            // v1.33+ PreferSameZone: a zone hint only for an endpoint with a zone.
            (
                "PreferSameZone: own zone",
                HintPolicy::SameZone,
                Some("zone-a"),
                Some("node-1"),
                true,
                Some((&["zone-a"], &[])),
            ),
            (
                "PreferSameZone: no zone → none",
                HintPolicy::SameZone,
                None,
                Some("node-1"),
                true,
                None,
            ),
            (
                "PreferSameZone: not ready → none",
                HintPolicy::SameZone,
                Some("zone-a"),
                None,
                false,
                None,
            ),
            // v1.33+ PreferSameNode: node hint (with a Node) and zone hint (with a zone).
            (
                "PreferSameNode: zone and node",
                HintPolicy::SameNode,
                Some("zone-a"),
                Some("node-1"),
                true,
                Some((&["zone-a"], &["node-1"])),
            ),
            (
                "PreferSameNode: node only",
                HintPolicy::SameNode,
                None,
                Some("node-1"),
                true,
                Some((&[], &["node-1"])),
            ),
            (
                "PreferSameNode: zone only",
                HintPolicy::SameNode,
                Some("zone-a"),
                None,
                true,
                Some((&["zone-a"], &[])),
            ),
            (
                "PreferSameNode: neither → none",
                HintPolicy::SameNode,
                None,
                None,
                true,
                None,
            ),
            // defaultHeuristic: no (known) trafficDistribution removes every hint.
            (
                "unset: hints removed",
                HintPolicy::None,
                Some("zone-a"),
                Some("node-1"),
                true,
                None,
            ),
            (
                "topology-mode Auto: allocated later",
                HintPolicy::TopologyAuto,
                Some("zone-a"),
                Some("node-1"),
                true,
                None,
            ),
        ];
        for (rule, policy, zone, node, ready, want) in rows {
            let mut e = ep(ready);
            e.zone = zone.map(String::from);
            e.node_name = node.map(String::from);
            // A stale hint from an earlier policy must not survive.
            e.hints = Some(EndpointHints {
                for_zones: Some(vec![ForZone {
                    name: "stale".into(),
                }]),
                for_nodes: None,
            });
            apply_hints(policy, &mut e);
            let want = want.map(|(z, n)| (z.to_vec(), n.to_vec()));
            assert_eq!(hints_of(&e), want, "{rule}");
        }
    }

    #[test]
    fn prefer_close_sets_own_zone_only() {
        let mut e = ep(true);
        apply_hints(HintPolicy::SameZone, &mut e);
        let h = e.hints.unwrap();
        assert_eq!(h.for_zones.unwrap()[0].name, "zone-a");
        assert!(h.for_nodes.is_none());
    }

    #[test]
    fn prefer_same_node_sets_node_and_zone() {
        let mut e = ep(true);
        apply_hints(HintPolicy::SameNode, &mut e);
        let h = e.hints.unwrap();
        assert_eq!(h.for_nodes.unwrap()[0].name, "node-1");
        assert_eq!(h.for_zones.unwrap()[0].name, "zone-a");
    }

    #[test]
    fn hints_removed_when_unset_or_not_ready() {
        let mut e = ep(true);
        apply_hints(HintPolicy::SameZone, &mut e);
        apply_hints(HintPolicy::None, &mut e);
        assert!(e.hints.is_none());
        let mut nr = ep(false);
        apply_hints(HintPolicy::SameNode, &mut nr);
        assert!(nr.hints.is_none());
    }

    #[test]
    fn no_zone_and_no_node_gives_no_hints() {
        let mut e = ep(true);
        e.zone = None;
        apply_hints(HintPolicy::SameZone, &mut e);
        assert!(e.hints.is_none());
    }
}
