//! The proxy model: Services, EndpointSlices and this node in, the node's desired forwarding
//! table out. No kernel code and no I/O: a backend (IPVS, nftables, dry run) executes the
//! table, and never re-decides which endpoints to use.
//!
//! Change tracking follows kube-proxy's service and endpoint change trackers: an update marks
//! only its Service dirty, [`ProxyModel::commit`] recomputes only dirty Services and reports
//! which Services' rows really changed, so a backend can sync just those.

mod config;
mod endpoints;
mod family;
mod labels;
mod names;
mod node;
mod render;
mod service;
mod table;
mod topology;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

pub use config::{
    InvalidNodePortAddresses, NodePortAddresses, ProxyConfig, Scheduler, UnknownScheduler,
};
pub use endpoints::{EndpointInfo, EndpointSliceCache, ServiceEndpoints, SliceInfo};
pub use family::Family;
pub use labels::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_SERVICE_NAME,
    LABEL_SERVICE_PROXY_NAME, LABEL_TOPOLOGY_ZONE,
};
pub use names::{Protocol, ServiceName, ServicePortName};
pub use node::NodeInfo;
pub use render::{render_json, render_text};
pub use service::{ServiceInfo, ServicePortInfo};
pub use table::{
    build_service_table, Destination, EndpointSet, FrontendKind, HealthCheck, Masquerade,
    PortSelection, ServiceTable, VirtualKey, VirtualServer,
};
pub use topology::{categorize, Categorized, Exclusion, NodeView, PortPolicy, TopologyMode};

/// The desired table of the whole node: every proxied Service's rows. A virtual key belongs
/// to at most one Service (when two Services claim the same address, protocol and port, the
/// one whose `(namespace, name)` sorts first keeps it).
#[derive(Debug, Clone, Default)]
pub struct DesiredTable {
    services: BTreeMap<ServiceName, Arc<ServiceTable>>,
}

impl DesiredTable {
    /// One Service's rows.
    pub fn service(&self, name: &ServiceName) -> Option<&Arc<ServiceTable>> {
        self.services.get(name)
    }

    /// Every Service's rows, by name.
    pub fn services(&self) -> impl Iterator<Item = &Arc<ServiceTable>> {
        self.services.values()
    }

    /// Every virtual server, grouped by Service in name order.
    pub fn virtual_servers(&self) -> impl Iterator<Item = &VirtualServer> {
        self.services
            .values()
            .flat_map(|s| s.virtual_servers.iter())
    }

    /// A table holding only the named Service's rows (empty when it has none).
    pub fn only(&self, name: &ServiceName) -> DesiredTable {
        DesiredTable {
            services: self
                .services
                .get_key_value(name)
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
        }
    }

    /// Makes `name`'s rows what they are in `other` (removing them when `other` has none).
    pub fn copy_service_from(&mut self, other: &DesiredTable, name: &ServiceName) {
        match other.services.get(name) {
            Some(rows) => {
                self.services.insert(name.clone(), rows.clone());
            }
            None => {
                self.services.remove(name);
            }
        }
    }

    /// Number of virtual servers.
    pub fn len(&self) -> usize {
        self.services
            .values()
            .map(|s| s.virtual_servers.len())
            .sum()
    }

    /// Whether the table has no virtual server.
    pub fn is_empty(&self) -> bool {
        self.services.values().all(|s| s.virtual_servers.is_empty())
    }
}

/// What [`ProxyModel::commit`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Services whose rows differ from the previous commit (added, changed or removed).
    pub services: BTreeSet<ServiceName>,
    /// EndpointSlice trigger times of the changes now in the table, for network programming
    /// latency (only times after the model started, as kube-proxy's tracker).
    pub trigger_times: Vec<(ServiceName, jiff::Timestamp)>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }
}

/// The proxy model's state.
#[derive(Debug)]
pub struct ProxyModel {
    config: ProxyConfig,
    node: NodeInfo,
    services: HashMap<ServiceName, ServiceInfo>,
    slices: EndpointSliceCache,
    /// Each Service's rows before conflicts between Services are resolved.
    own_rows: HashMap<ServiceName, Arc<ServiceTable>>,
    /// Which Services want each virtual key, in name order; the smallest name owns it. A
    /// sorted vector, almost always of one name: a `BTreeSet` allocated a B-tree leaf of
    /// ~0.5 KiB for that one name (~5 MiB at 10,000 Services).
    claims: HashMap<VirtualKey, Vec<ServiceName>>,
    /// Shared with the snapshots handed out ([`ProxyModel::table_snapshot`]); a commit
    /// copies it only while one is still held.
    table: Arc<DesiredTable>,
    dirty: BTreeSet<ServiceName>,
    pending_triggers: HashMap<ServiceName, jiff::Timestamp>,
    started: jiff::Timestamp,
}

impl ProxyModel {
    /// An empty model for the node named in `config`.
    pub fn new(config: ProxyConfig) -> ProxyModel {
        let node = NodeInfo {
            name: config.node_name.clone(),
            ..NodeInfo::default()
        };
        ProxyModel {
            config,
            node,
            services: HashMap::new(),
            slices: EndpointSliceCache::default(),
            own_rows: HashMap::new(),
            claims: HashMap::new(),
            table: Arc::default(),
            dirty: BTreeSet::new(),
            pending_triggers: HashMap::new(),
            started: jiff::Timestamp::now(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// This node as last seen.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// The table as of the last [`ProxyModel::commit`].
    pub fn table(&self) -> &DesiredTable {
        &self.table
    }

    /// The table as of the last [`ProxyModel::commit`], shared rather than copied (for a
    /// sync on another thread; hold it no longer than the sync, or the next commit that
    /// changes something copies the table).
    pub fn table_snapshot(&self) -> Arc<DesiredTable> {
        Arc::clone(&self.table)
    }

    /// Whether updates are waiting for [`ProxyModel::commit`].
    pub fn has_pending(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Names of the proxied Services.
    pub fn service_names(&self) -> impl Iterator<Item = &ServiceName> {
        self.services.keys()
    }

    /// `(namespace, name)` of every EndpointSlice known.
    pub fn slice_keys(&self) -> impl Iterator<Item = &(String, String)> {
        self.slices.slice_keys()
    }

    /// Number of Services and EndpointSlices known.
    pub fn object_counts(&self) -> (usize, usize) {
        (self.services.len(), self.slices.slice_keys().count())
    }

    /// Applies this node's Node object. A change of zone or addresses affects every Service.
    /// Nodes with another name are ignored.
    pub fn set_node(&mut self, node: &Node) {
        let info = NodeInfo::from_node(node);
        if info.name != self.config.node_name || info == self.node {
            return;
        }
        self.node = info;
        self.mark_all_dirty();
    }

    /// Applies a Service (added or updated). Returns the values the proxy had to skip.
    pub fn upsert_service(&mut self, service: &Service) -> Vec<String> {
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let Some(name) = service.metadata.name.clone() else {
            return vec!["metadata.name: missing; Service ignored".into()];
        };
        let key = ServiceName::new(namespace, name);
        match ServiceInfo::from_service(service) {
            Some(mut info) => {
                let warnings = std::mem::take(&mut info.warnings);
                if self.services.get(&key) != Some(&info) {
                    self.services.insert(key.clone(), info);
                    self.dirty.insert(key);
                }
                warnings
            }
            None => {
                if self.services.remove(&key).is_some() {
                    self.dirty.insert(key);
                }
                Vec::new()
            }
        }
    }

    /// Forgets a Service.
    pub fn delete_service(&mut self, namespace: &str, name: &str) {
        let key = ServiceName::new(namespace, name);
        if self.services.remove(&key).is_some() {
            self.dirty.insert(key);
        }
    }

    /// Applies an EndpointSlice (added or updated). Slices without a
    /// `kubernetes.io/service-name` label or of `addressType: FQDN` are ignored (and a slice
    /// that lost its label is forgotten).
    pub fn upsert_slice(&mut self, slice: &EndpointSlice) {
        match SliceInfo::from_slice(slice) {
            Some(info) => {
                // endpointschangetracker.go: only trigger times after the tracker started.
                let trigger = info.trigger_time.filter(|t| *t > self.started);
                let service = info.service.clone();
                let touched = self.slices.upsert(info);
                if touched.contains(&service) {
                    if let Some(t) = trigger {
                        let entry = self.pending_triggers.entry(service).or_insert(t);
                        *entry = (*entry).min(t);
                    }
                }
                self.dirty.extend(touched);
            }
            None => {
                let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
                let name = slice.metadata.name.as_deref().unwrap_or_default();
                self.delete_slice(namespace, name);
            }
        }
    }

    /// Forgets an EndpointSlice. The Service's pending trigger times are dropped: a deleted
    /// slice's annotation dates its last update, not this change, so kube-proxy's endpoints
    /// change tracker forgets them (`EndpointSliceUpdate` with `removeSlice`).
    pub fn delete_slice(&mut self, namespace: &str, name: &str) {
        if let Some(service) = self.slices.remove(namespace, name) {
            self.pending_triggers.remove(&service);
            self.dirty.insert(service);
        }
    }

    /// After a re-list of Services: forgets every Service not in `services`.
    pub fn retain_services(&mut self, services: &HashSet<ServiceName>) {
        let gone: Vec<ServiceName> = self
            .services
            .keys()
            .filter(|k| !services.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.services.remove(&key);
            self.dirty.insert(key);
        }
    }

    /// After a re-list of EndpointSlices: forgets every slice not in `slices`
    /// (`(namespace, name)` pairs).
    pub fn retain_slices(&mut self, slices: &HashSet<(String, String)>) {
        let gone: Vec<(String, String)> = self
            .slices
            .slice_keys()
            .filter(|k| !slices.contains(*k))
            .cloned()
            .collect();
        for (namespace, name) in gone {
            self.delete_slice(&namespace, &name);
        }
    }

    /// Marks every Service dirty, so the next commit recomputes the whole table.
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.services.keys().cloned());
        self.dirty.extend(self.own_rows.keys().cloned());
    }

    /// Recomputes the dirty Services and returns which Services' rows changed.
    pub fn commit(&mut self) -> Changes {
        let dirty = std::mem::take(&mut self.dirty);
        let mut affected: BTreeSet<ServiceName> = BTreeSet::new();
        for name in &dirty {
            let new_rows = self.services.get(name).map(|info| {
                let endpoints = self.slices.endpoints(name);
                Arc::new(build_service_table(info, &endpoints, &self.node, &self.config).0)
            });
            let old_rows = match &new_rows {
                Some(rows) => self.own_rows.insert(name.clone(), rows.clone()),
                None => self.own_rows.remove(name),
            };
            if old_rows == new_rows {
                continue;
            }
            affected.insert(name.clone());
            let old_keys: BTreeSet<VirtualKey> = keys(old_rows.as_deref());
            let new_keys: BTreeSet<VirtualKey> = keys(new_rows.as_deref());
            for key in old_keys.difference(&new_keys) {
                if let Some(claimers) = self.claims.get_mut(key) {
                    if let Ok(i) = claimers.binary_search(name) {
                        claimers.remove(i);
                    }
                    affected.extend(claimers.iter().cloned());
                    if claimers.is_empty() {
                        self.claims.remove(key);
                    }
                }
            }
            for key in new_keys.difference(&old_keys) {
                let claimers = self.claims.entry(*key).or_default();
                affected.extend(claimers.iter().cloned());
                if let Err(i) = claimers.binary_search(name) {
                    claimers.reserve_exact(1);
                    claimers.insert(i, name.clone());
                }
            }
        }
        let mut changes = Changes::default();
        for name in affected {
            let effective = self
                .own_rows
                .get(&name)
                .map(|rows| self.effective_rows(rows));
            let previous = self.table.services.get(&name);
            if previous == effective.as_ref() {
                continue;
            }
            let table = Arc::make_mut(&mut self.table);
            match effective {
                Some(rows) => table.services.insert(name.clone(), rows),
                None => table.services.remove(&name),
            };
            changes.services.insert(name);
        }
        for name in &dirty {
            if let Some(t) = self.pending_triggers.remove(name) {
                if changes.services.contains(name) {
                    changes.trigger_times.push((name.clone(), t));
                }
            }
        }
        changes
    }

    /// A Service's rows without the keys another Service owns.
    fn effective_rows(&self, rows: &Arc<ServiceTable>) -> Arc<ServiceTable> {
        let owns = |vs: &VirtualServer| {
            self.claims
                .get(&vs.key)
                .and_then(|c| c.first())
                .is_none_or(|owner| *owner == rows.service)
        };
        if rows.virtual_servers.iter().all(owns) {
            return rows.clone();
        }
        let mut filtered = ServiceTable::clone(rows);
        filtered.virtual_servers.retain(owns);
        Arc::new(filtered)
    }

    /// The per-port endpoint selections behind a Service's rows, for explanations; `None`
    /// when the Service is not proxied.
    pub fn selections(&self, name: &ServiceName) -> Option<Vec<PortSelection>> {
        let info = self.services.get(name)?;
        let endpoints = self.slices.endpoints(name);
        Some(build_service_table(info, &endpoints, &self.node, &self.config).1)
    }
}

fn keys(rows: Option<&ServiceTable>) -> BTreeSet<VirtualKey> {
    rows.map(|r| r.virtual_servers.iter().map(|vs| vs.key).collect())
        .unwrap_or_default()
}
