//! The EndpointSlice mirroring controller (upstream `pkg/controller/endpointslicemirroring`):
//! mirrors custom Endpoints of selector-less Services into EndpointSlices.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tracing::instrument;

use crate::cache::InformerEvent;
use crate::cached_object::{CachedEndpoints, CachedSlice};
use crate::context::{key_of, split_key, Context};
use crate::error::{Error, Result};
use crate::labels::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_MIRRORING_CONTROLLER};
use crate::mirroring_plan::plan_mirroring;
use crate::queue::WorkQueue;
use crate::recorder::object_ref;
use crate::slice_apply::apply_slice_plan;
use crate::slice_plan::plan_delete_all;

/// Metric/log name.
pub const NAME: &str = "endpointslicemirroring";

/// The controller; keys are `namespace/name` of Endpoints (= Service) objects.
pub struct MirroringController {
    ctx: Arc<Context>,
    /// Its work queue.
    pub queue: Arc<WorkQueue>,
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
        let queue = Arc::new(WorkQueue::new(
            ctx.config.sync_backoff_base,
            ctx.config.sync_backoff_max,
        ));
        MirroringController { ctx, queue }
    }

    /// Queues every Endpoints object and every owner of mirrored slices.
    pub fn resync_all(&self) {
        for ep in self.ctx.caches.endpoints.list() {
            self.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            ));
        }
        for slice in self.ctx.caches.slices.list() {
            if let Some(key) = mirrored_key(&slice) {
                self.queue.add(key);
            }
        }
    }

    /// Endpoints events, after the batch period.
    pub fn on_endpoints(&self, event: &InformerEvent<CachedEndpoints>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Applied { new: ep, .. } | InformerEvent::Deleted(ep) => {
                self.queue.add_after(
                    key_of(
                        ep.metadata.namespace.as_deref(),
                        ep.metadata.name.as_deref(),
                    ),
                    self.ctx.config.mirroring_endpointslice_updates_batch_period,
                )
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Service events: gaining or losing a selector changes whether we mirror.
    pub fn on_service(&self, event: &InformerEvent<Service>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Applied { new: svc, .. } | InformerEvent::Deleted(svc) => {
                let (ns, name) = (
                    svc.metadata.namespace.as_deref().unwrap_or_default(),
                    svc.metadata.name.as_deref().unwrap_or_default(),
                );
                if self.ctx.caches.endpoints.get(ns, name).is_some() || self.has_slices(ns, name) {
                    self.queue.add(key_of(Some(ns), Some(name)));
                }
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
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
        self.ctx.caches.slices.select(ns, &selector)
    }

    /// Mirrored slice events not caused by us → repair.
    pub fn on_slice(&self, event: &InformerEvent<CachedSlice>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Applied { old, new } => {
                if let Some(key) = mirrored_key(new) {
                    if self.ctx.mirror_tracker.should_sync(new) {
                        self.queue.add(key);
                    }
                } else if let Some(key) = old.as_deref().and_then(mirrored_key) {
                    self.queue.add(key);
                }
            }
            InformerEvent::Deleted(slice) => {
                if let Some(key) = mirrored_key(slice) {
                    if self.ctx.mirror_tracker.handle_deletion(slice) {
                        self.queue.add(key);
                    }
                }
            }
            InformerEvent::Listed { initial: false } => self.resync_all(),
            InformerEvent::Listed { initial: true } => {}
        }
    }

    /// Syncs one Endpoints object.
    #[instrument(skip(self), fields(controller = NAME))]
    pub async fn sync(&self, key: &str) -> Result<()> {
        let ctx = &self.ctx;
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
        let plan = match endpoints.as_ref() {
            None => {
                if slice_refs.is_empty() {
                    ctx.metrics.set_desired(NAME, key, None);
                    ctx.mirror_tracker.delete_service(key);
                    return Ok(());
                }
                crate::mirroring_plan::MirroringPlan {
                    slices: plan_delete_all(&slice_refs),
                    ..Default::default()
                }
            }
            Some(ep) => {
                if ctx.mirror_tracker.stale(key, &slice_refs) {
                    return Err(Error::StaleCache {
                        key: key.into(),
                        detail: "mirrored EndpointSlice cache is out of date".into(),
                    });
                }
                let max_per_subset = ctx.config.mirroring_max_endpoints_per_subset;
                let plan = plan_mirroring(ep, service.as_deref(), &slice_refs, max_per_subset);
                let ep_ref = || object_ref("Endpoints", ns, name, ep.metadata.uid.clone());
                if plan.invalid_addresses > 0 {
                    ctx.mirroring_recorder.warn(
                        ep_ref(),
                        "InvalidIPAddress",
                        format!(
                            "Skipped {} invalid IP addresses when mirroring to EndpointSlices",
                            plan.invalid_addresses
                        ),
                    );
                }
                if plan.over_capacity_skipped > 0 {
                    tracing::warn!(
                        skipped = plan.over_capacity_skipped,
                        "addresses skipped due to exceeding MaxEndpointsPerSubset"
                    );
                    ctx.mirroring_recorder.warn(
                        ep_ref(),
                        "TooManyAddressesToMirror",
                        format!(
                            "A max of {max_per_subset} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                            plan.over_capacity_skipped
                        ),
                    );
                }
                plan
            }
        };
        let m = &ctx.metrics;
        m.endpoints_added_per_sync
            .with_label_values(&[NAME])
            .observe(plan.slices.endpoints_added as f64);
        m.endpoints_removed_per_sync
            .with_label_values(&[NAME])
            .observe(plan.slices.endpoints_removed as f64);
        m.slices_changed_per_sync
            .with_label_values(&[NAME, ""])
            .observe(plan.slices.writes() as f64);
        m.set_desired(
            NAME,
            key,
            Some((
                plan.slices.desired_endpoints as i64,
                plan.slices.desired_slices as i64,
            )),
        );
        if plan.slices.is_empty() {
            return Ok(());
        }
        let owner = format!("Endpoints {key}");
        let result = apply_slice_plan(
            ctx,
            &ctx.mirroring_client,
            NAME,
            &owner,
            ns,
            &plan.slices,
            &ctx.mirror_tracker,
        )
        .await;
        if let (Err(err), Some(ep)) = (&result, endpoints.as_ref()) {
            ctx.mirroring_recorder.warn(
                object_ref("Endpoints", ns, name, ep.metadata.uid.clone()),
                "FailedToUpdateEndpointSlices",
                format!("Error updating EndpointSlices for Endpoints {key}: {err}"),
            );
        }
        result
    }
}
