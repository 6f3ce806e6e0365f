//! The one shape every controller has (kube-rs `controller-rs`; upstream's controllers split
//! the same way into event handlers, `syncService` and `finalize`):
//! - event handlers turn informer events into queued `namespace/name` keys;
//! - [`Reconciler::plan`] reads the informer caches and decides, with no API call: the
//!   writes, the Events and the metric observations of one key, as a [`SyncPlan`];
//! - one generic [`apply`] carries the plan out through the controller's own client and
//!   recorder, and reports each write back through [`Reconciler::written`].
//!
//! The manager (`crate::manager`) holds the enabled controllers as `dyn Reconciler` and
//! fans informer events, resyncs and workers out over them.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Node, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;

use crate::config::ControllerKind;
use crate::context::{key_of, Context};
use crate::error::{Error, Result};
use crate::informer::cache::InformerEvent;
use crate::informer::cached_object::{CachedEndpoints, CachedSlice};
use crate::informer::cached_pod::CachedPod;
use crate::informer::pod_events::services_for_pod_event;
use crate::recorder::Recorder;
use crate::runtime::queue::WorkQueue;
use crate::slices::plan::SlicePlan;

/// The informers a controller reads; the manager runs the union of its controllers' sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watches {
    /// Pods (selected by Services).
    pub pods: bool,
    /// Nodes (zones, topology).
    pub nodes: bool,
    /// EndpointSlices.
    pub slices: bool,
    /// Endpoints.
    pub endpoints: bool,
}

impl Watches {
    /// Both sets together.
    pub fn union(self, other: Watches) -> Watches {
        Watches {
            pods: self.pods || other.pods,
            nodes: self.nodes || other.nodes,
            slices: self.slices || other.slices,
            endpoints: self.endpoints || other.endpoints,
        }
    }
}

/// What one controller owns beyond the shared [`Context`]: its name, its rate-limited API
/// client and its Event recorder (upstream gives each controller its own client and event
/// source).
pub struct ControllerScope {
    /// Metric and log name (`endpointslice`, `endpoints`, `endpointslicemirroring`).
    pub name: &'static str,
    /// The shared caches, configuration and metrics.
    pub ctx: Arc<Context>,
    /// The controller's own API client (its own token bucket).
    pub client: Client,
    /// The controller's Event recorder.
    pub recorder: Recorder,
    /// Its work queue of keys.
    pub queue: Arc<WorkQueue>,
}

impl ControllerScope {
    /// The scope of controller `kind`: its own rate-limited client, its Event source and an
    /// empty queue.
    pub fn new(ctx: Arc<Context>, kind: ControllerKind) -> Self {
        let client = ctx.client_for(kind.client_name());
        let recorder = Recorder::new(client.clone(), kind.event_source());
        let queue = Arc::new(WorkQueue::new(
            ctx.config.sync_backoff_base,
            ctx.config.sync_backoff_max,
        ));
        ControllerScope {
            name: kind.name(),
            ctx,
            client,
            recorder,
            queue,
        }
    }
}

/// One API write of a plan.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create an EndpointSlice.
    CreateSlice(EndpointSlice),
    /// Replace an EndpointSlice (carries the stored resourceVersion).
    UpdateSlice(EndpointSlice),
    /// Delete an EndpointSlice (absent already counts as deleted).
    DeleteSlice(EndpointSlice),
    /// Create an Endpoints object.
    CreateEndpoints(Endpoints),
    /// Replace an Endpoints object (carries the stored resourceVersion).
    UpdateEndpoints(Endpoints),
    /// Delete the Endpoints object of this name (absent already counts as deleted).
    DeleteEndpoints(String),
}

impl Write {
    /// The `operation` label of `svcplane_*_changes_total`.
    pub fn operation(&self) -> &'static str {
        match self {
            Write::CreateSlice(_) | Write::CreateEndpoints(_) => "create",
            Write::UpdateSlice(_) | Write::UpdateEndpoints(_) => "update",
            Write::DeleteSlice(_) | Write::DeleteEndpoints(_) => "delete",
        }
    }
}

/// The API server's answer to one [`Write`], handed to [`Reconciler::written`].
#[derive(Debug)]
pub enum Written<'a> {
    /// The slice as stored after a create or update.
    Slice(&'a EndpointSlice),
    /// A slice was deleted (or was already gone).
    SliceDeleted(&'a EndpointSlice),
    /// The Endpoints as stored after a create or update, with the request's resourceVersion
    /// (empty for a create).
    Endpoints {
        /// The stored object.
        stored: &'a Endpoints,
        /// The resourceVersion the update replaced.
        replaced_version: &'a str,
    },
    /// The Endpoints object was deleted (or was already gone).
    EndpointsDeleted,
}

/// An Event to record on an object (`kubectl describe`).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    /// The object the Event is about.
    pub object: ObjectReference,
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human message.
    pub message: String,
}

/// Per-sync observations for the histograms and gauges of [`crate::Metrics`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncObservation {
    /// Endpoints added by this sync.
    pub endpoints_added: usize,
    /// Endpoints removed by this sync.
    pub endpoints_removed: usize,
    /// Slices written by this sync, with the `topology` label of the histogram.
    pub slices_changed: usize,
    /// The histogram's topology label (`""` when it has none).
    pub topology_label: &'static str,
}

/// What one sync of one key decided. [`apply`] carries it out in this order: the writes, then
/// the Events, then the metrics; on a failed write the `on_failure` Event is recorded with the
/// error appended and the error returned.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// `Service ns/name` or `Endpoints ns/name`, for error messages.
    pub owner: String,
    /// Namespace of every write.
    pub namespace: String,
    /// The writes, in order.
    pub writes: Vec<Write>,
    /// Events recorded after the writes, whatever their outcome.
    pub events: Vec<PlannedEvent>,
    /// The Event recorded when a write fails; `": <error>"` is appended to its message.
    pub on_failure: Option<PlannedEvent>,
    /// Histogram observations, when the sync computed a plan.
    pub observation: Option<SyncObservation>,
    /// New value of the desired endpoints / slices gauges: `Some(None)` clears the key.
    pub desired: Option<Option<(i64, i64)>>,
    /// Returned after the writes succeeded, to retry the key later (e.g. Pods on Nodes the
    /// cache does not know yet).
    pub retry: Option<Error>,
}

impl SyncPlan {
    /// An empty plan for `owner` in `namespace`.
    pub fn new(owner: String, namespace: &str) -> Self {
        SyncPlan {
            owner,
            namespace: namespace.to_string(),
            ..Default::default()
        }
    }

    /// Appends a slice plan's writes (creates, then updates, then deletes, as upstream
    /// `finalize`).
    pub fn push_slices(&mut self, plan: &SlicePlan) {
        let creates = plan.to_create.iter().cloned().map(Write::CreateSlice);
        let updates = plan.to_update.iter().cloned().map(Write::UpdateSlice);
        let deletes = plan.to_delete.iter().cloned().map(Write::DeleteSlice);
        self.writes.extend(creates.chain(updates).chain(deletes));
    }
}

/// One controller: event handlers that queue keys, the plan of one key, and what it records
/// of its own writes. Handlers default to ignoring an informer's events.
pub trait Reconciler: Send + Sync + 'static {
    /// The controller's scope: name, client, recorder, queue.
    fn scope(&self) -> &ControllerScope;
    /// Which controller this is (`--controllers`, `--concurrent-*-syncs`).
    fn kind(&self) -> ControllerKind;
    /// The informers it reads besides Services.
    fn watches(&self) -> Watches;
    /// Queues every key (initial sync and relists).
    fn resync_all(&self);
    /// A Service event.
    fn on_service(&self, _event: &InformerEvent<Service>) {}
    /// A Pod event.
    fn on_pod(&self, _event: &InformerEvent<CachedPod>) {}
    /// A Node event.
    fn on_node(&self, _event: &InformerEvent<Node>) {}
    /// An EndpointSlice event.
    fn on_slice(&self, _event: &InformerEvent<CachedSlice>) {}
    /// An Endpoints event.
    fn on_endpoints(&self, _event: &InformerEvent<CachedEndpoints>) {}
    /// Decides what `key` needs from the caches alone (no API call).
    fn plan(&self, key: &str) -> Result<SyncPlan>;
    /// Records one successful write (stale-cache trackers).
    fn written(&self, _key: &str, _written: Written<'_>) {}
}

/// The Service handler of the controllers keyed by Service: queue the Service's key at once;
/// a relist queues everything (upstream `onServiceUpdate` / `onServiceDelete`).
pub fn queue_service_event(reconciler: &dyn Reconciler, event: &InformerEvent<Service>) {
    let scope = reconciler.scope();
    if !scope.ctx.started() {
        return;
    }
    match event {
        InformerEvent::Applied { new: svc, .. } | InformerEvent::Deleted(svc) => {
            scope.queue.add(key_of(
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ))
        }
        InformerEvent::Listed { initial: false } => reconciler.resync_all(),
        InformerEvent::Listed { initial: true } => {}
    }
}

/// The Pod handler of the controllers keyed by Service: queue the Services a Pod change
/// affects after the controller's batch period (upstream `addPod` / `updatePod` /
/// `deletePod` with `--*-updates-batch-period`); a relist queues everything.
pub fn queue_pod_event(
    reconciler: &dyn Reconciler,
    event: &InformerEvent<CachedPod>,
    batch_period: std::time::Duration,
) {
    let scope = reconciler.scope();
    if !scope.ctx.started() {
        return;
    }
    if let InformerEvent::Listed { initial: false } = event {
        return reconciler.resync_all();
    }
    for key in services_for_pod_event(&scope.ctx, event) {
        scope.queue.add_after(key, batch_period);
    }
}

/// Plans and applies one key: the sync a worker runs.
pub async fn sync(reconciler: &dyn Reconciler, key: &str) -> Result<()> {
    let plan = reconciler.plan(key)?;
    apply(reconciler, key, plan).await
}

/// Carries out a plan with the controller's client, recorder and metrics.
pub async fn apply(reconciler: &dyn Reconciler, key: &str, plan: SyncPlan) -> Result<()> {
    let scope = reconciler.scope();
    let result = write_all(reconciler, key, &plan).await;
    if let (Err(err), Some(event)) = (&result, plan.on_failure) {
        record(
            &scope.recorder,
            PlannedEvent {
                message: format!("{}: {err}", event.message),
                ..event
            },
        );
    }
    for event in plan.events {
        record(&scope.recorder, event);
    }
    let metrics = &scope.ctx.metrics;
    if let Some(o) = &plan.observation {
        metrics
            .endpoints_added_per_sync
            .with_label_values(&[scope.name])
            .observe(o.endpoints_added as f64);
        metrics
            .endpoints_removed_per_sync
            .with_label_values(&[scope.name])
            .observe(o.endpoints_removed as f64);
        metrics
            .slices_changed_per_sync
            .with_label_values(&[scope.name, o.topology_label])
            .observe(o.slices_changed as f64);
    }
    if let Some(desired) = plan.desired {
        metrics.set_desired(scope.name, key, desired);
    }
    result?;
    match plan.retry {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn record(recorder: &Recorder, event: PlannedEvent) {
    if event.warning {
        recorder.warn(event.object, event.reason, event.message);
    } else {
        recorder.normal(event.object, event.reason, event.message);
    }
}

/// The writes in order; stops at the first failure.
async fn write_all(reconciler: &dyn Reconciler, key: &str, plan: &SyncPlan) -> Result<()> {
    let scope = reconciler.scope();
    let slices: Api<EndpointSlice> = Api::namespaced(scope.client.clone(), &plan.namespace);
    let endpoints: Api<Endpoints> = Api::namespaced(scope.client.clone(), &plan.namespace);
    let owner = &plan.owner;
    let post = PostParams::default();
    for write in &plan.writes {
        match write {
            Write::CreateSlice(slice) => {
                let created = slices.create(&post, slice).await.map_err(|e| {
                    Error::api(format!("failed to create EndpointSlice for {owner}"), e)
                })?;
                reconciler.written(key, Written::Slice(&created));
            }
            Write::UpdateSlice(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                let updated = slices.replace(&name, &post, slice).await.map_err(|e| {
                    Error::api(
                        format!("failed to update {name} EndpointSlice for {owner}"),
                        e,
                    )
                })?;
                reconciler.written(key, Written::Slice(&updated));
            }
            Write::DeleteSlice(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                delete(&slices, &name).await.map_err(|e| {
                    Error::api(
                        format!("failed to delete {name} EndpointSlice for {owner}"),
                        e,
                    )
                })?;
                reconciler.written(key, Written::SliceDeleted(slice));
            }
            Write::CreateEndpoints(obj) => {
                let created = endpoints
                    .create(&post, obj)
                    .await
                    .map_err(|e| Error::api(format!("failed to create Endpoints {key}"), e))?;
                reconciler.written(
                    key,
                    Written::Endpoints {
                        stored: &created,
                        replaced_version: "",
                    },
                );
            }
            Write::UpdateEndpoints(obj) => {
                let name = obj.metadata.name.clone().unwrap_or_default();
                let old_rv = obj.metadata.resource_version.clone().unwrap_or_default();
                let updated = endpoints
                    .replace(&name, &post, obj)
                    .await
                    .map_err(|e| Error::api(format!("failed to update Endpoints {key}"), e))?;
                reconciler.written(
                    key,
                    Written::Endpoints {
                        stored: &updated,
                        replaced_version: &old_rv,
                    },
                );
            }
            Write::DeleteEndpoints(name) => {
                delete(&endpoints, name)
                    .await
                    .map_err(|e| Error::api(format!("failed to delete Endpoints {key}"), e))?;
                reconciler.written(key, Written::EndpointsDeleted);
            }
        }
        scope
            .ctx
            .metrics
            .changes
            .with_label_values(&[scope.name, write.operation()])
            .inc();
    }
    Ok(())
}

/// Deletes `name`; an object already gone counts as deleted (upstream ignores NotFound).
async fn delete<K>(api: &Api<K>, name: &str) -> std::result::Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
