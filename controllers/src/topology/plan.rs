//! The EndpointSlice plan of one Service with topology hints (upstream `reconcileByAddressType`:
//! `reconcileByPortMapping`, then `topologyCache.AddHints` or, without the annotation,
//! `RemoveHints` plus the `TopologyAwareHintsDisabled` Event).
//!
//! With `service.kubernetes.io/topology-mode: Auto` the slices are planned as if no endpoint had
//! hints (upstream's `EndpointsEqualBeyondHash` ignores hints), so hint changes alone never make
//! a slice "changed"; [`TopologyCache::add_hints_to_plan`] then assigns the hints. Without the
//! annotation, hints follow `spec.trafficDistribution` inside [`plan_slices`], and any hints
//! left from the annotation are rewritten by the ordinary plan.

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::slices::endpoint_set::{address_types_for_service, NodeLookup};
use crate::slices::plan::{plan_slices, SlicePlan, SlicePlanConfig};
use crate::topology::cache::{HintEvent, TopologyCache};
use crate::topology::hints::topology_mode_auto;

/// A copy of the slice with every endpoint's hints removed.
pub fn without_hints(slice: &EndpointSlice) -> EndpointSlice {
    let mut copy = slice.clone();
    for endpoint in copy.endpoints.iter_mut() {
        endpoint.hints = None;
    }
    copy
}

/// Plans the slices of `service` like [`plan_slices`] and adds topology-mode hints; returns
/// the plan and the Events to record on the Service. `service_key` is `namespace/name`.
pub fn plan_slices_with_topology(
    service: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    nodes: &dyn Fn(&str) -> NodeLookup,
    config: &SlicePlanConfig,
    topology: &TopologyCache,
    service_key: &str,
) -> (SlicePlan, Vec<HintEvent>) {
    let address_types = address_types_for_service(service);
    if topology_mode_auto(service) {
        // Only slices that carry hints are copied.
        let stripped: Vec<Option<EndpointSlice>> = existing
            .iter()
            .map(|s| {
                s.endpoints
                    .iter()
                    .any(|e| e.hints.is_some())
                    .then(|| without_hints(s))
            })
            .collect();
        let stripped_refs: Vec<&EndpointSlice> = existing
            .iter()
            .zip(&stripped)
            .map(|(original, copy)| copy.as_ref().unwrap_or(original))
            .collect();
        let mut plan = plan_slices(service, pods, &stripped_refs, nodes, config);
        let events = topology.add_hints_to_plan(service_key, &address_types, &mut plan, existing);
        (plan, events)
    } else {
        let plan = plan_slices(service, pods, existing, nodes, config);
        let events = address_types
            .iter()
            .flat_map(|t| topology.annotation_absent(service_key, t))
            .collect();
        (plan, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::ANNOTATION_TOPOLOGY_MODE;
    use crate::slices::endpoint_set::tests::{pod, service};
    use crate::topology::cache::REASON_HINTS_DISABLED;
    use k8s_openapi::api::core::v1::Node;
    use std::collections::BTreeMap;

    /// Nodes `node-a`, `node-b`, `node-c` with equal CPU; the zone is the node's suffix.
    fn lookup(node: &str) -> NodeLookup {
        NodeLookup::Found(node.strip_prefix("node-").map(|z| format!("zone-{z}")))
    }

    fn topology() -> TopologyCache {
        let nodes: Vec<Node> = ["a", "b", "c"]
            .iter()
            .map(|z| {
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("node-{z}"),
                                 "labels": {"topology.kubernetes.io/zone": format!("zone-{z}")}},
                    "status": {"allocatable": {"cpu": "4"},
                               "conditions": [{"type": "Ready", "status": "True"}]}
                }))
                .unwrap()
            })
            .collect();
        let cache = TopologyCache::new();
        cache.set_nodes(nodes.iter());
        cache
    }

    /// Pods `p0..` on the given zones' nodes, in order.
    fn pods(zones: &[&str]) -> Vec<Pod> {
        zones
            .iter()
            .enumerate()
            .map(|(i, z)| {
                pod(
                    &format!("p{i}"),
                    &[&format!("10.0.0.{i}")],
                    true,
                    &format!("node-{z}"),
                )
            })
            .collect()
    }

    fn auto(mut svc: Service) -> Service {
        svc.metadata.annotations =
            Some([(ANNOTATION_TOPOLOGY_MODE.to_string(), "Auto".to_string())].into());
        svc
    }

    /// Applies a plan to a map of slices by name (created slices get `s<n>` names).
    fn apply(slices: &mut BTreeMap<String, EndpointSlice>, plan: &SlicePlan) {
        for s in &plan.to_create {
            let mut s = s.clone();
            let name = format!("s{}", slices.len());
            s.metadata.name = Some(name.clone());
            slices.insert(name, s);
        }
        for s in &plan.to_update {
            slices.insert(s.metadata.name.clone().unwrap(), s.clone());
        }
        for s in &plan.to_delete {
            slices.remove(s.metadata.name.as_ref().unwrap());
        }
    }

    fn sync(
        svc: &Service,
        pods: &[Pod],
        slices: &mut BTreeMap<String, EndpointSlice>,
        cache: &TopologyCache,
    ) -> (SlicePlan, Vec<HintEvent>) {
        let pod_refs: Vec<&Pod> = pods.iter().collect();
        let existing: Vec<EndpointSlice> = slices.values().cloned().collect();
        let existing_refs: Vec<&EndpointSlice> = existing.iter().collect();
        let out = plan_slices_with_topology(
            svc,
            &pod_refs,
            &existing_refs,
            &lookup,
            &SlicePlanConfig::default(),
            cache,
            "default/web",
        );
        apply(slices, &out.0);
        out
    }

    /// Zone hinted per address.
    fn hints(slices: &BTreeMap<String, EndpointSlice>) -> BTreeMap<String, Option<String>> {
        slices
            .values()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| {
                let zone = e
                    .hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .map(|z| z[0].name.clone());
                (e.addresses[0].clone(), zone)
            })
            .collect()
    }

    #[test]
    fn auto_hints_are_written_once_and_resyncs_do_not_write() {
        let cache = topology();
        let svc = auto(service());
        // 6 / 2 / 2 over equal zones: zone-a hands its first endpoint to zone-b, its second
        // to zone-c (desired 3.33 each).
        let pods = pods(&["a", "a", "a", "a", "a", "a", "b", "b", "c", "c"]);
        let mut slices = BTreeMap::new();
        let (plan, events) = sync(&svc, &pods, &mut slices, &cache);
        assert_eq!(plan.writes(), 1);
        assert_eq!(events.len(), 1, "{events:?}");
        let got = hints(&slices);
        let per_zone = got.values().fold(BTreeMap::new(), |mut m, z| {
            *m.entry(z.clone().unwrap()).or_insert(0) += 1;
            m
        });
        assert_eq!(
            per_zone,
            [
                ("zone-a".to_string(), 4),
                ("zone-b".to_string(), 3),
                ("zone-c".to_string(), 3)
            ]
            .into()
        );
        assert_eq!(got["10.0.0.0"].as_deref(), Some("zone-b"));
        assert_eq!(got["10.0.0.1"].as_deref(), Some("zone-c"));
        let (plan, events) = sync(&svc, &pods, &mut slices, &cache);
        assert_eq!(plan.writes(), 0, "hints alone never make a slice changed");
        assert!(events.is_empty());
    }

    #[test]
    fn a_new_pod_costs_one_write_and_gets_its_own_zone_hint() {
        let cache = topology();
        let svc = auto(service());
        let mut pods = pods(&["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
        let mut slices = BTreeMap::new();
        sync(&svc, &pods, &mut slices, &cache);
        assert!(hints(&slices).values().all(|z| z.is_some()));
        pods.push(pod("p9", &["10.0.0.9"], true, "node-c"));
        let (plan, _) = sync(&svc, &pods, &mut slices, &cache);
        assert_eq!(plan.writes(), 1);
        assert_eq!(hints(&slices)["10.0.0.9"].as_deref(), Some("zone-c"));
    }

    #[test]
    fn removing_the_annotation_removes_hints_with_disabled_event() {
        let cache = topology();
        let pods = pods(&["a", "b", "c"]);
        let mut slices = BTreeMap::new();
        sync(&auto(service()), &pods, &mut slices, &cache);
        assert!(hints(&slices).values().all(|z| z.is_some()));
        let (plan, events) = sync(&service(), &pods, &mut slices, &cache);
        assert_eq!(plan.writes(), 1);
        assert!(hints(&slices).values().all(|z| z.is_none()));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, REASON_HINTS_DISABLED);
        assert_eq!(
            events[0].message,
            "Topology Aware Hints has been disabled, addressType: IPv4"
        );
    }

    #[test]
    fn annotation_wins_over_traffic_distribution() {
        let cache = topology();
        let mut svc = auto(service());
        svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
        let pods = pods(&["a", "a", "a", "a", "a", "a", "b", "b", "c", "c"]);
        let mut slices = BTreeMap::new();
        sync(&svc, &pods, &mut slices, &cache);
        // PreferClose would hint zone-a; the CPU-share allocation moves it to zone-b.
        assert_eq!(hints(&slices)["10.0.0.0"].as_deref(), Some("zone-b"));
        // Dropping the annotation hands the hints to trafficDistribution: own zone.
        svc.metadata.annotations = None;
        let (plan, _) = sync(&svc, &pods, &mut slices, &cache);
        assert_eq!(plan.writes(), 1);
        assert_eq!(hints(&slices)["10.0.0.0"].as_deref(), Some("zone-a"));
    }

    #[test]
    fn not_enough_endpoints_for_the_zones_means_no_hints() {
        let cache = topology();
        let pods = pods(&["a", "b"]);
        let mut slices = BTreeMap::new();
        let (_, events) = sync(&auto(service()), &pods, &mut slices, &cache);
        assert!(hints(&slices).values().all(|z| z.is_none()));
        assert_eq!(
            events[0].message,
            "Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4"
        );
    }
}
