//! The Endpoints controller (upstream `pkg/controller/endpoint`): keeps the legacy Endpoints
//! object of every Service with a selector equal to
//! [`crate::endpoints::plan::plan_endpoints`].

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};

use crate::config::ControllerKind;
use crate::context::{key_of, split_key, Context};
use crate::endpoints::plan::{plan_endpoints, EndpointsAction};
use crate::error::{Error, Result};
use crate::informer::cache::InformerEvent;
use crate::informer::cached_object::CachedEndpoints;
use crate::informer::cached_pod::CachedPod;
use crate::reconciler::{
    queue_pod_event, queue_service_event, ControllerScope, PlannedEvent, Reconciler, SyncPlan,
    Watches, Write, Written,
};
use crate::recorder::object_ref;
use crate::slices::tracker::StaleVersions;
use crate::trigger_time::TriggerTimeTracker;

/// The controller.
pub struct EndpointsController {
    scope: ControllerScope,
    /// Endpoints versions this controller replaced (upstream `staleEndpointsTracker`).
    stale: StaleVersions,
    /// `endpoints.kubernetes.io/last-change-trigger-time` state per Service.
    trigger_times: TriggerTimeTracker,
}

impl EndpointsController {
    /// A controller over the shared context.
    pub fn new(ctx: Arc<Context>) -> Self {
        EndpointsController {
            scope: ControllerScope::new(ctx, ControllerKind::Endpoints),
            stale: StaleVersions::new(),
            trigger_times: TriggerTimeTracker::new(),
        }
    }

    fn ctx(&self) -> &Context {
        &self.scope.ctx
    }

    /// The plan of one Service's Endpoints.
    fn plan_service(&self, key: &str) -> Result<SyncPlan> {
        let ctx = self.ctx();
        let (ns, name) = split_key(key);
        let mut out = SyncPlan::new(format!("Endpoints {key}"), ns);
        let Some(service) = ctx.caches.services.get(ns, name) else {
            // Upstream deletes the Endpoints of a deleted Service and forgets its trigger
            // time state.
            self.stale.forget(key);
            self.trigger_times.delete_service(key);
            if ctx.caches.endpoints.get(ns, name).is_some() {
                out.writes.push(Write::DeleteEndpoints(name.to_string()));
            }
            return Ok(out);
        };
        let spec = service.spec.clone().unwrap_or_default();
        if spec.selector.is_none() || spec.type_.as_deref() == Some("ExternalName") {
            // Services without a selector get their Endpoints from the user (upstream).
            return Ok(out);
        }
        let existing = match ctx.caches.endpoints.get(ns, name) {
            Some(ep) => Some(ep.expand()?),
            None => None,
        };
        if let Some(e) = existing.as_ref() {
            let rv = e.metadata.resource_version.as_deref().unwrap_or_default();
            if self.stale.is_stale(key, rv) {
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
            EndpointsAction::None => {}
            EndpointsAction::Create(obj) => {
                out.writes.push(Write::CreateEndpoints(obj));
                out.on_failure = Some(PlannedEvent {
                    object: svc_ref(),
                    warning: true,
                    reason: "FailedToCreateEndpoint",
                    message: format!("Failed to create endpoint for service {key}"),
                });
            }
            EndpointsAction::Update(obj) => {
                out.writes.push(Write::UpdateEndpoints(obj));
                out.on_failure = Some(PlannedEvent {
                    object: svc_ref(),
                    warning: true,
                    reason: "FailedToUpdateEndpoint",
                    message: format!("Failed to update endpoint {key}"),
                });
            }
        }
        Ok(out)
    }
}

impl Reconciler for EndpointsController {
    fn scope(&self) -> &ControllerScope {
        &self.scope
    }

    fn kind(&self) -> ControllerKind {
        ControllerKind::Endpoints
    }

    fn watches(&self) -> Watches {
        Watches {
            pods: true,
            nodes: false,
            slices: false,
            endpoints: true,
        }
    }

    /// Queues every Service (and every Endpoints object, to clean up after deleted Services,
    /// upstream `checkLeftoverEndpoints`).
    fn resync_all(&self) {
        for svc in self.ctx().caches.services.list() {
            self.scope.queue.add(key_of(
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
            ));
        }
        for ep in self.ctx().caches.endpoints.list() {
            self.scope.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            ));
        }
    }

    /// Service events.
    fn on_service(&self, event: &InformerEvent<Service>) {
        queue_service_event(self, event);
    }

    /// Pod events, after the batch period.
    fn on_pod(&self, event: &InformerEvent<CachedPod>) {
        queue_pod_event(self, event, self.ctx().config.endpoint_updates_batch_period);
    }

    /// Endpoints deleted behind our back are recreated (upstream `onEndpointsDelete`).
    fn on_endpoints(&self, event: &InformerEvent<CachedEndpoints>) {
        if !self.ctx().started() {
            return;
        }
        match event {
            InformerEvent::Deleted(ep) => self.scope.queue.add(key_of(
                ep.metadata.namespace.as_deref(),
                ep.metadata.name.as_deref(),
            )),
            InformerEvent::Listed { initial: false } => self.resync_all(),
            _ => {}
        }
    }

    fn plan(&self, key: &str) -> Result<SyncPlan> {
        self.plan_service(key)
    }

    fn written(&self, key: &str, written: Written<'_>) {
        if let Written::Endpoints {
            stored,
            replaced_version,
        } = written
        {
            // Upstream remembers the replaced version so a cache still holding it is not
            // mistaken for the current state.
            if !replaced_version.is_empty()
                && stored.metadata.resource_version.as_deref() != Some(replaced_version)
            {
                self.stale.replaced(key, replaced_version);
            }
        }
    }
}
