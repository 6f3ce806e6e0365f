//! The EndpointSlice mirroring controller (upstream `pkg/controller/endpointslicemirroring`):
//! mirrors custom Endpoints of selector-less Services into EndpointSlices.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::ControllerKind;
use crate::context::{key_of, split_key, Context};
use crate::error::{Error, Result};
use crate::informer::cache::InformerEvent;
use crate::informer::cached_object::{CachedEndpoints, CachedSlice};
use crate::labels::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_MIRRORING_CONTROLLER};
use crate::mirroring::plan::plan_mirroring;
use crate::reconciler::{
    ControllerScope, PlannedEvent, Reconciler, SyncObservation, SyncPlan, Watches, Written,
};
use crate::recorder::object_ref;
use crate::slices::plan::plan_delete_all;
use crate::slices::tracker::SliceTracker;

/// The controller; keys are `namespace/name` of Endpoints (= Service) objects.
pub struct MirroringController {
    scope: ControllerScope,
    /// Mirrored slices this controller wrote.
    tracker: SliceTracker,
}

fn mirrored_key(slice: &CachedSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_MIRRORING_CONTROLLER) {
        return None;
    }
    let name = labels.get(LABEL_SERVICE_NAME)?;
    Some(key_of(slice.metadata.namespace.as_deref(), Some(name)))
}

impl MirroringController {
    /// A controller over the shared context.
    pub fn new(ctx: Arc<Context>) -> Self {
        MirroringController {
            scope: ControllerScope::new(ctx, ControllerKind::EndpointSliceMirroring),
            tracker: SliceTracker::new(),
        }
    }

    fn ctx(&self) -> &Context {
        &self.scope.ctx
    }

    fn has_slices(&self, ns: &str, name: &str) -> bool {
        !self.mirrored_slices(ns, name).is_empty()
    }

    fn mirrored_slices(&self, ns: &str, name: &str) -> Vec<Arc<CachedSlice>> {
        let selector: BTreeMap<String, String> = [
            (LABEL_SERVICE_NAME.to_string(), name.to_string()),
            (
                LABEL_MANAGED_BY.to_string(),
                MANAGED_BY_MIRRORING_CONTROLLER.to_string(),
            ),
        ]
        .into();
        self.ctx().caches.slices.select(ns, &selector)
    }

    /// The plan of one Endpoints object's mirrored slices.
    fn plan_endpoints(&self, key: &str) -> Result<SyncPlan> {
        let ctx = self.ctx();
        let (ns, name) = split_key(key);
        let slices = self
            .mirrored_slices(ns, name)
            .iter()
            .map(|s| s.expand())
            .collect::<Result<Vec<EndpointSlice>>>()?;
        let slice_refs: Vec<&EndpointSlice> = slices.iter().collect();
        let endpoints = match ctx.caches.endpoints.get(ns, name) {
            Some(ep) => Some(ep.expand()?),
            None => None,
        };
        let service = ctx.caches.services.get(ns, name);
        let mut out = SyncPlan::new(format!("Endpoints {key}"), ns);
        let plan = match endpoints.as_ref() {
            None => {
                if slice_refs.is_empty() {
                    out.desired = Some(None);
                    self.tracker.delete_service(key);
                    return Ok(out);
                }
                plan_delete_all(&slice_refs)
            }
            Some(ep) => {
                if self.tracker.stale(key, &slice_refs) {
                    return Err(Error::StaleCache {
                        key: key.into(),
                        detail: "mirrored EndpointSlice cache is out of date".into(),
                    });
                }
                let max_per_subset = ctx.config.mirroring_max_endpoints_per_subset;
                let plan = plan_mirroring(ep, service.as_deref(), &slice_refs, max_per_subset);
                let ep_ref = || object_ref("Endpoints", ns, name, ep.metadata.uid.clone());
                if plan.invalid_addresses > 0 {
                    out.events.push(PlannedEvent {
                        object: ep_ref(),
                        warning: true,
                        reason: "InvalidIPAddress",
                        message: format!(
                            "Skipped {} invalid IP addresses when mirroring to EndpointSlices",
                            plan.invalid_addresses
                        ),
                    });
                }
                if plan.over_capacity_skipped > 0 {
                    tracing::warn!(
                        skipped = plan.over_capacity_skipped,
                        "addresses skipped due to exceeding MaxEndpointsPerSubset"
                    );
                    out.events.push(PlannedEvent {
                        object: ep_ref(),
                        warning: true,
                        reason: "TooManyAddressesToMirror",
                        message: format!(
                            "A max of {max_per_subset} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                            plan.over_capacity_skipped
                        ),
                    });
                }
                out.on_failure = Some(PlannedEvent {
                    object: ep_ref(),
                    warning: true,
                    reason: "FailedToUpdateEndpointSlices",
                    message: format!("Error updating EndpointSlices for Endpoints {key}"),
                });
                plan.slices
            }
        };
        out.observation = Some(SyncObservation {
            endpoints_added: plan.endpoints_added,
            endpoints_removed: plan.endpoints_removed,
            slices_changed: plan.writes(),
            topology_label: "",
        });
        out.desired = Some(Some((
            plan.desired_endpoints as i64,
            plan.desired_slices as i64,
        )));
        out.push_slices(&plan);
        Ok(out)
    }
}

impl Reconciler for MirroringController {
    fn scope(&self) -> &ControllerScope {
        &self.scope
    }

    fn kind(&self) -> ControllerKind {
        ControllerKind::EndpointSliceMirroring
    }

    fn watches(&self) -> Watches {
        Watches {
            pods: false,
            nodes: false,
            slices: true,
            endpoints: true,
        }
    }

    /// Queues every Endpoints object and every owner of mirrored slices.
    fn resync_all(&self) {
        for ep in self.ctx().caches.endpoints.list() {
            self.scope.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            ));
        }
        for slice in self.ctx().caches.slices.list() {
            if let Some(key) = mirrored_key(&slice) {
                self.scope.queue.add(key);
            }
        }
    }

    /// Endpoints events, after the batch period.
    fn on_endpoints(&self, event: &InformerEvent<CachedEndpoints>) {
        if !self.ctx().started() {
            return;
        }
        match event {
            InformerEvent::Applied { new: ep, .. } | InformerEvent::Deleted(ep) => {
                self.scope.queue.add_after(
                    key_of(
                        ep.metadata.namespace.as_deref(),
                        ep.metadata.name.as_deref(),
                    ),
                    self.ctx()
                        .config
                        .mirroring_endpointslice_updates_batch_period,
                )
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Service events: gaining or losing a selector changes whether we mirror.
    fn on_service(&self, event: &InformerEvent<Service>) {
        if !self.ctx().started() {
            return;
        }
        match event {
            InformerEvent::Applied { new: svc, .. } | InformerEvent::Deleted(svc) => {
                let (ns, name) = (
                    svc.metadata.namespace.as_deref().unwrap_or_default(),
                    svc.metadata.name.as_deref().unwrap_or_default(),
                );
                if self.ctx().caches.endpoints.get(ns, name).is_some() || self.has_slices(ns, name)
                {
                    self.scope.queue.add(key_of(Some(ns), Some(name)));
                }
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Mirrored slice events not caused by us → repair.
    fn on_slice(&self, event: &InformerEvent<CachedSlice>) {
        if !self.ctx().started() {
            return;
        }
        match event {
            InformerEvent::Applied { old, new } => {
                if let Some(key) = mirrored_key(new) {
                    if self.tracker.should_sync(new) {
                        self.scope.queue.add(key);
                    }
                } else if let Some(key) = old.as_deref().and_then(mirrored_key) {
                    self.scope.queue.add(key);
                }
            }
            InformerEvent::Deleted(slice) => {
                if let Some(key) = mirrored_key(slice) {
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
        self.plan_endpoints(key)
    }

    fn written(&self, _key: &str, written: Written<'_>) {
        match written {
            Written::Slice(slice) => self.tracker.update(slice),
            Written::SliceDeleted(slice) => self.tracker.expect_deletion(slice),
            Written::Endpoints { .. } | Written::EndpointsDeleted => {}
        }
    }
}
