//! Reads what the page shows: every object through the kube client, the forwarding tables
//! from the in-process node agents' published status (the same `watch` channel their
//! `/nodes/NAME/table` endpoint reads, rendered by the dataplane's own `render_text`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::Client;
use svcplane_api::LoadBalancerIPPool;
use svcplane_dataplane::agent::AgentStatus;
use tokio::sync::watch;

use super::bands::Ranges;
use super::model::{Capped, NodeTables, Pools, Snapshot};
use super::rows;

/// Services shown (the bands count all of them).
pub const SERVICE_LIMIT: usize = 200;
/// Endpoints shown per EndpointSlice.
pub const ENDPOINT_LIMIT: usize = 50;
/// Pools shown.
pub const POOL_LIMIT: usize = 100;
/// Events shown, newest first.
pub const EVENT_LIMIT: usize = 50;
/// Node tables shown.
pub const NODE_LIMIT: usize = 50;
/// Lines of one node's table shown.
pub const TABLE_LINE_LIMIT: usize = 200;

/// Where the forwarding tables come from.
#[derive(Clone)]
pub enum AgentTables {
    /// No node agents in this process: the text says why, and the page says so.
    NotAvailable(String),
    /// The in-process agents' status channels, by node name.
    Agents(Vec<(String, watch::Receiver<AgentStatus>)>),
}

/// Everything the page needs to be built: a client, the ranges to measure and the tables.
#[derive(Clone)]
pub struct Page {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    source: String,
    ranges: Ranges,
    agents: AgentTables,
}

impl Page {
    /// A page read through `client`, measuring the given `--service-cluster-ip-range` and
    /// `--service-node-port-range`; `source` names the serving command on the page.
    pub fn new(
        client: Client,
        source: &str,
        cluster_ip_range: &str,
        node_port_range: &str,
        agents: AgentTables,
    ) -> Result<Self, svcplane_allocators::Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                source: source.to_string(),
                ranges: Ranges::parse(cluster_ip_range, node_port_range)?,
                agents,
            }),
        })
    }

    /// The same page with the node agents' tables.
    pub fn with_agents(&self, agents: Vec<(String, watch::Receiver<AgentStatus>)>) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                client: inner.client.clone(),
                source: inner.source.clone(),
                ranges: inner.ranges.clone(),
                agents: AgentTables::Agents(agents),
            }),
        }
    }

    /// Reads a snapshot. A section that cannot be read shows its error; the others still
    /// show.
    pub async fn gather(&self) -> Snapshot {
        let client = &self.inner.client;
        let all = ListParams::default();
        let (service_api, slice_api, pool_api, event_api) = (
            Api::<Service>::all(client.clone()),
            Api::<EndpointSlice>::all(client.clone()),
            Api::<LoadBalancerIPPool>::all(client.clone()),
            Api::<Event>::all(client.clone()),
        );
        let (services, slices, pools, events) = tokio::join!(
            service_api.list(&all),
            slice_api.list(&all),
            pool_api.list(&all),
            event_api.list(&all),
        );
        let services = services.map(|l| l.items).map_err(|e| e.to_string());
        let slices = slices.map(|l| l.items).unwrap_or_else(|err| {
            tracing::debug!(%err, "status page: cannot list EndpointSlices");
            Vec::new()
        });
        let pools = match pools {
            Ok(list) => {
                let mut items = list.items;
                items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                Ok(Pools::Listed(Capped::first(
                    items.iter().map(rows::pool_row),
                    POOL_LIMIT,
                )))
            }
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Pools::NoCrd),
            Err(err) => Err(err.to_string()),
        };
        Snapshot {
            source: self.inner.source.clone(),
            taken_at: k8s_openapi::jiff::Timestamp::now().to_string(),
            bands: services
                .as_ref()
                .map(|all| self.inner.ranges.usage(all))
                .map_err(Clone::clone),
            services: services
                .as_ref()
                .map_err(Clone::clone)
                .map(|all| rows::services_with_slices(all, &slices, SERVICE_LIMIT, ENDPOINT_LIMIT)),
            pools,
            node_tables: self.node_tables(),
            events: events
                .map(|l| rows::recent_events(&l.items, EVENT_LIMIT))
                .map_err(|e| e.to_string()),
        }
    }

    fn node_tables(&self) -> NodeTables {
        match &self.inner.agents {
            AgentTables::NotAvailable(why) => NodeTables::NotAvailable(why.clone()),
            AgentTables::Agents(agents) => {
                let mut sorted: Vec<&(String, watch::Receiver<AgentStatus>)> =
                    agents.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                let tables = sorted.into_iter().map(|(node, status)| {
                    let status = status.borrow();
                    let text = svcplane_dataplane::model::render_text(&status.table, &status.node);
                    (node.clone(), first_lines(&text, TABLE_LINE_LIMIT))
                });
                NodeTables::Tables(Capped::first(tables, NODE_LIMIT))
            }
        }
    }
}

/// The first `limit` lines of `text`, and how many more there were.
fn first_lines(text: &str, limit: usize) -> String {
    let lines = Capped::first(text.lines(), limit);
    let mut out = lines.items.join("\n");
    if lines.more() > 0 {
        out.push_str(&format!("\n… {} more lines", lines.more()));
    }
    out
}
