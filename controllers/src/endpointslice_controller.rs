//! The EndpointSlice controller (upstream `pkg/controller/endpointslice`): keeps the slices
//! of every Service with a selector equal to [`crate::slice_plan::plan_slices`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tracing::instrument;

use crate::cache::InformerEvent;
use crate::cached_object::CachedSlice;
use crate::cached_pod::CachedPod;
use crate::context::{key_of, split_key, Context};
use crate::error::{Error, Result};
use crate::hints::{topology_mode_auto, HintPolicy};
use crate::labels::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::queue::WorkQueue;
use crate::recorder::object_ref;
use crate::slice_apply::apply_slice_plan;
use crate::slice_plan::{plan_delete_all, SlicePlan, SlicePlanConfig};
use crate::topology_cache::{HintEvent, TopologyCache};
use crate::topology_cpu::{has_excluded_labels, is_node_ready, node_cpu_millis, node_zone};
use crate::topology_plan::plan_slices_with_topology;
use crate::trigger_time::TriggerTimeTracker;

/// Metric/log name.
pub const NAME: &str = "endpointslice";

/// The controller: event handlers that queue Service keys, and the sync of one key.
pub struct EndpointSliceController {
    ctx: Arc<Context>,
    /// Its work queue of `namespace/name` Service keys.
    pub queue: Arc<WorkQueue>,
    /// Zone CPU shares and hint state for `service.kubernetes.io/topology-mode: Auto`.
    pub topology: TopologyCache,
    /// `endpoints.kubernetes.io/last-change-trigger-time` state per Service.
    pub trigger_times: TriggerTimeTracker,
}

/// True when a Node changed in a way the topology cache reads (upstream `updateNode` checks
/// readiness and the zone label; beyond upstream, allocatable CPU and the control-plane role
/// labels count too).
pub fn node_topology_changed(old: &Node, new: &Node) -> bool {
    is_node_ready(old) != is_node_ready(new)
        || node_zone(old) != node_zone(new)
        || node_cpu_millis(old) != node_cpu_millis(new)
        || has_excluded_labels(old) != has_excluded_labels(new)
}

/// True when a Pod changed in a way that matters to endpoints (the cached Pods hold exactly
/// those fields, so anything but the resourceVersion counts; like upstream
/// `podEndpointsChanged`, a new Ready `lastTransitionTime` alone does not).
pub fn pod_changed(old: &CachedPod, new: &CachedPod) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.uid != new.metadata.uid
        || (
            &old.node_name,
            &old.hostname,
            &old.subdomain,
            &old.ports,
            &old.phase,
            &old.pod_ip,
            &old.pod_ips,
            &old.ready,
        ) != (
            &new.node_name,
            &new.hostname,
            &new.subdomain,
            &new.ports,
            &new.phase,
            &new.pod_ip,
            &new.pod_ips,
            &new.ready,
        )
}

/// Service keys to sync for a Pod event (upstream `GetServicesToUpdate`: Services matching
/// the new labels, plus those matching the old labels when the labels changed).
pub fn services_for_pod_event(ctx: &Context, event: &InformerEvent<CachedPod>) -> Vec<String> {
    match event {
        InformerEvent::Applied { old, new } => {
            let ns = new.metadata.namespace.as_deref().unwrap_or_default();
            if let Some(old) = old {
                if !pod_changed(old, new) {
                    return Vec::new();
                }
                let mut keys = ctx
                    .caches
                    .services_selecting(ns, new.metadata.labels.as_ref());
                if old.metadata.labels != new.metadata.labels {
                    keys.extend(
                        ctx.caches
                            .services_selecting(ns, old.metadata.labels.as_ref()),
                    );
                    keys.sort();
                    keys.dedup();
                }
                keys
            } else {
                ctx.caches
                    .services_selecting(ns, new.metadata.labels.as_ref())
            }
        }
        InformerEvent::Deleted(pod) => ctx.caches.services_selecting(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.labels.as_ref(),
        ),
        InformerEvent::Listed { .. } => Vec::new(),
    }
}

impl EndpointSliceController {
    /// A controller over the shared context.
    pub fn new(ctx: Arc<Context>) -> Self {
        let queue = Arc::new(WorkQueue::new(
            ctx.config.sync_backoff_base,
            ctx.config.sync_backoff_max,
        ));
        EndpointSliceController {
            ctx,
            queue,
            topology: TopologyCache::new(),
            trigger_times: TriggerTimeTracker::new(),
        }
    }

    fn managed_by(&self) -> &str {
        &self.ctx.config.managed_by
    }

    /// Queues every Service and every Service that still has slices of ours.
    pub fn resync_all(&self) {
        for svc in self.ctx.caches.services.list() {
            self.queue.add(key_of(
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ));
        }
        for slice in self.ctx.caches.slices.list() {
            if let Some(key) = self.slice_service_key(&slice) {
                self.queue.add(key);
            }
        }
    }

    fn slice_service_key(&self, slice: &CachedSlice) -> Option<String> {
        let labels = slice.metadata.labels.as_ref()?;
        if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(self.managed_by()) {
            return None;
        }
        let svc = labels.get(LABEL_SERVICE_NAME)?;
        Some(key_of(slice.metadata.namespace.as_deref(), Some(svc)))
    }

    /// Service events: sync now.
    pub fn on_service(&self, event: &InformerEvent<Service>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Applied { new: svc, .. } | InformerEvent::Deleted(svc) => {
                self.queue.add(key_of(
                    svc.metadata.namespace.as_deref(),
                    svc.metadata.name.as_deref(),
                ))
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Pod events: sync the affected Services after the batch period.
    pub fn on_pod(&self, event: &InformerEvent<CachedPod>) {
        if !self.ctx.started() {
            return;
        }
        if let InformerEvent::Listed { initial: false } = event {
            return self.resync_all();
        }
        for key in services_for_pod_event(&self.ctx, event) {
            self.queue
                .add_after(key, self.ctx.config.endpointslice_updates_batch_period);
        }
    }

    /// Node events (upstream `addNode` / `updateNode` / `deleteNode` and
    /// `checkNodeTopologyDistribution`): recomputes the zones' CPU shares and, when they
    /// changed, queues the Services upstream finds overloaded plus (beyond upstream, so that
    /// hints also come back once node information becomes sufficient) every Service with the
    /// topology annotation.
    pub fn on_node(&self, event: &InformerEvent<Node>) {
        if let InformerEvent::Applied {
            old: Some(old),
            new,
        } = event
        {
            if !node_topology_changed(old, new) {
                return;
            }
        }
        let nodes = self.ctx.caches.nodes.list();
        let changed = self.topology.set_nodes(nodes.iter().map(|n| n.as_ref()));
        if !changed || !self.ctx.started() {
            return;
        }
        let mut keys = self.topology.overloaded_services();
        keys.extend(
            self.ctx
                .caches
                .services
                .list()
                .iter()
                .filter(|svc| topology_mode_auto(svc))
                .map(|svc| {
                    key_of(
                        svc.metadata.namespace.as_deref(),
                        svc.metadata.name.as_deref(),
                    )
                }),
        );
        keys.sort();
        keys.dedup();
        tracing::debug!(
            services = keys.len(),
            "node topology changed, queueing Services"
        );
        for key in keys {
            self.queue.add(key);
        }
    }

    /// Slice events: a slice of ours changed or vanished without us → repair.
    pub fn on_slice(&self, event: &InformerEvent<CachedSlice>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Applied { old, new } => {
                if let Some(key) = self.slice_service_key(new) {
                    if self.ctx.slice_tracker.should_sync(new) {
                        self.queue.add(key);
                    }
                } else if let Some(key) = old.as_deref().and_then(|o| self.slice_service_key(o)) {
                    // Our managed-by label was taken away: the slice is no longer ours.
                    self.queue.add(key);
                }
            }
            InformerEvent::Deleted(slice) => {
                if let Some(key) = self.slice_service_key(slice) {
                    if self.ctx.slice_tracker.handle_deletion(slice) {
                        self.queue.add(key);
                    }
                }
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Syncs one Service.
    #[instrument(skip(self), fields(controller = NAME))]
    pub async fn sync(&self, key: &str) -> Result<()> {
        let ctx = &self.ctx;
        let (ns, name) = split_key(key);
        let started = Instant::now();
        let selector: BTreeMap<String, String> = [
            (LABEL_SERVICE_NAME.to_string(), name.to_string()),
            (LABEL_MANAGED_BY.to_string(), self.managed_by().to_string()),
        ]
        .into();
        let slices = ctx
            .caches
            .slices
            .select(ns, &selector)
            .iter()
            .map(|s| s.expand())
            .collect::<Result<Vec<EndpointSlice>>>()?;
        let slice_refs: Vec<&EndpointSlice> = slices.iter().collect();
        let service = ctx.caches.services.get(ns, name);
        let selectorless = service.as_deref().is_none_or(|svc| {
            let spec = svc.spec.as_ref();
            spec.and_then(|s| s.selector.as_ref()).is_none()
                || spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName")
        });
        if service.is_none() {
            // Upstream `syncService` drops the Service's trigger time state when it is gone.
            self.trigger_times.delete_service(key);
        }
        let (plan, hint_events, hints) = if selectorless {
            // Service gone, without selector or ExternalName: our slices go (beyond upstream,
            // which leaves them to the garbage collector or in place).
            if slice_refs.is_empty() {
                ctx.metrics.set_desired(NAME, key, None);
                if service.is_none() {
                    ctx.slice_tracker.delete_service(key);
                    self.topology.delete_service(key);
                }
                return Ok(());
            }
            if service.is_none() {
                self.topology.delete_service(key);
            }
            (plan_delete_all(&slice_refs), Vec::new(), HintPolicy::None)
        } else {
            let service = service.as_deref().expect("checked above");
            if ctx.slice_tracker.stale(key, &slice_refs) {
                return Err(Error::StaleCache {
                    key: key.to_string(),
                    detail: "EndpointSlice informer cache is out of date".into(),
                });
            }
            let pods = ctx.caches.pods_for_service(service);
            let pod_refs: Vec<&Pod> = pods.iter().collect();
            let config = SlicePlanConfig {
                max_endpoints_per_slice: ctx.config.max_endpoints_per_slice,
                managed_by: self.managed_by().to_string(),
            };
            let lookup = |node: &str| ctx.caches.node_lookup(node);
            if topology_mode_auto(service) && !self.topology.has_nodes() {
                // The Node informer's first list may not have reached on_node yet.
                let nodes = ctx.caches.nodes.list();
                self.topology.set_nodes(nodes.iter().map(|n| n.as_ref()));
            }
            let (mut plan, events) = plan_slices_with_topology(
                service,
                &pod_refs,
                &slice_refs,
                &lookup,
                &config,
                &self.topology,
                key,
            );
            plan.stamp_trigger_time(self.trigger_times.compute(key, service, &pod_refs));
            (plan, events, HintPolicy::for_service(service))
        };
        let result = self.apply(key, ns, &plan, service.as_deref()).await;
        if let Some(svc) = service.as_deref() {
            self.record_hint_events(ns, svc, hint_events);
        }
        self.record(key, &plan, hints, service.is_some());
        tracing::debug!(
            writes = plan.writes(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "synced"
        );
        result?;
        if !plan.missing_nodes.is_empty() {
            let (pods, nodes): (Vec<String>, Vec<String>) =
                plan.missing_nodes.iter().cloned().unzip();
            return Err(Error::NodeNotFound {
                service: key.to_string(),
                pods,
                nodes,
            });
        }
        Ok(())
    }

    async fn apply(
        &self,
        key: &str,
        ns: &str,
        plan: &SlicePlan,
        service: Option<&Service>,
    ) -> Result<()> {
        if plan.is_empty() {
            return Ok(());
        }
        let owner = format!("Service {key}");
        let result = apply_slice_plan(
            &self.ctx,
            &self.ctx.endpointslice_client,
            NAME,
            &owner,
            ns,
            plan,
            &self.ctx.slice_tracker,
        )
        .await;
        if let (Err(err), Some(svc)) = (&result, service) {
            self.ctx.recorder.warn(
                object_ref(
                    "Service",
                    ns,
                    svc.metadata.name.as_deref().unwrap_or_default(),
                    svc.metadata.uid.clone(),
                ),
                "FailedToUpdateEndpointSlices",
                format!("Error updating Endpoint Slices for Service {key}: {err}"),
            );
        }
        result
    }

    /// Records the topology hint Events on the Service (upstream records them after
    /// `finalize`, whatever its outcome).
    fn record_hint_events(&self, ns: &str, svc: &Service, events: Vec<HintEvent>) {
        for event in events {
            let object = object_ref(
                "Service",
                ns,
                svc.metadata.name.as_deref().unwrap_or_default(),
                svc.metadata.uid.clone(),
            );
            if event.warning {
                self.ctx.recorder.warn(object, event.reason, event.message);
            } else {
                self.ctx
                    .recorder
                    .normal(object, event.reason, event.message);
            }
        }
    }

    fn record(&self, key: &str, plan: &SlicePlan, hints: HintPolicy, exists: bool) {
        let m = &self.ctx.metrics;
        m.endpoints_added_per_sync
            .with_label_values(&[NAME])
            .observe(plan.endpoints_added as f64);
        m.endpoints_removed_per_sync
            .with_label_values(&[NAME])
            .observe(plan.endpoints_removed as f64);
        m.slices_changed_per_sync
            .with_label_values(&[NAME, hints.metric_label()])
            .observe(plan.writes() as f64);
        let desired = exists.then_some((plan.desired_endpoints as i64, plan.desired_slices as i64));
        m.set_desired(NAME, key, desired);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cached_pod::PodInterner;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(rv: &str, ready: &str, since: &str) -> CachedPod {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    last_transition_time: Some(Time(since.parse().unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        CachedPod::from_pod(pod, &PodInterner::new())
    }

    /// Upstream `podEndpointsChanged`: readiness counts, its transition time alone does not.
    #[test]
    fn pod_changed_ignores_resource_version_and_ready_transition_time_alone() {
        let base = pod("1", "True", "2025-01-01T00:00:00Z");
        let cases = [
            (
                "resourceVersion only",
                pod("2", "True", "2025-01-01T00:00:00Z"),
                false,
            ),
            (
                "ready time only",
                pod("2", "True", "2025-01-02T00:00:00Z"),
                false,
            ),
            ("readiness", pod("2", "False", "2025-01-02T00:00:00Z"), true),
        ];
        for (name, new, want) in cases {
            assert_eq!(pod_changed(&base, &new), want, "{name}");
        }
    }
}
