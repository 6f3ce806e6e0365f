//! Topology aware hints for Services annotated `service.kubernetes.io/topology-mode: Auto`
//! (upstream `k8s.io/endpointslice/topologycache` `TopologyCache` and `SliceInfo`, KEP-2433).
//!
//! The EndpointSlice plan is computed first without hints (existing hints are not compared);
//! then, per address type, [`assign_hints`] gives every ready endpoint of the slices being
//! created or updated a `hints.forZones` entry: its own zone, and for zones holding more than
//! their CPU share, some endpoints are pointed at zones holding less
//! ([`crate::topology::allocation`]). Unchanged slices keep their hints if they still fit the
//! allocation, else they are rewritten. When the heuristic cannot work (insufficient node
//! information, fewer ready endpoints than zones, minimums beyond the overload threshold, a
//! ready endpoint without zone) all hints of the address type are removed.
//!
//! [`TopologyCache`] holds the state upstream keeps between syncs: the zones' CPU shares (from
//! [`crate::topology::cpu`]), the hints per zone each Service got, and which Services have hints
//! (for the `TopologyAwareHintsEnabled` / `TopologyAwareHintsDisabled` Events).
//!
//! Beyond upstream: a repeated `TopologyAwareHintsDisabled` warning with the same message for
//! the same Service and address type is emitted once (client-go's event correlator would
//! fold repeats into one Event with a count; our recorder writes one Event per call), a
//! deleted Service's state is dropped, and unchanged slices still carrying `hints.forNodes`
//! (from an earlier `trafficDistribution: PreferSameNode`) are rewritten with zone hints only.
//! Zones are visited by name where upstream iterates Go maps, and slices being created and
//! updated are visited after the plan turned create+delete pairs into updates (upstream assigns
//! hints before that step), so which endpoint is handed to another zone can differ from a
//! given upstream run (and so can the counts per zone where upstream breaks a tie between two
//! zones at random).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use parking_lot::Mutex;

use crate::slices::plan::SlicePlan;
use crate::topology::allocation::{
    allocations, endpoint_ready, endpoint_zone, giving_and_receiving_zones, hints_by_zone,
    redistribute_hints, service_overloaded, with_address_type, Allocation, HintsDisabled,
};
use crate::topology::cpu::{zone_cpu, ZoneCpu};

/// Event reason when hints were added (upstream `TopologyAwareHintsEnabled`).
pub const REASON_HINTS_ENABLED: &str = "TopologyAwareHintsEnabled";
/// Event reason when hints were removed (upstream `TopologyAwareHintsDisabled`).
pub const REASON_HINTS_DISABLED: &str = "TopologyAwareHintsDisabled";
/// Upstream message of [`REASON_HINTS_ENABLED`] (before the address type is appended).
pub const MESSAGE_HINTS_ENABLED: &str = "Topology Aware Hints has been enabled";

/// An Event to record on the Service (upstream `EventBuilder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintEvent {
    /// `Warning` (true) or `Normal`.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message ending in `, addressType: <type>`.
    pub message: String,
}

impl HintEvent {
    fn disabled(reason: &HintsDisabled, address_type: &str) -> Self {
        HintEvent {
            warning: true,
            reason: REASON_HINTS_DISABLED,
            message: with_address_type(&reason.message(), address_type),
        }
    }
}

/// The slices of one Service and address type while hints are assigned (upstream
/// `SliceInfo`): those the plan creates or updates, and the existing ones it leaves alone.
#[derive(Debug, Default)]
pub struct SliceInfo<'a> {
    /// Slices to create.
    pub to_create: Vec<EndpointSlice>,
    /// Slices to update; unchanged slices whose hints must change are moved here.
    pub to_update: Vec<EndpointSlice>,
    /// Existing slices not written by the plan.
    pub unchanged: Vec<&'a EndpointSlice>,
}

impl SliceInfo<'_> {
    /// Ready endpoints over all slices (upstream `getTotalReadyEndpoints`).
    pub fn total_ready_endpoints(&self) -> usize {
        let count = |s: &EndpointSlice| s.endpoints.iter().filter(|e| endpoint_ready(e)).count();
        self.to_create.iter().map(count).sum::<usize>()
            + self.to_update.iter().map(count).sum::<usize>()
            + self.unchanged.iter().map(|s| count(s)).sum::<usize>()
    }

    /// Upstream `getAllocatedHintsByZone`: counts the hints of unchanged slices that still fit
    /// `allocations` and moves the others (as copies) to `to_update`. Beyond upstream, a slice
    /// with `hints.forNodes` left over from `trafficDistribution: PreferSameNode` is rewritten
    /// too (upstream keeps such node hints alongside its zone hints).
    fn allocated_hints_by_zone(
        &mut self,
        allocations: &BTreeMap<String, Allocation>,
    ) -> BTreeMap<String, i64> {
        let mut allocated: BTreeMap<String, i64> = BTreeMap::new();
        let mut keep = Vec::with_capacity(self.unchanged.len());
        for slice in std::mem::take(&mut self.unchanged) {
            let node_hints = slice.endpoints.iter().any(|e| {
                e.hints
                    .as_ref()
                    .and_then(|h| h.for_nodes.as_ref())
                    .is_some_and(|n| !n.is_empty())
            });
            let fitting = if node_hints {
                None
            } else {
                hints_by_zone(slice, &allocated, allocations)
            };
            match fitting {
                Some(by_zone) => {
                    for (zone, n) in by_zone {
                        *allocated.entry(zone).or_insert(0) += n;
                    }
                    keep.push(slice);
                }
                None => self.to_update.push(slice.clone()),
            }
        }
        self.unchanged = keep;
        allocated
    }

    /// Upstream `RemoveHintsFromSlices`: clears hints on the slices being written and moves
    /// unchanged slices that carry hints to `to_update` with their hints cleared.
    pub fn remove_hints(&mut self) {
        for slice in self.to_create.iter_mut().chain(self.to_update.iter_mut()) {
            for endpoint in slice.endpoints.iter_mut() {
                endpoint.hints = None;
            }
        }
        let mut keep = Vec::with_capacity(self.unchanged.len());
        for slice in std::mem::take(&mut self.unchanged) {
            if slice.endpoints.iter().any(|e| e.hints.is_some()) {
                let mut copy = slice.clone();
                for endpoint in copy.endpoints.iter_mut() {
                    endpoint.hints = None;
                }
                self.to_update.push(copy);
            } else {
                keep.push(slice);
            }
        }
        self.unchanged = keep;
    }
}

/// Assigns zone hints to the slices of `info` for the zones' CPU shares `ratios` (upstream
/// `AddHints` without the cache bookkeeping). Returns the number of hints per zone, or why
/// hints were removed instead (all hints of `info` are then cleared).
pub fn assign_hints(
    ratios: Option<&BTreeMap<String, f64>>,
    info: &mut SliceInfo<'_>,
) -> Result<BTreeMap<String, i64>, HintsDisabled> {
    let total = info.total_ready_endpoints();
    let allocations = match allocations(ratios, total) {
        Ok(a) => a,
        Err(reason) => {
            info.remove_hints();
            return Err(reason);
        }
    };
    let mut allocated = info.allocated_hints_by_zone(&allocations);

    // 1. Every ready endpoint of the slices being written serves its own zone.
    let mut missing_zone = false;
    for slice in info.to_create.iter_mut().chain(info.to_update.iter_mut()) {
        for endpoint in slice.endpoints.iter_mut() {
            if !endpoint_ready(endpoint) {
                endpoint.hints = None;
                continue;
            }
            let Some(zone) = endpoint_zone(endpoint).map(String::from) else {
                missing_zone = true;
                break;
            };
            endpoint.hints = Some(crate::topology::allocation::zone_hint(&zone));
            *allocated.entry(zone).or_insert(0) += 1;
        }
        if missing_zone {
            break;
        }
    }
    if missing_zone {
        info.remove_hints();
        return Err(HintsDisabled::NoZoneSpecified);
    }

    // 2. Zones above their share donate endpoints to zones below it.
    let (mut giving, mut receiving) = giving_and_receiving_zones(&allocations, &allocated);
    let mut writable: Vec<&mut EndpointSlice> = info
        .to_create
        .iter_mut()
        .chain(info.to_update.iter_mut())
        .collect();
    // 3. Re-point endpoints accordingly.
    let changes = redistribute_hints(&mut writable, &mut giving, &mut receiving);
    for (zone, diff) in changes {
        *allocated.entry(zone).or_insert(0) += diff;
    }
    if allocated.is_empty() {
        info.remove_hints();
        return Err(HintsDisabled::NoAllocatedHintsForZones);
    }
    Ok(allocated)
}

#[derive(Default)]
struct Inner {
    /// `None` until the Nodes were first seen.
    zone_cpu: Option<Option<ZoneCpu>>,
    /// Service key → address type → hints per zone (upstream `endpointsByService`).
    hints_by_service: HashMap<String, BTreeMap<String, BTreeMap<String, i64>>>,
    /// Services with hints (upstream `hintsPopulatedByService`).
    populated: HashSet<String>,
    /// Last `TopologyAwareHintsDisabled` message per (Service key, address type).
    last_disabled: HashMap<(String, String), String>,
}

/// Zone CPU shares and per-Service hint state shared by the syncs of the EndpointSlice
/// controller (upstream `TopologyCache`).
#[derive(Default)]
pub struct TopologyCache {
    inner: Mutex<Inner>,
}

impl TopologyCache {
    /// An empty cache (no Nodes seen yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Recomputes the zones' CPU shares from all Nodes (upstream `SetNodes`); true when they
    /// changed (including sufficient ↔ insufficient).
    pub fn set_nodes<'a>(&self, nodes: impl IntoIterator<Item = &'a Node>) -> bool {
        let computed = zone_cpu(nodes);
        let mut inner = self.inner.lock();
        let changed = inner.zone_cpu.as_ref() != Some(&computed);
        inner.zone_cpu = Some(computed);
        changed
    }

    /// True once [`TopologyCache::set_nodes`] ran.
    pub fn has_nodes(&self) -> bool {
        self.inner.lock().zone_cpu.is_some()
    }

    /// The current zone CPU shares; `None` when the node information is insufficient.
    pub fn ratios(&self) -> Option<BTreeMap<String, f64>> {
        self.inner
            .lock()
            .zone_cpu
            .as_ref()
            .and_then(|z| z.as_ref())
            .map(|z| z.ratios.clone())
    }

    /// Services whose hints leave a zone below its minimum share under the current CPU
    /// shares (upstream `GetOverloadedServices`), sorted.
    pub fn overloaded_services(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let ratios = inner
            .zone_cpu
            .as_ref()
            .and_then(|z| z.as_ref())
            .map(|z| &z.ratios);
        let mut keys: Vec<String> = inner
            .hints_by_service
            .iter()
            .filter(|(_, by_type)| by_type.values().any(|h| service_overloaded(h, ratios)))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    #[cfg(test)]
    /// True when the Service currently has hints from this heuristic (upstream
    /// `HasPopulatedHints`).
    pub fn has_populated_hints(&self, service_key: &str) -> bool {
        self.inner.lock().populated.contains(service_key)
    }

    #[cfg(test)]
    /// Hints per zone recorded for a Service and address type.
    pub fn hints_for(
        &self,
        service_key: &str,
        address_type: &str,
    ) -> Option<BTreeMap<String, i64>> {
        self.inner
            .lock()
            .hints_by_service
            .get(service_key)?
            .get(address_type)
            .cloned()
    }

    /// Forgets a deleted Service.
    pub fn delete_service(&self, service_key: &str) {
        let mut inner = self.inner.lock();
        inner.hints_by_service.remove(service_key);
        inner.populated.remove(service_key);
        inner.last_disabled.retain(|(k, _), _| k != service_key);
    }

    /// Upstream `RemoveHints`.
    fn remove_state(inner: &mut Inner, service_key: &str, address_type: &str) {
        if let Some(by_type) = inner.hints_by_service.get_mut(service_key) {
            by_type.remove(address_type);
            if by_type.is_empty() {
                inner.hints_by_service.remove(service_key);
            }
        }
        inner.populated.remove(service_key);
    }

    /// Upstream `AddHints`: assigns hints to `info` and returns the Events to record.
    pub fn add_hints(
        &self,
        service_key: &str,
        address_type: &str,
        info: &mut SliceInfo<'_>,
    ) -> Vec<HintEvent> {
        let ratios = self.ratios();
        let result = assign_hints(ratios.as_ref(), info);
        let mut inner = self.inner.lock();
        let event_key = (service_key.to_string(), address_type.to_string());
        match result {
            Err(reason) => {
                tracing::info!(
                    key = service_key,
                    address_type,
                    reason = %reason.message(),
                    "removing topology hints"
                );
                Self::remove_state(&mut inner, service_key, address_type);
                let event = HintEvent::disabled(&reason, address_type);
                if inner.last_disabled.get(&event_key) == Some(&event.message) {
                    return Vec::new();
                }
                inner.last_disabled.insert(event_key, event.message.clone());
                vec![event]
            }
            Ok(by_zone) => {
                inner.last_disabled.remove(&event_key);
                let was_enabled = inner.populated.contains(service_key);
                inner
                    .hints_by_service
                    .entry(service_key.to_string())
                    .or_default()
                    .insert(address_type.to_string(), by_zone);
                inner.populated.insert(service_key.to_string());
                if was_enabled {
                    return Vec::new();
                }
                tracing::info!(
                    key = service_key,
                    address_type,
                    "topology aware hints enabled"
                );
                vec![HintEvent {
                    warning: false,
                    reason: REASON_HINTS_ENABLED,
                    message: with_address_type(MESSAGE_HINTS_ENABLED, address_type),
                }]
            }
        }
    }

    /// For a Service without the annotation: forgets its hint state, with upstream's
    /// `TopologyAwareHintsDisabled` Event if it had hints (the annotation was removed). The
    /// slices' hints themselves follow `spec.trafficDistribution` in the ordinary plan.
    pub fn annotation_absent(&self, service_key: &str, address_type: &str) -> Vec<HintEvent> {
        let mut inner = self.inner.lock();
        inner
            .last_disabled
            .remove(&(service_key.to_string(), address_type.to_string()));
        let had = inner.populated.contains(service_key);
        Self::remove_state(&mut inner, service_key, address_type);
        if had {
            tracing::info!(
                key = service_key,
                address_type,
                "topology annotation removed, removing hints"
            );
            vec![HintEvent::disabled(
                &HintsDisabled::AnnotationRemoved,
                address_type,
            )]
        } else {
            Vec::new()
        }
    }

    /// Adds hints to a Service's slice plan, per address type: `plan` was computed against
    /// `existing` with hints ignored; slices it creates or updates get hints, and existing
    /// slices whose hints no longer fit are added to its updates. Returns the Events.
    pub fn add_hints_to_plan(
        &self,
        service_key: &str,
        address_types: &[&str],
        plan: &mut SlicePlan,
        existing: &[&EndpointSlice],
    ) -> Vec<HintEvent> {
        let mut events = Vec::new();
        for address_type in address_types {
            let written: BTreeSet<&str> = plan
                .to_update
                .iter()
                .chain(plan.to_delete.iter())
                .filter_map(|s| s.metadata.name.as_deref())
                .collect();
            let unchanged: Vec<&EndpointSlice> = existing
                .iter()
                .copied()
                .filter(|s| s.address_type == *address_type)
                .filter(|s| {
                    s.metadata
                        .name
                        .as_deref()
                        .is_none_or(|n| !written.contains(n))
                })
                .collect();
            let (to_create, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.to_create)
                .into_iter()
                .partition(|s| s.address_type == *address_type);
            plan.to_create = rest;
            let (to_update, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.to_update)
                .into_iter()
                .partition(|s| s.address_type == *address_type);
            plan.to_update = rest;
            let mut info = SliceInfo {
                to_create,
                to_update,
                unchanged,
            };
            events.extend(self.add_hints(service_key, address_type, &mut info));
            plan.to_create.extend(info.to_create);
            plan.to_update.extend(info.to_update);
        }
        events
    }
}

#[cfg(test)]
mod tests;
