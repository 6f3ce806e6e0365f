//! What the page shows, as plain data: filled by the gather step, read by the renderer.

use svcplane_allocators::RangeUsage;

/// The first `limit` items of a longer list, and how long the whole list was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped<T> {
    /// The items shown.
    pub items: Vec<T>,
    /// How many items there were in all (`>= items.len()`).
    pub total: usize,
}

impl<T> Capped<T> {
    /// Keeps the first `limit` items of `all`.
    pub fn first(all: impl IntoIterator<Item = T>, limit: usize) -> Self {
        let mut items = Vec::new();
        let mut total = 0;
        for item in all {
            if items.len() < limit {
                items.push(item);
            }
            total += 1;
        }
        Self { items, total }
    }

    /// How many items are not shown.
    pub fn more(&self) -> usize {
        self.total.saturating_sub(self.items.len())
    }
}

/// One section's content, or why it could not be read.
pub type Section<T> = Result<T, String>;

/// Everything on the page.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Where the page is served from (`svcplane dev`, `svcplane controller-manager`).
    pub source: String,
    /// When the snapshot was taken (RFC 3339).
    pub taken_at: String,
    /// Services, sorted by namespace and name, with their slices.
    pub services: Section<Capped<ServiceRow>>,
    /// Band usage of each ClusterIP range and of the node port range.
    pub bands: Section<Vec<BandRow>>,
    /// The LoadBalancer IP pools.
    pub pools: Section<Pools>,
    /// The node agents' forwarding tables.
    pub node_tables: NodeTables,
    /// The most recent Events, newest first.
    pub events: Section<Capped<EventRow>>,
}

/// One Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.type` (`ClusterIP` when unset).
    pub type_: String,
    /// `spec.clusterIPs` (or `spec.clusterIP`), `None` included as written.
    pub cluster_ips: Vec<String>,
    /// `spec.ports`.
    pub ports: Vec<PortRow>,
    /// `status.loadBalancer.ingress[].ip` (or `.hostname`).
    pub lb_ingress: Vec<String>,
    /// `spec.healthCheckNodePort`.
    pub health_check_node_port: Option<i32>,
    /// The Service's EndpointSlices (label `kubernetes.io/service-name`), sorted by name.
    pub slices: Vec<SliceRow>,
}

/// One port of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRow {
    /// Port name (may be empty).
    pub name: String,
    /// Protocol (`TCP` when unset).
    pub protocol: String,
    /// `port`.
    pub port: i32,
    /// `targetPort`, as written (number or name).
    pub target_port: String,
    /// `nodePort`.
    pub node_port: Option<i32>,
}

/// One EndpointSlice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceRow {
    /// Name.
    pub name: String,
    /// `addressType`.
    pub address_type: String,
    /// Ports as `name:port/protocol`.
    pub ports: Vec<String>,
    /// Endpoints, capped.
    pub endpoints: Capped<EndpointRow>,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            total: 0,
        }
    }
}

/// One endpoint of a slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRow {
    /// `addresses`.
    pub addresses: Vec<String>,
    /// `conditions.ready` (`None`: unset, which consumers read as ready).
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
    /// `nodeName`.
    pub node: Option<String>,
    /// `zone`.
    pub zone: Option<String>,
}

/// Band usage of one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandRow {
    /// What is counted: `ClusterIPs` or `NodePorts`.
    pub kind: String,
    /// The range (`10.96.0.0/12`, `30000-32767`).
    pub range: String,
    /// Counts, from the allocators.
    pub usage: RangeUsage,
    /// Values Services hold outside the range (another range, or a range changed since).
    pub outside: usize,
}

/// The pools, or that their CRD is not installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pools {
    /// The `loadbalancerippools.svcplane.io` CRD is not served.
    NoCrd,
    /// The pools, sorted by name.
    Listed(Capped<PoolRow>),
}

/// One LoadBalancerIPPool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRow {
    /// Name.
    pub name: String,
    /// `spec.blocks`, each as `CIDR` or `start-stop`.
    pub blocks: Vec<String>,
    /// `spec.disabled`.
    pub disabled: bool,
    /// `status.total` and `status.used` (`None` until the controller wrote a status).
    pub counts: Option<(i64, i64)>,
    /// `status.conditions` as (type, status, reason, message).
    pub conditions: Vec<(String, String, String, String)>,
}

/// The node agents' tables, or why there are none here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeTables {
    /// No node agents run in this process; the text says so.
    NotAvailable(String),
    /// (node name, table as the agent's `/table` renders it), sorted by node.
    Tables(Capped<(String, String)>),
}

/// One Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRow {
    /// Last seen (RFC 3339), or empty.
    pub last_seen: String,
    /// `type` (`Normal`, `Warning`).
    pub type_: String,
    /// `reason`.
    pub reason: String,
    /// `Kind namespace/name` of the involved object.
    pub object: String,
    /// `message`.
    pub message: String,
    /// `count` (1 when unset).
    pub count: i32,
}
