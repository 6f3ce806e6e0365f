//! The node agent's loop: events from a source update the proxy model; the schedule decides
//! when to sync; the backend executes the table off the async runtime; the outcome is
//! published for health checks, metrics and debug pages.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::{mpsc, watch};

use crate::backend::{Backend, BackendError, SyncReport, SyncScope};
use crate::metrics::AgentMetrics;
use crate::model::{DesiredTable, NodeInfo, ProxyConfig, ProxyModel, ServiceName};
use crate::schedule::{Due, SyncSchedule};

/// An update from the API (a watch, or manifests read from disk).
#[derive(Debug)]
pub enum SourceEvent {
    /// A Service was added or changed.
    Service(Box<Service>),
    /// A Service was deleted.
    ServiceDeleted {
        /// `metadata.namespace`.
        namespace: String,
        /// `metadata.name`.
        name: String,
    },
    /// An EndpointSlice was added or changed.
    Slice(Box<EndpointSlice>),
    /// An EndpointSlice was deleted.
    SliceDeleted {
        /// `metadata.namespace`.
        namespace: String,
        /// `metadata.name`.
        name: String,
    },
    /// This node's Node object was added or changed.
    Node(Box<Node>),
    /// A complete list of one kind begins (start-up or re-list): the objects of that kind that
    /// arrive until [`SourceEvent::ListDone`] are the whole list. They are applied one by one
    /// as they arrive, so the agent never holds a second, typed copy of the list beside its
    /// model (kube-proxy's informers keep such a store; our model is the cache).
    ListStarted(ListKind),
    /// The list begun by [`SourceEvent::ListStarted`] is complete: every object of that kind
    /// not applied since then is gone (for the Node: it may not exist; a Node keeps its last
    /// addresses, as kube-proxy keeps programming until stopped).
    ListDone(ListKind),
}

/// The kinds the agent lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Services, all namespaces.
    Services,
    /// EndpointSlices, all namespaces.
    Slices,
    /// This node's Node.
    Node,
}

/// Timing of the agent's syncs.
#[derive(Debug, Clone)]
pub struct SyncTiming {
    /// `--min-sync-period`: at most one sync per period after a burst (kube-proxy default 1 s).
    pub min_sync_period: Duration,
    /// `--sync-period`: full resync interval that repairs drift (kube-proxy default 30 s).
    pub sync_period: Duration,
    /// Syncs allowed back to back before `min_sync_period` applies (kube-proxy uses 2).
    pub burst: u32,
}

impl Default for SyncTiming {
    fn default() -> Self {
        SyncTiming {
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
            burst: 2,
        }
    }
}

/// What the agent publishes after every sync.
#[derive(Debug, Clone, Default)]
pub struct AgentStatus {
    /// The backend's name.
    pub backend: &'static str,
    /// The table the kernel holds after the last successful sync.
    pub table: DesiredTable,
    /// This node as last seen.
    pub node: NodeInfo,
    /// Every initial list arrived and one sync succeeded.
    pub synced: bool,
    /// When the last sync succeeded.
    pub last_sync: Option<jiff::Timestamp>,
    /// The oldest change not yet in the kernel (health: a change stuck longer than the
    /// health timeout makes the agent unhealthy, as kube-proxy's healthz).
    pub oldest_pending: Option<Instant>,
    /// The last sync error, cleared by a successful sync.
    pub last_error: Option<String>,
}

/// The agent: the model, the backend and the schedule.
pub struct Agent {
    model: ProxyModel,
    backend: Option<Box<dyn Backend>>,
    backend_name: &'static str,
    timing: SyncTiming,
    metrics: AgentMetrics,
    status: watch::Sender<AgentStatus>,
    pending_services: BTreeSet<ServiceName>,
    pending_triggers: Vec<jiff::Timestamp>,
    oldest_pending: Option<Instant>,
    needs_full: bool,
    listed: Listed,
    relisting: Relisting,
}

/// Keys applied since a list of their kind began (`None`: no list in progress).
#[derive(Debug, Default)]
struct Relisting {
    services: Option<HashSet<ServiceName>>,
    slices: Option<HashSet<(String, String)>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Listed {
    services: bool,
    slices: bool,
    node: bool,
}

impl Listed {
    fn all(self) -> bool {
        self.services && self.slices && self.node
    }
}

impl Agent {
    /// An agent for `config`'s node using `backend`.
    pub fn new(
        config: ProxyConfig,
        backend: Box<dyn Backend>,
        timing: SyncTiming,
        metrics: AgentMetrics,
    ) -> Agent {
        let backend_name = backend.name();
        // The initial sync is pending from the start, as kube-proxy queues one at start-up: the
        // agent is healthy for one health timeout before it must have synced.
        let started = Instant::now();
        let (status, _) = watch::channel(AgentStatus {
            backend: backend_name,
            oldest_pending: Some(started),
            ..AgentStatus::default()
        });
        Agent {
            model: ProxyModel::new(config),
            backend: Some(backend),
            backend_name,
            timing,
            metrics,
            status,
            pending_services: BTreeSet::new(),
            pending_triggers: Vec::new(),
            oldest_pending: Some(started),
            needs_full: true,
            listed: Listed::default(),
            relisting: Relisting::default(),
        }
    }

    /// A receiver of the status published after every sync.
    pub fn subscribe(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    /// The model (for tests and one-shot runs).
    pub fn model(&self) -> &ProxyModel {
        &self.model
    }

    /// Applies one event to the model. Returns whether the model may have changed.
    pub fn apply(&mut self, event: SourceEvent) -> bool {
        let was_listed = self.listed.all();
        match event {
            SourceEvent::Service(svc) => {
                if let Some(seen) = &mut self.relisting.services {
                    seen.insert(ServiceName::new(
                        svc.metadata.namespace.clone().unwrap_or_default(),
                        svc.metadata.name.clone().unwrap_or_default(),
                    ));
                }
                self.upsert_service(&svc)
            }
            SourceEvent::ServiceDeleted { namespace, name } => {
                self.model.delete_service(&namespace, &name)
            }
            SourceEvent::Slice(slice) => {
                if let Some(seen) = &mut self.relisting.slices {
                    seen.insert((
                        slice.metadata.namespace.clone().unwrap_or_default(),
                        slice.metadata.name.clone().unwrap_or_default(),
                    ));
                }
                self.model.upsert_slice(&slice)
            }
            SourceEvent::SliceDeleted { namespace, name } => {
                self.model.delete_slice(&namespace, &name)
            }
            SourceEvent::Node(node) => self.model.set_node(&node),
            SourceEvent::ListStarted(ListKind::Services) => {
                self.relisting.services = Some(HashSet::new());
            }
            SourceEvent::ListStarted(ListKind::Slices) => {
                self.relisting.slices = Some(HashSet::new());
            }
            SourceEvent::ListStarted(ListKind::Node) => {}
            SourceEvent::ListDone(ListKind::Services) => {
                let seen = self.relisting.services.take().unwrap_or_default();
                self.model.retain_services(&seen);
                self.listed.services = true;
            }
            SourceEvent::ListDone(ListKind::Slices) => {
                let seen = self.relisting.slices.take().unwrap_or_default();
                self.model.retain_slices(&seen);
                self.listed.slices = true;
            }
            SourceEvent::ListDone(ListKind::Node) => self.listed.node = true,
        }
        if self.model.has_pending() && self.oldest_pending.is_none() {
            self.oldest_pending = Some(Instant::now());
        }
        self.model.has_pending() || (!was_listed && self.listed.all())
    }

    fn upsert_service(&mut self, svc: &Service) {
        for warning in self.model.upsert_service(svc) {
            tracing::warn!(
                service = %format!(
                    "{}/{}",
                    svc.metadata.namespace.as_deref().unwrap_or_default(),
                    svc.metadata.name.as_deref().unwrap_or_default()
                ),
                "{warning}"
            );
        }
    }

    /// Whether every initial list (Services, EndpointSlices, the Node) has arrived.
    pub fn is_listed(&self) -> bool {
        self.listed.all()
    }

    /// Marks the initial lists as received (manifest sources have no watch).
    pub fn mark_listed(&mut self) {
        self.listed = Listed {
            services: true,
            slices: true,
            node: true,
        };
    }

    /// Commits the model and runs one sync now (full when asked, after a failure, or on the
    /// first sync; else only the changed Services). Blocks the current thread in the
    /// backend: call from a blocking context (see [`Agent::run`] for the async loop).
    pub fn sync_now(&mut self, full: bool) -> Result<SyncReport, BackendError> {
        let scope = self.prepare(full);
        let mut backend = self.backend.take().expect("backend present between syncs");
        let started = Instant::now();
        let result = run_backend(backend.as_mut(), self.model.table(), &scope);
        self.backend = Some(backend);
        self.finish(scope, started, result)
    }

    fn prepare(&mut self, full: bool) -> SyncScope {
        let changes = self.model.commit();
        self.metrics
            .service_changes
            .with_label_values(&[self.backend_name])
            .inc_by(changes.services.len() as u64);
        self.pending_services.extend(changes.services);
        self.pending_triggers
            .extend(changes.trigger_times.into_iter().map(|(_, t)| t));
        if full || self.needs_full {
            SyncScope::Full
        } else {
            SyncScope::Services(self.pending_services.clone())
        }
    }

    /// Records a sync's outcome. The status's copy of the table follows the model: whole
    /// after a full sync, only the synced Services after a partial one (so a partial sync
    /// costs time in proportion to its change, not to the table).
    fn finish(
        &mut self,
        scope: SyncScope,
        started: Instant,
        result: Result<SyncReport, BackendError>,
    ) -> Result<SyncReport, BackendError> {
        let elapsed = started.elapsed();
        let scope_label = match scope {
            SyncScope::Full => "full",
            SyncScope::Services(_) => "partial",
        };
        let backend = self.backend_name;
        self.metrics
            .sync_duration
            .with_label_values(&[backend, scope_label])
            .observe(elapsed.as_secs_f64());
        match &result {
            Ok(report) => {
                let now = jiff::Timestamp::now();
                self.metrics
                    .syncs
                    .with_label_values(&[backend, scope_label, "success"])
                    .inc();
                self.metrics
                    .kernel_operations
                    .with_label_values(&[backend])
                    .inc_by(report.operations as u64);
                self.metrics
                    .conntrack_deleted
                    .with_label_values(&[backend])
                    .inc_by(report.conntrack_deleted as u64);
                for t in self.pending_triggers.drain(..) {
                    let latency = now.duration_since(t).as_secs_f64().max(0.0);
                    self.metrics
                        .network_programming
                        .with_label_values(&[backend])
                        .observe(latency);
                }
                self.metrics
                    .last_sync
                    .set(now.as_millisecond() as f64 / 1000.0);
                let table = self.model.table();
                self.metrics.virtual_servers.set(table.len() as i64);
                self.metrics.services.set(table.services().count() as i64);
                self.pending_services.clear();
                self.needs_full = false;
                self.oldest_pending = None;
                let node = self.model.node().clone();
                let synced = self.listed.all();
                self.status.send_modify(|s| {
                    match &scope {
                        SyncScope::Full => s.table = table.clone(),
                        SyncScope::Services(names) => {
                            for name in names {
                                s.table.copy_service_from(table, name);
                            }
                        }
                    }
                    s.node = node;
                    s.synced = synced;
                    s.last_sync = Some(now);
                    s.oldest_pending = None;
                    s.last_error = None;
                });
                tracing::debug!(
                    backend,
                    scope = scope_label,
                    operations = report.operations,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "sync done"
                );
            }
            Err(err) => {
                self.metrics
                    .syncs
                    .with_label_values(&[backend, scope_label, err.metric_label()])
                    .inc();
                self.needs_full = true;
                let message = err.to_string();
                let oldest = self.oldest_pending;
                self.status.send_modify(|s| {
                    s.last_error = Some(message);
                    s.oldest_pending = oldest;
                });
                tracing::error!(backend, scope = scope_label, error = %err, "sync failed; the next sync is a full one");
            }
        }
        result
    }

    /// Runs until `events` closes or `shutdown` resolves: applies events, and syncs when the
    /// schedule says so, once every initial list has arrived (syncing earlier would remove
    /// rows for objects not listed yet and break established connections).
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<SourceEvent>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut schedule = SyncSchedule::new(
            self.timing.min_sync_period,
            self.timing.sync_period,
            self.timing.burst,
            Instant::now(),
        );
        loop {
            let due_at = if self.listed.all() {
                schedule.next_due(Instant::now())
            } else {
                Instant::now() + Duration::from_secs(3600)
            };
            // Work the backend wants between syncs (draining IPVS destinations), once synced.
            let housekeeping_at = self
                .backend
                .as_ref()
                .and_then(|b| b.housekeeping_due())
                .filter(|_| self.listed.all());
            let wake_at = housekeeping_at.map_or(due_at, |h| h.min(due_at));
            tokio::select! {
                _ = &mut shutdown => break,
                event = events.recv() => {
                    let Some(event) = event else { break };
                    if self.apply(event) {
                        schedule.request();
                    }
                }
                _ = tokio::time::sleep_until(wake_at.into()) => {
                    let now = Instant::now();
                    if housekeeping_at.is_some_and(|at| at <= now) {
                        match self.housekeep().await {
                            Some(true) => {}
                            Some(false) => schedule.request(),
                            None => break,
                        }
                    }
                    let Some(due) = schedule.take(now) else { continue };
                    let full = due == Due::Periodic || self.needs_full;
                    let scope = self.prepare(full);
                    if let SyncScope::Services(names) = &scope {
                        if names.is_empty() {
                            continue;
                        }
                    }
                    let mut backend = self.backend.take().expect("backend present between syncs");
                    let started = Instant::now();
                    // The blocking task shares the committed table (an `Arc`, dropped when
                    // the task ends, so the next commit changes it in place: no copy).
                    let table_for_backend = self.model.table_snapshot();
                    let scope_for_backend = scope.clone();
                    let joined = tokio::task::spawn_blocking(move || {
                        let result = run_backend(backend.as_mut(), &table_for_backend, &scope_for_backend);
                        (backend, result)
                    })
                    .await;
                    let (backend, result) = match joined {
                        Ok(pair) => pair,
                        Err(panic) => {
                            tracing::error!(error = %panic, "backend sync task panicked; stopping");
                            break;
                        }
                    };
                    self.backend = Some(backend);
                    let full_scope = scope == SyncScope::Full;
                    if self.finish(scope, started, result).is_ok() {
                        if full_scope {
                            schedule.full_done(Instant::now());
                        }
                    } else {
                        schedule.request();
                    }
                }
            }
        }
    }
}

impl Agent {
    /// Runs the backend's housekeeping off the async runtime. Returns whether it succeeded (a
    /// failure makes the next sync a full one), `None` when the backend panicked (the agent
    /// stops).
    async fn housekeep(&mut self) -> Option<bool> {
        let mut backend = self.backend.take().expect("backend present between syncs");
        let joined = tokio::task::spawn_blocking(move || {
            let result = backend.housekeeping();
            (backend, result)
        })
        .await;
        let (backend, result) = match joined {
            Ok(pair) => pair,
            Err(panic) => {
                tracing::error!(error = %panic, "backend housekeeping panicked; stopping");
                return None;
            }
        };
        self.backend = Some(backend);
        match result {
            Ok(report) => {
                self.metrics
                    .kernel_operations
                    .with_label_values(&[self.backend_name])
                    .inc_by(report.operations as u64);
                Some(true)
            }
            Err(err) => {
                tracing::error!(backend = self.backend_name, error = %err, "housekeeping failed; the next sync is a full one");
                self.needs_full = true;
                Some(false)
            }
        }
    }
}

fn run_backend(
    backend: &mut dyn Backend,
    table: &DesiredTable,
    scope: &SyncScope,
) -> Result<SyncReport, BackendError> {
    let result = backend.sync(table, scope);
    if *scope == SyncScope::Full {
        // A full sync's transients are freed by now; give their pages back.
        crate::heap::release_free_heap();
    }
    result
}
