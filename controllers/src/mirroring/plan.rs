//! Pure planning of mirrored EndpointSlices for custom `Endpoints` of Services without a
//! selector (upstream `pkg/controller/endpointslicemirroring` reconciler).
//!
//! One slice per subset port set and address type holds at most 1000 addresses (the rest
//! are skipped and reported); labels and annotations of the Endpoints are copied except
//! `endpoints.kubernetes.io/last-change-trigger-time` and
//! `kubectl.kubernetes.io/last-applied-configuration`; the slices carry
//! `kubernetes.io/service-name: <endpoints name>` and
//! `endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io` and are
//! owned by the Endpoints object. Endpoints labelled `endpointslice.kubernetes.io/skip-mirror:
//! "true"`, leader-election records, and Endpoints whose Service has a selector or does not
//! exist are not mirrored and their mirrored slices are deleted.
//!
//! Beyond upstream (which marks not-ready addresses ready when mirroring in some versions):
//! `notReadyAddresses` are mirrored with `ready: false`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};

use crate::endpoint_subset::addresses_with_readiness;
use crate::labels::{
    ANNOTATION_LAST_APPLIED, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_LEADER_ELECTION,
    LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_SKIP_MIRROR, MANAGED_BY_MIRRORING_CONTROLLER,
};
use crate::slices::endpoint_set::{
    address_type_of, canonical_ip, endpoints_equal_beyond_key, insert_endpoint, EndpointKey,
    EndpointSet,
};
use crate::slices::plan::{new_owned_slice, plan_delete_all, SlicePlan};
use crate::slices::port_map::PortMapKey;

/// The writes for one Endpoints object plus what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirroringPlan {
    /// Slice writes (same shape as the EndpointSlice controller's plan).
    pub slices: SlicePlan,
    /// Addresses not mirrored because a subset had more than the maximum (warning Event
    /// `TooManyAddressesToMirror`).
    pub over_capacity_skipped: usize,
    /// Addresses not mirrored because their IP does not parse (warning Event
    /// `InvalidIPAddress`).
    pub invalid_addresses: usize,
}

/// True when the Endpoints object should be mirrored: its Service exists without a selector,
/// it is not labelled `skip-mirror: "true"`, and it is not a leader-election record.
pub fn should_mirror(endpoints: &Endpoints, service: Option<&Service>) -> bool {
    let Some(service) = service else {
        return false;
    };
    if service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some()
    {
        return false;
    }
    let skip = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    let leader = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_LEADER_ELECTION));
    endpoints.metadata.deletion_timestamp.is_none() && !skip && !leader
}

fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip = canonical_ip(&address.ip)?;
    let address_type = address_type_of(&ip)?;
    Some((
        Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            target_ref: address.target_ref.clone(),
            node_name: address.node_name.clone(),
            hostname: address.hostname.clone().filter(|h| !h.is_empty()),
            ..Default::default()
        },
        address_type,
    ))
}

type GroupKey = (&'static str, PortMapKey);

/// Metadata every mirrored slice of `endpoints` carries.
fn mirrored_meta(endpoints: &Endpoints) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        endpoints.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        LABEL_MANAGED_BY.into(),
        MANAGED_BY_MIRRORING_CONTROLLER.into(),
    );
    let mut annotations = endpoints.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
    annotations.remove(ANNOTATION_LAST_APPLIED);
    (labels, annotations)
}

/// A mirrored slice for `endpoints` with `generateName: <endpoints name>-`; a slice that is
/// rewritten in place keeps that `generateName` next to its name, because a PUT without it
/// would remove it from the stored object (`shared/FACTS.md`: a rewritten slice keeps
/// `generateName`). Upstream's recycling of a slice (`recycleSlices`) keeps it the same way;
/// its rewrite of the first slice of a port set (`reconcileByPortMapping` →
/// `newEndpointSlice(..., sliceName)`) sets only the name.
fn new_mirrored_slice(
    endpoints: &Endpoints,
    ports: Vec<EndpointPort>,
    address_type: &str,
) -> EndpointSlice {
    let mut slice = new_owned_slice(&endpoints.metadata, "Endpoints", ports, address_type);
    let (labels, annotations) = mirrored_meta(endpoints);
    slice.metadata.labels = Some(labels);
    slice.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    slice
}

fn same_endpoints(existing: &[Endpoint], desired: &EndpointSet) -> bool {
    existing.len() == desired.len()
        && existing.iter().all(|e| {
            desired
                .get(&EndpointKey::of(e))
                .is_some_and(|d| endpoints_equal_beyond_key(d, e))
        })
}

/// Plans the mirrored slices of one Endpoints object. `service` is its Service (same
/// namespace/name) if it exists; `existing` are the slices labelled with its name and the
/// mirroring managed-by value; `max_per_subset` is upstream `maxEndpointsPerSubset` (1000).
pub fn plan_mirroring(
    endpoints: &Endpoints,
    service: Option<&Service>,
    existing: &[&EndpointSlice],
    max_per_subset: usize,
) -> MirroringPlan {
    if !should_mirror(endpoints, service) {
        return MirroringPlan {
            slices: plan_delete_all(existing),
            ..Default::default()
        };
    }
    let mut plan = MirroringPlan::default();
    let mut desired: BTreeMap<GroupKey, (Vec<EndpointPort>, EndpointSet)> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let key = PortMapKey::new(&ports);
        let total = subset.addresses.as_ref().map_or(0, Vec::len)
            + subset.not_ready_addresses.as_ref().map_or(0, Vec::len);
        let mut added = 0;
        let mut invalid = 0;
        for (address, is_ready) in addresses_with_readiness(subset) {
            if added >= max_per_subset {
                break;
            }
            match address_to_endpoint(address, is_ready) {
                Some((endpoint, address_type)) => {
                    let group = desired
                        .entry((address_type, key.clone()))
                        .or_insert_with(|| (ports.clone(), EndpointSet::new()));
                    insert_endpoint(&mut group.1, endpoint);
                    added += 1;
                }
                None => invalid += 1,
            }
        }
        plan.invalid_addresses += invalid;
        plan.over_capacity_skipped += total - added - invalid;
    }

    let (labels, annotations) = mirrored_meta(endpoints);
    let mut existing_by_key: BTreeMap<(String, PortMapKey), Vec<&EndpointSlice>> = BTreeMap::new();
    let mut sorted = existing.to_vec();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for slice in sorted {
        existing_by_key
            .entry((
                slice.address_type.clone(),
                PortMapKey::of_slice_ports(slice.ports.as_ref()),
            ))
            .or_default()
            .push(slice);
    }
    let out = &mut plan.slices;
    for ((address_type, key), (ports, set)) in &desired {
        out.desired_endpoints += set.len();
        out.desired_slices += 1;
        let slices = existing_by_key
            .remove(&(address_type.to_string(), key.clone()))
            .unwrap_or_default();
        let first = slices.first();
        for extra in slices.iter().skip(1) {
            out.endpoints_removed += extra.endpoints.len();
            out.to_delete.push((*extra).clone());
        }
        if let Some(first) = first {
            let meta_same = first.metadata.labels.clone().unwrap_or_default() == labels
                && first.metadata.annotations.clone().unwrap_or_default() == annotations;
            if meta_same && same_endpoints(&first.endpoints, set) {
                continue;
            }
            let existing_keys: std::collections::HashSet<EndpointKey> =
                first.endpoints.iter().map(EndpointKey::of).collect();
            out.endpoints_added += set.keys().filter(|k| !existing_keys.contains(k)).count();
            out.endpoints_removed += existing_keys
                .iter()
                .filter(|k| !set.contains_key(k))
                .count();
            // Rewritten in place under its name, keeping `generateName: <endpoints>-` (see
            // `new_mirrored_slice`).
            let mut slice = new_mirrored_slice(endpoints, ports.clone(), address_type);
            slice.metadata.name = first.metadata.name.clone();
            slice.metadata.resource_version = first.metadata.resource_version.clone();
            slice.metadata.uid = first.metadata.uid.clone();
            slice.endpoints = set.values().cloned().collect();
            out.to_update.push(slice);
        } else {
            out.endpoints_added += set.len();
            let mut slice = new_mirrored_slice(endpoints, ports.clone(), address_type);
            slice.endpoints = set.values().cloned().collect();
            out.to_create.push(slice);
        }
    }
    for slices in existing_by_key.values() {
        for slice in slices {
            out.endpoints_removed += slice.endpoints.len();
            out.to_delete.push((*slice).clone());
        }
    }
    // Upstream `recycleSlices`: reuse slices that would be deleted for creates.
    let mut i = 0;
    while i < out.to_delete.len() && !out.to_create.is_empty() {
        let pos = out
            .to_create
            .iter()
            .position(|c| c.address_type == out.to_delete[i].address_type);
        match pos {
            Some(pos) => {
                let victim = out.to_delete.remove(i);
                let mut slice = out.to_create.remove(pos);
                slice.metadata.name = victim.metadata.name.clone();
                slice.metadata.resource_version = victim.metadata.resource_version.clone();
                slice.metadata.uid = victim.metadata.uid.clone();
                out.to_update.push(slice);
            }
            None => i += 1,
        }
    }
    plan
}

#[cfg(test)]
mod tests;
