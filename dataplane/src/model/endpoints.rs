//! EndpointSlices as the proxy sees them, and the per-Service merge of all of a Service's
//! slices (kube-proxy's `EndpointSliceCache`, `pkg/proxy/endpointslicecache.go`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::family::Family;
use super::labels::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_SERVICE_NAME,
    LABEL_SERVICE_PROXY_NAME,
};
use super::names::{Protocol, ServiceName};

/// One endpoint of one Service port, after merging the Service's slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// `endpoints[].addresses[0]` (kube-proxy uses only the first address).
    pub address: IpAddr,
    /// The slice port's `port` (the Pod's target port).
    pub port: u16,
    /// `conditions.ready`; unset means ready (EndpointSlice API: "nil ... should be
    /// interpreted as ready").
    pub ready: bool,
    /// `conditions.serving`; unset means serving.
    pub serving: bool,
    /// `conditions.terminating`; unset means not terminating.
    pub terminating: bool,
    /// `nodeName`: an endpoint on this node is "local".
    pub node_name: Option<Arc<str>>,
    /// `zone`.
    pub zone: Option<Arc<str>>,
    /// `hints.forZones[].name`; `None` when the endpoint has no zone hints.
    pub zone_hints: Option<Arc<[String]>>,
    /// `hints.forNodes[].name`; `None` when the endpoint has no node hints.
    pub node_hints: Option<Arc<[String]>>,
}

impl EndpointInfo {
    /// Whether the endpoint runs on `node`. A proxy without a node name has no local endpoint
    /// (kube-proxy `EndpointSliceCache.isLocal` requires a non-empty node name).
    pub fn is_local(&self, node: &str) -> bool {
        !node.is_empty() && self.node_name.as_deref() == Some(node)
    }

    /// `address:port`, the identity kube-proxy deduplicates endpoints by.
    pub fn key(&self) -> (IpAddr, u16) {
        (self.address, self.port)
    }
}

/// A port of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlicePort {
    name: String,
    protocol: Protocol,
    port: u16,
}

/// An endpoint of an EndpointSlice, without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SliceEndpoint {
    address: IpAddr,
    ready: bool,
    serving: bool,
    terminating: bool,
    node_name: Option<Arc<str>>,
    zone: Option<Arc<str>>,
    zone_hints: Option<Arc<[String]>>,
    node_hints: Option<Arc<[String]>>,
}

/// The parts of an EndpointSlice the proxy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceInfo {
    /// The Service named by the `kubernetes.io/service-name` label.
    pub service: ServiceName,
    /// `metadata.name`.
    pub name: String,
    /// `addressType`.
    pub family: Family,
    /// `endpoints.kubernetes.io/last-change-trigger-time`: when the change this slice carries
    /// happened (network programming latency is measured from it).
    pub trigger_time: Option<jiff::Timestamp>,
    /// Exactly as many as kept (a collected vector's spare capacity was ~40 % of the
    /// endpoints' memory).
    ports: Box<[SlicePort]>,
    endpoints: Box<[SliceEndpoint]>,
}

impl SliceInfo {
    /// Reads an EndpointSlice. `None` when the proxy ignores it: no
    /// `kubernetes.io/service-name` label (not managed for a Service), a
    /// `service.kubernetes.io/headless` or `service.kubernetes.io/service-proxy-name` label
    /// (kube-proxy's informers filter those out), or an `addressType` other than `IPv4`/`IPv6`
    /// (`FQDN`). Ports without a number or with an unknown protocol and endpoints without a
    /// parsable address of the slice's family are skipped, as kube-proxy skips them.
    pub fn from_slice(slice: &EndpointSlice) -> Option<SliceInfo> {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone()?;
        let labels = slice.metadata.labels.as_ref();
        if labels.is_some_and(|l| {
            l.contains_key(LABEL_HEADLESS) || l.contains_key(LABEL_SERVICE_PROXY_NAME)
        }) {
            return None;
        }
        let service = labels
            .and_then(|l| l.get(LABEL_SERVICE_NAME))
            .filter(|s| !s.is_empty())?;
        let family = match slice.address_type.as_str() {
            "IPv4" => Family::IPv4,
            "IPv6" => Family::IPv6,
            _ => return None,
        };
        let trigger_time = slice
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_LAST_CHANGE_TRIGGER_TIME))
            .and_then(|t| t.parse().ok());
        let ports = slice
            .ports
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                Some(SlicePort {
                    name: p.name.clone().unwrap_or_default(),
                    protocol: Protocol::from_api(p.protocol.as_deref())?,
                    port: p
                        .port
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n != 0)?,
                })
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        let endpoints = slice
            .endpoints
            .iter()
            .filter_map(|ep| {
                let address: IpAddr = ep.addresses.first()?.trim().parse().ok()?;
                if Family::of(address) != family {
                    return None;
                }
                let conditions = ep.conditions.as_ref();
                let hints = ep.hints.as_ref();
                Some(SliceEndpoint {
                    address,
                    ready: conditions.and_then(|c| c.ready).unwrap_or(true),
                    serving: conditions.and_then(|c| c.serving).unwrap_or(true),
                    terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                    node_name: ep.node_name.as_deref().map(Arc::from),
                    zone: ep.zone.as_deref().map(Arc::from),
                    zone_hints: hints
                        .and_then(|h| h.for_zones.as_ref())
                        .filter(|z| !z.is_empty())
                        .map(|z| z.iter().map(|z| z.name.clone()).collect()),
                    node_hints: hints
                        .and_then(|h| h.for_nodes.as_ref())
                        .filter(|n| !n.is_empty())
                        .map(|n| n.iter().map(|n| n.name.clone()).collect()),
                })
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Some(SliceInfo {
            service: ServiceName::new(namespace, service.clone()),
            name,
            family,
            trigger_time,
            ports,
            endpoints,
        })
    }
}

/// Endpoints of one Service, per (port name, protocol) and family, merged over its slices.
pub type ServiceEndpoints = BTreeMap<(String, Protocol, Family), Vec<EndpointInfo>>;

/// All EndpointSlices the proxy knows, grouped by Service.
#[derive(Debug, Default)]
pub struct EndpointSliceCache {
    /// Each Service's slices, sorted by name: a vector, as a Service almost always has one
    /// slice (a `BTreeMap` allocated a B-tree leaf of ~2 KiB for that one slice, ~20 MiB at
    /// 10,000 Services).
    by_service: HashMap<ServiceName, Vec<SliceInfo>>,
    /// `(namespace, slice name)` → the Service the slice was filed under, so a slice whose
    /// service-name label changes leaves its old Service.
    owner: HashMap<(String, String), ServiceName>,
    /// One copy of each node and zone name the endpoints refer to (a copy per endpoint
    /// otherwise: 100,000 of them at 10,000 Services × 10 endpoints).
    names: HashSet<Arc<str>>,
    /// Size of `names` after its last pruning.
    names_pruned: usize,
}

/// `name` as the one shared copy in `names`.
fn intern(names: &mut HashSet<Arc<str>>, name: &mut Option<Arc<str>>) {
    if let Some(n) = name {
        match names.get(&**n) {
            Some(shared) => *n = shared.clone(),
            None => {
                names.insert(n.clone());
            }
        }
    }
}

impl EndpointSliceCache {
    /// Stores a slice (replacing its previous version). Returns the Services whose endpoints
    /// may have changed: the slice's Service and, if the label moved, the previous one.
    pub fn upsert(&mut self, mut slice: SliceInfo) -> Vec<ServiceName> {
        for ep in slice.endpoints.iter_mut() {
            intern(&mut self.names, &mut ep.node_name);
            intern(&mut self.names, &mut ep.zone);
        }
        // Names no endpoint refers to any more are dropped whenever the set doubled.
        if self.names.len() > 2 * self.names_pruned + 64 {
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.names_pruned = self.names.len();
        }
        let key = (slice.service.namespace.clone(), slice.name.clone());
        let mut touched = Vec::with_capacity(2);
        if let Some(previous) = self.owner.get(&key) {
            if *previous != slice.service {
                let previous = previous.clone();
                self.remove_from(&previous, &slice.name);
                touched.push(previous);
            }
        }
        self.owner.insert(key, slice.service.clone());
        let service = slice.service.clone();
        let slices = self.by_service.entry(service.clone()).or_default();
        let changed = match slices.binary_search_by(|s| s.name.cmp(&slice.name)) {
            Ok(i) => {
                let changed = slices[i] != slice;
                slices[i] = slice;
                changed
            }
            Err(i) => {
                slices.reserve_exact(1);
                slices.insert(i, slice);
                true
            }
        };
        if changed {
            touched.push(service);
        }
        touched
    }

    /// Forgets a slice by namespace and name. Returns the Service it belonged to.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Option<ServiceName> {
        let service = self
            .owner
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.remove_from(&service, name);
        Some(service)
    }

    fn remove_from(&mut self, service: &ServiceName, slice: &str) {
        if let Some(slices) = self.by_service.get_mut(service) {
            if let Ok(i) = slices.binary_search_by(|s| s.name.as_str().cmp(slice)) {
                slices.remove(i);
            }
            if slices.is_empty() {
                self.by_service.remove(service);
            }
        }
    }

    /// Names of every stored slice, as `(namespace, name)`.
    pub fn slice_keys(&self) -> impl Iterator<Item = &(String, String)> {
        self.owner.keys()
    }

    /// The Services that have at least one slice.
    pub fn services(&self) -> impl Iterator<Item = &ServiceName> {
        self.by_service.keys()
    }

    /// The newest trigger time among a Service's slices.
    pub fn trigger_time(&self, service: &ServiceName) -> Option<jiff::Timestamp> {
        self.by_service
            .get(service)?
            .iter()
            .filter_map(|s| s.trigger_time)
            .max()
    }

    /// A Service's endpoints per port and family, merged over its slices in name order. An
    /// endpoint (`address:port`) listed more than once appears once: a later copy replaces an
    /// earlier one unless it is terminating, so a running Pod wins over a terminating one
    /// whose IP it reuses (kube-proxy `endpointslicecache.go` `addEndpoints` since
    /// kubernetes#135593; before, the copy on this node was preferred). Upstream walks slices
    /// in map order, so which of two equal copies wins is random there; we walk them in name
    /// order, which makes it the copy in the slice whose name sorts last. The result is sorted
    /// by address and port.
    pub fn endpoints(&self, service: &ServiceName) -> ServiceEndpoints {
        type ByAddress = BTreeMap<(IpAddr, u16), EndpointInfo>;
        let mut merged: BTreeMap<(String, Protocol, Family), ByAddress> = BTreeMap::new();
        let Some(slices) = self.by_service.get(service) else {
            return BTreeMap::new();
        };
        for slice in slices {
            for port in slice.ports.iter() {
                let set = merged
                    .entry((port.name.clone(), port.protocol, slice.family))
                    .or_default();
                for ep in slice.endpoints.iter() {
                    let info = EndpointInfo {
                        address: ep.address,
                        port: port.port,
                        ready: ep.ready,
                        serving: ep.serving,
                        terminating: ep.terminating,
                        node_name: ep.node_name.clone(),
                        zone: ep.zone.clone(),
                        zone_hints: ep.zone_hints.clone(),
                        node_hints: ep.node_hints.clone(),
                    };
                    if !info.terminating || !set.contains_key(&info.key()) {
                        set.insert(info.key(), info);
                    }
                }
            }
        }
        merged
            .into_iter()
            .map(|(k, v)| (k, v.into_values().collect()))
            .collect()
    }
}
