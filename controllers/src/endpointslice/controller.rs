//! The EndpointSlice controller (upstream `pkg/controller/endpointslice`): keeps the slices
//! of every Service with a selector equal to [`crate::slices::plan::plan_slices`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::ControllerKind;
use crate::context::{key_of, split_key, Context};
use crate::error::{Error, Result};
use crate::informer::cache::InformerEvent;
use crate::informer::cached_object::CachedSlice;
use crate::informer::cached_pod::CachedPod;
use crate::labels::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::reconciler::{
    queue_pod_event, queue_service_event, ControllerScope, PlannedEvent, Reconciler,
    SyncObservation, SyncPlan, Watches, Written,
};
use crate::recorder::object_ref;
use crate::slices::plan::{plan_delete_all, SlicePlanConfig};
use crate::slices::tracker::SliceTracker;
use crate::topology::cache::TopologyCache;
use crate::topology::cpu::{has_excluded_labels, is_node_ready, node_cpu_millis, node_zone};
use crate::topology::hints::{topology_mode_auto, HintPolicy};
use crate::topology::plan::plan_slices_with_topology;
use crate::trigger_time::TriggerTimeTracker;

/// The controller: event handlers that queue Service keys, and the plan of one key.
pub struct EndpointSliceController {
    scope: ControllerScope,
    /// Slices this controller wrote (upstream `endpointSliceTracker`).
    tracker: SliceTracker,
    /// Zone CPU shares and hint state for `service.kubernetes.io/topology-mode: Auto`.
    topology: TopologyCache,
    /// `endpoints.kubernetes.io/last-change-trigger-time` state per Service.
    trigger_times: TriggerTimeTracker,
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

impl EndpointSliceController {
    /// A controller over the shared context.
    pub fn new(ctx: Arc<Context>) -> Self {
        EndpointSliceController {
            scope: ControllerScope::new(ctx, ControllerKind::EndpointSlice),
            tracker: SliceTracker::new(),
            topology: TopologyCache::new(),
            trigger_times: TriggerTimeTracker::new(),
        }
    }

    fn ctx(&self) -> &Context {
        &self.scope.ctx
    }

    fn managed_by(&self) -> &str {
        &self.ctx().config.managed_by
    }

    fn slice_service_key(&self, slice: &CachedSlice) -> Option<String> {
        let labels = slice.metadata.labels.as_ref()?;
        if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(self.managed_by()) {
            return None;
        }
        let svc = labels.get(LABEL_SERVICE_NAME)?;
        Some(key_of(slice.metadata.namespace.as_deref(), Some(svc)))
    }

    /// The plan of one Service's slices.
    fn plan_service(&self, key: &str) -> Result<SyncPlan> {
        let ctx = self.ctx();
        let (ns, name) = split_key(key);
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
        let mut out = SyncPlan::new(format!("Service {key}"), ns);
        let (plan, hint_events, hints) = if selectorless {
            // Service gone, without selector or ExternalName: our slices go (beyond upstream,
            // which leaves them to the garbage collector or in place).
            if slice_refs.is_empty() {
                out.desired = Some(None);
                if service.is_none() {
                    self.tracker.delete_service(key);
                    self.topology.delete_service(key);
                }
                return Ok(out);
            }
            if service.is_none() {
                self.topology.delete_service(key);
            }
            (plan_delete_all(&slice_refs), Vec::new(), HintPolicy::None)
        } else {
            let service = service.as_deref().expect("checked above");
            if self.tracker.stale(key, &slice_refs) {
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
        out.push_slices(&plan);
        if let Some(svc) = service.as_deref() {
            let object = || {
                object_ref(
                    "Service",
                    ns,
                    svc.metadata.name.as_deref().unwrap_or_default(),
                    svc.metadata.uid.clone(),
                )
            };
            out.on_failure = Some(PlannedEvent {
                object: object(),
                warning: true,
                reason: "FailedToUpdateEndpointSlices",
                message: format!("Error updating Endpoint Slices for Service {key}"),
            });
            // Upstream records the topology hint Events after `finalize`, whatever its outcome.
            out.events = hint_events
                .into_iter()
                .map(|event| PlannedEvent {
                    object: object(),
                    warning: event.warning,
                    reason: event.reason,
                    message: event.message,
                })
                .collect();
        }
        out.observation = Some(SyncObservation {
            endpoints_added: plan.endpoints_added,
            endpoints_removed: plan.endpoints_removed,
            slices_changed: plan.writes(),
            topology_label: hints.metric_label(),
        });
        out.desired = Some(
            service
                .is_some()
                .then_some((plan.desired_endpoints as i64, plan.desired_slices as i64)),
        );
        if !plan.missing_nodes.is_empty() {
            let (pods, nodes): (Vec<String>, Vec<String>) =
                plan.missing_nodes.iter().cloned().unzip();
            out.retry = Some(Error::NodeNotFound {
                service: key.to_string(),
                pods,
                nodes,
            });
        }
        Ok(out)
    }
}

impl Reconciler for EndpointSliceController {
    fn scope(&self) -> &ControllerScope {
        &self.scope
    }

    fn kind(&self) -> ControllerKind {
        ControllerKind::EndpointSlice
    }

    fn watches(&self) -> Watches {
        Watches {
            pods: true,
            nodes: true,
            slices: true,
            endpoints: false,
        }
    }

    /// Queues every Service and every Service that still has slices of ours.
    fn resync_all(&self) {
        for svc in self.ctx().caches.services.list() {
            self.scope.queue.add(key_of(
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ));
        }
        for slice in self.ctx().caches.slices.list() {
            if let Some(key) = self.slice_service_key(&slice) {
                self.scope.queue.add(key);
            }
        }
    }

    /// Service events: sync now.
    fn on_service(&self, event: &InformerEvent<Service>) {
        queue_service_event(self, event);
    }

    /// Pod events: sync the affected Services after the batch period.
    fn on_pod(&self, event: &InformerEvent<CachedPod>) {
        queue_pod_event(
            self,
            event,
            self.ctx().config.endpointslice_updates_batch_period,
        );
    }

    /// Node events (upstream `addNode` / `updateNode` / `deleteNode` and
    /// `checkNodeTopologyDistribution`): recomputes the zones' CPU shares and, when they
    /// changed, queues the Services upstream finds overloaded plus (beyond upstream, so that
    /// hints also come back once node information becomes sufficient) every Service with the
    /// topology annotation.
    fn on_node(&self, event: &InformerEvent<Node>) {
        if let InformerEvent::Applied {
            old: Some(old),
            new,
        } = event
        {
            if !node_topology_changed(old, new) {
                return;
            }
        }
        let nodes = self.ctx().caches.nodes.list();
        let changed = self.topology.set_nodes(nodes.iter().map(|n| n.as_ref()));
        if !changed || !self.ctx().started() {
            return;
        }
        let mut keys = self.topology.overloaded_services();
        keys.extend(
            self.ctx()
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
            self.scope.queue.add(key);
        }
    }

    /// Slice events: a slice of ours changed or vanished without us → repair.
    fn on_slice(&self, event: &InformerEvent<CachedSlice>) {
        if !self.ctx().started() {
            return;
        }
        match event {
            InformerEvent::Applied { old, new } => {
                if let Some(key) = self.slice_service_key(new) {
                    if self.tracker.should_sync(new) {
                        self.scope.queue.add(key);
                    }
                } else if let Some(key) = old.as_deref().and_then(|o| self.slice_service_key(o)) {
                    // Our managed-by label was taken away: the slice is no longer ours.
                    self.scope.queue.add(key);
                }
            }
            InformerEvent::Deleted(slice) => {
                if let Some(key) = self.slice_service_key(slice) {
                    if self.tracker.handle_deletion(slice) {
                        self.scope.queue.add(key);
                    }
                }
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    fn plan(&self, key: &str) -> Result<SyncPlan> {
        self.plan_service(key)
    }

    fn written(&self, _key: &str, written: Written<'_>) {
        match written {
            Written::Slice(slice) => self.tracker.update(slice),
            Written::SliceDeleted(slice) => self.tracker.expect_deletion(slice),
            Written::Endpoints { .. } | Written::EndpointsDeleted => {}
        }
    }
}
