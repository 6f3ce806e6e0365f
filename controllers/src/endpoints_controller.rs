//! The Endpoints controller (upstream `pkg/controller/endpoint`): keeps the legacy Endpoints
//! object of every Service with a selector equal to
//! [`crate::endpoints_plan::plan_endpoints`].

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use tracing::instrument;

use crate::cache::InformerEvent;
use crate::cached_object::CachedEndpoints;
use crate::cached_pod::CachedPod;
use crate::context::{key_of, split_key, Context};
use crate::endpoints_plan::{plan_endpoints, EndpointsAction};
use crate::endpointslice_controller::services_for_pod_event;
use crate::error::{Error, Result};
use crate::queue::WorkQueue;
use crate::recorder::object_ref;
use crate::trigger_time::TriggerTimeTracker;

/// Metric/log name.
pub const NAME: &str = "endpoints";

/// The controller.
pub struct EndpointsController {
    ctx: Arc<Context>,
    /// Its work queue of `namespace/name` Service keys.
    pub queue: Arc<WorkQueue>,
    /// `endpoints.kubernetes.io/last-change-trigger-time` state per Service.
    pub trigger_times: TriggerTimeTracker,
}

impl EndpointsController {
    /// A controller over the shared context.
    pub fn new(ctx: Arc<Context>) -> Self {
        let queue = Arc::new(WorkQueue::new(
            ctx.config.sync_backoff_base,
            ctx.config.sync_backoff_max,
        ));
        EndpointsController {
            ctx,
            queue,
            trigger_times: TriggerTimeTracker::new(),
        }
    }

    /// Queues every Service (and every Endpoints object, to clean up after deleted Services,
    /// upstream `checkLeftoverEndpoints`).
    pub fn resync_all(&self) {
        for svc in self.ctx.caches.services.list() {
            self.queue.add(key_of(
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ));
        }
        for ep in self.ctx.caches.endpoints.list() {
            self.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            ));
        }
    }

    /// Service events.
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

    /// Pod events, after the batch period.
    pub fn on_pod(&self, event: &InformerEvent<CachedPod>) {
        if !self.ctx.started() {
            return;
        }
        if let InformerEvent::Listed { initial: false } = event {
            return self.resync_all();
        }
        for key in services_for_pod_event(&self.ctx, event) {
            self.queue
                .add_after(key, self.ctx.config.endpoint_updates_batch_period);
        }
    }

    /// Endpoints deleted behind our back are recreated (upstream `onEndpointsDelete`).
    pub fn on_endpoints(&self, event: &InformerEvent<CachedEndpoints>) {
        if !self.ctx.started() {
            return;
        }
        match event {
            InformerEvent::Deleted(ep) => self.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            )),
            InformerEvent::Listed { initial: false } => self.resync_all(),
            _ => {}
        }
    }

    /// Syncs one Service.
    #[instrument(skip(self), fields(controller = NAME))]
    pub async fn sync(&self, key: &str) -> Result<()> {
        let ctx = &self.ctx;
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(ctx.endpoints_client.clone(), ns);
        let Some(service) = ctx.caches.services.get(ns, name) else {
            // Upstream deletes the Endpoints of a deleted Service and forgets its trigger
            // time state.
            ctx.endpoints_stale.forget(key);
            self.trigger_times.delete_service(key);
            if ctx.caches.endpoints.get(ns, name).is_some() {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => ctx
                        .metrics
                        .changes
                        .with_label_values(&[NAME, "delete"])
                        .inc(),
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(Error::api(format!("failed to delete Endpoints {key}"), e))
                    }
                }
            }
            return Ok(());
        };
        let spec = service.spec.clone().unwrap_or_default();
        if spec.selector.is_none() || spec.type_.as_deref() == Some("ExternalName") {
            // Services without a selector get their Endpoints from the user (upstream).
            return Ok(());
        }
        let existing = match ctx.caches.endpoints.get(ns, name) {
            Some(ep) => Some(ep.expand()?),
            None => None,
        };
        if let Some(e) = existing.as_ref() {
            let rv = e.metadata.resource_version.as_deref().unwrap_or_default();
            if ctx.endpoints_stale.is_stale(key, rv) {
                return Err(Error::StaleCache {
                    key: key.into(),
                    detail: format!("resource version {rv} already processed"),
                });
            }
        }
        let pods = ctx.caches.pods_for_service(&service);
        let pod_refs: Vec<&Pod> = pods.iter().collect();
        // Upstream computes the trigger time on every sync, before comparing, so that the
        // state follows the Pods even when nothing is written.
        let trigger = self.trigger_times.compute(key, &service, &pod_refs);
        let plan = plan_endpoints(&service, &pod_refs, existing.as_ref(), trigger);
        let svc_ref = || object_ref("Service", ns, name, service.metadata.uid.clone());
        match plan.action {
            EndpointsAction::None => Ok(()),
            EndpointsAction::Create(obj) => match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {
                    ctx.metrics
                        .changes
                        .with_label_values(&[NAME, "create"])
                        .inc();
                    Ok(())
                }
                Err(e) => {
                    let err = Error::api(format!("failed to create Endpoints {key}"), e);
                    ctx.endpoints_recorder.warn(
                        svc_ref(),
                        "FailedToCreateEndpoint",
                        format!("Failed to create endpoint for service {key}: {err}"),
                    );
                    Err(err)
                }
            },
            EndpointsAction::Update(obj) => {
                let old_rv = obj.metadata.resource_version.clone().unwrap_or_default();
                match api.replace(name, &PostParams::default(), &obj).await {
                    Ok(updated) => {
                        ctx.metrics
                            .changes
                            .with_label_values(&[NAME, "update"])
                            .inc();
                        if updated.metadata.resource_version.as_deref() != Some(old_rv.as_str()) {
                            ctx.endpoints_stale.replaced(key, &old_rv);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        let err = Error::api(format!("failed to update Endpoints {key}"), e);
                        ctx.endpoints_recorder.warn(
                            svc_ref(),
                            "FailedToUpdateEndpoint",
                            format!("Failed to update endpoint {key}: {err}"),
                        );
                        Err(err)
                    }
                }
            }
        }
    }
}
