//! Pure EndpointSlice planning for a selector-based Service (upstream
//! `k8s.io/endpointslice` `Reconciler.Reconcile`, `reconcileByAddressType`,
//! `reconcileByPortMapping` and the create/delete recycling of `finalize`).
//!
//! Minimal churn, as upstream:
//! 1. existing slices keep endpoints that are still desired; gone endpoints are removed and
//!    changed ones updated in place; a slice left empty is deleted;
//! 2. slices already being updated are filled with new endpoints, fullest first;
//! 3. what is left goes into new slices, except that a remainder smaller than a slice is put
//!    into the one unchanged slice it fits best;
//! 4. create+delete pairs become updates; slices are never rebalanced for their own sake.
//!
//! A Service without endpoints keeps one empty placeholder slice per address type.
//! Iteration order is deterministic (by key/name) where upstream uses map order.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::labels::{
    is_reserved_slice_label, ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
};
use crate::slices::endpoint_set::{
    address_types_for_service, desired_endpoints, endpoints_equal_beyond_key, is_service_ip_set,
    EndpointKey, EndpointSet, NodeLookup,
};
use crate::slices::port_map::PortMapKey;

/// Parameters of EndpointSlice planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePlanConfig {
    /// `--max-endpoints-per-slice` (1..=1000).
    pub max_endpoints_per_slice: usize,
    /// Our `endpointslice.kubernetes.io/managed-by` value.
    pub managed_by: String,
}

impl Default for SlicePlanConfig {
    fn default() -> Self {
        SlicePlanConfig {
            max_endpoints_per_slice: crate::labels::DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            managed_by: crate::labels::MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_string(),
        }
    }
}

/// The writes one sync of a Service needs: what to create, update (PUT, carrying the
/// existing resourceVersion) and delete, plus numbers for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlicePlan {
    /// Slices to create (`generateName: <service>-`).
    pub to_create: Vec<EndpointSlice>,
    /// Slices to replace.
    pub to_update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub to_delete: Vec<EndpointSlice>,
    /// Endpoints not present in any existing slice (upstream `numAdded`).
    pub endpoints_added: usize,
    /// Endpoints dropped from existing slices (upstream `numRemoved`).
    pub endpoints_removed: usize,
    /// Desired endpoints over all address types.
    pub desired_endpoints: usize,
    /// Slices that exist once the plan is applied.
    pub desired_slices: usize,
    /// Pods skipped because their Node is not known: `(pod, node)`.
    pub missing_nodes: Vec<(String, String)>,
}

impl SlicePlan {
    /// Number of API writes the plan issues.
    pub fn writes(&self) -> usize {
        self.to_create.len() + self.to_update.len() + self.to_delete.len()
    }

    /// True when nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.writes() == 0
    }

    /// Sets (or, with `None`, clears) `endpoints.kubernetes.io/last-change-trigger-time` on
    /// every slice to create or update (upstream `addTriggerTimeAnnotation`).
    pub fn stamp_trigger_time(&mut self, trigger: Option<Timestamp>) {
        for slice in self.to_create.iter_mut().chain(self.to_update.iter_mut()) {
            let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
            match trigger {
                Some(t) => {
                    annotations.insert(ANNOTATION_LAST_CHANGE_TRIGGER_TIME.into(), t.to_string());
                }
                None => {
                    annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
                }
            }
        }
    }
}

/// Plans the slices of a Service that should exist.
///
/// `pods` are the Pods matching the Service's selector; `existing` are the slices labelled
/// with the Service's name and our managed-by value. When the Service is being deleted no
/// slices are created (upstream avoids racing the garbage collector).
pub fn plan_slices(
    service: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    nodes: &dyn Fn(&str) -> NodeLookup,
    config: &SlicePlanConfig,
) -> SlicePlan {
    let address_types = address_types_for_service(service);
    let mut plan = SlicePlan::default();
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut unsupported = Vec::new();
    for slice in existing {
        if address_types.contains(&slice.address_type.as_str()) {
            by_type
                .entry(slice.address_type.as_str())
                .or_default()
                .push(slice);
        } else {
            unsupported.push((*slice).clone());
        }
    }
    for address_type in &address_types {
        let existing_of_type = by_type.remove(address_type).unwrap_or_default();
        let desired = desired_endpoints(service, pods.iter().copied(), nodes, address_type);
        plan.desired_endpoints += desired.len();
        for missing in &desired.missing_nodes {
            if !plan.missing_nodes.contains(missing) {
                plan.missing_nodes.push(missing.clone());
            }
        }
        let part = plan_address_type(
            service,
            &existing_of_type,
            desired.groups,
            address_type,
            config,
        );
        plan.endpoints_added += part.endpoints_added;
        plan.endpoints_removed += part.endpoints_removed;
        plan.desired_slices += existing_of_type.len() + part.to_create.len() - part.to_delete.len();
        plan.to_create.extend(part.to_create);
        plan.to_update.extend(part.to_update);
        plan.to_delete.extend(part.to_delete);
    }
    for slice in &unsupported {
        plan.endpoints_removed += slice.endpoints.len();
    }
    plan.to_delete.extend(unsupported);
    if service.metadata.deletion_timestamp.is_some() {
        plan.desired_slices -= plan.to_create.len();
        plan.to_create.clear();
    }
    plan
}

/// Plans deletion of all given slices (Service gone, lost its selector, or became
/// ExternalName). Beyond upstream, which leaves these to the garbage collector or keeps them.
pub fn plan_delete_all(existing: &[&EndpointSlice]) -> SlicePlan {
    SlicePlan {
        endpoints_removed: existing.iter().map(|s| s.endpoints.len()).sum(),
        to_delete: existing.iter().map(|s| (*s).clone()).collect(),
        ..Default::default()
    }
}

struct TypePlan {
    to_create: Vec<EndpointSlice>,
    to_update: Vec<EndpointSlice>,
    to_delete: Vec<EndpointSlice>,
    endpoints_added: usize,
    endpoints_removed: usize,
}

fn plan_address_type(
    service: &Service,
    existing: &[&EndpointSlice],
    desired: BTreeMap<PortMapKey, crate::slices::endpoint_set::PortGroup>,
    address_type: &str,
    config: &SlicePlanConfig,
) -> TypePlan {
    let mut out = TypePlan {
        to_create: Vec::new(),
        to_update: Vec::new(),
        to_delete: Vec::new(),
        endpoints_added: 0,
        endpoints_removed: 0,
    };
    let mut existing_by_key: BTreeMap<PortMapKey, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut sorted: Vec<&EndpointSlice> = existing.to_vec();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for slice in sorted {
        if owned_by(slice, service) {
            existing_by_key
                .entry(PortMapKey::of_slice_ports(slice.ports.as_ref()))
                .or_default()
                .push(slice);
        } else {
            out.to_delete.push(slice.clone());
        }
    }
    for (key, group) in desired.iter() {
        let slices = existing_by_key.get(key).cloned().unwrap_or_default();
        let part = reconcile_by_port_mapping(
            service,
            &slices,
            group.endpoints.clone(),
            &group.ports,
            address_type,
            config,
        );
        out.endpoints_added += part.endpoints_added;
        out.endpoints_removed += part.endpoints_removed;
        out.to_create.extend(part.to_create);
        out.to_update.extend(part.to_update);
        out.to_delete.extend(part.to_delete);
    }
    for (key, slices) in &existing_by_key {
        if !desired.contains_key(key) {
            for slice in slices {
                out.endpoints_removed += slice.endpoints.len();
                out.to_delete.push((*slice).clone());
            }
        }
    }
    // Placeholder: a Service with no endpoints of this type keeps one empty slice.
    if existing.len() == out.to_delete.len() && out.to_create.is_empty() {
        let placeholder = new_slice(service, Vec::new(), address_type, &config.managed_by);
        if out.to_delete.len() == 1 && placeholder_equal(&out.to_delete[0], &placeholder) {
            out.to_delete.clear();
        } else {
            out.to_create.push(placeholder);
        }
    }
    recycle_deletes_as_updates(service, &mut out);
    out
}

/// Upstream `finalize`: turns create+delete pairs into updates of the slice that would have
/// been deleted (same address type, owned by this Service).
fn recycle_deletes_as_updates(service: &Service, out: &mut TypePlan) {
    let mut i = 0;
    while i < out.to_delete.len() && !out.to_create.is_empty() {
        let victim = &out.to_delete[i];
        let last = out.to_create.len() - 1;
        if victim.address_type == out.to_create[last].address_type && owned_by(victim, service) {
            let victim = out.to_delete.remove(i);
            let mut slice = out.to_create.pop().expect("checked non-empty");
            // The new slice keeps its `generateName: <service>-`, as upstream's `finalize`
            // only sets the name on it: a PUT without it would drop it from the object.
            slice.metadata.name = victim.metadata.name.clone();
            slice.metadata.resource_version = victim.metadata.resource_version.clone();
            slice.metadata.uid = victim.metadata.uid.clone();
            slice.metadata.annotations = victim.metadata.annotations.clone();
            out.to_update.push(slice);
        } else {
            i += 1;
        }
    }
}

struct PortMappingPlan {
    to_create: Vec<EndpointSlice>,
    to_update: Vec<EndpointSlice>,
    to_delete: Vec<EndpointSlice>,
    endpoints_added: usize,
    endpoints_removed: usize,
}

/// Upstream `reconcileByPortMapping` for one port set.
fn reconcile_by_port_mapping(
    service: &Service,
    existing: &[&EndpointSlice],
    mut desired: EndpointSet,
    ports: &[EndpointPort],
    address_type: &str,
    config: &SlicePlanConfig,
) -> PortMappingPlan {
    let max = config.max_endpoints_per_slice.max(1);
    let mut working: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut originals: BTreeMap<String, &EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    let mut removed = 0;

    // 1. Keep desired endpoints, drop the rest, update changed ones in place.
    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        originals.insert(name.clone(), slice);
        let mut kept = Vec::with_capacity(slice.endpoints.len());
        let mut changed = false;
        for endpoint in &slice.endpoints {
            if let Some(want) = desired.remove(&EndpointKey::of(endpoint)) {
                if !endpoints_equal_beyond_key(&want, endpoint) {
                    changed = true;
                }
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(slice, service, &config.managed_by);
        if changed || kept.len() != slice.endpoints.len() {
            removed += slice.endpoints.len() - kept.len();
            if kept.is_empty() {
                to_delete.insert(name);
            } else {
                let mut copy = (*slice).clone();
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels);
                working.insert(name.clone(), copy);
                to_update.insert(name);
            }
        } else if labels_changed {
            let mut copy = (*slice).clone();
            copy.metadata.labels = Some(labels);
            working.insert(name.clone(), copy);
            to_update.insert(name);
        } else {
            unchanged.insert(name);
        }
    }
    let added = desired.len();

    // 2. Fill slices that are being updated anyway, fullest first.
    if !desired.is_empty() && !to_update.is_empty() {
        let mut names: Vec<&String> = to_update.iter().collect();
        names.sort_by_key(|n| std::cmp::Reverse(working[*n].endpoints.len()));
        for name in names {
            let slice = working
                .get_mut(name)
                .expect("updated slice is in working set");
            while slice.endpoints.len() < max {
                let Some((_, endpoint)) = desired.pop_first() else {
                    break;
                };
                slice.endpoints.push(endpoint);
            }
        }
    }

    // 3. Put a small remainder into the best-fitting unchanged slice, else create slices.
    let mut to_create = Vec::new();
    while !desired.is_empty() {
        let mut target: Option<EndpointSlice> = None;
        if desired.len() < max && !unchanged.is_empty() {
            let candidates: Vec<&EndpointSlice> = unchanged.iter().map(|n| originals[n]).collect();
            target = slice_to_fill(&candidates, desired.len(), max).cloned();
        }
        let mut slice = match target {
            Some(s) => s,
            None => new_slice(service, ports.to_vec(), address_type, &config.managed_by),
        };
        while slice.endpoints.len() < max {
            let Some((_, endpoint)) = desired.pop_first() else {
                break;
            };
            slice.endpoints.push(endpoint);
        }
        match slice.metadata.name.clone() {
            Some(name) => {
                unchanged.remove(&name);
                to_update.insert(name.clone());
                working.insert(name, slice);
            }
            None => to_create.push(slice),
        }
    }

    PortMappingPlan {
        to_create,
        to_update: to_update
            .iter()
            .map(|n| working.remove(n).expect("updated slice is in working set"))
            .collect(),
        to_delete: to_delete.iter().map(|n| originals[n].clone()).collect(),
        endpoints_added: added,
        endpoints_removed: removed,
    }
}

/// Upstream `getSliceToFill`: the slice that ends up closest to full when `count` endpoints
/// are added, or `None` if none has room.
fn slice_to_fill<'a>(
    slices: &[&'a EndpointSlice],
    count: usize,
    max: usize,
) -> Option<&'a EndpointSlice> {
    let mut closest_diff = max;
    let mut closest = None;
    for slice in slices {
        let total = count + slice.endpoints.len();
        if total > max {
            continue;
        }
        let diff = max - total;
        if diff < closest_diff {
            closest_diff = diff;
            closest = Some(*slice);
            if diff == 0 {
                break;
            }
        }
    }
    closest
}

/// True when the slice has an owner reference to this Service (upstream `ownedBy`).
pub fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|o| {
        Some(&o.uid) == service.metadata.uid.as_ref()
            && o.kind == "Service"
            && o.api_version == "v1"
    })
}

/// Labels a slice of this Service must carry and whether its non-reserved labels differ from
/// the Service's (upstream `setEndpointSliceLabels`): the Service's labels except reserved
/// keys, `service.kubernetes.io/headless` for headless Services, the service-name and our
/// managed-by value.
pub fn slice_labels(
    slice: &EndpointSlice,
    service: &Service,
    managed_by: &str,
) -> (BTreeMap<String, String>, bool) {
    let current: BTreeMap<&String, &String> = slice
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_slice_label(k))
        .collect();
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_slice_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = current.len() != labels.len()
        || current
            .iter()
            .any(|(k, v)| labels.get(k.as_str()) != Some(*v));
    if !is_service_ip_set(service) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), managed_by.into());
    (labels, changed)
}

/// A new, empty slice for the Service (upstream `newEndpointSlice`).
pub fn new_slice(
    service: &Service,
    ports: Vec<EndpointPort>,
    address_type: &str,
    managed_by: &str,
) -> EndpointSlice {
    let mut slice = new_owned_slice(&service.metadata, "Service", ports, address_type);
    let (labels, _) = slice_labels(&slice, service, managed_by);
    slice.metadata.labels = Some(labels);
    slice
}

/// An empty, unlabelled slice of `ports` named after and controlled by its core/v1 `owner`
/// (a Service, or the Endpoints a slice mirrors): `generateName: <owner name>-` and
/// `metav1.NewControllerRef(owner, v1 kind)`, as both upstream reconcilers'
/// `newEndpointSlice` build it.
pub fn new_owned_slice(
    owner: &ObjectMeta,
    owner_kind: &str,
    ports: Vec<EndpointPort>,
    address_type: &str,
) -> EndpointSlice {
    let name = owner.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: owner.namespace.clone(),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: owner_kind.into(),
                name,
                uid: owner.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// Upstream `placeholderSliceCompare`: same namespace, labels, address type, and both
/// without ports and endpoints.
fn placeholder_equal(existing: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    existing.metadata.namespace == placeholder.metadata.namespace
        && existing.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && existing.address_type == placeholder.address_type
        && existing.ports.as_ref().is_none_or(|p| p.is_empty())
        && existing.endpoints.is_empty()
}

#[cfg(test)]
mod tests;
