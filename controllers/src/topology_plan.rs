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

use crate::endpoint_set::{address_types_for_service, NodeLookup};
use crate::hints::topology_mode_auto;
use crate::slice_plan::{plan_slices, SlicePlan, SlicePlanConfig};
use crate::topology_cache::{HintEvent, TopologyCache};

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
