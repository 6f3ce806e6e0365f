//! Pure planning of legacy `Endpoints` for a selector-based Service (upstream
//! `pkg/controller/endpoint` `syncService`, `endpoints.RepackSubsets`, `truncateEndpoints`).
//!
//! Ready addresses go to `addresses`, others to `notReadyAddresses`; subsets are grouped by
//! port set; more than 1000 addresses are truncated (ready ones first, proportionally across
//! subsets) with `endpoints.kubernetes.io/over-capacity: truncated`, removed again at 1000 or
//! fewer. Nothing is written when the stored object already matches.
//!
//! Beyond upstream: the comparison is against the *truncated* desired subsets, so an
//! over-capacity Service is not rewritten on every sync as upstream does; subset, address
//! and port order is by value (upstream sorts by an md5 hash), which is equally canonical.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::endpoint_subset::addresses_with_readiness;
use crate::labels::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_OVER_CAPACITY, ENDPOINTS_MAX_CAPACITY,
    LABEL_HEADLESS, OVER_CAPACITY_TRUNCATED,
};
use crate::slices::endpoint_set::{
    address_type_of, is_pod_ready, is_service_ip_set, pod_ips, publish_not_ready,
    should_pod_be_in_endpoints, should_set_hostname, ADDRESS_TYPE_IPV4, ADDRESS_TYPE_IPV6,
};
use crate::slices::port_map::{find_port, service_port_protocol};

/// What to do with the Endpoints object.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointsAction {
    /// It already matches.
    None,
    /// Create it.
    Create(Endpoints),
    /// Replace it (carries the stored resourceVersion).
    Update(Endpoints),
}

/// The result of planning one Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointsPlan {
    /// The write, if any.
    pub action: EndpointsAction,
    /// Ready addresses before truncation.
    pub ready: usize,
    /// Not-ready addresses before truncation.
    pub not_ready: usize,
    /// True when the object holds only [`ENDPOINTS_MAX_CAPACITY`] of the addresses.
    pub truncated: bool,
}

/// IP family a Service's Endpoints use (upstream `podToEndpointAddressForService`): the first
/// of `spec.ipFamilies`, else the cluster IP's, else (headless) the Pod's primary IP's.
fn endpoints_family(service: &Service, pod: &Pod) -> &'static str {
    let spec = service.spec.as_ref();
    if let Some(first) = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        return if first == "IPv6" {
            ADDRESS_TYPE_IPV6
        } else {
            ADDRESS_TYPE_IPV4
        };
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return address_type_of(ip).unwrap_or(ADDRESS_TYPE_IPV4);
    }
    pod_ips(pod)
        .first()
        .and_then(|ip| address_type_of(ip))
        .unwrap_or(ADDRESS_TYPE_IPV4)
}

fn pod_address(service: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let family = endpoints_family(service, pod);
    let ip = pod_ips(pod)
        .into_iter()
        .find(|ip| address_type_of(ip) == Some(family))?;
    let spec = pod.spec.as_ref();
    Some(EndpointAddress {
        ip,
        node_name: spec.and_then(|s| s.node_name.clone()),
        hostname: if should_set_hostname(pod, service) {
            spec.and_then(|s| s.hostname.clone())
        } else {
            None
        },
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

type PortKey = (String, i32, String, Option<String>);
type AddrKey = (String, String);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        p.app_protocol.clone(),
    )
}

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Canonical layout of subsets (upstream `RepackSubsets`): every address offering exactly
/// the same ports shares a subset; an address not ready on some port is not ready there;
/// addresses are deduplicated by IP and targetRef UID and sorted; a subset without ports
/// (headless Service without ports) is kept.
pub fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut all: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    // Port (None = "no ports" sentinel) -> address -> ready.
    let mut by_port: BTreeMap<Option<PortKey>, BTreeMap<AddrKey, bool>> = BTreeMap::new();
    let mut port_objs: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    for subset in subsets {
        let ports: Vec<Option<PortKey>> = match subset.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ps) => ps
                .iter()
                .map(|p| {
                    let k = port_key(p);
                    port_objs.entry(k.clone()).or_insert_with(|| p.clone());
                    Some(k)
                })
                .collect(),
        };
        for (addr, is_ready) in addresses_with_readiness(subset) {
            let key = addr_key(addr);
            all.entry(key.clone()).or_insert_with(|| addr.clone());
            for port in &ports {
                let entry = by_port.entry(port.clone()).or_default();
                let slot = entry.entry(key.clone()).or_insert(is_ready);
                // Not ready always trumps ready.
                *slot = *slot && is_ready;
            }
        }
    }
    let mut by_addr_set: BTreeMap<Vec<(AddrKey, bool)>, Vec<Option<PortKey>>> = BTreeMap::new();
    for (port, addrs) in by_port {
        let set: Vec<(AddrKey, bool)> = addrs.into_iter().collect();
        by_addr_set.entry(set).or_default().push(port);
    }
    let mut out: Vec<EndpointSubset> = by_addr_set
        .into_iter()
        .map(|(addrs, ports)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|(_, r)| *r);
            let to_addrs = |v: Vec<(AddrKey, bool)>| {
                let list: Vec<EndpointAddress> = v.iter().map(|(k, _)| all[k].clone()).collect();
                (!list.is_empty()).then_some(list)
            };
            let ports: Vec<EndpointPort> = ports
                .into_iter()
                .flatten()
                .map(|k| port_objs[&k].clone())
                .collect();
            EndpointSubset {
                addresses: to_addrs(ready),
                not_ready_addresses: to_addrs(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    out.sort_by_key(subset_sort_key);
    out
}

fn subset_sort_key(s: &EndpointSubset) -> (Vec<PortKey>, Vec<AddrKey>, Vec<AddrKey>) {
    (
        s.ports.iter().flatten().map(port_key).collect(),
        s.addresses.iter().flatten().map(addr_key).collect(),
        s.not_ready_addresses
            .iter()
            .flatten()
            .map(addr_key)
            .collect(),
    )
}

/// Desired (untruncated) subsets for a Service and the Pods matching its selector, with the
/// ready and not-ready address counts (upstream `syncService` loop + `addEndpointSubset`).
pub fn desired_subsets(service: &Service, pods: &[&Pod]) -> (Vec<EndpointSubset>, usize, usize) {
    let tolerate_unready = publish_not_ready(service);
    let spec = service.spec.clone().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut raw = Vec::new();
    let (mut ready_count, mut not_ready_count) = (0, 0);
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(addr) = pod_address(service, pod) else {
            continue;
        };
        let ready = tolerate_unready || is_pod_ready(pod);
        let mut push = |ports: Option<Vec<EndpointPort>>| {
            if ready {
                ready_count += 1;
            } else {
                not_ready_count += 1;
            }
            raw.push(EndpointSubset {
                addresses: ready.then(|| vec![addr.clone()]),
                not_ready_addresses: (!ready).then(|| vec![addr.clone()]),
                ports,
            });
        };
        let service_ports = spec.ports.clone().unwrap_or_default();
        if service_ports.is_empty() {
            if headless {
                push(None);
            }
            continue;
        }
        for sp in &service_ports {
            let Some(port) = find_port(pod, sp) else {
                continue;
            };
            push(Some(vec![EndpointPort {
                name: sp.name.clone(),
                port,
                protocol: Some(service_port_protocol(sp).to_string()),
                app_protocol: sp.app_protocol.clone(),
            }]));
        }
    }
    (repack_subsets(&raw), ready_count, not_ready_count)
}

/// Keeps at most `max` addresses (upstream `truncateEndpoints`): if the ready addresses alone
/// exceed `max`, ready ones are kept proportionally per subset and all not-ready ones
/// dropped; otherwise all ready ones are kept and the not-ready ones are cut proportionally.
/// Each subset's share is rounded up, the last ones get what is left. Returns true when
/// anything was cut.
pub fn truncate_subsets(subsets: &mut [EndpointSubset], max: usize) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= max {
        return false;
    }
    let truncate_ready = total_ready > max;
    let (budget, total) = if truncate_ready {
        (max, total_ready)
    } else {
        (max - total_ready, total_not_ready)
    };
    let mut left = budget;
    for subset in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            count(&subset.addresses)
        } else {
            count(&subset.not_ready_addresses)
        };
        let share = (in_subset * budget).div_ceil(total).min(left);
        if truncate_ready {
            if let Some(a) = subset.addresses.as_mut() {
                a.truncate(share);
            }
            left -= count(&subset.addresses);
            subset.not_ready_addresses = None;
        } else {
            if let Some(a) = subset.not_ready_addresses.as_mut() {
                a.truncate(share);
            }
            left -= count(&subset.not_ready_addresses);
        }
        if subset.addresses.as_ref().is_some_and(Vec::is_empty) {
            subset.addresses = None;
        }
        if subset
            .not_ready_addresses
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            subset.not_ready_addresses = None;
        }
    }
    true
}

fn strip_resource_versions(subsets: &mut [EndpointSubset]) {
    for s in subsets {
        for a in s
            .addresses
            .iter_mut()
            .flatten()
            .chain(s.not_ready_addresses.iter_mut().flatten())
        {
            if let Some(r) = a.target_ref.as_mut() {
                r.resource_version = None;
            }
        }
    }
}

/// Labels the Endpoints object must carry: the Service's labels plus
/// `service.kubernetes.io/headless` for headless Services.
pub fn endpoints_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if is_service_ip_set(service) {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels
}

/// Plans the Endpoints object of a selector-based Service.
pub fn plan_endpoints(
    service: &Service,
    pods: &[&Pod],
    existing: Option<&Endpoints>,
    trigger: Option<Timestamp>,
) -> EndpointsPlan {
    let (mut subsets, ready, not_ready) = desired_subsets(service, pods);
    let truncated = truncate_subsets(&mut subsets, ENDPOINTS_MAX_CAPACITY);
    let labels = endpoints_labels(service);
    if let Some(current) = existing {
        let mut current_subsets = repack_subsets(current.subsets.as_deref().unwrap_or(&[]));
        strip_resource_versions(&mut current_subsets);
        let annotations = current.metadata.annotations.clone().unwrap_or_default();
        let capacity_ok = annotations.contains_key(ANNOTATION_OVER_CAPACITY) == truncated;
        if current_subsets == subsets
            && current.metadata.labels.clone().unwrap_or_default() == labels
            && capacity_ok
        {
            return EndpointsPlan {
                action: EndpointsAction::None,
                ready,
                not_ready,
                truncated,
            };
        }
    }
    let mut annotations = existing
        .and_then(|e| e.metadata.annotations.clone())
        .unwrap_or_default();
    match trigger {
        Some(t) => {
            annotations.insert(ANNOTATION_LAST_CHANGE_TRIGGER_TIME.into(), t.to_string());
        }
        None => {
            annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if truncated {
        annotations.insert(
            ANNOTATION_OVER_CAPACITY.into(),
            OVER_CAPACITY_TRUNCATED.into(),
        );
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    let metadata = match existing {
        Some(e) => ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..e.metadata.clone()
        },
        None => ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
    };
    let endpoints = Endpoints {
        metadata,
        subsets: Some(subsets),
    };
    EndpointsPlan {
        action: if existing.is_some() {
            EndpointsAction::Update(endpoints)
        } else {
            EndpointsAction::Create(endpoints)
        },
        ready,
        not_ready,
        truncated,
    }
}

#[cfg(test)]
mod tests;
